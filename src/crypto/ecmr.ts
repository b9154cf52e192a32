// The McCallum-Relyea exchange (ECMR) that Tang answers recovery requests with: the full point
// s·X on NIST P-521 (SEC 1 section 2.2), X the client's point and s the exchange key's private
// scalar. Node's ECDH (computeSecret) gives only the x coordinate of s·X, and Clevis needs the whole
// point, so the multiplication runs in @noble/curves; its point decoding (SEC 1 section 2.3.4)
// rejects points off the curve, coordinates outside the field and the point at infinity.

import { p521 } from "@noble/curves/nist.js";
import { CryptoError } from "./errors.js";

/** Bytes of one P-521 coordinate (and of the private scalar, as JWK `d` carries it). */
export const P521_COORDINATE_LENGTH = 66;

/** An affine point as two big-endian coordinates of P521_COORDINATE_LENGTH bytes each. */
export interface EcPoint {
  x: Buffer;
  y: Buffer;
}

/** The message says which check failed; it never quotes the point or the scalar. */
export class EcPointError extends CryptoError {}

/** `point` decoded and checked: on P-521, not the point at infinity, coordinates in range. */
function p521Point(point: EcPoint): ReturnType<typeof p521.Point.fromBytes> {
  if (point.x.length !== P521_COORDINATE_LENGTH || point.y.length !== P521_COORDINATE_LENGTH) {
    throw new EcPointError(`a P-521 coordinate is ${P521_COORDINATE_LENGTH} bytes`);
  }
  try {
    return p521.Point.fromBytes(Buffer.concat([Buffer.of(4), point.x, point.y]));
  } catch {
    throw new EcPointError("the point is not on P-521");
  }
}

/** Throws EcPointError unless `point` is a point of P-521 other than infinity. */
export function checkP521Point(point: EcPoint): void {
  p521Point(point);
}

/**
 * s·X for the private scalar `scalar` (big-endian, P521_COORDINATE_LENGTH bytes) and the client's
 * point `point`. Throws EcPointError for a point that is not on the curve. Takes about 10 ms of
 * the calling thread (measured; docs/disk-encryption.md).
 */
export function ecmrMultiply(scalar: Buffer, point: EcPoint): EcPoint {
  const x = p521Point(point);
  if (scalar.length !== P521_COORDINATE_LENGTH) throw new RangeError(`"scalar" must be ${P521_COORDINATE_LENGTH} bytes`);
  const product = x.multiply(BigInt(`0x${scalar.toString("hex")}`));
  const bytes = Buffer.from(product.toBytes(false));
  return { x: bytes.subarray(1, 1 + P521_COORDINATE_LENGTH), y: bytes.subarray(1 + P521_COORDINATE_LENGTH) };
}

// Where the scalar stays inside a token, ECDH (PKCS#11 CKM_ECDH1_DERIVE) gives only x(s·X). The
// two points with that x are (x, y) and (x, -y); a second derivation on X + cG gives
// x(s·X + c·P), P = s·G the public key, which only the right one reproduces.

type P521Point = ReturnType<typeof p521.Point.fromBytes>;

function toEcPoint(point: P521Point): EcPoint {
  const bytes = Buffer.from(point.toBytes(false));
  return { x: bytes.subarray(1, 1 + P521_COORDINATE_LENGTH), y: bytes.subarray(1 + P521_COORDINATE_LENGTH) };
}

function fromEcPoint(point: EcPoint): P521Point {
  return p521.Point.fromBytes(Buffer.concat([Buffer.of(4), point.x, point.y]));
}

/** X + c·G with c = 1, or 2 when X = -G: the point of the second derivation, never infinity. */
export function ecmrCheckPoint(point: EcPoint): { point: EcPoint; c: 1n | 2n } {
  const x = p521Point(point);
  const once = x.add(p521.Point.BASE);
  return once.is0() ? { point: toEcPoint(x.add(p521.Point.BASE.double())), c: 2n } : { point: toEcPoint(once), c: 1n };
}

/** s·X from x = x(s·X), xCheck = x(s·(X + c·G)) and the public key P = s·G. */
export function ecmrFromX(x: Buffer, xCheck: Buffer, publicKey: EcPoint, c: 1n | 2n): EcPoint {
  if (x.length !== P521_COORDINATE_LENGTH || xCheck.length !== P521_COORDINATE_LENGTH) throw new RangeError(`an x coordinate is ${P521_COORDINATE_LENGTH} bytes`);
  const offset = fromEcPoint(publicKey).multiply(c);
  for (const prefix of [2, 3]) {
    const candidate = p521.Point.fromBytes(Buffer.concat([Buffer.of(prefix), x]));
    const sum = candidate.add(offset);
    if (!sum.is0() && Buffer.from(sum.toBytes(true)).subarray(1).equals(xCheck)) return toEcPoint(candidate);
  }
  throw new EcPointError("neither point with that x coordinate reproduces the second derivation");
}
