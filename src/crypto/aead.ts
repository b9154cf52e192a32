// The authenticated ciphers the key layer may name in a ciphertext blob, each with its fixed key,
// IV and tag lengths. Frozen: a blob's algorithm id must always mean the same thing.

import { aesGcmDecrypt, aesGcmEncrypt, GCM_IV_LENGTH, GCM_TAG_LENGTH } from "./aes.js";
import { SM4_KEY_LENGTH } from "./sm4.js";
import { Sm4GcmKey, SM4_GCM_IV_LENGTH, SM4_GCM_TAG_LENGTH, sm4GcmDecrypt, sm4GcmEncrypt } from "./sm4-gcm.js";

export type AeadName = "SM4-GCM" | "AES-256-GCM";

export interface Aead {
  readonly name: AeadName;
  /** 16 for SM4-GCM, 32 for AES-256-GCM. */
  readonly keyLength: number;
  readonly ivLength: 12;
  readonly tagLength: 16;
  encrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer };
  /** Throws CryptoError when the tag does not match the key, IV, ciphertext and AAD. */
  decrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer;
  /** One key prepared for many messages (a copy: the caller may wipe `key` afterwards). */
  importKey(key: Buffer): AeadKey;
}

/** An opaque handle over one key's material; `destroy()` wipes it. */
export interface AeadKey {
  encrypt(iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer };
  /** Throws CryptoError when the tag does not match the key, IV, ciphertext and AAD. */
  decrypt(iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer;
  destroy(): void;
}

const AES_256_KEY_LENGTH = 32;

// aes.ts also takes 16- and 24-byte keys; this entry is AES-256 only, so a short key is an error
// rather than a silent downgrade to AES-128.
function checkAes256Key(key: Buffer): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`"key" must be a Buffer or Uint8Array`);
  if (key.length !== AES_256_KEY_LENGTH) {
    throw new RangeError(`"key" must be ${AES_256_KEY_LENGTH} bytes for AES-256-GCM, got ${key.length}`);
  }
}

const SM4_GCM: Aead = Object.freeze({
  name: "SM4-GCM",
  keyLength: SM4_KEY_LENGTH,
  ivLength: SM4_GCM_IV_LENGTH,
  tagLength: SM4_GCM_TAG_LENGTH,
  encrypt: sm4GcmEncrypt,
  decrypt: sm4GcmDecrypt,
  importKey: (key: Buffer) => new Sm4GcmKey(key),
});

const AES_256_GCM: Aead = Object.freeze({
  name: "AES-256-GCM",
  keyLength: AES_256_KEY_LENGTH,
  ivLength: GCM_IV_LENGTH,
  tagLength: GCM_TAG_LENGTH,
  encrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer) {
    checkAes256Key(key);
    return aesGcmEncrypt(key, iv, plaintext, aad);
  },
  decrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer) {
    checkAes256Key(key);
    return aesGcmDecrypt(key, iv, ciphertext, tag, aad);
  },
  importKey(key: Buffer): AeadKey {
    checkAes256Key(key);
    const own = Buffer.from(key);
    let destroyed = false;
    const live = () => {
      if (destroyed) throw new Error("AES-256-GCM key: used after destroy()");
      return own;
    };
    return {
      encrypt: (iv, plaintext, aad) => aesGcmEncrypt(live(), iv, plaintext, aad),
      decrypt: (iv, ciphertext, tag, aad) => aesGcmDecrypt(live(), iv, ciphertext, tag, aad),
      destroy: () => {
        destroyed = true;
        own.fill(0);
      },
    };
  },
});

export const AEADS: Readonly<Record<AeadName, Aead>> = Object.freeze({
  "SM4-GCM": SM4_GCM,
  "AES-256-GCM": AES_256_GCM,
});
