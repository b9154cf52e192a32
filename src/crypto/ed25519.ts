// Ed25519 (RFC 8032 section 5.1, pure EdDSA) through node:crypto: key pairs as PKCS#8 / SPKI DER,
// 64-byte signatures over the message itself (no prehash, so no DIGEST mode).

import { createPrivateKey, createPublicKey, generateKeyPair, sign, verify, type KeyObject } from "node:crypto";

export const ED25519_SIGNATURE_LENGTH = 64;

/** Off the event loop (OpenSSL in libuv's thread pool). */
export function ed25519GenerateKeyPairAsync(): Promise<{ privateKey: Buffer; publicKey: Buffer }> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "ed25519",
      { privateKeyEncoding: { type: "pkcs8", format: "der" }, publicKeyEncoding: { type: "spki", format: "der" } },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ privateKey, publicKey })),
    );
  });
}

function checkEd25519(key: KeyObject, name: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519") throw new TypeError(`"${name}" must be an Ed25519 key`);
  return key;
}

export function ed25519PrivateKey(pkcs8: Buffer): KeyObject {
  return checkEd25519(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }), "privateKey");
}

export function ed25519PublicKeyFromSpki(spki: Buffer): KeyObject {
  return checkEd25519(createPublicKey({ key: spki, format: "der", type: "spki" }), "publicKey");
}

export function ed25519Sign(privateKey: KeyObject, message: Buffer): Buffer {
  return sign(null, message, checkEd25519(privateKey, "privateKey"));
}

/** False, never an exception, for a signature that does not verify or has the wrong length. */
export function ed25519Verify(publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  try {
    return verify(null, message, checkEd25519(publicKey, "publicKey"), signature);
  } catch {
    return false;
  }
}
