// Post-quantum keys through Tencent's four actions: PostQuantumCryptoSign/Verify (pure ML-DSA,
// FIPS 204, with an optional context string) and PostQuantumCryptoEncrypt/Decrypt (a hybrid KEM
// then AES-256-GCM; crypto/pq-ciphertext.ts, docs/formats.md).

import type { AsymmetricKeySpec, KeyRecord } from "../keys/key.js";
import { mlDsaPublicKeyOf } from "../keys/asymmetric.js";
import { decodePqBlob, pqSeal } from "../crypto/pq-ciphertext.js";
import { ASYMMETRIC_USAGES, isAsymmetricUsage, type PqEncryptionAlgorithm, type UsageInfo } from "../keys/specs.js";
import { currentPublicKey } from "./asymmetric.js";
import type { Caller } from "./permissions.js";
import { CIPHERTEXT_ERRORS, CURRENT_VERSION_ERRORS, INVALID_CIPHERTEXT, usingMaterial, type ServiceContext } from "./context.js";
import { needs } from "./errors.js";

export class PostQuantumKeys {
  constructor(private readonly ctx: ServiceContext) {}

  async sign(caller: Caller, input: { keyId: string; message: Buffer; context: Buffer }): Promise<{ keyId: string; signature: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "PostQuantumCryptoSign", input.keyId);
    pqUsage(key, "pq-sign", "PostQuantumCryptoSign");
    const signature = await usingMaterial(() => this.ctx.materials.software.pqSign(key, key.currentVersion, input.message, input.context), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, signature };
  }

  /** False for any signature that does not verify, including malformed ones. */
  async verify(caller: Caller, input: { keyId: string; message: Buffer; signature: Buffer; context: Buffer }): Promise<boolean> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "PostQuantumCryptoVerify", input.keyId);
    pqUsage(key, "pq-sign", "PostQuantumCryptoVerify");
    const { set, publicKey } = mlDsaPublicKeyOf(key.keySpec as AsymmetricKeySpec, await currentPublicKey(this.ctx, key));
    return usingMaterial(() => this.ctx.materials.software.postQuantum.verify(set, publicKey, input.message, input.signature, input.context), CURRENT_VERSION_ERRORS);
  }

  async encrypt(caller: Caller, keyId: string, plaintext: Buffer): Promise<{ keyId: string; blob: Buffer }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "PostQuantumCryptoEncrypt", keyId);
    const usage = pqUsage(key, "pq-decrypt", "PostQuantumCryptoEncrypt");
    const algorithm = usage.algorithms[0] as PqEncryptionAlgorithm;
    const publicKey = await currentPublicKey(this.ctx, key);
    const blob = await usingMaterial(() => pqSeal({ algorithm, keyId: key.keyId, keyVersion: key.currentVersion }, publicKey, plaintext, this.ctx.materials.software.postQuantum), CURRENT_VERSION_ERRORS);
    return { keyId: key.keyId, blob };
  }

  /** The key is the one the ciphertext names; any change to the ciphertext fails as InvalidCiphertext. */
  async decrypt(caller: Caller, bytes: Buffer): Promise<{ keyId: string; plaintext: Buffer }> {
    const { parsed, key } = await this.ctx.ciphertextKeyFor(caller, "PostQuantumCryptoDecrypt", bytes, decodePqBlob);
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    // A key of another usage never made such a ciphertext: one naming it is forged.
    needs(usage?.purpose === "pq-decrypt" && usage.algorithms.includes(parsed.algorithm), "InvalidCiphertext", INVALID_CIPHERTEXT);
    const plaintext = await usingMaterial(() => this.ctx.materials.software.pqDecrypt(key, parsed.keyVersion, parsed), CIPHERTEXT_ERRORS);
    return { keyId: key.keyId, plaintext };
  }
}

function pqUsage(key: KeyRecord, purpose: "pq-sign" | "pq-decrypt", action: string): UsageInfo {
  const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
  const wanted = purpose === "pq-sign" ? "an ASYMMETRIC_SIGN_VERIFY_ML_DSA_* key" : "an ASYMMETRIC_DECRYPT_ML_KEM_* key";
  needs(usage?.purpose === purpose, "InvalidKeyUsage", `key ${key.keyId} has usage ${key.keyUsage}: ${action} needs ${wanted}`);
  return usage;
}
