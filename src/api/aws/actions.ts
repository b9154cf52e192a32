// The AWS KMS actions Tresor serves (API version 2014-11-01): for each, the catalogue action whose
// permission and audit kind it has (policy/catalog.ts), its parameter schema, and how its validated
// parameters map onto the service and back onto the KMS API reference's response shapes.

import { BLOB_MIN_LENGTH, BlobFormatError, decodeBlob } from "../../keys/blob.js";
import { KmsError } from "../../service/errors.js";
import { array, base64, integer, oneOf, optional, parseParams, string } from "../tencent/params.js";
import { MAX_PLAINTEXT_BYTES } from "../tencent/actions.js";
import { action, b64, keyOf, type AwsActionContext, type AwsActionDefinition } from "./action.js";
import { ASYMMETRIC_ACTIONS, decryptAsymmetric, encryptAsymmetric } from "./asymmetric.js";
import { keyArn } from "./identifiers.js";
import { IMPORT_ACTIONS } from "./import.js";
import { MAC_ACTIONS } from "./mac.js";
import { MANAGEMENT_ACTIONS } from "./management.js";
import { AWS_KEY_SPECS, AWS_KEY_USAGES, coreKeyType, keyMetadata, RSA_ENCRYPTION_ALGORITHMS, SYMMETRIC_DEFAULT } from "./metadata.js";
import { boolean, dryRun, encryptionContextMap, grantTokens, keyIdParam, tag, toTags, unsupported } from "./params.js";

const MAX_BLOB_BYTES = BLOB_MIN_LENGTH + MAX_PLAINTEXT_BYTES;
/** AWS: at most 1024 bytes from GenerateRandom and GenerateDataKey's NumberOfBytes. */
const MAX_RANDOM_BYTES = 1024;
/** AWS Description: up to 8192 characters; Tresor stores what the Tencent door allows (1024 bytes). */
const MAX_DESCRIPTION_BYTES = 1024;

const encryptionAlgorithm = optional(oneOf([SYMMETRIC_DEFAULT]));
/** Encrypt's and Decrypt's EncryptionAlgorithm: the symmetric default, or RSA-OAEP for RSA keys. */
const decryptionAlgorithm = optional(oneOf(["SYMMETRIC_DEFAULT", ...RSA_ENCRYPTION_ALGORITHMS] as const));
const recipient = unsupported("Nitro Enclaves attestation is not offered");


/** The key id inside a ciphertext blob, or undefined when it is no blob (Decrypt then says why). */
function blobKeyId(blob: Buffer): string | undefined {
  try {
    return decodeBlob(blob).keyId;
  } catch (e) {
    if (e instanceof BlobFormatError) return undefined;
    throw e;
  }
}

/** AWS: a ciphertext under another key than the KeyId given is refused before anything is decrypted. */
async function checkCiphertextKey(ctx: AwsActionContext, blob: Buffer, given: string | undefined, name: string): Promise<void> {
  if (given === undefined) return;
  const keyId = await keyOf(ctx, given, name);
  const inBlob = blobKeyId(blob);
  if (inBlob !== undefined && inBlob !== keyId) {
    throw new KmsError("InvalidCiphertext", `"CiphertextBlob" was not made under the key "${name}" names`);
  }
}

/** GenerateDataKey's length: exactly one of NumberOfBytes and KeySpec (KMS API reference). */
function dataKeyLength(p: { NumberOfBytes?: number | undefined; KeySpec?: "AES_128" | "AES_256" | undefined }): number {
  if (p.NumberOfBytes !== undefined && p.KeySpec !== undefined) throw new KmsError("InvalidParameterValue", `give one of "KeySpec" and "NumberOfBytes", not both`);
  if (p.NumberOfBytes !== undefined) return p.NumberOfBytes;
  if (p.KeySpec !== undefined) return p.KeySpec === "AES_128" ? 16 : 32;
  throw new KmsError("MissingParameter", `one of "KeySpec" and "NumberOfBytes" is required`);
}

const dataKeySchema = {
  KeyId: keyIdParam(),
  EncryptionContext: optional(encryptionContextMap()),
  NumberOfBytes: optional(integer(1, MAX_RANDOM_BYTES)),
  KeySpec: optional(oneOf(["AES_128", "AES_256"])),
  GrantTokens: grantTokens,
  DryRun: dryRun,
};

const keyOnly = { KeyId: keyIdParam() };

export const AWS_ACTIONS: Readonly<Record<string, AwsActionDefinition>> = {
  CreateKey: action(
    "CreateKey",
    {
      Description: optional(string({ max: MAX_DESCRIPTION_BYTES, bytes: true })),
      KeyUsage: optional(oneOf(AWS_KEY_USAGES, "InvalidKeyUsage")),
      KeySpec: optional(oneOf(AWS_KEY_SPECS)),
      CustomerMasterKeySpec: optional(oneOf(AWS_KEY_SPECS)),
      Origin: optional(oneOf(["AWS_KMS", "EXTERNAL"])),
      Tags: optional(array(tag, { max: 50 })),
      Policy: unsupported("key policies: access is governed by CAM policies (docs/aws.md)"),
      BypassPolicyLockoutSafetyCheck: optional(boolean()),
      CustomKeyStoreId: unsupported("custom key stores are not offered"),
      MultiRegion: optional(boolean()),
      XksKeyId: unsupported("external key stores are not offered"),
    },
    async (p, ctx) => {
      if (p.MultiRegion) throw new KmsError("UnsupportedOperation", `"MultiRegion" true is not supported: keys live in one region`);
      if (p.KeySpec && p.CustomerMasterKeySpec && p.KeySpec !== p.CustomerMasterKeySpec) {
        throw new KmsError("InvalidParameterValue", `"KeySpec" and "CustomerMasterKeySpec" differ: give one`);
      }
      const key = await ctx.service.createKey(ctx.caller, {
        description: p.Description ?? "",
        ...coreKeyType(p.KeySpec ?? p.CustomerMasterKeySpec ?? SYMMETRIC_DEFAULT, p.KeyUsage ?? "ENCRYPT_DECRYPT"),
        tags: toTags(p.Tags),
        origin: p.Origin === "EXTERNAL" ? "EXTERNAL" : "TENCENT_KMS",
      });
      return { KeyMetadata: keyMetadata(key, ctx.scope) };
    },
  ),

  DescribeKey: action("DescribeKey", { ...keyOnly, GrantTokens: grantTokens }, async (p, ctx) => ({
    KeyMetadata: keyMetadata(await ctx.service.describeKey(ctx.caller, await keyOf(ctx, p.KeyId)), ctx.scope),
  })),

  ListKeys: action("ListKeys", { Limit: optional(integer(1, 1000)), Marker: optional(string({ min: 1, max: 10, pattern: /^[0-9]+$/, patternText: "a NextMarker this service gave" })) }, async (p, ctx) => {
    const offset = Number(p.Marker ?? 0);
    const { keyIds, totalCount } = await ctx.service.listKeys(ctx.caller, { offset, limit: p.Limit ?? 100, role: 0 });
    const truncated = offset + keyIds.length < totalCount;
    return {
      Keys: keyIds.map((id) => ({ KeyId: id, KeyArn: keyArn(ctx.scope, id) })),
      Truncated: truncated,
      ...(truncated ? { NextMarker: String(offset + keyIds.length) } : {}),
    };
  }),

  EnableKey: action("EnableKey", keyOnly, async (p, ctx) => {
    await ctx.service.enableKey(ctx.caller, await keyOf(ctx, p.KeyId));
    return {};
  }),

  DisableKey: action("DisableKey", keyOnly, async (p, ctx) => {
    await ctx.service.disableKey(ctx.caller, await keyOf(ctx, p.KeyId));
    return {};
  }),

  UpdateKeyDescription: action("UpdateKeyDescription", { ...keyOnly, Description: string({ max: MAX_DESCRIPTION_BYTES, bytes: true }) }, async (p, ctx) => {
    await ctx.service.updateKeyDescription(ctx.caller, await keyOf(ctx, p.KeyId), p.Description);
    return {};
  }),

  ScheduleKeyDeletion: action(
    "ScheduleKeyDeletion",
    // The window is checked by the service (7 to 30 days, as AWS documents it).
    { ...keyOnly, PendingWindowInDays: optional(integer(-(2 ** 31), 2 ** 31 - 1, "InvalidPendingWindowInDays")) },
    async (p, ctx) => {
      const window = p.PendingWindowInDays ?? 30;
      const { keyId, deletionDate } = await ctx.service.scheduleKeyDeletion(ctx.caller, await keyOf(ctx, p.KeyId), window, true);
      return { KeyId: keyArn(ctx.scope, keyId), DeletionDate: deletionDate, KeyState: "PendingDeletion", PendingWindowInDays: window };
    },
  ),

  CancelKeyDeletion: action("CancelKeyDeletion", keyOnly, async (p, ctx) => {
    const { keyId } = await ctx.service.cancelKeyDeletion(ctx.caller, await keyOf(ctx, p.KeyId));
    return { KeyId: keyArn(ctx.scope, keyId) };
  }),

  Encrypt: action(
    "Encrypt",
    {
      KeyId: keyIdParam(),
      Plaintext: base64({ max: MAX_PLAINTEXT_BYTES, code: "InvalidPlaintext" }),
      EncryptionContext: optional(encryptionContextMap()),
      EncryptionAlgorithm: decryptionAlgorithm,
      GrantTokens: grantTokens,
      DryRun: dryRun,
    },
    async (p, ctx) => {
      const algorithm = p.EncryptionAlgorithm ?? SYMMETRIC_DEFAULT;
      if (algorithm !== SYMMETRIC_DEFAULT) return encryptAsymmetric(ctx, p.KeyId, algorithm, p.Plaintext, p.EncryptionContext);
      try {
        const { keyId, blob } = await ctx.service.encrypt(ctx.caller, await keyOf(ctx, p.KeyId), p.Plaintext, p.EncryptionContext ?? {});
        return { CiphertextBlob: b64(blob), KeyId: keyArn(ctx.scope, keyId), EncryptionAlgorithm: SYMMETRIC_DEFAULT };
      } finally {
        p.Plaintext.fill(0);
      }
    },
  ),

  Decrypt: action(
    "Decrypt",
    {
      CiphertextBlob: base64({ max: MAX_BLOB_BYTES, code: "InvalidCiphertext" }),
      EncryptionContext: optional(encryptionContextMap()),
      KeyId: optional(keyIdParam()),
      EncryptionAlgorithm: decryptionAlgorithm,
      GrantTokens: grantTokens,
      Recipient: recipient,
      DryRun: dryRun,
    },
    async (p, ctx) => {
      const algorithm = p.EncryptionAlgorithm ?? SYMMETRIC_DEFAULT;
      if (algorithm !== SYMMETRIC_DEFAULT) return decryptAsymmetric(ctx, p.KeyId, algorithm, p.CiphertextBlob, p.EncryptionContext);
      await checkCiphertextKey(ctx, p.CiphertextBlob, p.KeyId, "KeyId");
      const { keyId, plaintext } = await ctx.service.decrypt(ctx.caller, p.CiphertextBlob, p.EncryptionContext ?? {});
      try {
        return { KeyId: keyArn(ctx.scope, keyId), Plaintext: b64(plaintext), EncryptionAlgorithm: SYMMETRIC_DEFAULT };
      } finally {
        plaintext.fill(0);
      }
    },
  ),

  ReEncrypt: action(
    "ReEncrypt",
    {
      CiphertextBlob: base64({ max: MAX_BLOB_BYTES, code: "InvalidCiphertext" }),
      SourceEncryptionContext: optional(encryptionContextMap()),
      SourceKeyId: optional(keyIdParam()),
      DestinationKeyId: keyIdParam(),
      DestinationEncryptionContext: optional(encryptionContextMap()),
      SourceEncryptionAlgorithm: encryptionAlgorithm,
      DestinationEncryptionAlgorithm: encryptionAlgorithm,
      GrantTokens: grantTokens,
      DryRun: dryRun,
    },
    async (p, ctx) => {
      await checkCiphertextKey(ctx, p.CiphertextBlob, p.SourceKeyId, "SourceKeyId");
      const r = await ctx.service.reEncrypt(ctx.caller, {
        blob: p.CiphertextBlob,
        destinationKeyId: await keyOf(ctx, p.DestinationKeyId, "DestinationKeyId"),
        sourceContext: p.SourceEncryptionContext ?? {},
        destinationContext: p.DestinationEncryptionContext ?? {},
      });
      return {
        CiphertextBlob: b64(r.blob),
        SourceKeyId: keyArn(ctx.scope, r.sourceKeyId),
        KeyId: keyArn(ctx.scope, r.keyId),
        SourceEncryptionAlgorithm: SYMMETRIC_DEFAULT,
        DestinationEncryptionAlgorithm: SYMMETRIC_DEFAULT,
      };
    },
  ),

  GenerateDataKey: action("GenerateDataKey", { ...dataKeySchema, Recipient: recipient }, async (p, ctx) => {
    const length = dataKeyLength(p);
    const { keyId, plaintext, blob } = await ctx.service.generateDataKey(ctx.caller, await keyOf(ctx, p.KeyId), length, p.EncryptionContext ?? {});
    try {
      return { CiphertextBlob: b64(blob), Plaintext: b64(plaintext), KeyId: keyArn(ctx.scope, keyId) };
    } finally {
      plaintext.fill(0);
    }
  }),

  GenerateDataKeyWithoutPlaintext: action("GenerateDataKey", dataKeySchema, async (p, ctx) => {
    const length = dataKeyLength(p);
    const { keyId, plaintext, blob } = await ctx.service.generateDataKey(ctx.caller, await keyOf(ctx, p.KeyId), length, p.EncryptionContext ?? {});
    plaintext.fill(0);
    return { CiphertextBlob: b64(blob), KeyId: keyArn(ctx.scope, keyId) };
  }),

  GenerateRandom: action(
    "GenerateRandom",
    { NumberOfBytes: optional(integer(1, MAX_RANDOM_BYTES)), CustomKeyStoreId: unsupported("custom key stores are not offered"), Recipient: recipient },
    (p, { service, caller }) => {
      // AWS documents NumberOfBytes as optional without a default; the SDKs always send it.
      if (p.NumberOfBytes === undefined) throw new KmsError("MissingParameter", `the parameter "NumberOfBytes" is required`);
      const bytes = service.generateRandom(caller, p.NumberOfBytes);
      try {
        return { Plaintext: b64(bytes) };
      } finally {
        bytes.fill(0);
      }
    },
  ),

  ...ASYMMETRIC_ACTIONS,
  ...MAC_ACTIONS,
  ...MANAGEMENT_ACTIONS,
  ...IMPORT_ACTIONS,
};

/** The catalogue action of an AWS action name, or undefined for a name this door does not serve. */
export function awsCatalogAction(name: string): string | undefined {
  return Object.hasOwn(AWS_ACTIONS, name) ? AWS_ACTIONS[name]!.catalog : undefined;
}

/** Runs AWS action `name` on the request body. */
export function runAwsAction(name: string, body: Record<string, unknown>, ctx: AwsActionContext) {
  const definition = Object.hasOwn(AWS_ACTIONS, name) ? AWS_ACTIONS[name] : undefined;
  if (!definition) throw new KmsError("InvalidAction", `the operation ${name} is not supported by this service`);
  return definition.run(parseParams(definition.schema, body), ctx);
}
