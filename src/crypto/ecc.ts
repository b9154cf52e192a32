// ECDSA (FIPS 186-4 / SEC 1) on NIST P-256 with SHA-256, P-384 with SHA-384 and P-521 with SHA-512
// (JWS ES512, RFC 7518 section 3.4, for Tang advertisements): key pairs as
// PKCS#8 / SPKI DER, DER-encoded signatures (X9.62 Ecdsa-Sig-Value). Messages go through
// node:crypto (OpenSSL); a precomputed digest goes through @noble/curves with prehash off, because
// node:crypto can only sign what it hashes itself.

import { createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { ecdhNist, type EcdhPeerKey } from "./ecdh.js";

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
    // lowS false: the same signature distribution OpenSSL produces for sign().
    return this.withScalar((scalar) => Buffer.from(info.noble.sign(digest, scalar, { prehash: false, lowS: false, format: "der" })));
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
