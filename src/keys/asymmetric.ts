// Asymmetric CMK material: generating a key pair per spec, the opaque private-key handle the
// service caches (a node KeyObject, or SM2's scalar), signature verification from the stored public
// key, and encryption to a caller's public key (Decrypt / GenerateDataKey `EncryptionPublicKey`).

import { availableParallelism } from "node:os";
import { EcdsaPrivateKey, ecGenerateKeyPairAsync, ecPublicKeyFromSpki, ecdsaVerify, ecdsaVerifyDigest, type EcdsaCurve } from "../crypto/ecc.js";
import { RsaPrivateKey, rsaEncrypt, rsaGenerateKeyPairAsync, rsaPublicKey, rsaVerify, rsaVerifyDigest, type RsaEncryptionAlgorithm, type RsaModulusBits } from "../crypto/rsa.js";
import {
  sm2CiphertextToRaw,
  sm2Decrypt,
  sm2Encrypt,
  sm2GenerateKeyPairAsync,
  sm2PublicKeyFromSpki,
  sm2PublicKeyToSpki,
  sm2Sign,
  sm2SignDigest,
  sm2Verify,
  sm2VerifyDigest,
} from "../crypto/sm2.js";
import type { EcPoint } from "../crypto/ecmr.js";
import { ed25519GenerateKeyPairAsync, ed25519PrivateKey, ed25519PublicKeyFromSpki, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { hybridKemGenerateKeyPair, HYBRID_KEM_SEED_LENGTH, type HybridKem } from "../crypto/hybrid-kem.js";
import { mlDsaGenerateKeyPair, mlDsaKeyPairFromSeed, mlDsaPublicKeyFromSpki, type MlDsaParameterSet } from "../crypto/ml-dsa.js";
import type { KeyObject } from "node:crypto";
import type { EcdhPeerKey } from "../crypto/ecdh.js";
import { ecdhSm2 } from "../crypto/ecdh.js";
import type { AsymmetricKeySpec } from "./key.js";
import { pqKemOf } from "../crypto/pq-ciphertext.js";
import { ASYMMETRIC_SPECS, ASYMMETRIC_USAGES, type AsymmetricDecryptAlgorithm, type PqEncryptionAlgorithm, type SigningAlgorithm } from "./specs.js";

export type MessageType = "RAW" | "DIGEST";

export interface GeneratedKeyPair {
  /** The private half in the spec's storage format (specs.ts PrivateKeyFormat); wipe after wrapping. */
  privateMaterial: Buffer;
  /** DER SubjectPublicKeyInfo. */
  publicKey: Buffer;
}

const EC_CURVES: Readonly<Record<"ECC_P256" | "ECC_P384" | "ECC_P521", EcdsaCurve>> = { ECC_P256: "P-256", ECC_P384: "P-384", ECC_P521: "P-521" };
/** The signing algorithm of each EC curve. */
const EC_SIGNING: Readonly<Record<EcdsaCurve, SigningAlgorithm>> = { "P-256": "ECC_P256_R1", "P-384": "ECDSA_P384_SHA_384", "P-521": "ECDSA_P521_SHA_512" };

const ML_DSA_SETS: Readonly<Partial<Record<AsymmetricKeySpec, MlDsaParameterSet>>> = { ML_DSA_44: "ML-DSA-44", ML_DSA_65: "ML-DSA-65", ML_DSA_87: "ML-DSA-87" };

/** The ML-DSA parameter set of an ML_DSA_* spec. */
export function mlDsaSet(spec: AsymmetricKeySpec): MlDsaParameterSet {
  const set = ML_DSA_SETS[spec];
  if (!set) throw new TypeError(`${spec} is not an ML-DSA spec`);
  return set;
}

/** The hybrid KEM of an ML_KEM_* spec: the one algorithm its usage offers. */
export function hybridKemOf(spec: AsymmetricKeySpec): HybridKem {
  const usage = Object.values(ASYMMETRIC_USAGES).find((u) => u.spec === spec && u.purpose === "pq-decrypt");
  if (!usage) throw new TypeError(`${spec} is not an ML-KEM spec`);
  return pqKemOf(usage.algorithms[0] as PqEncryptionAlgorithm);
}

function ecCurve(spec: AsymmetricKeySpec): EcdsaCurve {
  if (spec !== "ECC_P256" && spec !== "ECC_P384" && spec !== "ECC_P521") throw new TypeError(`${spec} is not an ECDSA spec`);
  return EC_CURVES[spec];
}

/** Runs at most `size` tasks at once; the others start in arrival order as slots free up. */
class Semaphore {
  readonly #size: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#running--;
      else next();
    }
  }
}

/**
 * Key pairs are made in OpenSSL on libuv's thread pool, never on the event loop (an RSA-4096 prime
 * search takes a second or more). At most KEY_PAIR_JOBS at a time, and one core always left to the
 * event loop: the pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) also serves file
 * writes, DNS lookups and other crypto, which a burst of CreateKey calls must not starve; the other
 * calls wait their turn.
 */
export const KEY_PAIR_JOBS = Math.max(1, Math.min(2, availableParallelism() - 1));
const keyPairSlots = new Semaphore(KEY_PAIR_JOBS);

export async function generateKeyPair(spec: AsymmetricKeySpec): Promise<GeneratedKeyPair> {
  const info = ASYMMETRIC_SPECS[spec];
  return keyPairSlots.run(async () => {
    switch (info.family) {
      case "RSA": {
        const { privateKey, publicKey } = await rsaGenerateKeyPairAsync(info.bits as RsaModulusBits);
        return { privateMaterial: privateKey, publicKey };
      }
      case "EC": {
        const { privateKey, publicKey } = await ecGenerateKeyPairAsync(ecCurve(spec));
        return { privateMaterial: privateKey, publicKey };
      }
      case "SM2": {
        const { privateKey, publicKey } = await sm2GenerateKeyPairAsync();
        return { privateMaterial: privateKey, publicKey: sm2PublicKeyToSpki(publicKey) };
      }
      case "ED25519": {
        const { privateKey, publicKey } = await ed25519GenerateKeyPairAsync();
        return { privateMaterial: privateKey, publicKey };
      }
      case "ML_DSA": {
        const { seed, publicKey } = mlDsaGenerateKeyPair(mlDsaSet(spec));
        return { privateMaterial: seed, publicKey };
      }
      case "ML_KEM": {
        const { seed, publicKey } = hybridKemGenerateKeyPair(hybridKemOf(spec));
        return { privateMaterial: seed, publicKey };
      }
    }
  });
}

/**
 * GetPublicKey's PEM of a stored public key: "" for a hybrid KEM key, whose raw key has no SPKI
 * (specs.ts PrivateKeyFormat).
 */
export function publicKeyPemOf(spec: AsymmetricKeySpec, publicKey: Buffer): string {
  return ASYMMETRIC_SPECS[spec].family === "ML_KEM" ? "" : publicKeyPem(publicKey);
}

/** The public key as PEM ("PUBLIC KEY", the SPKI DER in 64-character base64 lines). */
export function publicKeyPem(spki: Buffer): string {
  const lines = spki.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}

/**
 * One asymmetric key version's private half, prepared for use. Opaque: callers sign or decrypt
 * through it and never see the material. `destroy()` wipes what it holds.
 */
export class AsymmetricPrivateKey {
  readonly spec: AsymmetricKeySpec;
  readonly #rsa: RsaPrivateKey | undefined;
  readonly #ec: EcdsaPrivateKey | undefined;
  readonly #sm2: Buffer | undefined;
  readonly #ed25519: KeyObject | undefined;
  /** ML-DSA: the expanded secret key (FIPS 204 sk), kept so that each signature skips the expansion. */
  readonly #mlDsa: { readonly set: MlDsaParameterSet; readonly secretKey: Buffer } | undefined;
  /** ML-KEM hybrid: the 32-byte seed, which decapsulation expands itself. */
  readonly #kemSeed: Buffer | undefined;
  #destroyed = false;

  /** Copies what it needs from `material`; the caller may wipe it afterwards. */
  constructor(spec: AsymmetricKeySpec, material: Buffer) {
    this.spec = spec;
    const family = ASYMMETRIC_SPECS[spec].family;
    if (family === "RSA") this.#rsa = new RsaPrivateKey(material);
    else if (family === "EC") this.#ec = new EcdsaPrivateKey(material, ecCurve(spec));
    else if (family === "ED25519") this.#ed25519 = ed25519PrivateKey(material);
    else if (family === "ML_DSA") this.#mlDsa = { set: mlDsaSet(spec), secretKey: mlDsaKeyPairFromSeed(mlDsaSet(spec), material).secretKey };
    else if (family === "ML_KEM") {
      if (material.length !== HYBRID_KEM_SEED_LENGTH) throw new RangeError(`an ${spec} private key is a ${HYBRID_KEM_SEED_LENGTH}-byte seed`);
      this.#kemSeed = Buffer.from(material);
    } else {
      if (material.length !== 32) throw new RangeError("an SM2 private key is 32 bytes");
      this.#sm2 = Buffer.from(material);
    }
  }

  #check(): void {
    if (this.#destroyed) throw new Error("asymmetric private key: used after destroy()");
  }

  /** The algorithm must belong to the key's usage (the service checks); throws otherwise. */
  sign(algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): Buffer {
    this.#check();
    if (this.#rsa && (algorithm === "RSA_PSS_SHA_256" || algorithm === "RSA_PKCS1_SHA_256")) {
      return messageType === "RAW" ? this.#rsa.sign(algorithm, message) : this.#rsa.signDigest(algorithm, message);
    }
    if (this.#ec && algorithm === EC_SIGNING[this.#ec.curve]) {
      return messageType === "RAW" ? this.#ec.sign(message) : this.#ec.signDigest(message);
    }
    if (this.#sm2 && algorithm === "SM2DSA") {
      return messageType === "RAW" ? sm2Sign(this.#sm2, message) : sm2SignDigest(this.#sm2, message);
    }
    if (this.#ed25519 && algorithm === "ED25519" && messageType === "RAW") return ed25519Sign(this.#ed25519, message);
    throw new TypeError(`${algorithm} with ${messageType} does not fit a ${this.spec} key`);
  }

  /** An RSA key, for the RSA thread (crypto/rsa-worker.ts), which keeps a clone of it until it is destroyed. */
  rsaKey(): RsaPrivateKey {
    this.#check();
    if (!this.#rsa) throw new TypeError(`RSA does not fit a ${this.spec} key`);
    return this.#rsa;
  }

  /** A copy of an SM2 key's private scalar d, for the SM2 thread; the caller wipes it. */
  sm2Scalar(): Buffer {
    this.#check();
    if (!this.#sm2) throw new TypeError(`SM2 does not fit a ${this.spec} key`);
    return Buffer.from(this.#sm2);
  }

  /** ECDH with a validated peer key of the key's curve (SP 800-56A): the shared secret's x coordinate. */
  deriveSharedSecret(peer: EcdhPeerKey): Buffer {
    this.#check();
    if (this.#ec) return this.#ec.deriveSharedSecret(peer);
    if (this.#sm2) return ecdhSm2(this.#sm2, peer);
    throw new TypeError(`ECDH does not fit a ${this.spec} key`);
  }

  /**
   * A copy of the expanded ML-DSA secret key, for a signing job in the post-quantum thread
   * (material/software.ts); the caller wipes it when the job settles.
   */
  mlDsaSecretKey(): { set: MlDsaParameterSet; secretKey: Buffer } {
    this.#check();
    if (!this.#mlDsa) throw new TypeError(`ML-DSA does not fit a ${this.spec} key`);
    return { set: this.#mlDsa.set, secretKey: Buffer.from(this.#mlDsa.secretKey) };
  }

  /** A copy of the hybrid KEM seed, to open a ciphertext of `algorithm`; the caller wipes it. */
  kemSeed(algorithm: PqEncryptionAlgorithm): Buffer {
    this.#check();
    if (!this.#kemSeed || pqKemOf(algorithm) !== hybridKemOf(this.spec)) throw new TypeError(`${algorithm} does not fit a ${this.spec} key`);
    return Buffer.from(this.#kemSeed);
  }

  /**
   * The McCallum-Relyea exchange (Tang recovery) for a P-521 key: `multiply` (ecmrMultiply, or its
   * worker thread) gets a copy of the scalar, wiped when it settles. EcPointError for a bad point.
   */
  exchange(point: EcPoint, multiply: (scalar: Buffer, point: EcPoint) => Promise<EcPoint>): Promise<EcPoint> {
    this.#check();
    if (this.#ec?.curve !== "P-521") throw new TypeError(`ECMR does not fit a ${this.spec} key`);
    const scalar = this.#ec.withScalar((s) => Buffer.from(s));
    return multiply(scalar, point).finally(() => scalar.fill(0));
  }

  /** Throws CryptoError when the ciphertext does not decrypt (OAEP, SM2); PKCS#1 v1.5 never does (implicit rejection). */
  decrypt(algorithm: AsymmetricDecryptAlgorithm, ciphertext: Buffer): Buffer {
    this.#check();
    if (this.#rsa && algorithm !== "SM2") return this.#rsa.decrypt(algorithm, ciphertext);
    if (this.#sm2 && algorithm === "SM2") return sm2Decrypt(this.#sm2, ciphertext);
    throw new TypeError(`${algorithm} does not fit a ${this.spec} key`);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#rsa?.destroy();
    this.#ec?.destroy();
    this.#sm2?.fill(0);
    this.#mlDsa?.secretKey.fill(0);
    this.#kemSeed?.fill(0);
  }
}

/** Verifies with the stored public key (SPKI DER). False for any signature that does not verify. */
export function verifySignature(
  spec: AsymmetricKeySpec,
  publicKey: Buffer,
  algorithm: SigningAlgorithm,
  message: Buffer,
  messageType: MessageType,
  signature: Buffer,
): boolean {
  const family = ASYMMETRIC_SPECS[spec].family;
  if (family === "RSA" && (algorithm === "RSA_PSS_SHA_256" || algorithm === "RSA_PKCS1_SHA_256")) {
    const key = rsaPublicKey(publicKey);
    return messageType === "RAW" ? rsaVerify(key, algorithm, message, signature) : rsaVerifyDigest(key, algorithm, message, signature);
  }
  if (family === "EC" && algorithm === EC_SIGNING[ecCurve(spec)]) {
    const curve = ecCurve(spec);
    const key = ecPublicKeyFromSpki(publicKey, curve);
    return messageType === "RAW" ? ecdsaVerify(key, curve, message, signature) : ecdsaVerifyDigest(key, curve, message, signature);
  }
  if (family === "ED25519" && algorithm === "ED25519" && messageType === "RAW") return ed25519Verify(ed25519PublicKeyFromSpki(publicKey), message, signature);
  if (family === "SM2" && algorithm === "SM2DSA") {
    const point = sm2PublicKeyFromSpki(publicKey);
    try {
      return messageType === "RAW" ? sm2Verify(point, message, signature) : sm2VerifyDigest(point, message, signature);
    } catch {
      return false;
    }
  }
  throw new TypeError(`${algorithm} does not fit a ${spec} key`);
}

/** The ML-DSA parameter set and raw public key of a stored ML-DSA public key (RFC 9881 SPKI). */
export function mlDsaPublicKeyOf(spec: AsymmetricKeySpec, publicKey: Buffer): { set: MlDsaParameterSet; publicKey: Buffer } {
  const set = mlDsaSet(spec);
  return { set, publicKey: mlDsaPublicKeyFromSpki(set, publicKey) };
}

/** Decrypt's and GenerateDataKey's `EncryptionAlgorithm` values; "SM2" is raw C1C3C2, the default. */
export const PUBLIC_KEY_WRAP_ALGORITHMS = ["SM2", "SM2_C1C3C2_ASN1", "RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] as const;
export type PublicKeyWrapAlgorithm = (typeof PUBLIC_KEY_WRAP_ALGORITHMS)[number];

export class PublicKeyError extends Error {
  override readonly name = "PublicKeyError";
}

/**
 * Parses a caller's public key (PEM, or base64 of the SPKI DER) for `algorithm` and returns the
 * function that encrypts to it. Throws PublicKeyError, with a reason, when the key does not fit.
 */
export function publicKeyEncrypter(text: string, algorithm: PublicKeyWrapAlgorithm): (plaintext: Buffer) => Buffer {
  const body = text.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new PublicKeyError("it is not a PEM public key or base64 DER");
  const der = Buffer.from(body, "base64");
  if (algorithm === "SM2" || algorithm === "SM2_C1C3C2_ASN1") {
    let point: Buffer;
    try {
      point = sm2PublicKeyFromSpki(der);
    } catch {
      throw new PublicKeyError(`it is not an SM2 public key, which ${algorithm} needs`);
    }
    return (plaintext) => {
      const asn1 = sm2Encrypt(point, plaintext);
      return algorithm === "SM2" ? sm2CiphertextToRaw(asn1) : asn1;
    };
  }
  let key;
  try {
    key = rsaPublicKey(der);
  } catch {
    throw new PublicKeyError(`it is not an RSA public key of 2048 to 4096 bits, which ${algorithm} needs`);
  }
  const rsaAlgorithm: RsaEncryptionAlgorithm = algorithm;
  return (plaintext) => {
    try {
      return rsaEncrypt(key, rsaAlgorithm, plaintext);
    } catch (e) {
      if (e instanceof RangeError) throw new PublicKeyError(`${plaintext.length} bytes are too long for ${algorithm} with this key`);
      throw e;
    }
  };
}
