// Algorithm suites of message format version 1: how a data key becomes the per-message keys, how a
// frame is sealed, and which signature (if any) closes the message. Frozen: a suite id, once
// written into a message, must always mean the same thing.

import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual, type Cipher as NodeCipher, type Hash, type Hmac } from "node:crypto";
import { ecGenerateKeyPair, ecPublicKeyFromSpki, ecdsaVerifyDigest, EcdsaPrivateKey } from "../../crypto/ecc.js";
import {
  sm2GenerateKeyPair,
  sm2IdentityDigest,
  sm2PublicKeyFromSpki,
  sm2PublicKeyToSpki,
  sm2SignDigest,
  sm2VerifyDigest,
} from "../../crypto/sm2.js";
import { ML_DSA_SEED_LENGTH, mlDsaMuHash, mlDsaPublicKeyFromSpki, mlDsaPublicKeyToSpki } from "../../crypto/ml-dsa.js";
import { randomBytes } from "../../crypto/random.js";
import { Sm4GcmKey } from "../../crypto/sm4-gcm.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError } from "./errors.js";
import { pqThread } from "./pq-thread.js";

export const SUITE_NAMES = [
  "SM4_GCM_SM3",
  "SM4_GCM_SM3_SM2",
  "SM4_CTR_HMAC_SM3",
  "SM4_CTR_HMAC_SM3_SM2",
  "AES_256_GCM_HKDF_SHA512_COMMIT",
  "AES_256_GCM_HKDF_SHA512_COMMIT_ECDSA_P384",
  "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65",
] as const;
export type SuiteName = (typeof SUITE_NAMES)[number];

export const DEFAULT_SUITE: SuiteName = "SM4_GCM_SM3";
/** Every suite asks the keyring for a 32-byte data key: the input of its HKDF. */
export const DATA_KEY_LENGTH = 32;
export const IV_LENGTH = 12;
export const TAG_LENGTH = 16;
export const COMMITMENT_LENGTH = 32;
export const MESSAGE_ID_LENGTH = 32;
/** The encryption context key that carries a signed message's public key (base64 of its SPKI DER). */
export const PUBLIC_KEY_CONTEXT_KEY = "tresor:public-key";
/** Context keys with this prefix are reserved for the SDK. */
export const RESERVED_CONTEXT_PREFIX = "tresor:";

type Cipher = "SM4-GCM" | "SM4-CTR-HMAC-SM3" | "AES-256-GCM";
type SignatureName = "SM2" | "ECDSA_P384" | "ML_DSA_65";

export interface Suite {
  readonly id: number;
  readonly name: SuiteName;
  readonly cipher: Cipher;
  /** HKDF's hash. */
  readonly kdfHash: "sm3" | "sha512";
  readonly signature: SignatureName | undefined;
}

const SUITE_LIST: readonly Suite[] = Object.freeze([
  Object.freeze({ id: 0x0100, name: "SM4_GCM_SM3", cipher: "SM4-GCM", kdfHash: "sm3", signature: undefined }),
  Object.freeze({ id: 0x0101, name: "SM4_GCM_SM3_SM2", cipher: "SM4-GCM", kdfHash: "sm3", signature: "SM2" }),
  Object.freeze({ id: 0x0200, name: "SM4_CTR_HMAC_SM3", cipher: "SM4-CTR-HMAC-SM3", kdfHash: "sm3", signature: undefined }),
  Object.freeze({ id: 0x0201, name: "SM4_CTR_HMAC_SM3_SM2", cipher: "SM4-CTR-HMAC-SM3", kdfHash: "sm3", signature: "SM2" }),
  Object.freeze({ id: 0x0300, name: "AES_256_GCM_HKDF_SHA512_COMMIT", cipher: "AES-256-GCM", kdfHash: "sha512", signature: undefined }),
  Object.freeze({
    id: 0x0301,
    name: "AES_256_GCM_HKDF_SHA512_COMMIT_ECDSA_P384",
    cipher: "AES-256-GCM",
    kdfHash: "sha512",
    signature: "ECDSA_P384",
  }),
  Object.freeze({
    id: 0x0302,
    name: "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65",
    cipher: "AES-256-GCM",
    kdfHash: "sha512",
    signature: "ML_DSA_65",
  }),
] satisfies Suite[]);

export const SUITES: Readonly<Record<SuiteName, Suite>> = Object.freeze(
  Object.fromEntries(SUITE_LIST.map((s) => [s.name, s])) as Record<SuiteName, Suite>,
);

export function suiteById(id: number): Suite | undefined {
  return SUITE_LIST.find((s) => s.id === id);
}

export function suiteByName(name: unknown): Suite {
  if (typeof name !== "string" || !(SUITE_NAMES as readonly string[]).includes(name)) {
    throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, `"suite" must be one of ${SUITE_NAMES.join(", ")}, got ${String(name)}`);
  }
  return SUITES[name as SuiteName];
}

// ---- per-message keys --------------------------------------------------------------------------

/** Seals and opens the frames of one message; `seq` 0 is the header, frames count from 1. */
export interface FrameCipher {
  seal(seq: number, aad: Buffer, plaintext: Buffer): { ciphertext: Buffer; tag: Buffer };
  /**
   * seal() over a plaintext given in pieces (as they arrived from the stream), without joining
   * them: the ciphertext comes back in pieces whose concatenation is seal()'s ciphertext.
   */
  sealParts(seq: number, aad: Buffer, plaintext: readonly Buffer[]): { ciphertext: Buffer[]; tag: Buffer };
  /** Throws AuthenticationFailed before producing any plaintext when the tag does not match. */
  open(seq: number, aad: Buffer, ciphertext: Buffer, tag: Buffer): Buffer;
  /** open() over a ciphertext in pieces; the plaintext comes back in pieces, only once the tag verified. */
  openParts(seq: number, aad: Buffer, ciphertext: readonly Buffer[], tag: Buffer): Buffer[];
  destroy(): void;
}

export interface MessageKeys {
  readonly commitment: Buffer;
  readonly cipher: FrameCipher;
}

function hkdf(suite: Suite, dataKey: Buffer, messageId: Buffer, label: string, length: number): Buffer {
  const info = Buffer.alloc(2 + label.length + 2);
  info.write("v1", 0, "latin1");
  info.write(label, 2, "latin1");
  info.writeUInt16BE(suite.id, 2 + label.length);
  return Buffer.from(hkdfSync(suite.kdfHash, dataKey, messageId, info, length));
}

/** The frame IV: the derived 12-byte base with its last 4 bytes XORed with the sequence number. */
function frameIv(base: Buffer, seq: number): Buffer {
  const iv = Buffer.from(base);
  iv.writeUInt32BE((iv.readUInt32BE(IV_LENGTH - 4) ^ seq) >>> 0, IV_LENGTH - 4);
  return iv;
}

const authFailed = (): EncryptionSdkError =>
  new EncryptionSdkError(ENCRYPTION_ERROR_CODES.AuthenticationFailed, "authentication failed: the message was altered or the data key is wrong");

/**
 * Derives the per-message keys from the data key with HKDF (salt = message id, info = "v1" || label
 * || suite id): the cipher key(s), the IV base and the 32-byte key commitment. The caller wipes
 * `dataKey` when it likes; the returned cipher holds its own copies until destroy().
 */
export function deriveMessageKeys(suite: Suite, dataKey: Buffer, messageId: Buffer): MessageKeys {
  const commitment = hkdf(suite, dataKey, messageId, "commit", COMMITMENT_LENGTH);
  const ivBase = hkdf(suite, dataKey, messageId, "iv", IV_LENGTH);
  switch (suite.cipher) {
    case "AES-256-GCM":
      return { commitment, cipher: aesGcmCipher(hkdf(suite, dataKey, messageId, "key", 32), ivBase) };
    case "SM4-GCM":
      return { commitment, cipher: sm4GcmCipher(hkdf(suite, dataKey, messageId, "key", 16), ivBase) };
    case "SM4-CTR-HMAC-SM3":
      return {
        commitment,
        cipher: sm4CtrHmacCipher(hkdf(suite, dataKey, messageId, "key", 16), hkdf(suite, dataKey, messageId, "mac", 32), ivBase),
      };
  }
}

export function commitmentMatches(expected: Buffer, actual: Buffer): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function aesGcmCipher(key: Buffer, ivBase: Buffer): FrameCipher {
  return {
    seal(seq, aad, plaintext) {
      const c = createCipheriv("aes-256-gcm", key, frameIv(ivBase, seq), { authTagLength: TAG_LENGTH });
      c.setAAD(aad);
      const head = c.update(plaintext);
      const tail = c.final();
      return { ciphertext: tail.length === 0 ? head : Buffer.concat([head, tail]), tag: c.getAuthTag() };
    },
    sealParts(seq, aad, plaintext) {
      const c = createCipheriv("aes-256-gcm", key, frameIv(ivBase, seq), { authTagLength: TAG_LENGTH });
      c.setAAD(aad);
      const ciphertext = plaintext.map((p) => c.update(p));
      const tail = c.final();
      if (tail.length > 0) ciphertext.push(tail);
      return { ciphertext, tag: c.getAuthTag() };
    },
    open(seq, aad, ciphertext, tag) {
      const d = createDecipheriv("aes-256-gcm", key, frameIv(ivBase, seq), { authTagLength: TAG_LENGTH });
      d.setAAD(aad);
      d.setAuthTag(tag);
      // GCM's plaintext is ready before the tag is checked: it is wiped and never returned on failure.
      const plaintext = d.update(ciphertext);
      try {
        d.final();
      } catch {
        plaintext.fill(0);
        throw authFailed();
      }
      return plaintext;
    },
    openParts(seq, aad, ciphertext, tag) {
      const d = createDecipheriv("aes-256-gcm", key, frameIv(ivBase, seq), { authTagLength: TAG_LENGTH });
      d.setAAD(aad);
      d.setAuthTag(tag);
      const plaintext = ciphertext.map((c) => d.update(c));
      try {
        d.final();
      } catch {
        for (const p of plaintext) p.fill(0);
        throw authFailed();
      }
      return plaintext;
    },
    destroy() {
      key.fill(0);
      ivBase.fill(0);
    },
  };
}

function sm4GcmCipher(key: Buffer, ivBase: Buffer): FrameCipher {
  const prepared = new Sm4GcmKey(key);
  key.fill(0);
  return {
    seal: (seq, aad, plaintext) => prepared.encrypt(frameIv(ivBase, seq), plaintext, aad),
    sealParts(seq, aad, plaintext) {
      // GHASH pads each piece to whole blocks, so the pieces are joined (a copy: small next to SM4).
      const { ciphertext, tag } = prepared.encrypt(frameIv(ivBase, seq), plaintext.length === 1 ? plaintext[0]! : Buffer.concat(plaintext), aad);
      return { ciphertext: [ciphertext], tag };
    },
    open(seq, aad, ciphertext, tag) {
      try {
        return prepared.decrypt(frameIv(ivBase, seq), ciphertext, tag, aad);
      } catch {
        throw authFailed();
      }
    },
    openParts(seq, aad, ciphertext, tag) {
      try {
        return [prepared.decrypt(frameIv(ivBase, seq), ciphertext.length === 1 ? ciphertext[0]! : Buffer.concat(ciphertext), tag, aad)];
      } catch {
        throw authFailed();
      }
    },
    destroy() {
      prepared.destroy();
      ivBase.fill(0);
    },
  };
}

/** SM4-CTR-HMAC-SM3 works through a frame in slices this large, so the MAC reads what CTR just wrote from cache. */
const CACHE_SLICE = 64 * 1024;

/**
 * Encrypt-then-MAC: SM4-CTR from the counter block IV || 00000000, then HMAC-SM3 over
 * uint64(len(aad)) || aad || IV || ciphertext, truncated to 16 bytes. open() checks the MAC before
 * decrypting; openParts() decrypts alongside and releases nothing unless the MAC matches.
 */
function sm4CtrHmacCipher(encKey: Buffer, macKey: Buffer, ivBase: Buffer): FrameCipher {
  const macStart = (iv: Buffer, aad: Buffer): Hmac => {
    const len = Buffer.alloc(8);
    len.writeUInt32BE(Math.floor(aad.length / 2 ** 32), 0);
    len.writeUInt32BE(aad.length >>> 0, 4);
    return createHmac("sm3", macKey).update(len).update(aad).update(iv);
  };
  const tagOf = (h: Hmac): Buffer => h.digest().subarray(0, TAG_LENGTH);
  /** The counter block IV || 00000000: one streaming SM4-CTR context per frame. */
  const ctr = (iv: Buffer): NodeCipher => {
    const counter = Buffer.alloc(16);
    iv.copy(counter, 0);
    return createCipheriv("sm4-ctr", encKey, counter);
  };
  const xor = (iv: Buffer, data: Buffer): Buffer => (data.length === 0 ? Buffer.alloc(0) : ctr(iv).update(data));
  return {
    seal(seq, aad, plaintext) {
      const iv = frameIv(ivBase, seq);
      const ciphertext = xor(iv, plaintext);
      return { ciphertext, tag: tagOf(macStart(iv, aad).update(ciphertext)) };
    },
    sealParts(seq, aad, plaintext) {
      const iv = frameIv(ivBase, seq);
      const c = ctr(iv);
      const h = macStart(iv, aad);
      // CTR is a stream cipher: node's context carries the keystream position across update()s.
      const ciphertext: Buffer[] = [];
      for (const part of plaintext) {
        for (let at = 0; at < part.length; at += CACHE_SLICE) {
          const out = c.update(part.subarray(at, at + CACHE_SLICE));
          h.update(out);
          ciphertext.push(out);
        }
      }
      return { ciphertext, tag: tagOf(h) };
    },
    open(seq, aad, ciphertext, tag) {
      const iv = frameIv(ivBase, seq);
      const expected = tagOf(macStart(iv, aad).update(ciphertext));
      if (tag.length !== TAG_LENGTH || !timingSafeEqual(expected, tag)) throw authFailed();
      return xor(iv, ciphertext);
    },
    openParts(seq, aad, ciphertext, tag) {
      // MAC and decrypt each slice while it is in cache (one pass over the frame, as sealing does);
      // like GCM, the plaintext is released only after the tag verifies, and wiped otherwise.
      const iv = frameIv(ivBase, seq);
      const h = macStart(iv, aad);
      const c = ctr(iv);
      const plaintext: Buffer[] = [];
      for (const part of ciphertext) {
        for (let at = 0; at < part.length; at += CACHE_SLICE) {
          const slice = part.subarray(at, at + CACHE_SLICE);
          h.update(slice);
          plaintext.push(c.update(slice));
        }
      }
      if (tag.length !== TAG_LENGTH || !timingSafeEqual(tagOf(h), tag)) {
        for (const p of plaintext) p.fill(0);
        throw authFailed();
      }
      return plaintext;
    },
    destroy() {
      encKey.fill(0);
      macKey.fill(0);
      ivBase.fill(0);
    },
  };
}

// ---- signatures --------------------------------------------------------------------------------

/** A per-message signing key pair: the private half stays in memory, the public half rides in the context. */
export interface SigningKey {
  readonly signature: SignatureName;
  /** SM2: the 32-byte scalar; ECDSA P-384: PKCS#8 DER; ML-DSA-65: the 32-byte seed ξ. */
  readonly privateKey: Buffer;
  /** SubjectPublicKeyInfo DER (RFC 9881 for ML-DSA-65). */
  readonly publicKeySpki: Buffer;
}

/** ML-DSA's key expansion and signing run in the SDK's post-quantum thread (pq-thread.ts). */
export async function generateSigningKey(suite: Suite): Promise<SigningKey | undefined> {
  switch (suite.signature) {
    case undefined:
      return undefined;
    case "SM2": {
      const pair = sm2GenerateKeyPair();
      return { signature: "SM2", privateKey: pair.privateKey, publicKeySpki: sm2PublicKeyToSpki(pair.publicKey) };
    }
    case "ECDSA_P384": {
      const pair = ecGenerateKeyPair("P-384");
      return { signature: "ECDSA_P384", privateKey: pair.privateKey, publicKeySpki: pair.publicKey };
    }
    case "ML_DSA_65": {
      const seed = randomBytes(ML_DSA_SEED_LENGTH);
      return { signature: "ML_DSA_65", privateKey: seed, publicKeySpki: mlDsaPublicKeyToSpki("ML-DSA-65", await pqThread().dsaPublicKey("ML-DSA-65", seed)) };
    }
  }
}

/**
 * The running hash a signature covers: SM3(Z_A || message) for SM2, SHA-384(message) for ECDSA
 * P-384, and for ML-DSA-65 the μ of pure ML-DSA with an empty context over the message (its
 * digest is μ, so the signature is the one pure ML-DSA gives over the whole message).
 */
export function signatureHash(suite: Suite, publicKeySpki: Buffer): Hash {
  switch (suite.signature) {
    case "SM2":
      return createHash("sm3").update(sm2IdentityDigest(sm2PublicKeyFromSpki(publicKeySpki)));
    case "ML_DSA_65":
      return mlDsaMuHash("ML-DSA-65", mlDsaPublicKeyFromSpki("ML-DSA-65", publicKeySpki), Buffer.alloc(0));
    default:
      return createHash("sha384");
  }
}

export async function signDigest(key: SigningKey, digest: Buffer): Promise<Buffer> {
  if (key.signature === "SM2") return sm2SignDigest(key.privateKey, digest);
  if (key.signature === "ML_DSA_65") return pqThread().signMu("ML-DSA-65", key.privateKey, digest);
  const ecdsa = new EcdsaPrivateKey(key.privateKey, "P-384");
  try {
    return ecdsa.signDigest(digest);
  } finally {
    ecdsa.destroy();
  }
}

/** Throws InvalidMessage when the public key cannot be parsed for the suite. */
export function checkPublicKey(suite: Suite, publicKeySpki: Buffer): void {
  try {
    if (suite.signature === "SM2") sm2PublicKeyFromSpki(publicKeySpki);
    else if (suite.signature === "ML_DSA_65") mlDsaPublicKeyFromSpki("ML-DSA-65", publicKeySpki);
    else ecPublicKeyFromSpki(publicKeySpki, "P-384");
  } catch {
    throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidMessage, `the message's "${PUBLIC_KEY_CONTEXT_KEY}" is not a ${suite.signature} public key`);
  }
}

/** An ML-DSA-65 verification (milliseconds of JavaScript) runs in the SDK's post-quantum thread. */
export async function verifySignature(suite: Suite, publicKeySpki: Buffer, digest: Buffer, signature: Buffer): Promise<boolean> {
  try {
    if (suite.signature === "SM2") return sm2VerifyDigest(sm2PublicKeyFromSpki(publicKeySpki), digest, signature);
    if (suite.signature === "ML_DSA_65") return await pqThread().verifyMu("ML-DSA-65", mlDsaPublicKeyFromSpki("ML-DSA-65", publicKeySpki), digest, signature);
    return ecdsaVerifyDigest(ecPublicKeyFromSpki(publicKeySpki, "P-384"), "P-384", digest, signature);
  } catch {
    return false;
  }
}
