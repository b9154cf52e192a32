// Asymmetric keys: their public keys, signing and verification, asymmetric decryption, and the
// caller's public key that Decrypt and GenerateDataKey may encrypt their answer to.

import { publicKeyEncrypter, PublicKeyError, verifySignature, type MessageType, type PublicKeyWrapAlgorithm } from "../keys/asymmetric.js";
import type { KeyRecord } from "../keys/key.js";
import { rsaEncrypt, rsaMaxPlaintext, rsaModulusBytes, rsaPublicKey, type RsaEncryptionAlgorithm } from "../crypto/rsa.js";
import { ASYMMETRIC_SPECS, ASYMMETRIC_USAGES, isAsymmetricUsage, type AsymmetricDecryptAlgorithm, type KeyAgreementAlgorithm, type SigningAlgorithm, type UsageInfo } from "../keys/specs.js";
import { ecdhPeerKey, EcdhPublicKeyError, type EcdhCurve, type EcdhPeerKey } from "../crypto/ecdh.js";
import type { Caller } from "./permissions.js";
import { CURRENT_VERSION_ERRORS, usingMaterial, type ServiceContext } from "./context.js";
import { KmsError, needs } from "./errors.js";

export class AsymmetricKeys {
  constructor(private readonly ctx: ServiceContext) {}

  /**
   * Parses a caller's public key for Decrypt's and GenerateDataKey's EncryptionPublicKey and returns
   * the function that encrypts a plaintext to it. Called before anything is decrypted or generated.
   */
  publicKeyWrapper(publicKey: string, algorithm: PublicKeyWrapAlgorithm): (plaintext: Buffer) => Buffer {
    let encrypt: (plaintext: Buffer) => Buffer;
    try {
      encrypt = publicKeyEncrypter(publicKey, algorithm);
    } catch (e) {
      if (e instanceof PublicKeyError) throw new KmsError("InvalidParameterValue", `"EncryptionPublicKey" does not fit "EncryptionAlgorithm" ${algorithm}: ${e.message}`);
      throw e;
    }
    return (plaintext) => {
      try {
        return encrypt(plaintext);
      } catch (e) {
        if (e instanceof PublicKeyError) throw new KmsError("EncryptionError", `the plaintext cannot be encrypted to "EncryptionPublicKey": ${e.message}`);
        throw e;
      }
    };
  }

  /** The newest version's public key (DER SubjectPublicKeyInfo). */
  async getPublicKey(caller: Caller, keyId: string): Promise<{ keyId: string; publicKey: Buffer; keySpec: KeyRecord["keySpec"] }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "GetPublicKey", keyId);
    needs(isAsymmetricUsage(key.keyUsage), "InvalidKeyUsage", `key ${keyId} has usage ${key.keyUsage}: GetPublicKey needs an asymmetric key`);
    return { keyId: key.keyId, publicKey: await this.#publicKeyOf(key), keySpec: key.keySpec };
  }

  async sign(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType }): Promise<{ keyId: string; signature: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "SignByAsymmetricKey", input.keyId);
    signingUsage(key, "SignByAsymmetricKey", input.algorithm, input.message, input.messageType);
    const material = this.ctx.materials.for(key);
    const signature = await usingMaterial(() => material.sign(key, key.currentVersion, input.algorithm, input.message, input.messageType), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, signature };
  }

  /** False for any signature that does not verify, including malformed ones; errors only for bad requests. */
  async verify(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType; signature: Buffer }): Promise<boolean> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "VerifyByAsymmetricKey", input.keyId);
    signingUsage(key, "VerifyByAsymmetricKey", input.algorithm, input.message, input.messageType);
    if (key.keySpec === "SM2" && key.protectionLevel !== "HSM") {
      // The private scalar makes SM2 verification one native multiplication (docs/performance.md).
      const { message, messageType, signature } = input;
      return usingMaterial(() => this.ctx.materials.software.sm2Verify(key, key.currentVersion, message, messageType, signature), CURRENT_VERSION_ERRORS);
    }
    const publicKey = await this.#publicKeyOf(key);
    return verifySignature(key.keySpec as keyof typeof ASYMMETRIC_SPECS, publicKey, input.algorithm, input.message, input.messageType, input.signature);
  }

  /**
   * Encrypts to an RSA decryption key's public key (AWS Encrypt with an RSA key): what a caller can
   * also do alone with GetPublicKey's key, governed by kms:Encrypt and the key's state like Encrypt.
   */
  async asymmetricEncrypt(caller: Caller, keyId: string, algorithm: RsaEncryptionAlgorithm, plaintext: Buffer): Promise<{ keyId: string; ciphertext: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "Encrypt", keyId);
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    needs(usage?.purpose === "decrypt" && usage.algorithms.includes(algorithm), "InvalidKeyUsage", `key ${keyId} has usage ${key.keyUsage}: ${algorithm} needs an ASYMMETRIC_DECRYPT_RSA_* key`);
    const publicKey = rsaPublicKey(await this.#publicKeyOf(key));
    const max = rsaMaxPlaintext(algorithm, rsaModulusBytes(publicKey));
    needs(plaintext.length <= max, "InvalidPlaintext", `"Plaintext" must be at most ${max} bytes for ${algorithm} with key ${keyId}`);
    return { keyId: key.keyId, ciphertext: rsaEncrypt(publicKey, algorithm, plaintext) };
  }

  /** AsymmetricRsaDecrypt (an RSA decryption key and one of its algorithms) or AsymmetricSm2Decrypt (an SM2 one). */
  async asymmetricDecrypt(
    caller: Caller,
    action: "AsymmetricRsaDecrypt" | "AsymmetricSm2Decrypt",
    keyId: string,
    algorithm: AsymmetricDecryptAlgorithm,
    ciphertext: Buffer,
  ): Promise<{ keyId: string; plaintext: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, action, keyId);
    const family = action === "AsymmetricSm2Decrypt" ? "SM2" : "RSA";
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    needs(
      usage?.purpose === "decrypt" && ASYMMETRIC_SPECS[usage.spec].family === family,
      "InvalidKeyUsage",
      `key ${keyId} has usage ${key.keyUsage}: ${action} needs ${family === "SM2" ? "ASYMMETRIC_DECRYPT_SM2" : "an ASYMMETRIC_DECRYPT_RSA_* key"}`,
    );
    needs(usage.algorithms.includes(algorithm), "InvalidParameterValue", `"Algorithm" ${algorithm} does not fit key usage ${key.keyUsage}`);
    const material = this.ctx.materials.for(key);
    const plaintext = await usingMaterial(() => material.decrypt(key, key.currentVersion, algorithm, ciphertext), {
      ...CURRENT_VERSION_ERRORS,
      undecryptable: () => new KmsError("DecryptError", `"Ciphertext" does not decrypt under key ${keyId} with ${algorithm}`),
    });
    return { keyId: key.keyId, plaintext };
  }

  /**
   * ECDH (DeriveSharedSecret) with a key agreement key: the peer's public key (DER SPKI) is
   * validated (its curve, on the curve, not the identity) before the private key is touched.
   */
  async deriveSharedSecret(caller: Caller, input: { keyId: string; algorithm: KeyAgreementAlgorithm; publicKey: Buffer }): Promise<{ keyId: string; sharedSecret: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "DeriveSharedSecret", input.keyId);
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    needs(usage?.purpose === "agree", "InvalidKeyUsage", `key ${input.keyId} has usage ${key.keyUsage}: DeriveSharedSecret needs an ASYMMETRIC_KEY_AGREEMENT_* key`);
    needs(usage.algorithms.includes(input.algorithm), "InvalidParameterValue", `"KeyAgreementAlgorithm" ${input.algorithm} does not fit key usage ${key.keyUsage}`);
    const curve = ECDH_CURVE_OF[usage.spec];
    needs(curve, "InternalError", `key usage ${key.keyUsage} has no ECDH curve`);
    let peer: EcdhPeerKey;
    try {
      peer = ecdhPeerKey(curve, input.publicKey);
    } catch (e) {
      if (e instanceof EcdhPublicKeyError) throw new KmsError("InvalidParameterValue", `"PublicKey" does not fit key ${input.keyId} (${curve}): ${e.message}`);
      throw e;
    }
    const sharedSecret = await usingMaterial(() => this.ctx.materials.software.deriveSharedSecret(key, key.currentVersion, peer), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, sharedSecret };
  }

  #publicKeyOf(key: KeyRecord): Promise<Buffer> {
    return currentPublicKey(this.ctx, key);
  }
}

/** The public key (as stored: SPKI DER, or a hybrid KEM's raw key) of the key's newest version. */
export async function currentPublicKey(ctx: ServiceContext, key: KeyRecord): Promise<Buffer> {
  const record = await ctx.store.getKeyVersion(key.keyId, key.currentVersion);
  needs(record?.publicKey, "InternalError", `key ${key.keyId} version ${key.currentVersion} has no public key`);
  return record.publicKey;
}

/** The ECDH curve of each key agreement key spec. */
const ECDH_CURVE_OF: Readonly<Partial<Record<string, EcdhCurve>>> = { ECC_P256: "P-256", ECC_P384: "P-384", SM2: "SM2" };

/** The usage of a signing key for `algorithm`, after checking the key's usage, the algorithm and a DIGEST's length. */
function signingUsage(key: KeyRecord, action: string, algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): UsageInfo {
  const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
  needs(usage?.purpose === "sign", "InvalidKeyUsage", `key ${key.keyId} has usage ${key.keyUsage}: ${action} needs an ASYMMETRIC_SIGN_VERIFY_* key`);
  needs(
    usage.algorithms.includes(algorithm),
    "InvalidParameterValue",
    `"Algorithm" ${algorithm} does not fit key usage ${key.keyUsage}; use ${usage.algorithms.join(" or ")}`,
  );
  needs(messageType === "RAW" || usage.digest, "InvalidParameterValue", `"MessageType" DIGEST does not fit key usage ${key.keyUsage}: it signs the message itself (RAW)`);
  if (messageType === "DIGEST" && usage.digest) {
    needs(
      message.length === usage.digest.length,
      "InvalidParameterValue",
      `"Message" must be a ${usage.digest.length}-byte ${usage.digest.name.toUpperCase()} digest when "MessageType" is DIGEST, got ${message.length} bytes`,
    );
  }
  return usage;
}
