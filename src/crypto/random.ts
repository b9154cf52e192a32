// Randomness from OpenSSL's CSPRNG through node:crypto.
import { randomBytes as nodeRandomBytes, randomFillSync } from "node:crypto";

// Each call into OpenSSL costs about 5 µs whatever the length, several times per request (an IV,
// a data key, a request id), so small requests are served from a pool filled 4 KiB at a time, as
// node:crypto's randomUUID does. Bytes leave the pool as a copy and are zeroed in it at once: the
// pool never holds what it handed out.
const POOL_BYTES = 4096;
const POOLED_MAX = 256;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let poolOffset = POOL_BYTES;

export function randomBytes(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`"length" must be a non-negative integer, got ${length}`);
  if (length > POOLED_MAX) return nodeRandomBytes(length);
  if (poolOffset + length > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = Buffer.from(pool.subarray(poolOffset, poolOffset + length));
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
  return bytes;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `length` characters drawn uniformly from [A-Za-z0-9] (rejection sampling, no modulo bias). */
export function randomAlphanumeric(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62];
    }
  }
  return out;
}
