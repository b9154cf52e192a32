// AES-CBC (NIST SP 800-38A §6.2) with PKCS#7 padding (RFC 5652 §6.3; KMIP calls it PKCS5) or none,
// over node:crypto; SM4-CBC (GB/T 32907 in the same mode, OpenSSL's sm4-cbc) the same way. KMIP's Encrypt/Decrypt offer it for clients that use their keys that way; the
// IV must be unpredictable for each message, so callers take a fresh random one unless the client
// brings its own.

import { createCipheriv, createDecipheriv } from "node:crypto";
import { CryptoError } from "./errors.js";

export const CBC_IV_LENGTH = 16;

type CbcCipher = "aes-128-cbc" | "aes-192-cbc" | "aes-256-cbc" | "sm4-cbc";

function sm4CbcName(key: Buffer): CbcCipher {
  if (key.length !== 16) throw new RangeError(`"key" must be 16 bytes, got ${key.length}`);
  return "sm4-cbc";
}

function aesCbcName(key: Buffer): CbcCipher {
  switch (key.length) {
    case 16:
      return "aes-128-cbc";
    case 24:
      return "aes-192-cbc";
    case 32:
      return "aes-256-cbc";
    default:
      throw new RangeError(`"key" must be 16, 24 or 32 bytes, got ${key.length}`);
  }
}

function checkInput(iv: Buffer, data: Buffer, padded: boolean, what: string): void {
  if (iv.length !== CBC_IV_LENGTH) throw new RangeError(`"iv" must be ${CBC_IV_LENGTH} bytes, got ${iv.length}`);
  if (!padded && data.length % 16 !== 0) throw new RangeError(`"${what}" must be a multiple of 16 bytes without padding, got ${data.length}`);
}

export function aesCbcEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, padded: boolean): Buffer {
  return cbcEncrypt(aesCbcName(key), key, iv, plaintext, padded);
}

/** Throws CryptoError when the padding is wrong (or the ciphertext is not whole blocks). */
export function aesCbcDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, padded: boolean): Buffer {
  return cbcDecrypt(aesCbcName(key), key, iv, ciphertext, padded);
}

export function sm4CbcEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, padded: boolean): Buffer {
  return cbcEncrypt(sm4CbcName(key), key, iv, plaintext, padded);
}

/** Throws CryptoError when the padding is wrong (or the ciphertext is not whole blocks). */
export function sm4CbcDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, padded: boolean): Buffer {
  return cbcDecrypt(sm4CbcName(key), key, iv, ciphertext, padded);
}

function cbcEncrypt(name: CbcCipher, key: Buffer, iv: Buffer, plaintext: Buffer, padded: boolean): Buffer {
  checkInput(iv, plaintext, padded, "plaintext");
  const cipher = createCipheriv(name, key, iv);
  cipher.setAutoPadding(padded);
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

function cbcDecrypt(name: CbcCipher, key: Buffer, iv: Buffer, ciphertext: Buffer, padded: boolean): Buffer {
  if (ciphertext.length % 16 !== 0 || ciphertext.length === 0) throw new CryptoError("the ciphertext is not a whole number of blocks");
  checkInput(iv, ciphertext, padded, "ciphertext");
  const decipher = createDecipheriv(name, key, iv);
  decipher.setAutoPadding(padded);
  const plaintext = decipher.update(ciphertext);
  try {
    return Buffer.concat([plaintext, decipher.final()]);
  } catch {
    plaintext.fill(0);
    throw new CryptoError("the padding does not check");
  }
}
