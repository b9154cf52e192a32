// Bring your own key: import parameters (a wrapping key pair and a token), importing material into
// an EXTERNAL key, and deleting it again.

import { createHmac, timingSafeEqual } from "node:crypto";
import { randomBytes } from "../crypto/random.js";
import { generateKeyPair } from "../keys/asymmetric.js";
import type { ImportTokenRecord, KeyRecord, SymmetricKeySpec } from "../keys/key.js";
import { stateAfter } from "../keys/lifecycle.js";
import { SYMMETRIC_SPECS } from "../keys/specs.js";
import { importTokenAad } from "../rootkey/root-of-trust.js";
import type { Caller } from "./permissions.js";
import { CURRENT_VERSION_ERRORS, DAY_SECONDS, usingMaterial, type ServiceContext } from "./context.js";
import { KmsError, needs } from "./errors.js";
import { ServiceSecret } from "./service-secret.js";

export type WrappingKeySpec = ImportTokenRecord["wrappingKeySpec"];
export type WrappingAlgorithm = ImportTokenRecord["wrappingAlgorithm"];

/** Tencent: the import token and public key are valid for 24 h. */
export const IMPORT_TOKEN_SECONDS = DAY_SECONDS;
export const MATERIAL_DIGEST_SECRET = "material-digest-key";

export class KeyImport {
  readonly #materialDigestKey: ServiceSecret;

  constructor(private readonly ctx: ServiceContext) {
    this.#materialDigestKey = new ServiceSecret(ctx.store, ctx.root, MATERIAL_DIGEST_SECRET);
  }

  /** A fresh wrapping key pair and a token for one EXTERNAL key, valid for 24 h. */
  async getParametersForImport(
    caller: Caller,
    keyId: string,
    wrappingKeySpec: WrappingKeySpec,
    wrappingAlgorithm: WrappingAlgorithm,
  ): Promise<{ keyId: string; importToken: string; publicKey: Buffer; parametersValidTo: number }> {
    needs(
      (wrappingKeySpec === "SM2") === (wrappingAlgorithm === "SM2PKE"),
      "InvalidParameterValue",
      `"WrappingAlgorithm" ${wrappingAlgorithm} does not fit "WrappingKeySpec" ${wrappingKeySpec}: SM2 takes SM2PKE, RSA_2048 an RSAES_* or RSA_AES_KEY_WRAP_* algorithm`,
    );
    const key = await this.ctx.keyFor(this.ctx.store, caller, "GetParametersForImport", keyId);
    external(key, "GetParametersForImport");
    const tokenId = randomBytes(32).toString("base64url");
    const pair = await generateKeyPair(wrappingKeySpec);
    let wrappedPrivateKey: Buffer;
    try {
      wrappedPrivateKey = await this.ctx.root.wrap(pair.privateMaterial, importTokenAad(tokenId));
    } finally {
      pair.privateMaterial.fill(0);
    }
    const now = this.ctx.now();
    const expiresAt = now + IMPORT_TOKEN_SECONDS;
    await this.ctx.transaction(caller, async (tx) => {
      await tx.deleteExpiredImportTokens(now);
      await tx.insertImportToken({ tokenId, keyId, wrappingKeySpec, wrappingAlgorithm, wrappedPrivateKey, expiresAt, used: false });
    });
    return { keyId, importToken: tokenId, publicKey: pair.publicKey, parametersValidTo: expiresAt };
  }

  /**
   * Unwraps the material with the token's private key and makes it version 1 of the key. The first
   * import fixes the material: later imports must bring the same (MaterialNotMatch otherwise).
   */
  async importKeyMaterial(caller: Caller, input: { keyId: string; importToken: string; encryptedKeyMaterial: Buffer; validTo: number }): Promise<void> {
    const ctx = this.ctx;
    const key = await ctx.keyFor(ctx.store, caller, "ImportKeyMaterial", input.keyId);
    external(key, "ImportKeyMaterial");
    const now = ctx.now();
    needs(input.validTo === 0 || input.validTo > now, "InvalidParameterValue", `"ValidTo" must be 0 (never expires) or a time in the future`);
    const token = await ctx.store.getImportToken(input.importToken);
    needs(token && token.keyId === key.keyId, "InvalidParameterValue", `"ImportToken" is not a token GetParametersForImport gave for key ${key.keyId}`);
    needs(token.expiresAt > now, "TokenExpired", `"ImportToken" expired at ${token.expiresAt}: call GetParametersForImport again`);
    needs(!token.used, "TokenExpired", `"ImportToken" has already been used: call GetParametersForImport again`);
    const material = await usingMaterial(() => ctx.materials.software.unwrapImported(token, input.encryptedKeyMaterial), {
      ...CURRENT_VERSION_ERRORS,
      undecryptable: () => new KmsError("DecryptMaterialError", `"EncryptedKeyMaterial" does not decrypt with the import token's key and ${token.wrappingAlgorithm}`),
    });
    let digest: Buffer;
    let wrappedMaterial: Buffer;
    try {
      const length = SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].materialLength;
      needs(
        material.length === length,
        "InvalidImportKeyMaterial",
        `"EncryptedKeyMaterial" must wrap ${length} bytes of key material for a ${key.keySpec} key, got ${material.length}`,
      );
      digest = materialDigest(await this.#materialDigestKey.get(), key.keyId, material);
      // EXTERNAL keys are SOFTWARE keys (HSM keys are generated inside the token).
      wrappedMaterial = await ctx.materials.software.wrap(key.keyId, 1, material);
    } finally {
      material.fill(0);
    }
    await ctx.transaction(caller, async (tx) => {
      const current = await ctx.keyFor(tx, caller, "ImportKeyMaterial", key.keyId);
      needs(
        current.materialDigest === null || (current.materialDigest.length === digest.length && timingSafeEqual(current.materialDigest, digest)),
        "MaterialNotMatch",
        `the material differs from the material key ${key.keyId} was first imported with; only that material can be imported again`,
      );
      needs(await tx.useImportToken(token.tokenId), "TokenExpired", `"ImportToken" has already been used: call GetParametersForImport again`);
      if (!(await tx.getKeyVersion(key.keyId, 1))) {
        await tx.insertKeyVersion({ keyId: key.keyId, version: 1, wrappedMaterial, publicKey: null, createTime: now });
      }
      await tx.updateKey({ ...current, state: stateAfter("ImportKeyMaterial", current.state), currentVersion: 1, validTo: input.validTo, materialDigest: digest });
    });
  }

  /** Removes the material (its wrapped versions) of an EXTERNAL key; it waits in PendingImport for the same material. */
  async deleteImportedKeyMaterial(caller: Caller, keyId: string): Promise<void> {
    await this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "DeleteImportedKeyMaterial", keyId);
      external(key, "DeleteImportedKeyMaterial");
      await tx.deleteKeyVersions(keyId);
      await tx.updateKey({ ...key, state: stateAfter("DeleteImportedKeyMaterial", key.state), validTo: 0 });
    });
    this.ctx.materials.forget(keyId);
  }

  close(): void {
    this.#materialDigestKey.close();
  }
}

/** The BYOK actions need a key created with Type 2 (EXTERNAL). */
function external(key: KeyRecord, action: string): void {
  needs(key.origin === "EXTERNAL", "NotExternalCmk", `key ${key.keyId} is not an EXTERNAL key: ${action} needs a key created with "Type" 2`);
}

/** HMAC-SHA256 of the material under a service secret, bound to the key id: comparable, never reversible. */
function materialDigest(digestKey: Buffer, keyId: string, material: Buffer): Buffer {
  return createHmac("sha256", digestKey).update(`tresor/material-digest/v1\0${keyId}\0`).update(material).digest();
}
