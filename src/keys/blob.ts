// The ciphertext blob: self-describing, versioned, specified byte by byte in docs/formats.md.
// The header (everything before the ciphertext) and the canonical encryption context are the
// AEAD's authenticated data, so any change to either fails decryption.

import type { AeadName } from "../crypto/aead.js";
import { BlobFormatError } from "../crypto/errors.js";
import { uuidFromBytes, uuidToBytes } from "../crypto/uuid.js";

export { BlobFormatError } from "../crypto/errors.js";
export { isUuid } from "../crypto/uuid.js";

export const BLOB_FORMAT_V1 = 0x01;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
export const BLOB_HEADER_LENGTH = 1 + 1 + 16 + 4 + IV_LENGTH;
export const BLOB_MIN_LENGTH = BLOB_HEADER_LENGTH + TAG_LENGTH;

const ALGORITHM_IDS: Readonly<Record<AeadName, number>> = { "SM4-GCM": 0x01, "AES-256-GCM": 0x02 };
const ALGORITHM_BY_ID = new Map<number, AeadName>(Object.entries(ALGORITHM_IDS).map(([name, id]) => [id, name as AeadName]));

export interface BlobHeader {
  algorithm: AeadName;
  keyId: string;
  keyVersion: number;
  iv: Buffer;
}

export interface ParsedBlob extends BlobHeader {
  /** The header bytes exactly as encoded; part of the authenticated data. */
  header: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function encodeBlobHeader(h: BlobHeader): Buffer {
  const keyId = uuidToBytes(h.keyId);
  if (!Number.isInteger(h.keyVersion) || h.keyVersion < 1 || h.keyVersion > 0xffffffff) throw new RangeError(`"keyVersion" out of range`);
  if (h.iv.length !== IV_LENGTH) throw new RangeError(`"iv" must be ${IV_LENGTH} bytes`);
  const header = Buffer.alloc(BLOB_HEADER_LENGTH);
  header[0] = BLOB_FORMAT_V1;
  header[1] = ALGORITHM_IDS[h.algorithm];
  keyId.copy(header, 2);
  header.writeUInt32BE(h.keyVersion, 18);
  h.iv.copy(header, 22);
  return header;
}

export function encodeBlob(header: Buffer, ciphertext: Buffer, tag: Buffer): Buffer {
  if (tag.length !== TAG_LENGTH) throw new RangeError(`"tag" must be ${TAG_LENGTH} bytes`);
  return Buffer.concat([header, ciphertext, tag]);
}

/** Parses a blob; throws BlobFormatError for anything that is not a well-formed v1 blob. */
export function decodeBlob(bytes: Buffer): ParsedBlob {
  if (bytes.length < BLOB_MIN_LENGTH) throw new BlobFormatError("ciphertext blob is too short");
  if (bytes[0] !== BLOB_FORMAT_V1) throw new BlobFormatError("unknown ciphertext blob format");
  const algorithm = ALGORITHM_BY_ID.get(bytes[1]!);
  if (!algorithm) throw new BlobFormatError("unknown ciphertext blob algorithm");
  const keyId = uuidFromBytes(bytes.subarray(2, 18));
  const keyVersion = bytes.readUInt32BE(18);
  if (keyVersion < 1) throw new BlobFormatError("invalid key version in ciphertext blob");
  return {
    algorithm,
    keyId,
    keyVersion,
    iv: bytes.subarray(22, BLOB_HEADER_LENGTH),
    header: bytes.subarray(0, BLOB_HEADER_LENGTH),
    ciphertext: bytes.subarray(BLOB_HEADER_LENGTH, bytes.length - TAG_LENGTH),
    tag: bytes.subarray(bytes.length - TAG_LENGTH),
  };
}

/** Encryption context as a map of strings; canonical form sorts keys so field order does not matter. */
export type EncryptionContext = Readonly<Record<string, string>>;

export function canonicalContext(context: EncryptionContext): Buffer {
  const entries = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]!] as const);
  return entries.length === 0 ? Buffer.alloc(0) : Buffer.from(JSON.stringify(entries), "utf8");
}

/** The AEAD's authenticated data: header bytes, then the canonical context. */
export function blobAad(header: Buffer, context: EncryptionContext): Buffer {
  return Buffer.concat([header, canonicalContext(context)]);
}
