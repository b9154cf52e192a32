// Randomness from the operating system's CSPRNG through node:crypto.
import { randomBytes as nodeRandomBytes } from "node:crypto";

export function randomBytes(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`"length" must be a non-negative integer, got ${length}`);
  return nodeRandomBytes(length);
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
