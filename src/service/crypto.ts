// Symmetric cryptography under a CMK: Encrypt, Decrypt, ReEncrypt, GenerateDataKey (ciphertext
// blobs of keys/blob.ts), and GenerateRandom.

import { AEADS } from "../crypto/aead.js";
import { generateKeyPair } from "../keys/asymmetric.js";
import { randomBytes } from "../crypto/random.js";
import { blobAad, decodeBlob, encodeBlob, encodeBlobHeader, type EncryptionContext } from "../keys/blob.js";
import type { AsymmetricKeySpec, KeyRecord, SymmetricKeySpec } from "../keys/key.js";
import { ASYMMETRIC_SPECS, SYMMETRIC_SPECS, isSymmetricSpec } from "../keys/specs.js";
import { ACCOUNT_RESOURCE, type Caller } from "./permissions.js";
import { CIPHERTEXT_ERRORS, INVALID_CIPHERTEXT, usingMaterial, type ServiceContext } from "./context.js";
import { needs } from "./errors.js";

/** Sealing under the current version: a missing version reads as a bad ciphertext (as it always has); anything else is internal. */
const SEAL_ERRORS = { missing: CIPHERTEXT_ERRORS.missing } as const;

export class SymmetricCrypto {
  constructor(private readonly ctx: ServiceContext) {}

  async encrypt(caller: Caller, keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ keyId: string; blob: Buffer }> {
    const key = await this.ctx.symmetricKeyFor(caller, "Encrypt", keyId, context);
    return { keyId: key.keyId, blob: await this.#seal(key, plaintext, context) };
  }

  async decrypt(caller: Caller, blob: Buffer, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer }> {
    return this.#open(caller, "Decrypt", blob, context);
  }

  async reEncrypt(caller: Caller, input: {
    blob: Buffer;
    destinationKeyId?: string;
    sourceContext: EncryptionContext;
    destinationContext: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string; sourceKeyId: string; reEncrypted: boolean }> {
    const { keyId: sourceKeyId, plaintext, keyVersion } = await this.#open(caller, "ReEncryptSource", input.blob, input.sourceContext);
    try {
      const destination = await this.ctx.symmetricKeyFor(caller, "ReEncryptDestination", input.destinationKeyId ?? sourceKeyId, input.destinationContext);
      const unchanged =
        destination.keyId === sourceKeyId &&
        keyVersion === destination.currentVersion &&
        canonicalEqual(input.sourceContext, input.destinationContext);
      if (unchanged) return { blob: input.blob, keyId: destination.keyId, sourceKeyId, reEncrypted: false };
      const blob = await this.#seal(destination, plaintext, input.destinationContext);
      return { blob, keyId: destination.keyId, sourceKeyId, reEncrypted: true };
    } finally {
      plaintext.fill(0);
    }
  }

  async generateDataKey(caller: Caller, keyId: string, numberOfBytes: number, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer; blob: Buffer }> {
    const key = await this.ctx.symmetricKeyFor(caller, "GenerateDataKey", keyId, context);
    const plaintext = randomBytes(numberOfBytes);
    try {
      return { keyId: key.keyId, plaintext, blob: await this.#seal(key, plaintext, context) };
    } catch (e) {
      plaintext.fill(0);
      throw e;
    }
  }

  /**
   * A fresh key pair whose private half (PKCS#8 DER) comes back in the clear and sealed under the
   * CMK, like a data key (AWS GenerateDataKeyPair); governed by kms:GenerateDataKey. The pair is
   * made off the event loop. SM2 is not offered: its private keys are stored as a bare scalar.
   */
  async generateDataKeyPair(caller: Caller, keyId: string, spec: AsymmetricKeySpec, context: EncryptionContext): Promise<{ keyId: string; publicKey: Buffer; privateKey: Buffer; blob: Buffer }> {
    needs(ASYMMETRIC_SPECS[spec].privateKeyFormat === "pkcs8", "UnsupportedOperation", `data key pairs of spec ${spec} are not offered`);
    const key = await this.ctx.symmetricKeyFor(caller, "GenerateDataKey", keyId, context);
    const pair = await generateKeyPair(spec);
    try {
      return { keyId: key.keyId, publicKey: pair.publicKey, privateKey: pair.privateMaterial, blob: await this.#seal(key, pair.privateMaterial, context) };
    } catch (e) {
      pair.privateMaterial.fill(0);
      throw e;
    }
  }

  generateRandom(caller: Caller, numberOfBytes: number): Buffer {
    caller.permissions.require("kms:GenerateRandom", ACCOUNT_RESOURCE);
    return randomBytes(numberOfBytes);
  }

  async #seal(key: KeyRecord, plaintext: Buffer, context: EncryptionContext): Promise<Buffer> {
    const aead = AEADS[SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].aead];
    const header = encodeBlobHeader({ algorithm: aead.name, keyId: key.keyId, keyVersion: key.currentVersion, iv: randomBytes(aead.ivLength) });
    const iv = header.subarray(header.length - aead.ivLength);
    const material = this.ctx.materials.for(key);
    const { ciphertext, tag } = await usingMaterial(() => material.seal(key, key.currentVersion, iv, plaintext, blobAad(header, context)), SEAL_ERRORS);
    return encodeBlob(header, ciphertext, tag);
  }

  async #open(caller: Caller, action: "Decrypt" | "ReEncryptSource", bytes: Buffer, context: EncryptionContext): Promise<{ keyId: string; keyVersion: number; plaintext: Buffer }> {
    const { parsed, key } = await this.ctx.ciphertextKeyFor(caller, action, bytes, decodeBlob, context);
    // An asymmetric key never made a blob: one naming it is forged.
    needs(isSymmetricSpec(key.keySpec), "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aead = AEADS[SYMMETRIC_SPECS[key.keySpec].aead];
    needs(parsed.algorithm === aead.name, "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aad = blobAad(parsed.header, context);
    const material = this.ctx.materials.for(key);
    const plaintext = await usingMaterial(() => material.open(key, parsed.keyVersion, parsed.iv, parsed.ciphertext, parsed.tag, aad), CIPHERTEXT_ERRORS);
    return { keyId: key.keyId, keyVersion: parsed.keyVersion, plaintext };
  }
}

function canonicalEqual(a: EncryptionContext, b: EncryptionContext): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
