// AES-GCM (NIST SP 800-38D) over node:crypto. 96-bit IVs and 128-bit tags only: the IV must never
// repeat under one key, so callers take it from randomBytes for every message.

import { createCipheriv, createDecipheriv } from "node:crypto";
import { CryptoError } from "./errors.js";

export const GCM_IV_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;

function aesGcmName(key: Buffer): "aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm" {
  switch (key.length) {
    case 16:
      return "aes-128-gcm";
    case 24:
      return "aes-192-gcm";
    case 32:
      return "aes-256-gcm";
    default:
      throw new RangeError(`"key" must be 16, 24 or 32 bytes, got ${key.length}`);
  }
}

function checkIv(iv: Buffer): void {
  if (iv.length !== GCM_IV_LENGTH) throw new RangeError(`"iv" must be ${GCM_IV_LENGTH} bytes, got ${iv.length}`);
}

export function aesGcmEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
  checkIv(iv);
  const cipher = createCipheriv(aesGcmName(key), key, iv, { authTagLength: GCM_TAG_LENGTH });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** Throws CryptoError when the tag does not match the key, IV, ciphertext and AAD. */
export function aesGcmDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  checkIv(iv);
  if (tag.length !== GCM_TAG_LENGTH) throw new CryptoError("authentication failed");
  const decipher = createDecipheriv(aesGcmName(key), key, iv, { authTagLength: GCM_TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new CryptoError("authentication failed");
  }
  return plaintext;
}
