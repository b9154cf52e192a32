// Big-endian scalars of the elliptic-curve code (sm2.ts, ecc.ts): bytes as an integer, and
// uniformly random secret scalars.

import { randomBytes } from "node:crypto";

/** Big-endian unsigned bytes as an integer (0 for none). */
export function bigIntFromBytes(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`);
}

/**
 * A uniformly random scalar in [1, n-1] as `length` big-endian bytes (rejection sampling; bits of
 * the first byte above n's length are cleared first, as P-521's 66 bytes need). The caller wipes it.
 */
export function randomScalar(n: bigint, length: number): Buffer {
  const topMask = 0xff >>> (8 * length - n.toString(2).length);
  for (;;) {
    const k = randomBytes(length);
    k[0]! &= topMask;
    const v = bigIntFromBytes(k);
    if (v >= 1n && v < n) return k;
    k.fill(0);
  }
}

/**
 * `d` + m·n for a fresh random odd 64-bit m: the same value modulo n, for BigInt arithmetic
 * (which is not constant time) on a secret, whose operand size then no longer depends on `d`.
 */
export function blindedScalar(d: bigint, n: bigint): bigint {
  return d + (bigIntFromBytes(randomBytes(8)) | 1n) * n;
}
