// Randomness from the operating system's CSPRNG through node:crypto.
import { randomBytes as nodeRandomBytes } from "node:crypto";

export function randomBytes(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`"length" must be a non-negative integer, got ${length}`);
  return nodeRandomBytes(length);
}
