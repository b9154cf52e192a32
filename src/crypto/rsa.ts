// RSA (RFC 8017) over node:crypto: key pairs of 2048, 3072 and 4096 bits as PKCS#8 / SPKI DER;
// RSAES-OAEP (SHA-1, SHA-256; MGF1 with the same hash) and RSAES-PKCS1-v1_5 encryption;
// RSASSA-PSS (SHA-256, MGF1-SHA-256, salt length 32 = the digest length, as AWS and Tencent use it)
// and RSASSA-PKCS1-v1_5 (SHA-256) signatures over a message or over a precomputed SHA-256 digest.
//
// Node 20 refuses RSA_PKCS1_PADDING in privateDecrypt (CVE-2023-46809, the Marvin attack) and the
// OpenSSL 3.0 underneath has no implicit rejection, so PKCS#1 v1.5 decryption here is the raw RSA
// operation followed by the implicit-rejection padding check of draft-irtf-cfrg-rsa-guidance
// (the scheme OpenSSL 3.2 adopted): a malformed padding yields a deterministic pseudo-random
// message derived from the private key and the ciphertext, never an error, so the answer is no
// padding oracle. The check below is written without data-dependent branches; JavaScript gives no
// hard constant-time guarantee, which is why OAEP remains the recommended algorithm.

import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from "node:crypto";
import { CryptoError } from "./errors.js";
import { randomBytes } from "./random.js";

export const RSA_MODULUS_BITS = [2048, 3072, 4096] as const;
export type RsaModulusBits = (typeof RSA_MODULUS_BITS)[number];

export const RSA_ENCRYPTION_ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"] as const;
export type RsaEncryptionAlgorithm = (typeof RSA_ENCRYPTION_ALGORITHMS)[number];

export const RSA_SIGNATURE_ALGORITHMS = ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"] as const;
export type RsaSignatureAlgorithm = (typeof RSA_SIGNATURE_ALGORITHMS)[number];

const SHA256_LENGTH = 32;
const PSS_SALT_LENGTH = SHA256_LENGTH;
/** DER of DigestInfo { AlgorithmIdentifier sha256 NULL, OCTET STRING (32) } without the digest (RFC 8017 §9.2 note 1). */
const SHA256_DIGEST_INFO_PREFIX = Buffer.from("3031300d060960864801650304020105000420", "hex");

export interface RsaKeyPair {
  /** PKCS#8 PrivateKeyInfo, DER. */
  privateKey: Buffer;
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Buffer;
}

export function rsaGenerateKeyPair(bits: RsaModulusBits): RsaKeyPair {
  if (!RSA_MODULUS_BITS.includes(bits)) throw new RangeError(`"bits" must be one of ${RSA_MODULUS_BITS.join(", ")}, got ${String(bits)}`);
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: bits,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: "pkcs8", format: "der" },
    publicKeyEncoding: { type: "spki", format: "der" },
  });
  return { privateKey, publicKey };
}

/** As rsaGenerateKeyPair, off the event loop (OpenSSL in libuv's thread pool): prime search takes a while. */
export function rsaGenerateKeyPairAsync(bits: RsaModulusBits): Promise<RsaKeyPair> {
  if (!RSA_MODULUS_BITS.includes(bits)) return Promise.reject(new RangeError(`"bits" must be one of ${RSA_MODULUS_BITS.join(", ")}, got ${String(bits)}`));
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "rsa",
      { modulusLength: bits, publicExponent: 0x10001, privateKeyEncoding: { type: "pkcs8", format: "der" }, publicKeyEncoding: { type: "spki", format: "der" } },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ privateKey, publicKey })),
    );
  });
}

function checkRsaKey(key: KeyObject, name: string): KeyObject {
  if (key.asymmetricKeyType !== "rsa") throw new TypeError(`"${name}" must be an RSA key (not RSA-PSS or another type)`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined || bits < 2048 || bits > 4096 || bits % 8 !== 0) throw new RangeError(`"${name}" must have a 2048- to 4096-bit modulus`);
  return key;
}

/** A private key from PKCS#8 DER; throws unless it is RSA of 2048–4096 bits. */
export function rsaPrivateKeyFromPkcs8(der: Buffer): KeyObject {
  return checkRsaKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" }), "privateKey");
}

/** A public key from SPKI DER or PEM; throws (TypeError/RangeError or node's error) unless it is RSA of 2048–4096 bits. */
export function rsaPublicKey(spkiOrPem: Buffer | string): KeyObject {
  const key = typeof spkiOrPem === "string" ? createPublicKey({ key: spkiOrPem, format: "pem" }) : createPublicKey({ key: spkiOrPem, format: "der", type: "spki" });
  return checkRsaKey(key, "publicKey");
}

/** The modulus length in bytes (k in RFC 8017). */
export function rsaModulusBytes(key: KeyObject): number {
  return (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
}

/** The longest plaintext `algorithm` can encrypt under a key of `k` bytes. */
export function rsaMaxPlaintext(algorithm: RsaEncryptionAlgorithm, k: number): number {
  switch (algorithm) {
    case "RSAES_OAEP_SHA_1":
      return k - 2 * 20 - 2;
    case "RSAES_OAEP_SHA_256":
      return k - 2 * 32 - 2;
    case "RSAES_PKCS1_V1_5":
      return k - 11;
  }
}

export function rsaEncrypt(publicKey: KeyObject, algorithm: RsaEncryptionAlgorithm, plaintext: Buffer): Buffer {
  checkRsaKey(publicKey, "publicKey");
  const max = rsaMaxPlaintext(algorithm, rsaModulusBytes(publicKey));
  if (plaintext.length > max) throw new RangeError(`"plaintext" must be at most ${max} bytes for ${algorithm} with this key, got ${plaintext.length}`);
  if (algorithm === "RSAES_PKCS1_V1_5") return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plaintext);
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256" }, plaintext);
}

/**
 * A private RSA key prepared for decryption and signing. `destroy()` wipes what this object holds
 * (the implicit-rejection key); the KeyObject's own copy lives in OpenSSL and is freed with it.
 */
export class RsaPrivateKey {
  readonly #key: KeyObject;
  readonly #k: number;
  /** SHA-256 of the private exponent, left-padded to k bytes: the implicit-rejection key (lazily derived). */
  #rejectionKey: Buffer | undefined;
  #destroyed = false;
  readonly #destroyListeners: (() => void)[] = [];

  /** From PKCS#8 DER, or from a KeyObject (one posted to a worker thread: rsa-thread.ts). */
  constructor(key: Buffer | KeyObject) {
    if (!Buffer.isBuffer(key) && key.type !== "private") throw new TypeError('"key" must be an RSA private key');
    this.#key = Buffer.isBuffer(key) ? rsaPrivateKeyFromPkcs8(key) : checkRsaKey(key, "privateKey");
    this.#k = rsaModulusBytes(this.#key);
  }

  /** The OpenSSL key, to post to the RSA thread once (rsa-worker.ts). */
  get keyObject(): KeyObject {
    return this.#live();
  }

  /** Calls `listener` when the key is destroyed (the RSA thread then drops its clone). */
  onDestroy(listener: () => void): void {
    if (this.#destroyed) listener();
    else this.#destroyListeners.push(listener);
  }

  get modulusBytes(): number {
    return this.#k;
  }

  #live(): KeyObject {
    if (this.#destroyed) throw new Error("RSA private key: used after destroy()");
    return this.#key;
  }

  /** Throws CryptoError when the ciphertext is not k bytes, not below the modulus, or (OAEP) not valid. */
  decrypt(algorithm: RsaEncryptionAlgorithm, ciphertext: Buffer): Buffer {
    const key = this.#live();
    if (ciphertext.length !== this.#k) throw new CryptoError("the ciphertext length differs from the key's modulus length");
    if (algorithm === "RSAES_PKCS1_V1_5") return this.#decryptPkcs1(key, ciphertext);
    try {
      return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256" }, ciphertext);
    } catch {
      throw new CryptoError("decryption failed");
    }
  }

  #decryptPkcs1(key: KeyObject, ciphertext: Buffer): Buffer {
    let em: Buffer;
    try {
      em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
    } catch {
      // Only a ciphertext not below the modulus fails here: public information, no oracle.
      throw new CryptoError("the ciphertext is not below the modulus");
    }
    const k = this.#k;
    const kdk = createHmac("sha256", this.#implicitRejectionKey(key)).update(ciphertext).digest();
    const synthetic = prf(kdk, "message", k * 8);
    const lengths = prf(kdk, "length", 128 * 16);
    const maxSepOffset = k - 2 - 8;
    let mask = maxSepOffset;
    for (let shift = 1; shift < 32; shift <<= 1) mask |= mask >>> shift;
    let syntheticLength = 0;
    for (let i = 0; i < 128; i++) {
      const candidate = lengths.readUInt16BE(2 * i) & mask;
      const fits = lessThan(candidate, maxSepOffset);
      syntheticLength = select(fits, candidate, syntheticLength);
    }

    // EM = 0x00 || 0x02 || PS (at least 8 non-zero bytes) || 0x00 || M
    let good = equal(em[0]!, 0) & equal(em[1]!, 2);
    let found = 0;
    let zeroIndex = 0;
    for (let i = 2; i < k; i++) {
      const isZero = equal(em[i]!, 0);
      zeroIndex = select(isZero & (found ^ 1), i, zeroIndex);
      found |= isZero;
    }
    good &= found & (lessThan(zeroIndex, 10) ^ 1);
    const length = select(good, k - zeroIndex - 1, syntheticLength);
    // Both candidates are the tail of a k-byte buffer: blend byte by byte, then cut the tail.
    const byteMask = -good & 0xff;
    const blended = Buffer.alloc(k);
    for (let i = 0; i < k; i++) blended[i] = (em[i]! & byteMask) | (synthetic[i]! & ~byteMask & 0xff);
    em.fill(0);
    synthetic.fill(0);
    return blended.subarray(k - length);
  }

  #implicitRejectionKey(key: KeyObject): Buffer {
    if (!this.#rejectionKey) {
      const jwk = key.export({ format: "jwk" });
      const d = Buffer.from(jwk.d ?? "", "base64url");
      const padded = Buffer.alloc(this.#k);
      d.copy(padded, this.#k - d.length);
      this.#rejectionKey = createHash("sha256").update(padded).digest();
      d.fill(0);
      padded.fill(0);
    }
    return this.#rejectionKey;
  }

  /** Signs `message` (hashed with SHA-256 here). */
  sign(algorithm: RsaSignatureAlgorithm, message: Buffer): Buffer {
    const key = this.#live();
    if (algorithm === "RSA_PKCS1_SHA_256") return sign("sha256", message, { key, padding: constants.RSA_PKCS1_PADDING });
    return sign("sha256", message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH });
  }

  /** Signs a SHA-256 digest computed by the caller: the same signature `sign` gives for its message. */
  signDigest(algorithm: RsaSignatureAlgorithm, digest: Buffer): Buffer {
    const key = this.#live();
    checkDigest(digest);
    if (algorithm === "RSA_PKCS1_SHA_256") {
      // EMSA-PKCS1-v1_5: type-1 padding over DigestInfo, which is what RSA_PKCS1_PADDING adds in privateEncrypt.
      return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]));
    }
    const modBits = this.#k * 8;
    const em = emsaPssEncode(digest, modBits - 1, randomBytes(PSS_SALT_LENGTH));
    const block = Buffer.alloc(this.#k);
    em.copy(block, this.#k - em.length);
    return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, block);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#rejectionKey?.fill(0);
    this.#rejectionKey = undefined;
    for (const listener of this.#destroyListeners.splice(0)) listener();
  }
}

/** False, never an exception, for a signature that does not verify, whatever its shape. */
export function rsaVerify(publicKey: KeyObject, algorithm: RsaSignatureAlgorithm, message: Buffer, signature: Buffer): boolean {
  checkRsaKey(publicKey, "publicKey");
  if (signature.length !== rsaModulusBytes(publicKey)) return false;
  try {
    if (algorithm === "RSA_PKCS1_SHA_256") return verify("sha256", message, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    return verify("sha256", message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH }, signature);
  } catch {
    return false;
  }
}

/** Verifies a signature over a SHA-256 digest computed by the caller. */
export function rsaVerifyDigest(publicKey: KeyObject, algorithm: RsaSignatureAlgorithm, digest: Buffer, signature: Buffer): boolean {
  checkRsaKey(publicKey, "publicKey");
  checkDigest(digest);
  const k = rsaModulusBytes(publicKey);
  if (signature.length !== k) return false;
  let em: Buffer;
  try {
    em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return false; // not below the modulus
  }
  if (algorithm === "RSA_PKCS1_SHA_256") {
    const expected = Buffer.alloc(k, 0xff);
    expected[0] = 0x00;
    expected[1] = 0x01;
    const t = Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]);
    expected[k - t.length - 1] = 0x00;
    t.copy(expected, k - t.length);
    return em.length === k && timingSafeEqual(em, expected);
  }
  return emsaPssVerify(digest, em, k * 8 - 1);
}

function checkDigest(digest: Buffer): void {
  if (!(digest instanceof Uint8Array)) throw new TypeError(`"digest" must be a Buffer`);
  if (digest.length !== SHA256_LENGTH) throw new RangeError(`"digest" must be ${SHA256_LENGTH} bytes (SHA-256), got ${digest.length}`);
}

/** MGF1 with SHA-256 (RFC 8017 B.2.1). */
function mgf1(seed: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let counter = 0, offset = 0; offset < length; counter++, offset += SHA256_LENGTH) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    createHash("sha256").update(seed).update(c).digest().copy(out, offset);
  }
  return out;
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-256 over a given mHash. */
function emsaPssEncode(mHash: Buffer, emBits: number, salt: Buffer): Buffer {
  const emLen = Math.ceil(emBits / 8);
  const h = createHash("sha256").update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - SHA256_LENGTH - 1);
  db[db.length - salt.length - 1] = 0x01;
  salt.copy(db, db.length - salt.length);
  const mask = mgf1(h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >>> (8 * emLen - emBits));
  return Buffer.concat([db, h, Buffer.of(0xbc)]);
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with SHA-256 and a salt of exactly 32 bytes; `block` is k bytes. */
function emsaPssVerify(mHash: Buffer, block: Buffer, emBits: number): boolean {
  const emLen = Math.ceil(emBits / 8);
  if (block.length < emLen) return false;
  // The bytes above emLen (one, when emBits is a multiple of 8) must be zero.
  if (block.subarray(0, block.length - emLen).some((b) => b !== 0)) return false;
  const em = block.subarray(block.length - emLen);
  if (emLen < SHA256_LENGTH + PSS_SALT_LENGTH + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - SHA256_LENGTH - 1);
  const h = em.subarray(emLen - SHA256_LENGTH - 1, emLen - 1);
  const topBits = 8 * emLen - emBits;
  if ((maskedDb[0]! & ~(0xff >>> topBits) & 0xff) !== 0) return false;
  const mask = mgf1(h, maskedDb.length);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >>> topBits);
  const psLength = emLen - SHA256_LENGTH - PSS_SALT_LENGTH - 2;
  if (db.subarray(0, psLength).some((b) => b !== 0) || db[psLength] !== 0x01) return false;
  const salt = db.subarray(db.length - PSS_SALT_LENGTH);
  const expected = createHash("sha256").update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return timingSafeEqual(expected, h);
}

/** The implicit-rejection PRF: HMAC-SHA256(kdk, I || label || bits) for I = 0, 1, …, cut to bits/8 bytes. */
function prf(kdk: Buffer, label: string, bits: number): Buffer {
  const length = bits / 8;
  const out = Buffer.alloc(Math.ceil(length / SHA256_LENGTH) * SHA256_LENGTH);
  const tail = Buffer.alloc(2);
  tail.writeUInt16BE(bits);
  for (let i = 0; i * SHA256_LENGTH < length; i++) {
    const counter = Buffer.alloc(2);
    counter.writeUInt16BE(i);
    createHmac("sha256", kdk).update(counter).update(label, "latin1").update(tail).digest().copy(out, i * SHA256_LENGTH);
  }
  return out.subarray(0, length);
}

// Branch-free helpers over small non-negative integers (< 2^16): each returns 0 or 1.
function equal(a: number, b: number): number {
  return (((a ^ b) - 1) >>> 31) & 1;
}
function lessThan(a: number, b: number): number {
  return ((a - b) >>> 31) & 1;
}
/** `bit` ? a : b */
function select(bit: number, a: number, b: number): number {
  const m = -bit;
  return (a & m) | (b & ~m);
}
