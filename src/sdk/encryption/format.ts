// Message format version 1 (docs/formats.md, "Encryption SDK message"): the header's encoding and
// its bounded, incremental parsing, and the fixed layouts of frames and footer.

import { ENCRYPTION_ERROR_CODES, EncryptionSdkError } from "./errors.js";
import { COMMITMENT_LENGTH, MESSAGE_ID_LENGTH, suiteById, TAG_LENGTH, type Suite } from "./suites.js";

export const MAGIC = Buffer.from("TRSE", "latin1");
export const FORMAT_VERSION = 1;
/** The marker that opens the final frame in place of a sequence number. */
export const FINAL_FRAME_MARKER = 0xffffffff;
export const MAX_SEQUENCE_NUMBER = 0xfffffffe;
export const MIN_FRAME_LENGTH = 1;
export const MAX_FRAME_LENGTH = 16 * 1024 * 1024;
export const DEFAULT_FRAME_LENGTH = 256 * 1024;
export const DEFAULT_MAX_ENCRYPTED_DATA_KEYS = 5;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/** Regular frame: uint32 sequence number, ciphertext (frame length), tag. */
export const REGULAR_FRAME_OVERHEAD = 4 + TAG_LENGTH;
/** Final frame: marker, uint32 sequence number, uint64 total plaintext length, then ciphertext and tag. */
export const FINAL_FRAME_PREFIX = 4 + 4 + 8;
export const FRAME_TYPE_REGULAR = 0x01;
export const FRAME_TYPE_FINAL = 0x02;
const UINT16_MAX = 0xffff;

export interface EncryptedDataKey {
  /** Who can decrypt it: "tresor-kms" for a Tresor CMK, "raw" for a RawKeyring key. */
  readonly provider: string;
  /** The region (Tresor cluster) or raw key namespace the key lives in. */
  readonly region: string;
  readonly keyId: string;
  /** The provider's ciphertext of the data key (a Tresor CiphertextBlob, decoded from base64). */
  readonly blob: Buffer;
}

export type ContextPairs = Readonly<Record<string, string>>;

export interface Header {
  readonly suite: Suite;
  readonly messageId: Buffer;
  /** Every pair, reserved ones included, sorted by key. */
  readonly context: ContextPairs;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  readonly frameLength: number;
  readonly commitment: Buffer;
}

/** Keys compared as UTF-8 bytes: the order the header stores them in. */
export function sortedContextEntries(context: ContextPairs): Array<[string, string]> {
  return Object.entries(context).sort(([a], [b]) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

class Writer {
  readonly parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.of(v));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  /** uint16 length, then the bytes. */
  field(name: string, b: Buffer): this {
    if (b.length > UINT16_MAX) throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, `${name} must be at most ${UINT16_MAX} bytes, got ${b.length}`);
    return this.u16(b.length).bytes(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The header body: every field up to and including the commitment (what the header tag covers). */
export function encodeHeaderBody(header: Header): Buffer {
  const w = new Writer().bytes(MAGIC).u8(FORMAT_VERSION).u16(header.suite.id).bytes(header.messageId);
  const entries = sortedContextEntries(header.context);
  w.u16(entries.length);
  for (const [k, v] of entries) w.field("a context key", Buffer.from(k, "utf8")).field("a context value", Buffer.from(v, "utf8"));
  w.u16(header.encryptedDataKeys.length);
  for (const edk of header.encryptedDataKeys) {
    w.field("a provider id", Buffer.from(edk.provider, "utf8"))
      .field("a region", Buffer.from(edk.region, "utf8"))
      .field("a key id", Buffer.from(edk.keyId, "utf8"))
      .field("an encrypted data key", edk.blob);
  }
  return w.u32(header.frameLength).bytes(header.commitment).done();
}

const invalid = (why: string): EncryptionSdkError => new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidMessage, `not a valid message: ${why}`);

/** Thrown inside the parser when the buffer ends before the header does. */
class NeedMore extends Error {}

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  take(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new NeedMore();
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE();
  }
  u32(): number {
    return this.take(4).readUInt32BE();
  }
  field(): Buffer {
    return this.take(this.u16());
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
function text(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalid(`${what} is not UTF-8`);
  }
}

export interface ParseLimits {
  maxEncryptedDataKeys: number;
  maxHeaderBytes: number;
  /** Largest frame length accepted; default MAX_FRAME_LENGTH. */
  maxFrameLength?: number;
}

export interface ParsedHeader {
  header: Header;
  /** The header body bytes (what the tag covers). */
  body: Buffer;
  tag: Buffer;
  /** Header body + tag: where the first frame starts. */
  length: number;
}

/**
 * Parses a header from the start of `buf`. Returns undefined when `buf` ends before the header
 * does; throws as soon as the bytes already seen are invalid or exceed a limit, so a hostile
 * message costs at most maxHeaderBytes of buffering and no KMS call.
 */
export function parseHeader(buf: Buffer, limits: ParseLimits): ParsedHeader | undefined {
  const r = new Reader(buf.length > limits.maxHeaderBytes ? buf.subarray(0, limits.maxHeaderBytes) : buf);
  try {
    const magic = r.take(MAGIC.length);
    if (!magic.equals(MAGIC)) throw invalid("it does not start with TRSE");
    const version = r.u8();
    if (version !== FORMAT_VERSION) throw invalid(`format version ${version} is not supported (only ${FORMAT_VERSION})`);
    const suiteId = r.u16();
    const suite = suiteById(suiteId);
    if (suite === undefined) throw invalid(`unknown algorithm suite 0x${suiteId.toString(16).padStart(4, "0")}`);
    const messageId = Buffer.from(r.take(MESSAGE_ID_LENGTH));
    const pairs = r.u16();
    const context: Record<string, string> = {};
    let previous: Buffer | undefined;
    for (let i = 0; i < pairs; i++) {
      const keyBytes = r.field();
      const value = text(r.field(), "a context value");
      if (previous !== undefined && Buffer.compare(previous, keyBytes) >= 0) throw invalid("context keys are not in strictly ascending order");
      previous = keyBytes;
      context[text(keyBytes, "a context key")] = value;
    }
    const count = r.u16();
    if (count === 0) throw invalid("it holds no encrypted data key");
    if (count > limits.maxEncryptedDataKeys) {
      throw new EncryptionSdkError(
        ENCRYPTION_ERROR_CODES.TooManyEncryptedDataKeys,
        `the message holds ${count} encrypted data keys; at most ${limits.maxEncryptedDataKeys} are accepted (maxEncryptedDataKeys)`,
      );
    }
    const encryptedDataKeys: EncryptedDataKey[] = [];
    for (let i = 0; i < count; i++) {
      const provider = text(r.field(), "a provider id");
      const region = text(r.field(), "a region");
      const keyId = text(r.field(), "a key id");
      const blob = Buffer.from(r.field());
      encryptedDataKeys.push({ provider, region, keyId, blob });
    }
    const frameLength = r.u32();
    if (frameLength < MIN_FRAME_LENGTH || frameLength > MAX_FRAME_LENGTH) {
      throw invalid(`frame length ${frameLength} is outside ${MIN_FRAME_LENGTH}..${MAX_FRAME_LENGTH}`);
    }
    if (limits.maxFrameLength !== undefined && frameLength > limits.maxFrameLength) {
      throw new EncryptionSdkError(
        ENCRYPTION_ERROR_CODES.FrameTooLarge,
        `the message's frame length is ${frameLength} bytes; at most ${limits.maxFrameLength} are accepted (maxFrameLength)`,
      );
    }
    const commitment = Buffer.from(r.take(COMMITMENT_LENGTH));
    const bodyLength = r.offset;
    const tag = Buffer.from(r.take(TAG_LENGTH));
    return {
      header: { suite, messageId, context, encryptedDataKeys, frameLength, commitment },
      body: Buffer.from(buf.subarray(0, bodyLength)),
      tag,
      length: r.offset,
    };
  } catch (err) {
    if (!(err instanceof NeedMore)) throw err;
    if (buf.length >= limits.maxHeaderBytes) {
      throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.HeaderTooLarge, `the message header is larger than ${limits.maxHeaderBytes} bytes (maxHeaderBytes)`);
    }
    return undefined;
  }
}

/** AAD of a frame: message id || frame type || uint32 sequence number || uint64 length. */
export function frameAad(messageId: Buffer, type: number, seq: number, length: number): Buffer {
  const aad = Buffer.alloc(MESSAGE_ID_LENGTH + 1 + 4 + 8);
  messageId.copy(aad, 0);
  aad[MESSAGE_ID_LENGTH] = type;
  aad.writeUInt32BE(seq, MESSAGE_ID_LENGTH + 1);
  writeUint64(aad, length, MESSAGE_ID_LENGTH + 5);
  return aad;
}

export function writeUint64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / 2 ** 32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a uint64; undefined when it exceeds Number.MAX_SAFE_INTEGER. */
export function readUint64(buf: Buffer, offset: number): number | undefined {
  const v = buf.readBigUInt64BE(offset);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}
