// AWS key import onto the core's (Tencent's) bring-your-own-key: GetParametersForImport with the
// RSAES_OAEP_SHA_1/256 and RSA_AES_KEY_WRAP_SHA_1/256 wrapping algorithms and an RSA_2048 wrapping
// key, ImportKeyMaterial (the ImportToken travels as a blob: the bytes of Tresor's token),
// DeleteImportedKeyMaterial. Larger wrapping keys and several materials per key are not offered.

import { KmsError } from "../../service/errors.js";
import { base64, oneOf, optional } from "../tencent/params.js";
import { action, b64, keyOf, type AwsActionDefinition } from "./action.js";
import { keyArn } from "./identifiers.js";
import { epochSeconds, keyIdParam, unsupported } from "./params.js";

/** An RSA-2048 block, then (RSA_AES_KEY_WRAP_*) 32 bytes of material wrapped with padding (40). */
const MAX_WRAPPED_MATERIAL_BYTES = 256 + 40;
/** Tresor's import tokens are at most 256 characters (the Tencent door's limit). */
const MAX_TOKEN_BYTES = 256;
/** The latest ValidTo Tresor accepts (the Tencent door's), as epoch seconds. */
const MAX_VALID_TO = 2_147_443_200;

export const IMPORT_ACTIONS: Readonly<Record<string, AwsActionDefinition>> = {
  GetParametersForImport: action(
    "GetParametersForImport",
    { KeyId: keyIdParam(), WrappingAlgorithm: oneOf(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"]), WrappingKeySpec: oneOf(["RSA_2048"]) },
    async (p, ctx) => {
      const r = await ctx.service.getParametersForImport(ctx.caller, await keyOf(ctx, p.KeyId), p.WrappingKeySpec, p.WrappingAlgorithm);
      return { KeyId: keyArn(ctx.scope, r.keyId), ImportToken: b64(Buffer.from(r.importToken, "utf8")), PublicKey: b64(r.publicKey), ParametersValidTo: r.parametersValidTo };
    },
  ),

  ImportKeyMaterial: action(
    "ImportKeyMaterial",
    {
      KeyId: keyIdParam(),
      ImportToken: base64({ max: MAX_TOKEN_BYTES }),
      EncryptedKeyMaterial: base64({ max: MAX_WRAPPED_MATERIAL_BYTES }),
      ValidTo: optional(epochSeconds(MAX_VALID_TO)),
      ExpirationModel: optional(oneOf(["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"])),
      ImportType: unsupported("a key holds one key material"),
      KeyMaterialDescription: unsupported("a key holds one key material"),
      KeyMaterialId: unsupported("a key holds one key material"),
    },
    async (p, ctx) => {
      const expires = p.ExpirationModel ?? (p.ValidTo === undefined ? "KEY_MATERIAL_DOES_NOT_EXPIRE" : "KEY_MATERIAL_EXPIRES");
      if ((expires === "KEY_MATERIAL_EXPIRES") !== (p.ValidTo !== undefined)) {
        throw new KmsError("InvalidParameterValue", `"ValidTo" is given exactly when "ExpirationModel" is KEY_MATERIAL_EXPIRES`);
      }
      const keyId = await keyOf(ctx, p.KeyId);
      await ctx.service.importKeyMaterial(ctx.caller, { keyId, importToken: p.ImportToken.toString("utf8"), encryptedKeyMaterial: p.EncryptedKeyMaterial, validTo: p.ValidTo ?? 0 });
      return { KeyId: keyArn(ctx.scope, keyId) };
    },
  ),

  DeleteImportedKeyMaterial: action("DeleteImportedKeyMaterial", { KeyId: keyIdParam(), KeyMaterialId: unsupported("a key holds one key material") }, async (p, ctx) => {
    const keyId = await keyOf(ctx, p.KeyId);
    await ctx.service.deleteImportedKeyMaterial(ctx.caller, keyId);
    return { KeyId: keyArn(ctx.scope, keyId) };
  }),
};
