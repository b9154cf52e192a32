// The Tencent KMS actions Tresor serves: for each, its parameter schema and how its validated
// parameters map onto the service and back onto the wire shapes of kms_models (version 2019-01-18).

import type { AsymmetricKeySpec, KeyRecord, KeyState, KeyUsage, Tag } from "../../keys/key.js";
import { BLOB_MIN_LENGTH } from "../../keys/blob.js";
import { publicKeyPemOf } from "../../keys/asymmetric.js";
import { ASYMMETRIC_KEY_SPECS, KEY_USAGES, MAC_KEY_SPECS, PROTECTION_LEVELS, SYMMETRIC_KEY_SPECS } from "../../keys/key.js";
import { SIGNING_ALGORITHMS, metadataType } from "../../keys/specs.js";
import { CATALOG_ACTIONS, type CatalogActionName, type Product } from "../../policy/catalog.js";
import { KmsError } from "../../service/errors.js";
import type { Caller, CreateKeyInput, KmsService, ListKeyDetailInput } from "../../service/kms-service.js";
import { tangActions } from "./tang-actions.js";
import { macActions, postQuantumActions } from "./pq-mac-actions.js";
import { plaintextField, publicKeyWrap, publicKeyWrapper } from "./public-key-wrap.js";
import {
  array,
  base64,
  encryptionContext,
  integer,
  integerOneOf,
  keyId,
  object,
  oneOf,
  optional,
  parseParams,
  string,
  type Param,
  type Parsed,
  type Schema,
} from "./params.js";

/** Plaintext limit of Encrypt, as Tencent documents it. */
export const MAX_PLAINTEXT_BYTES = 4096;
/** Blob header and tag around at most 4096 bytes of plaintext (docs/formats.md). */
const MAX_BLOB_BYTES = BLOB_MIN_LENGTH + MAX_PLAINTEXT_BYTES;
const MAX_BATCH = 100;
/** ImportKeyMaterial `ValidTo`, as Tencent documents it. */
const MAX_VALID_TO = 2_147_443_200;

/** Sign/Verify `Message` with MessageType RAW, as Tencent documents it. */
export const MAX_SIGN_MESSAGE_BYTES = 4096;
/** AsymmetricSm2Decrypt: the raw (DER C1C3C2) ciphertext, as Tencent documents it. */
export const MAX_SM2_CIPHERTEXT_BYTES = 256;
/** One RSA block of the largest modulus offered (4096 bits). */
const MAX_RSA_CIPHERTEXT_BYTES = 512;
/** The largest signature any key gives (RSA 4096); anything longer is no signature of ours. */
const MAX_SIGNATURE_BYTES = 512;

const ALIAS_PATTERN = /^(?!kms-)[A-Za-z0-9][A-Za-z0-9_-]{0,59}$/;
const alias = () =>
  string({ min: 1, max: 60, pattern: ALIAS_PATTERN, patternText: "letters, digits, - and _, starting with a letter or digit, not starting with kms-", code: "InvalidAlias" });
const description = (max: number) => string({ max, bytes: true });
const keyIds = () => array(keyId(), { min: 1, max: MAX_BATCH });

/** A parameter Tencent defines for a feature Tresor does not offer: refused by name when given. */
function unsupported(feature: string): Param<never> {
  return optional({
    required: false,
    parse: (_value, name) => {
      throw new KmsError("UnsupportedOperation", `"${name}" is not supported: ${feature}`);
    },
  });
}

/** HsmClusterId: only the empty string (the shared, software-protected cluster) exists. */
const hsmClusterId = optional(
  string({ max: 128, pattern: /^$/, patternText: "empty: this service has no HSM clusters", code: "InvalidHsmClusterId" }),
);

/** A key's tag, as both doors take it. */
export const tag: Param<{ TagKey: string; TagValue: string }> & { readonly required: true } = object({
  TagKey: string({ min: 1, max: 127 }),
  TagValue: string({ max: 255 }),
});
const tagFilter = object({
  TagKey: string({ min: 1, max: 127 }),
  TagValue: optional(array(string({ max: 255 }), { max: 10 })),
});

const memberAccount = unsupported("member accounts belong to multi-account organisations, which this service does not have");
export interface ActionContext {
  service: KmsService;
  caller: Caller;
}

export interface ActionDefinition<S extends Schema> {
  schema: S;
  run(params: Parsed<S>, ctx: ActionContext): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/**
 * A protocol's handlers for one product of the action catalogue (policy/catalog.ts): typed so that
 * a catalogue action without a handler, or a handler without a catalogue entry, fails to compile.
 */
export type ActionTable<P extends Product> = Readonly<Record<CatalogActionName<P>, ActionDefinition<Schema>>>;

export function action<S extends Schema>(schema: S, run: ActionDefinition<S>["run"]): ActionDefinition<Schema> {
  return { schema, run: run as ActionDefinition<Schema>["run"] };
}

function noDuplicates(ids: readonly string[], name: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new KmsError("DuplicatedKeyId", `"${name}" lists ${id} more than once`);
    seen.add(id);
  }
}

export function toTags(tags: readonly { TagKey: string; TagValue: string }[] | undefined): Tag[] {
  const out: Tag[] = [];
  const seen = new Set<string>();
  for (const t of tags ?? []) {
    if (seen.has(t.TagKey)) throw new KmsError("TagKeysDuplicated", `"Tags" has the tag key ${t.TagKey} more than once`);
    seen.add(t.TagKey);
    out.push({ key: t.TagKey, value: t.TagValue });
  }
  return out;
}

export function keyMetadata(key: KeyRecord): Record<string, unknown> {
  return {
    KeyId: key.keyId,
    Alias: key.alias,
    CreateTime: key.createTime,
    Description: key.description,
    KeyState: key.state,
    KeyUsage: key.keyUsage,
    Type: metadataType(key.keySpec),
    KeySpec: key.keySpec,
    CreatorUin: Number(key.creatorUin),
    CreatorUinString: key.creatorUin,
    KeyRotationEnabled: key.rotationEnabled,
    Owner: key.owner,
    NextRotateTime: key.nextRotateTime,
    DeletionDate: key.deletionDate,
    Origin: key.origin,
    ProtectionLevel: key.protectionLevel,
    /** Tresor extension: CMK, or KMIP for the exportable objects created or registered through KMIP. */
    KeyClass: key.keyClass,
    ValidTo: key.validTo,
    ResourceId: `creatorUin/${key.creatorUin}/${key.keyId}`,
    HsmClusterId: "",
    RotateDays: key.rotateDays,
    LastRotateTime: key.lastRotateTime,
    IsSyncReplica: 0,
    SourceRegion: "",
    SyncStatus: 0,
    SyncMessages: "",
    SyncStartTime: 0,
    SyncEndTime: 0,
    SourceHsmClusterId: "",
  };
}

const KEY_STATE_FILTER: Readonly<Record<number, KeyState | undefined>> = {
  0: undefined,
  1: "Enabled",
  2: "Disabled",
  3: "PendingDelete",
  4: "PendingImport",
  5: "Archived",
};

const pagingSchema = {
  Offset: optional(integer(0, 2 ** 31 - 1)),
  Limit: optional(integer(1, 200)),
  Role: optional(integerOneOf([0, 1])),
  HsmClusterId: hsmClusterId,
};

function b64(buf: Buffer): string {
  return buf.toString("base64");
}

const messageType = optional(oneOf(["RAW", "DIGEST"]));
const signatureSchema = {
  KeyId: keyId(),
  Algorithm: oneOf(SIGNING_ALGORITHMS),
  Message: base64({ max: MAX_SIGN_MESSAGE_BYTES }),
  MessageType: messageType,
};

export const ACTIONS: ActionTable<"kms"> = {
  CreateKey: action(
    {
      Alias: alias(),
      Description: optional(description(1024)),
      KeyUsage: optional(oneOf(KEY_USAGES, "InvalidKeyUsage")),
      Type: optional(integer(1, 2, "InvalidType")),
      KeySpec: optional(oneOf([...SYMMETRIC_KEY_SPECS, ...ASYMMETRIC_KEY_SPECS, ...MAC_KEY_SPECS])),
      Tags: optional(array(tag, { max: 50 })),
      HsmClusterId: hsmClusterId,
      ProtectionLevel: optional(oneOf(PROTECTION_LEVELS)),
    },
    async (p, { service, caller }) => {
      const keyUsage: KeyUsage = p.KeyUsage ?? "ENCRYPT_DECRYPT";
      const input: CreateKeyInput = { alias: p.Alias, description: p.Description ?? "", keyUsage, tags: toTags(p.Tags), origin: p.Type === 2 ? "EXTERNAL" : "TENCENT_KMS" };
      if (p.KeySpec) input.keySpec = p.KeySpec;
      if (p.ProtectionLevel) input.protectionLevel = p.ProtectionLevel;
      const key = await service.createKey(caller, input);
      const { KeyId, Alias, CreateTime, Description, KeyState, KeyUsage, HsmClusterId } = keyMetadata(key);
      return { KeyId, Alias, CreateTime, Description, KeyState, KeyUsage, TagCode: 0, TagMsg: "", HsmClusterId };
    },
  ),

  DescribeKey: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => ({
    KeyMetadata: keyMetadata(await service.describeKey(caller, p.KeyId)),
  })),

  DescribeKeys: action({ KeyIds: keyIds(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    noDuplicates(p.KeyIds, "KeyIds");
    return { KeyMetadatas: (await service.describeKeys(caller, p.KeyIds)).map(keyMetadata) };
  }),

  ListKeys: action(pagingSchema, async (p, { service, caller }) => {
    const { keyIds, totalCount } = await service.listKeys(caller, { offset: p.Offset ?? 0, limit: p.Limit ?? 10, role: p.Role ?? 0 });
    return { Keys: keyIds.map((KeyId) => ({ KeyId })), TotalCount: totalCount };
  }),

  ListKeyDetail: action(
    {
      ...pagingSchema,
      OrderType: optional(integerOneOf([0, 1])),
      KeyState: optional(integer(0, 5)),
      SearchKeyAlias: optional(string({ max: 128 })),
      Origin: optional(oneOf(["TENCENT_KMS", "EXTERNAL", "ALL"])),
      KeyUsage: optional(string({ max: 64 })),
      TagFilters: optional(array(tagFilter, { max: 10 })),
      MemberAccounts: memberAccount,
    },
    async (p, { service, caller }) => {
      const input: ListKeyDetailInput = {
        offset: p.Offset ?? 0,
        limit: p.Limit ?? 10,
        role: p.Role ?? 0,
        order: p.OrderType === 1 ? "asc" : "desc",
      };
      const state = KEY_STATE_FILTER[p.KeyState ?? 0];
      if (state) input.states = [state];
      if (p.SearchKeyAlias) input.search = p.SearchKeyAlias;
      if (p.Origin && p.Origin !== "ALL") input.origin = p.Origin;
      // Tencent: an empty KeyUsage lists ENCRYPT_DECRYPT keys only; ALL lists every usage.
      const usage = p.KeyUsage || "ENCRYPT_DECRYPT";
      if (usage !== "ALL") {
        if (!(KEY_USAGES as readonly string[]).includes(usage)) {
          throw new KmsError("InvalidParameterValue", `"KeyUsage" must be ALL or one of ${KEY_USAGES.join(", ")}`);
        }
        input.keyUsages = [usage as KeyUsage];
      }
      if (p.TagFilters) input.tagFilters = p.TagFilters.map((f) => ({ key: f.TagKey, values: f.TagValue ?? [] }));
      const { keys, totalCount } = await service.listKeyDetail(caller, input);
      return { TotalCount: totalCount, KeyMetadatas: keys.map(keyMetadata) };
    },
  ),

  EnableKey: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.enableKey(caller, p.KeyId);
    return {};
  }),

  DisableKey: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.disableKey(caller, p.KeyId);
    return {};
  }),

  EnableKeys: action({ KeyIds: keyIds(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    noDuplicates(p.KeyIds, "KeyIds");
    await service.enableKeys(caller, p.KeyIds);
    return {};
  }),

  DisableKeys: action({ KeyIds: keyIds(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    noDuplicates(p.KeyIds, "KeyIds");
    await service.disableKeys(caller, p.KeyIds);
    return {};
  }),

  UpdateAlias: action({ Alias: alias(), KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.updateAlias(caller, p.KeyId, p.Alias);
    return {};
  }),

  UpdateKeyDescription: action({ Description: description(1024), KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.updateKeyDescription(caller, p.KeyId, p.Description);
    return {};
  }),

  TagResource: action({ KeyId: keyId(), Tags: array(tag, { min: 1, max: 50 }) }, async (p, { service, caller }) => {
    await service.tagKey(caller, p.KeyId, toTags(p.Tags));
    return {};
  }),

  UntagResource: action({ KeyId: keyId(), TagKeys: array(string({ min: 1, max: 127 }), { min: 1, max: 50 }) }, async (p, { service, caller }) => {
    await service.untagKey(caller, p.KeyId, p.TagKeys);
    return {};
  }),

  ListResourceTags: action({ KeyId: keyId() }, async (p, { service, caller }) => ({
    KeyId: p.KeyId,
    Tags: (await service.listKeyTags(caller, p.KeyId)).map((t) => ({ TagKey: t.key, TagValue: t.value })),
  })),

  Encrypt: action(
    {
      KeyId: keyId(),
      Plaintext: base64({ max: MAX_PLAINTEXT_BYTES, code: "InvalidPlaintext" }),
      EncryptionContext: optional(encryptionContext()),
    },
    async (p, { service, caller }) => {
      try {
        const { keyId, blob } = await service.encrypt(caller, p.KeyId, p.Plaintext, p.EncryptionContext ?? {});
        return { CiphertextBlob: b64(blob), KeyId: keyId };
      } finally {
        p.Plaintext.fill(0);
      }
    },
  ),

  Decrypt: action(
    {
      CiphertextBlob: base64({ max: MAX_BLOB_BYTES, code: "InvalidCiphertext" }),
      EncryptionContext: optional(encryptionContext()),
      ...publicKeyWrap,
    },
    async (p, { service, caller }) => {
      const wrap = publicKeyWrapper(p, service);
      const { keyId, plaintext } = await service.decrypt(caller, p.CiphertextBlob, p.EncryptionContext ?? {});
      try {
        return { KeyId: keyId, Plaintext: plaintextField(plaintext, wrap) };
      } finally {
        plaintext.fill(0);
      }
    },
  ),

  ReEncrypt: action(
    {
      CiphertextBlob: base64({ max: MAX_BLOB_BYTES, code: "InvalidCiphertext" }),
      DestinationKeyId: optional(keyId()),
      SourceEncryptionContext: optional(encryptionContext()),
      DestinationEncryptionContext: optional(encryptionContext()),
    },
    async (p, { service, caller }) => {
      const input = {
        blob: p.CiphertextBlob,
        sourceContext: p.SourceEncryptionContext ?? {},
        destinationContext: p.DestinationEncryptionContext ?? {},
      };
      const r = await service.reEncrypt(caller, p.DestinationKeyId ? { ...input, destinationKeyId: p.DestinationKeyId } : input);
      return { CiphertextBlob: b64(r.blob), KeyId: r.keyId, SourceKeyId: r.sourceKeyId, ReEncrypted: r.reEncrypted };
    },
  ),

  GenerateDataKey: action(
    {
      KeyId: keyId(),
      KeySpec: optional(oneOf(["AES_128", "AES_256"])),
      NumberOfBytes: optional(integer(1, 1024)),
      EncryptionContext: optional(encryptionContext()),
      ...publicKeyWrap,
      IsHostedByKms: optional(integerOneOf([0, 1])),
      DataKeyName: unsupported("hosted data keys are not offered"),
      Description: unsupported("hosted data keys are not offered"),
      Tags: unsupported("hosted data keys are not offered"),
      HsmClusterId: hsmClusterId,
    },
    async (p, { service, caller }) => {
      if (p.IsHostedByKms === 1) throw new KmsError("UnsupportedOperation", `"IsHostedByKms" 1 is not supported: hosted data keys are not offered`);
      // Tencent: NumberOfBytes wins when both are given.
      const length = p.NumberOfBytes ?? (p.KeySpec === "AES_128" ? 16 : p.KeySpec === "AES_256" ? 32 : undefined);
      if (length === undefined) throw new KmsError("MissingParameter", `one of "KeySpec" and "NumberOfBytes" is required`);
      const wrap = publicKeyWrapper(p, service);
      const { keyId, plaintext, blob } = await service.generateDataKey(caller, p.KeyId, length, p.EncryptionContext ?? {});
      try {
        return { KeyId: keyId, Plaintext: plaintextField(plaintext, wrap), CiphertextBlob: b64(blob) };
      } finally {
        plaintext.fill(0);
      }
    },
  ),

  GenerateRandom: action({ NumberOfBytes: integer(1, 1024) }, (p, { service, caller }) => {
    const bytes = service.generateRandom(caller, p.NumberOfBytes);
    try {
      return { Plaintext: b64(bytes) };
    } finally {
      bytes.fill(0);
    }
  }),

  GetServiceStatus: action({}, async (_p, { service, caller }) => {
    const { cmkUserCount, cmkLimit } = await service.getServiceStatus(caller);
    return {
      ServiceEnabled: true,
      InvalidType: 1,
      UserLevel: 0,
      ExclusiveVSMEnabled: false,
      ExclusiveHSMEnabled: false,
      ExclusiveHSMList: [],
      CmkUserCount: cmkUserCount,
      CmkLimit: cmkLimit,
      IsAllowedDataKeyHosted: false,
      IsAllowedSync: false,
      SyncTaskList: [],
    };
  }),

  ListAlgorithms: action({}, (_p, { service, caller }) => {
    const { symmetric, asymmetric, signVerify } = service.listAlgorithms(caller);
    const wire = (list: typeof symmetric) => list.map((a) => ({ KeyUsage: a.keyUsage, Algorithm: a.algorithm, ProtectionLevels: a.protectionLevels }));
    return { SymmetricAlgorithms: wire(symmetric), AsymmetricAlgorithms: wire(asymmetric), AsymmetricSignVerifyAlgorithms: wire(signVerify) };
  }),

  GetPublicKey: action({ KeyId: keyId() }, async (p, { service, caller }) => {
    const { keyId, publicKey, keySpec } = await service.getPublicKey(caller, p.KeyId);
    return { KeyId: keyId, PublicKey: b64(publicKey), PublicKeyPem: publicKeyPemOf(keySpec as AsymmetricKeySpec, publicKey) };
  }),

  AsymmetricRsaDecrypt: action(
    {
      KeyId: keyId(),
      Ciphertext: base64({ max: MAX_RSA_CIPHERTEXT_BYTES }),
      Algorithm: oneOf(["RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]),
    },
    async (p, { service, caller }) => {
      const { keyId, plaintext } = await service.asymmetricDecrypt(caller, "AsymmetricRsaDecrypt", p.KeyId, p.Algorithm, p.Ciphertext);
      try {
        return { KeyId: keyId, Plaintext: b64(plaintext) };
      } finally {
        plaintext.fill(0);
      }
    },
  ),

  AsymmetricSm2Decrypt: action({ KeyId: keyId(), Ciphertext: base64({ max: MAX_SM2_CIPHERTEXT_BYTES }) }, async (p, { service, caller }) => {
    const { keyId, plaintext } = await service.asymmetricDecrypt(caller, "AsymmetricSm2Decrypt", p.KeyId, "SM2", p.Ciphertext);
    try {
      return { KeyId: keyId, Plaintext: b64(plaintext) };
    } finally {
      plaintext.fill(0);
    }
  }),

  SignByAsymmetricKey: action(signatureSchema, async (p, { service, caller }) => {
    const { signature } = await service.sign(caller, { keyId: p.KeyId, algorithm: p.Algorithm, message: p.Message, messageType: p.MessageType ?? "RAW" });
    return { Signature: b64(signature) };
  }),

  VerifyByAsymmetricKey: action({ ...signatureSchema, SignatureValue: base64({ max: MAX_SIGNATURE_BYTES }) }, async (p, { service, caller }) => {
    const valid = await service.verify(caller, {
      keyId: p.KeyId,
      algorithm: p.Algorithm,
      message: p.Message,
      messageType: p.MessageType ?? "RAW",
      signature: p.SignatureValue,
    });
    return { SignatureValid: valid };
  }),

  GetRegions: action({}, (_p, { service, caller }) => ({ Regions: service.getRegions(caller) })),

  ArchiveKey: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.archiveKey(caller, p.KeyId);
    return {};
  }),

  CancelKeyArchive: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.cancelKeyArchive(caller, p.KeyId);
    return {};
  }),

  ScheduleKeyDeletion: action(
    // The window is checked by the service, so an out-of-range one gets Tencent's own error code.
    { KeyId: keyId(), PendingWindowInDays: integer(-(2 ** 31), 2 ** 31 - 1, "InvalidPendingWindowInDays"), MemberAccount: memberAccount },
    async (p, { service, caller }) => {
      const { keyId, deletionDate } = await service.scheduleKeyDeletion(caller, p.KeyId, p.PendingWindowInDays);
      return { DeletionDate: deletionDate, KeyId: keyId };
    },
  ),

  CancelKeyDeletion: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    const { keyId } = await service.cancelKeyDeletion(caller, p.KeyId);
    return { KeyId: keyId };
  }),

  EnableKeyRotation: action({ KeyId: keyId(), RotateDays: optional(integer(7, 365)), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.enableKeyRotation(caller, p.KeyId, p.RotateDays ?? 365);
    return {};
  }),

  DisableKeyRotation: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    await service.disableKeyRotation(caller, p.KeyId);
    return {};
  }),

  GetKeyRotationStatus: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    const key = await service.getKeyRotationStatus(caller, p.KeyId);
    return { KeyRotationEnabled: key.rotationEnabled, RotateDays: key.rotateDays, NextRotateTime: key.nextRotateTime, LastRotateTime: key.lastRotateTime };
  }),

  RotateKey: action({ KeyId: keyId(), MemberAccount: memberAccount }, async (p, { service, caller }) => {
    const { taskId } = await service.rotateKey(caller, p.KeyId);
    return { TaskId: taskId };
  }),

  ListKeyVersions: action({ KeyId: keyId() }, async (p, { service, caller }) => {
    const { key, versions } = await service.listKeyVersions(caller, p.KeyId);
    return {
      KeyId: key.keyId,
      CurrentVersion: key.currentVersion,
      Versions: versions.map((v) => ({ Version: v.version, CreateTime: v.createTime })),
    };
  }),

  GetParametersForImport: action(
    {
      KeyId: keyId(),
      WrappingAlgorithm: oneOf(["RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"]),
      WrappingKeySpec: oneOf(["RSA_2048", "SM2"]),
    },
    async (p, { service, caller }) => {
      const r = await service.getParametersForImport(caller, p.KeyId, p.WrappingKeySpec, p.WrappingAlgorithm);
      return { KeyId: r.keyId, ImportToken: r.importToken, PublicKey: b64(r.publicKey), ParametersValidTo: r.parametersValidTo };
    },
  ),

  ImportKeyMaterial: action(
    {
      // An RSA-2048 block is 256 bytes; an SM2 ciphertext of 32 bytes of material is about 140.
      EncryptedKeyMaterial: base64({ max: 512 }),
      ImportToken: string({ min: 1, max: 256 }),
      KeyId: keyId(),
      ValidTo: optional(integer(0, MAX_VALID_TO)),
    },
    async (p, { service, caller }) => {
      await service.importKeyMaterial(caller, { keyId: p.KeyId, importToken: p.ImportToken, encryptedKeyMaterial: p.EncryptedKeyMaterial, validTo: p.ValidTo ?? 0 });
      return {};
    },
  ),

  DeleteImportedKeyMaterial: action({ KeyId: keyId() }, async (p, { service, caller }) => {
    await service.deleteImportedKeyMaterial(caller, p.KeyId);
    return {};
  }),

  ...tangActions(action),
  ...postQuantumActions(action),
  ...macActions(action),
};

/**
 * The actions the catalogue marks as service information: one signature may serve any of them
 * (signature-bindings.ts). The official SDKs send them with the same "{}" body, so a client asking
 * for all three within one second signs them alike, and answering one in place of another
 * discloses nothing.
 */
export const SERVICE_INFORMATION_ACTIONS: readonly string[] = Object.freeze(CATALOG_ACTIONS.filter((a) => a.product === "kms" && a.serviceInformation).map((a) => a.name));

/** Runs action `name` of `table` (the KMS actions unless given) on the request body. */
export function runAction(name: string, body: Record<string, unknown>, ctx: ActionContext, table: Readonly<Record<string, ActionDefinition<Schema>>> = ACTIONS) {
  const definition = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!definition) throw new KmsError("InvalidAction", `the action ${name} does not exist`);
  return definition.run(parseParams(definition.schema, body), ctx);
}
