// A minimal strict DER (ITU-T X.690) reader and writer for the few fixed structures the crypto layer
// exchanges: signatures, SM2 ciphertexts, SubjectPublicKeyInfo and PKCS#8. Not a general ASN.1
// library: single-byte tags, definite minimal lengths, nothing indefinite or constructed-implicit.

export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_OID = 0x06;
export const TAG_SEQUENCE = 0x30;

/** Thrown by the reader for anything that is not strict DER of the expected shape. */
export class DerError extends Error {
  override readonly name = "DerError";
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derTlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function derSequence(...items: Uint8Array[]): Buffer {
  return derTlv(TAG_SEQUENCE, Buffer.concat(items));
}

/** A non-negative INTEGER in its minimal two's-complement form. */
export function derUnsignedInteger(value: bigint): Buffer {
  if (value < 0n) throw new RangeError(`"value" must be non-negative`);
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let content = Buffer.from(hex, "hex");
  if (content[0]! & 0x80) content = Buffer.concat([Buffer.from([0]), content]);
  return derTlv(TAG_INTEGER, content);
}

/** A cursor over DER bytes; every read checks tag, length and bounds, and `end()` forbids trailing bytes. */
export class DerReader {
  #offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  /** The content of the next element, which must carry `tag`. */
  read(tag: number): Buffer {
    const b = this.bytes;
    if (this.#offset + 2 > b.length) throw new DerError("truncated");
    if (b[this.#offset] !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}`);
    let pos = this.#offset + 1;
    const first = b[pos++]!;
    let length: number;
    if (first < 0x80) {
      length = first;
    } else {
      const count = first & 0x7f;
      // 0x80 is BER's indefinite form; more than 4 length bytes is never needed here.
      if (count === 0 || count > 4 || pos + count > b.length) throw new DerError("bad length");
      if (b[pos] === 0) throw new DerError("non-minimal length");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + b[pos++]!;
      if (length < 0x80) throw new DerError("non-minimal length");
    }
    if (pos + length > b.length) throw new DerError("truncated");
    this.#offset = pos + length;
    return Buffer.from(b.buffer, b.byteOffset + pos, length);
  }

  /** A non-negative INTEGER in minimal encoding (no superfluous leading 00, no negative values). */
  readUnsignedInteger(): bigint {
    const c = this.read(TAG_INTEGER);
    if (c.length === 0) throw new DerError("empty INTEGER");
    if (c[0]! & 0x80) throw new DerError("negative INTEGER");
    if (c.length > 1 && c[0] === 0 && !(c[1]! & 0x80)) throw new DerError("non-minimal INTEGER");
    return BigInt(`0x${c.toString("hex")}`);
  }

  readSequence(): DerReader {
    return new DerReader(this.read(TAG_SEQUENCE));
  }

  get done(): boolean {
    return this.#offset === this.bytes.length;
  }

  end(): void {
    if (!this.done) throw new DerError("trailing bytes");
  }
}
