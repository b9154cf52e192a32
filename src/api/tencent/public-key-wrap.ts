// Decrypt's `EncryptionPublicKey` and `EncryptionAlgorithm` (Decrypt, GenerateDataKey,
// PostQuantumCryptoDecrypt): the plaintext answered encrypted to the caller's public key.

import { PUBLIC_KEY_WRAP_ALGORITHMS } from "../../keys/asymmetric.js";
import { KmsError } from "../../service/errors.js";
import type { KmsService } from "../../service/kms-service.js";
import { oneOf, optional, string } from "./params.js";

/** A PEM RSA-4096 public key is about 800 characters. */
const MAX_PUBLIC_KEY_CHARS = 4096;

export const publicKeyWrap = {
  EncryptionPublicKey: optional(string({ min: 1, max: MAX_PUBLIC_KEY_CHARS })),
  EncryptionAlgorithm: optional(oneOf(PUBLIC_KEY_WRAP_ALGORITHMS)),
};

/** The wrapper for `EncryptionPublicKey`, parsed before anything is decrypted or generated; undefined when none was given. */
export function publicKeyWrapper(
  p: { EncryptionPublicKey?: string | undefined; EncryptionAlgorithm?: (typeof PUBLIC_KEY_WRAP_ALGORITHMS)[number] | undefined },
  service: KmsService,
): ((plaintext: Buffer) => Buffer) | undefined {
  if (p.EncryptionPublicKey === undefined) {
    if (p.EncryptionAlgorithm !== undefined) throw new KmsError("MissingParameter", `"EncryptionAlgorithm" needs "EncryptionPublicKey"`);
    return undefined;
  }
  // Tencent's default is SM2 (raw C1C3C2).
  return service.publicKeyWrapper(p.EncryptionPublicKey, p.EncryptionAlgorithm ?? "SM2");
}

/** The plaintext for the wire: base64, or base64 of it encrypted to the caller's public key. */
export function plaintextField(plaintext: Buffer, wrap: ((plaintext: Buffer) => Buffer) | undefined): string {
  return (wrap ? wrap(plaintext) : plaintext).toString("base64");
}

