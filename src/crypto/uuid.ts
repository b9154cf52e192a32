// Key ids in binary formats: a lower-case UUID as its 16 raw bytes, and back.

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** The 16 bytes of a lower-case UUID; RangeError naming `name` for anything else. */
export function uuidToBytes(value: string, name = "keyId"): Buffer {
  if (!isUuid(value)) throw new RangeError(`"${name}" must be a lower-case UUID`);
  return Buffer.from(value.replaceAll("-", ""), "hex");
}

/** The lower-case UUID of 16 bytes. */
export function uuidFromBytes(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
