// ECDSA (FIPS 186-4 / SEC 1) on NIST P-256 with SHA-256, P-384 with SHA-384 and P-521 with SHA-512
// (JWS ES512, RFC 7518 section 3.4, for Tang advertisements): key pairs as
// PKCS#8 / SPKI DER, DER-encoded signatures (X9.62 Ecdsa-Sig-Value). Messages go through
// node:crypto (OpenSSL). node:crypto can only sign what it hashes itself, so a precomputed digest
// is signed as SM2 is (./sm2.ts): k·G by OpenSSL, the rest modulo n in BigInt; @noble/curves
// verifies digests and holds the curve orders.

import { createECDH, createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { derSequence, derUnsignedInteger } from "./asn1.js";
import { ecdhNist, type EcdhPeerKey } from "./ecdh.js";
import { bigIntFromBytes, blindedScalar, randomScalar } from "./scalar.js";

export const ECDSA_CURVES = ["P-256", "P-384", "P-521"] as const;
export type EcdsaCurve = (typeof ECDSA_CURVES)[number];

interface CurveInfo {
  /** OpenSSL's name, as KeyObject.asymmetricKeyDetails.namedCurve reports it. */
  readonly opensslName: string;
  readonly hash: "sha256" | "sha384" | "sha512";
  readonly digestLength: number;
  /** Bytes of one coordinate (and of r and s in an IEEE P1363 signature). */
  readonly coordinateLength: number;
  readonly noble: typeof p256 | typeof p521;
}

const CURVES: Readonly<Record<EcdsaCurve, CurveInfo>> = Object.freeze({
  "P-256": { opensslName: "prime256v1", hash: "sha256", digestLength: 32, coordinateLength: 32, noble: p256 },
  "P-384": { opensslName: "secp384r1", hash: "sha384", digestLength: 48, coordinateLength: 48, noble: p384 },
  "P-521": { opensslName: "secp521r1", hash: "sha512", digestLength: 64, coordinateLength: 66, noble: p521 },
});

/** The digest length a DIGEST-mode message must have on `curve`. */
export function ecdsaDigestLength(curve: EcdsaCurve): number {
  return CURVES[curve].digestLength;
}

/** The hash ECDSA uses on `curve`. */
export function ecdsaHash(curve: EcdsaCurve): "sha256" | "sha384" | "sha512" {
  return CURVES[curve].hash;
}

/** The length in bytes of one coordinate of a point on `curve`. */
export function ecCoordinateLength(curve: EcdsaCurve): number {
  return CURVES[curve].coordinateLength;
}

export interface EcKeyPair {
  /** PKCS#8 PrivateKeyInfo, DER. */
  privateKey: Buffer;
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Buffer;
}

export function ecGenerateKeyPair(curve: EcdsaCurve): EcKeyPair {
  const info = CURVES[curve];
  if (!info) throw new RangeError(`"curve" must be one of ${ECDSA_CURVES.join(", ")}`);
  const { privateKey, publicKey } = generateKeyPairSync("ec", {
    namedCurve: info.opensslName,
    privateKeyEncoding: { type: "pkcs8", format: "der" },
    publicKeyEncoding: { type: "spki", format: "der" },
  });
  return { privateKey, publicKey };
}

/** As ecGenerateKeyPair, off the event loop (OpenSSL in libuv's thread pool), for the server. */
export function ecGenerateKeyPairAsync(curve: EcdsaCurve): Promise<EcKeyPair> {
  const info = CURVES[curve];
  if (!info) return Promise.reject(new RangeError(`"curve" must be one of ${ECDSA_CURVES.join(", ")}`));
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "ec",
      { namedCurve: info.opensslName, privateKeyEncoding: { type: "pkcs8", format: "der" }, publicKeyEncoding: { type: "spki", format: "der" } },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ privateKey, publicKey })),
    );
  });
}

function checkEcKey(key: KeyObject, curve: EcdsaCurve, name: string): KeyObject {
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== CURVES[curve].opensslName) {
    throw new TypeError(`"${name}" must be an EC key on ${curve}`);
  }
  return key;
}

/**
 * `key`, once OpenSSL has shown it can encode it; TypeError otherwise. Node 20 aborts the whole
 * process (an assertion in GetEcKeyDetail) when asked for the details or the JWK of an EC key that
 * holds the point at infinity, and OpenSSL refuses to encode such a key: every public key a caller
 * hands in goes through here before anything reads its details.
 */
export function encodablePublicKey(key: KeyObject): KeyObject {
  try {
    key.export({ format: "der", type: "spki" });
  } catch {
    throw new TypeError(`"publicKey" cannot be encoded: an EC public key must not be the point at infinity`);
  }
  return key;
}

export function ecPublicKeyFromSpki(spki: Buffer, curve: EcdsaCurve): KeyObject {
  return checkEcKey(encodablePublicKey(createPublicKey({ key: spki, format: "der", type: "spki" })), curve, "publicKey");
}

/** The uncompressed point 04||x||y of a public key. */
function rawPublicKey(key: KeyObject, curve: EcdsaCurve): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  const size = CURVES[curve].coordinateLength;
  const x = Buffer.from(jwk.x ?? "", "base64url");
  const y = Buffer.from(jwk.y ?? "", "base64url");
  if (x.length !== size || y.length !== size) throw new TypeError(`"publicKey" is not a point on ${curve}`);
  return Buffer.concat([Buffer.of(4), x, y]);
}

/**
 * ECDSA signature generation (SEC 1 v2 section 4.1.3) over a digest the caller computed with the
 * curve's hash: R = k·G in OpenSSL (createECDH, its constant-time scalar multiplication),
 * r = x_R mod n, s = k^-1 (e + r·d) mod n in BigInt. BigInt's arithmetic is not constant time, so
 * it only sees blinded secrets: k as k·b for a random b (s = (k·b)^-1 · b · (e + r·d)) and d as
 * d + m·n for a random m. e is the digest as an integer: each curve's digest is no longer than its
 * order (SHA-512 is 512 of P-521's 521 bits), so nothing is truncated. A new k is drawn from
 * `nextK` when r or s is 0; each k is wiped after use.
 */
function signDigestWith(info: CurveInfo, scalar: Buffer, digest: Uint8Array, nextK: () => Buffer): Buffer {
  const { Fn } = info.noble.Point;
  const n = Fn.ORDER;
  const e = bigIntFromBytes(digest);
  const blindedD = blindedScalar(bigIntFromBytes(scalar), n);
  for (;;) {
    const kBytes = nextK();
    try {
      const ecdh = createECDH(info.opensslName);
      ecdh.setPrivateKey(kBytes);
      const r = bigIntFromBytes(ecdh.getPublicKey().subarray(1, 1 + info.coordinateLength)) % n;
      if (r === 0n) continue;
      const bBytes = randomScalar(n, info.coordinateLength);
      const b = bigIntFromBytes(bBytes);
      bBytes.fill(0);
      const s = (Fn.inv((bigIntFromBytes(kBytes) * b) % n) * ((b * ((e + r * blindedD) % n)) % n)) % n;
      if (s === 0n) continue;
      return derSequence(derUnsignedInteger(r), derUnsignedInteger(s));
    } finally {
      kBytes.fill(0);
    }
  }
}

/** Tests only: signs a digest with a given private scalar and k, to reproduce RFC 6979's examples. Not for production. */
export function _ecdsaSignDigestWithK(curve: EcdsaCurve, scalar: Buffer, digest: Buffer, k: Buffer): Buffer {
  const info = CURVES[curve];
  let used = false;
  return signDigestWith(info, scalar, digest, () => {
    if (used) throw new RangeError(`"k" gives r = 0 or s = 0; ECDSA asks for another k`);
    used = true;
    return Buffer.from(k);
  });
}

/** A private ECDSA key prepared for signing; `destroy()` wipes the scalar this object may hold. */
export class EcdsaPrivateKey {
  readonly curve: EcdsaCurve;
  readonly #key: KeyObject;
  /** The private scalar, exported only when a digest is first signed. */
  #scalar: Buffer | undefined;
  #destroyed = false;

  constructor(pkcs8: Buffer, curve: EcdsaCurve) {
    this.curve = curve;
    this.#key = checkEcKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }), curve, "privateKey");
  }

  #live(): KeyObject {
    if (this.#destroyed) throw new Error("ECDSA private key: used after destroy()");
    return this.#key;
  }

  /** DER signature over `message`, hashed with the curve's hash. */
  sign(message: Buffer): Buffer {
    return sign(CURVES[this.curve].hash, message, { key: this.#live(), dsaEncoding: "der" });
  }

  /** DER signature over a digest the caller computed with the curve's hash. */
  signDigest(digest: Buffer): Buffer {
    const info = CURVES[this.curve];
    if (!(digest instanceof Uint8Array) || digest.length !== info.digestLength) {
      throw new RangeError(`"digest" must be ${info.digestLength} bytes on ${this.curve}`);
    }
    return this.withScalar((scalar) => signDigestWith(info, scalar, digest, () => randomScalar(info.noble.Point.Fn.ORDER, info.coordinateLength)));
  }

  /** ECDH with a validated peer key of the same curve: the x coordinate of d·Q. */
  deriveSharedSecret(peer: EcdhPeerKey): Buffer {
    if (peer.curve !== this.curve) throw new TypeError(`a ${peer.curve} peer key does not fit a ${this.curve} key`);
    return ecdhNist(this.#live(), peer);
  }

  /** Runs `use` with the private scalar (exported once, kept until destroy()); `use` must not keep it. */
  withScalar<T>(use: (scalar: Buffer) => T): T {
    const key = this.#live();
    if (!this.#scalar) this.#scalar = Buffer.from(key.export({ format: "jwk" }).d ?? "", "base64url");
    return use(this.#scalar);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#scalar?.fill(0);
    this.#scalar = undefined;
  }
}

/**
 * A DER signature (X9.62 Ecdsa-Sig-Value) as IEEE P1363 r || s, each of the coordinate length: the
 * form JWS carries (RFC 7518 section 3.4). RangeError when `der` is not a signature on `curve`.
 */
export function ecdsaDerToP1363(der: Buffer, curve: EcdsaCurve): Buffer {
  const info = CURVES[curve];
  let compact: Uint8Array;
  try {
    compact = info.noble.Signature.fromBytes(der, "der").toBytes("compact");
  } catch {
    throw new RangeError(`"der" is not a DER ECDSA signature on ${curve}`);
  }
  if (compact.length !== 2 * info.coordinateLength) throw new RangeError(`"der" is not a DER ECDSA signature on ${curve}`);
  return Buffer.from(compact);
}

/** False, never an exception, for a signature that does not verify or is not DER. */
export function ecdsaVerify(publicKey: KeyObject, curve: EcdsaCurve, message: Buffer, signature: Buffer): boolean {
  checkEcKey(publicKey, curve, "publicKey");
  try {
    return verify(CURVES[curve].hash, message, { key: publicKey, dsaEncoding: "der" }, signature);
  } catch {
    return false;
  }
}

export function ecdsaVerifyDigest(publicKey: KeyObject, curve: EcdsaCurve, digest: Buffer, signature: Buffer): boolean {
  checkEcKey(publicKey, curve, "publicKey");
  const info = CURVES[curve];
  if (!(digest instanceof Uint8Array) || digest.length !== info.digestLength) {
    throw new RangeError(`"digest" must be ${info.digestLength} bytes on ${curve}`);
  }
  try {
    return info.noble.verify(signature, digest, rawPublicKey(publicKey, curve), { prehash: false, lowS: false, format: "der" });
  } catch {
    return false;
  }
}
