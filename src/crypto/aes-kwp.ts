// AES Key Wrap with Padding (RFC 5649; NIST SP 800-38F KWP) over node:crypto (OpenSSL's
// id-aes*-wrap-pad): the second half of AWS's RSA_AES_KEY_WRAP import wrapping, where key material
// is wrapped under a one-time AES key that is itself RSA-OAEP encrypted. And AES Key Wrap without
// padding (RFC 3394; SP 800-38F KW, OpenSSL's id-aes*-wrap): KMIP's NIST Key Wrap for wrapped Get.

import { createCipheriv, createDecipheriv } from "node:crypto";
import { CryptoError } from "./errors.js";

/** RFC 5649 §3: the alternative initial value's constant half; the other half is the length. */
const AIV_PREFIX = Buffer.from("a65959a6", "hex");

/** RFC 3394 §2.2.3.1: the default initial value. */
const KW_IV = Buffer.from("a6a6a6a6a6a6a6a6", "hex");

function kwpName(kek: Buffer, padded = true): string {
  if (kek.length !== 16 && kek.length !== 24 && kek.length !== 32) throw new RangeError(`"kek" must be 16, 24 or 32 bytes, got ${kek.length}`);
  return `id-aes${kek.length * 8}-wrap${padded ? "-pad" : ""}`;
}

/** RFC 3394 key wrap: `key` of 16 bytes or more, a multiple of 8. */
export function aesKeyWrap(kek: Buffer, key: Buffer): Buffer {
  if (key.length < 16 || key.length % 8 !== 0) throw new RangeError(`"key" must be a multiple of 8 bytes, at least 16, got ${key.length}`);
  const cipher = createCipheriv(kwpName(kek, false), kek, KW_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** The RFC 3394-wrapped key; CryptoError when the integrity check fails. */
export function aesKeyUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  const name = kwpName(kek, false);
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) throw new CryptoError("wrapped key has an impossible length");
  try {
    const decipher = createDecipheriv(name, kek, KW_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    throw new CryptoError("wrapped key does not unwrap");
  }
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
