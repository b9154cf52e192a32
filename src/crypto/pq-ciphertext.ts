// The post-quantum ciphertext of PostQuantumCryptoEncrypt/Decrypt, specified byte by byte in
// docs/formats.md ("Post-quantum ciphertext"): a hybrid KEM (hybrid-kem.ts) gives a fresh
// 32-byte secret for each message; HKDF-SHA-256 turns it, bound to the header, into a one-time
// AES-256-GCM key; the header (with the KEM ciphertext) is the AEAD's authenticated data.
// Here, below keys/, because both the server and the Encryption SDK's post-quantum keyring
// (sdk/encryption/pq-keyring.ts) make it: one implementation, byte for byte the same.

import { hkdfSync } from "node:crypto";
import { aesGcmDecrypt, aesGcmEncrypt, GCM_TAG_LENGTH } from "./aes.js";
import { BlobFormatError, CryptoError } from "./errors.js";
import {
  hybridKemCiphertextLength,
  hybridKemDecapsulate,
  hybridKemEncapsulate,
  hybridKemPublicKeyLength,
  type HybridKem,
  type HybridKemOps,
} from "./hybrid-kem.js";
import { uuidFromBytes, uuidToBytes } from "./uuid.js";

/** Hybrid KEMs: X-Wing (ML-KEM-768 + X25519) and MLKEM1024-P384, each then AES-256-GCM (docs/formats.md). */
export type PqEncryptionAlgorithm = "ML_KEM_768_X25519_AES_256_GCM" | "ML_KEM_1024_P384_AES_256_GCM";

export const PQ_BLOB_FORMAT = 0x02;
/** Format, algorithm, key id, key version: before the KEM ciphertext. */
const FIXED_HEADER_LENGTH = 1 + 1 + 16 + 4;
const HKDF_INFO = Buffer.from("Tresor PQ hybrid v1", "ascii");
/** Each AEAD key encrypts exactly one message, so a constant nonce is safe (docs/formats.md). */
const ZERO_NONCE = Buffer.alloc(12);

const ALGORITHMS: Readonly<Record<PqEncryptionAlgorithm, { readonly id: number; readonly kem: HybridKem }>> = Object.freeze({
  ML_KEM_768_X25519_AES_256_GCM: { id: 0x10, kem: "X-Wing" },
  ML_KEM_1024_P384_AES_256_GCM: { id: 0x11, kem: "MLKEM1024-P384" },
});
const BY_ID = new Map<number, PqEncryptionAlgorithm>(Object.entries(ALGORITHMS).map(([name, a]) => [a.id, name as PqEncryptionAlgorithm]));

export function pqKemOf(algorithm: PqEncryptionAlgorithm): HybridKem {
  return ALGORITHMS[algorithm].kem;
}

/** The algorithm whose hybrid KEM takes public keys as long as `publicKey` (the two lengths differ). */
export function pqAlgorithmOfPublicKey(publicKey: Uint8Array): PqEncryptionAlgorithm | undefined {
  return Object.keys(ALGORITHMS).find((a) => hybridKemPublicKeyLength(pqKemOf(a as PqEncryptionAlgorithm)) === publicKey.length) as PqEncryptionAlgorithm | undefined;
}

/** The algorithm of an id byte (offset 1 of a ciphertext). */
export function pqAlgorithmOfId(id: number): PqEncryptionAlgorithm | undefined {
  return BY_ID.get(id);
}

/** The longest post-quantum ciphertext of a plaintext of `plaintextLength` bytes. */
export function pqBlobMaxLength(plaintextLength: number): number {
  return FIXED_HEADER_LENGTH + Math.max(...Object.values(ALGORITHMS).map((a) => hybridKemCiphertextLength(a.kem))) + plaintextLength + GCM_TAG_LENGTH;
}

export interface PqBlobHeader {
  algorithm: PqEncryptionAlgorithm;
  keyId: string;
  keyVersion: number;
}

export interface ParsedPqBlob extends PqBlobHeader {
  /** Everything before the AEAD ciphertext, as encoded: the authenticated data. */
  header: Buffer;
  kemCiphertext: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

function fixedHeader(h: PqBlobHeader): Buffer {
  const keyId = uuidToBytes(h.keyId);
  if (!Number.isInteger(h.keyVersion) || h.keyVersion < 1 || h.keyVersion > 0xffffffff) throw new RangeError(`"keyVersion" out of range`);
  const header = Buffer.alloc(FIXED_HEADER_LENGTH);
  header[0] = PQ_BLOB_FORMAT;
  header[1] = ALGORITHMS[h.algorithm].id;
  keyId.copy(header, 2);
  header.writeUInt32BE(h.keyVersion, 18);
  return header;
}

/**
 * The one-time AES-256-GCM key: HKDF-SHA-256 (RFC 5869), no salt, info = label || the fixed header
 * (format, algorithm, key id, version). The KEM ciphertext is bound by the AEAD's authenticated data
 * and by the KEM itself; it is left out of info, which node:crypto caps at 1024 bytes.
 */
function aeadKey(sharedSecret: Buffer, header: Buffer): Buffer {
  const info = Buffer.concat([HKDF_INFO, header.subarray(0, FIXED_HEADER_LENGTH)]);
  return Buffer.from(hkdfSync("sha256", sharedSecret, Buffer.alloc(0), info, 32));
}

/** The KEM run in the caller's thread: for tests and tools. The server passes its worker thread (PqThread). */
export const IN_THREAD_KEM: HybridKemOps = {
  encapsulate: async (kem, publicKey) => hybridKemEncapsulate(kem, publicKey),
  decapsulate: async (kem, seed, ciphertext) => hybridKemDecapsulate(kem, seed, ciphertext),
};

/** Encrypts to the key's hybrid encapsulation key; RangeError when `publicKey` is not one. */
export async function pqSeal(h: PqBlobHeader, publicKey: Buffer, plaintext: Buffer, kemOps: HybridKemOps = IN_THREAD_KEM): Promise<Buffer> {
  const { ciphertext: kemCiphertext, sharedSecret } = await kemOps.encapsulate(pqKemOf(h.algorithm), publicKey);
  const header = Buffer.concat([fixedHeader(h), kemCiphertext]);
  const key = aeadKey(sharedSecret, header);
  try {
    const { ciphertext, tag } = aesGcmEncrypt(key, ZERO_NONCE, plaintext, header);
    return Buffer.concat([header, ciphertext, tag]);
  } finally {
    key.fill(0);
    sharedSecret.fill(0);
  }
}

/** Parses a post-quantum ciphertext; BlobFormatError for anything that is not a well-formed one. */
export function decodePqBlob(bytes: Buffer): ParsedPqBlob {
  if (bytes.length < FIXED_HEADER_LENGTH || bytes[0] !== PQ_BLOB_FORMAT) throw new BlobFormatError("not a post-quantum ciphertext");
  const algorithm = BY_ID.get(bytes[1]!);
  if (!algorithm) throw new BlobFormatError("unknown post-quantum ciphertext algorithm");
  const headerLength = FIXED_HEADER_LENGTH + hybridKemCiphertextLength(pqKemOf(algorithm));
  if (bytes.length < headerLength + GCM_TAG_LENGTH) throw new BlobFormatError("post-quantum ciphertext is too short");
  const keyVersion = bytes.readUInt32BE(18);
  if (keyVersion < 1) throw new BlobFormatError("invalid key version in post-quantum ciphertext");
  return {
    algorithm,
    keyId: uuidFromBytes(bytes.subarray(2, 18)),
    keyVersion,
    header: bytes.subarray(0, headerLength),
    kemCiphertext: bytes.subarray(FIXED_HEADER_LENGTH, headerLength),
    ciphertext: bytes.subarray(headerLength, bytes.length - GCM_TAG_LENGTH),
    tag: bytes.subarray(bytes.length - GCM_TAG_LENGTH),
  };
}

/** Decrypts with the key's seed; CryptoError when the ciphertext was changed or is not for this key. */
export async function pqOpen(parsed: ParsedPqBlob, seed: Buffer, kemOps: HybridKemOps = IN_THREAD_KEM): Promise<Buffer> {
  let sharedSecret: Buffer;
  try {
    sharedSecret = await kemOps.decapsulate(pqKemOf(parsed.algorithm), seed, parsed.kemCiphertext);
  } catch (e) {
    // An invalid curve point in the KEM ciphertext: the same answer as any other tampering.
    if (e instanceof RangeError) throw new CryptoError("post-quantum ciphertext does not decrypt");
    throw e;
  }
  const key = aeadKey(sharedSecret, parsed.header);
  try {
    return aesGcmDecrypt(key, ZERO_NONCE, parsed.ciphertext, parsed.tag, parsed.header);
  } finally {
    key.fill(0);
    sharedSecret.fill(0);
  }
}
