// AES Key Wrap with Padding (RFC 5649; NIST SP 800-38F KWP) over node:crypto (OpenSSL's
// id-aes*-wrap-pad): the second half of AWS's RSA_AES_KEY_WRAP import wrapping, where key material
// is wrapped under a one-time AES key that is itself RSA-OAEP encrypted.

import { createCipheriv, createDecipheriv } from "node:crypto";
import { CryptoError } from "./errors.js";

/** RFC 5649 §3: the alternative initial value's constant half; the other half is the length. */
const AIV_PREFIX = Buffer.from("a65959a6", "hex");

function kwpName(kek: Buffer): string {
  if (kek.length !== 16 && kek.length !== 24 && kek.length !== 32) throw new RangeError(`"kek" must be 16, 24 or 32 bytes, got ${kek.length}`);
  return `id-aes${kek.length * 8}-wrap-pad`;
}

export function aesKeyWrapPad(kek: Buffer, key: Buffer): Buffer {
  if (key.length < 1) throw new RangeError(`"key" must not be empty`);
  const cipher = createCipheriv(kwpName(kek), kek, AIV_PREFIX);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** The wrapped key; CryptoError when the integrity check (the AIV and padding) fails. */
export function aesKeyUnwrapPad(kek: Buffer, wrapped: Buffer): Buffer {
  const name = kwpName(kek);
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) throw new CryptoError("wrapped key has an impossible length");
  try {
    const decipher = createDecipheriv(name, kek, AIV_PREFIX);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    throw new CryptoError("wrapped key does not unwrap");
  }
}
