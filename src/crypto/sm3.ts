// SM3 hash (GB/T 32905-2016, the same algorithm as GM/T 0004-2012) and HMAC-SM3 (RFC 2104 over
// SM3), over node:crypto's native `sm3`.

import { createHash, createHmac } from "node:crypto";

export const SM3_DIGEST_LENGTH = 32;

function checkBytes(name: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`"${name}" must be a Buffer or Uint8Array`);
}

export function sm3(data: Buffer): Buffer {
  checkBytes("data", data);
  return createHash("sm3").update(data).digest();
}

/** HMAC-SM3. Keys longer than SM3's 64-byte block are hashed first, as RFC 2104 says. */
export function hmacSm3(key: Buffer, data: Buffer): Buffer {
  checkBytes("key", key);
  checkBytes("data", data);
  return createHmac("sm3", key).update(data).digest();
}
