// TTLV, KMIP's binary encoding (KMIP 1.4 §9.1, KMIP 2.0 §9.1): a 3-byte tag, a 1-byte type, a
// 4-byte big-endian length, then the value padded with zeros to a multiple of 8 bytes. The decoder
// is strict: every length, type, padding byte and nesting level is checked against the bytes it
// was given, so a hostile message fails here with a TtlvError and never reaches the operations.

export const TTLV_TYPES = {
  Structure: 0x01,
  Integer: 0x02,
  LongInteger: 0x03,
  BigInteger: 0x04,
  Enumeration: 0x05,
  Boolean: 0x06,
  TextString: 0x07,
  ByteString: 0x08,
  DateTime: 0x09,
  Interval: 0x0a,
  /** KMIP 2.0: microseconds since the epoch. */
  DateTimeExtended: 0x0b,
} as const;
export type TtlvTypeName = keyof typeof TTLV_TYPES;

export type Ttlv =
  | { readonly tag: number; readonly type: "Structure"; readonly value: readonly Ttlv[] }
  | { readonly tag: number; readonly type: "Integer" | "Enumeration" | "Interval"; readonly value: number }
  | { readonly tag: number; readonly type: "LongInteger" | "BigInteger" | "DateTime" | "DateTimeExtended"; readonly value: bigint }
  | { readonly tag: number; readonly type: "Boolean"; readonly value: boolean }
  | { readonly tag: number; readonly type: "TextString"; readonly value: string }
  | { readonly tag: number; readonly type: "ByteString"; readonly value: Buffer };

export type TtlvStructure = Extract<Ttlv, { type: "Structure" }>;

/** Why a message does not decode; `offset` is the byte where the fault was found. */
export class TtlvError extends Error {
  override readonly name = "TtlvError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

export interface DecodeLimits {
  /** Deepest nesting of structures (the message itself is depth 1). */
  readonly maxDepth: number;
  /** Most items in the whole message, so a message of many tiny items cannot cost much. */
  readonly maxItems: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({ maxDepth: 16, maxItems: 100_000 });

const HEADER = 8;
const TYPE_NAMES = new Map<number, TtlvTypeName>(Object.entries(TTLV_TYPES).map(([name, code]) => [code, name as TtlvTypeName]));
/** Value lengths fixed by the type. */
const FIXED_LENGTH: Partial<Record<TtlvTypeName, number>> = {
  Integer: 4,
  Enumeration: 4,
  Interval: 4,
  LongInteger: 8,
  Boolean: 8,
  DateTime: 8,
  DateTimeExtended: 8,
};
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The length of the whole TTLV item whose first 8 bytes are `header`: for reading a message off a stream. */
export function itemLength(header: Buffer): number {
  if (header.length < HEADER) throw new TtlvError("a TTLV header has 8 bytes", header.length);
  return HEADER + padded(header.readUInt32BE(4));
}

/** Decodes exactly one item that fills `bytes`. */
export function decodeTtlv(bytes: Buffer, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Ttlv {
  const state = { items: 0 };
  const { item, end } = decodeItem(bytes, 0, bytes.length, 1, limits, state);
  if (end !== bytes.length) throw new TtlvError(`${bytes.length - end} bytes follow the message`, end);
  return item;
}

function decodeItem(bytes: Buffer, at: number, limit: number, depth: number, limits: DecodeLimits, state: { items: number }): { item: Ttlv; end: number } {
  if (limit - at < HEADER) throw new TtlvError("a TTLV item is cut short inside its header", at);
  if (++state.items > limits.maxItems) throw new TtlvError(`more than ${limits.maxItems} items`, at);
  const tag = bytes.readUIntBE(at, 3);
  if (tag >> 16 !== 0x42 && tag >> 16 !== 0x54) throw new TtlvError(`tag 0x${tag.toString(16).padStart(6, "0")} is neither a KMIP tag (0x42xxxx) nor an extension (0x54xxxx)`, at);
  const typeCode = bytes[at + 3] as number;
  const type = TYPE_NAMES.get(typeCode);
  if (!type) throw new TtlvError(`type 0x${typeCode.toString(16).padStart(2, "0")} is not a TTLV type`, at + 3);
  const length = bytes.readUInt32BE(at + 4);
  const start = at + HEADER;
  const fixed = FIXED_LENGTH[type];
  if (fixed !== undefined && length !== fixed) throw new TtlvError(`a ${type} has length ${fixed}, not ${length}`, at + 4);
  if ((type === "BigInteger" || type === "Structure") && length % 8 !== 0) throw new TtlvError(`a ${type}'s length must be a multiple of 8, not ${length}`, at + 4);
  const end = start + padded(length);
  if (end > limit) throw new TtlvError(`a ${type} of ${length} bytes runs past the end of its container`, at + 4);
  for (let i = start + length; i < end; i++) if (bytes[i] !== 0) throw new TtlvError("padding bytes must be zero", i);
  if (type === "Structure") {
    if (depth >= limits.maxDepth) throw new TtlvError(`structures nest deeper than ${limits.maxDepth}`, at);
    const children: Ttlv[] = [];
    let next = start;
    while (next < end) {
      const child = decodeItem(bytes, next, end, depth + 1, limits, state);
      children.push(child.item);
      next = child.end;
    }
    return { item: { tag, type, value: children }, end };
  }
  return { item: primitive(tag, type, bytes, start, length), end };
}

function primitive(tag: number, type: Exclude<TtlvTypeName, "Structure">, bytes: Buffer, start: number, length: number): Ttlv {
  switch (type) {
    case "Integer":
    case "Interval":
      return { tag, type, value: type === "Integer" ? bytes.readInt32BE(start) : bytes.readUInt32BE(start) };
    case "Enumeration":
      return { tag, type, value: bytes.readUInt32BE(start) };
    case "LongInteger":
    case "DateTime":
    case "DateTimeExtended":
      return { tag, type, value: bytes.readBigInt64BE(start) };
    case "BigInteger":
      return { tag, type, value: twosComplement(bytes.subarray(start, start + length)) };
    case "Boolean": {
      const value = bytes.readBigUInt64BE(start);
      if (value > 1n) throw new TtlvError("a Boolean is 0 or 1", start);
      return { tag, type, value: value === 1n };
    }
    case "TextString":
      try {
        return { tag, type, value: UTF8.decode(bytes.subarray(start, start + length)) };
      } catch {
        throw new TtlvError("a Text String is not UTF-8", start);
      }
    case "ByteString":
      return { tag, type, value: Buffer.from(bytes.subarray(start, start + length)) };
  }
}

function padded(length: number): number {
  return Math.ceil(length / 8) * 8;
}

function twosComplement(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const unsigned = BigInt(`0x${bytes.toString("hex")}`);
  return (bytes[0] as number) & 0x80 ? unsigned - (1n << BigInt(bytes.length * 8)) : unsigned;
}

/** Encodes one item (and its children). */
export function encodeTtlv(item: Ttlv): Buffer {
  const parts: Buffer[] = [];
  write(item, parts);
  return Buffer.concat(parts);
}

function write(item: Ttlv, parts: Buffer[]): number {
  const header = Buffer.alloc(HEADER);
  header.writeUIntBE(item.tag, 0, 3);
  header[3] = TTLV_TYPES[item.type];
  parts.push(header);
  if (item.type === "Structure") {
    let length = 0;
    for (const child of item.value) length += write(child, parts);
    header.writeUInt32BE(length, 4);
    return HEADER + length;
  }
  const { value, length } = valueBytes(item);
  header.writeUInt32BE(length, 4);
  parts.push(value);
  return HEADER + value.length;
}

/** The value padded to 8 bytes, and its unpadded length. */
function valueBytes(item: Exclude<Ttlv, TtlvStructure>): { value: Buffer; length: number } {
  switch (item.type) {
    case "Integer":
    case "Enumeration":
    case "Interval": {
      const value = Buffer.alloc(8);
      if (item.type === "Integer") value.writeInt32BE(item.value, 0);
      else value.writeUInt32BE(item.value, 0);
      return { value, length: 4 };
    }
    case "LongInteger":
    case "DateTime":
    case "DateTimeExtended": {
      const value = Buffer.alloc(8);
      value.writeBigInt64BE(item.value, 0);
      return { value, length: 8 };
    }
    case "BigInteger": {
      const value = bigIntegerBytes(item.value);
      return { value, length: value.length };
    }
    case "Boolean": {
      const value = Buffer.alloc(8);
      value[7] = item.value ? 1 : 0;
      return { value, length: 8 };
    }
    case "TextString":
    case "ByteString": {
      const raw = item.type === "TextString" ? Buffer.from(item.value, "utf8") : item.value;
      const value = Buffer.alloc(padded(raw.length));
      raw.copy(value);
      return { value, length: raw.length };
    }
  }
}

/** Two's complement, big-endian, sign-extended to a multiple of 8 bytes (KMIP 1.4 §9.1.1.4). */
function bigIntegerBytes(n: bigint): Buffer {
  let bytes = 8;
  while (n >= 1n << BigInt(bytes * 8 - 1) || n < -(1n << BigInt(bytes * 8 - 1))) bytes += 8;
  const unsigned = n < 0n ? (1n << BigInt(bytes * 8)) + n : n;
  return Buffer.from(unsigned.toString(16).padStart(bytes * 2, "0"), "hex");
}
