// Bad parameters for every parameter kind the actions take (string, integer, base64, enum, array,
// tag object, encryption context): each is refused with HTTP 200, the exact Tencent code, a message
// naming the parameter, and no change to any key.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertError, snapshotKeys, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

let s: InProcessServer;
/** An Enabled key. */
let k: string;
/** A second Enabled key, whose alias the cases try to take. */
let other: string;
let otherAlias: string;
let blob: string;
const missing = "00000000-0000-4000-8000-000000000000";

before(async () => {
  s = await startInProcessServer();
  k = (await s.call("CreateKey", { Alias: "params-key", Description: "original", Tags: [{ TagKey: "team", TagValue: "a" }] })).KeyId as string;
  otherAlias = "params-other";
  other = (await s.call("CreateKey", { Alias: otherAlias })).KeyId as string;
  blob = (await s.call("Encrypt", { KeyId: k, Plaintext: Buffer.from("parameter tests").toString("base64") })).CiphertextBlob as string;
});

after(async () => {
  await s.stop();
});

interface Case {
  name: string;
  action: string;
  body: () => object | string;
  code: string;
  /** Text the message must contain: the parameter's name, at least (a function when known only later). */
  mentions: (string | (() => string))[];
}

const IV = "InvalidParameter";
const IPV = "InvalidParameterValue";
const b64 = (n: number, fill = 0x41) => Buffer.alloc(n, fill).toString("base64");

/** Wrong JSON types for a parameter: each is InvalidParameter naming it. */
function wrongTypes(action: string, name: string, base: () => Record<string, unknown>, expected: "string" | "integer" | "array" | "object"): Case[] {
  const values: Record<string, unknown> = {
    number: 12,
    float: 1.5,
    string: "12",
    boolean: true,
    array: ["x"],
    object: { x: "y" },
  };
  const skip = { string: ["string"], integer: ["number"], array: ["array"], object: ["object"] }[expected];
  return Object.entries(values)
    .filter(([kind]) => !skip.includes(kind))
    .map(([kind, value]) => ({ name: `${action} ${name}: ${kind} for ${expected}`, action, body: () => ({ ...base(), [name]: value }), code: IV, mentions: [`"${name}"`] }));
}

const cases: Case[] = [
  // ---- CreateKey ----
  { name: "CreateKey without Alias", action: "CreateKey", body: () => ({}), code: "MissingParameter", mentions: ['"Alias"'] },
  { name: "CreateKey with Alias null", action: "CreateKey", body: () => ({ Alias: null }), code: "MissingParameter", mentions: ['"Alias"'] },
  { name: "CreateKey with an unknown parameter", action: "CreateKey", body: () => ({ Alias: "x1", Colour: "red" }), code: "UnknownParameter", mentions: ['"Colour"'] },
  { name: "CreateKey with a parameter in the wrong case", action: "CreateKey", body: () => ({ alias: "x1" }), code: "UnknownParameter", mentions: ['"alias"'] },
  ...wrongTypes("CreateKey", "Alias", () => ({}), "string"),
  { name: "CreateKey Alias empty", action: "CreateKey", body: () => ({ Alias: "" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias of 61 characters", action: "CreateKey", body: () => ({ Alias: "a".repeat(61) }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"', "60"] },
  { name: "CreateKey Alias starting with -", action: "CreateKey", body: () => ({ Alias: "-abc" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias starting with _", action: "CreateKey", body: () => ({ Alias: "_abc" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias with the reserved kms- prefix", action: "CreateKey", body: () => ({ Alias: "kms-mine" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"', "kms-"] },
  { name: "CreateKey Alias with a space", action: "CreateKey", body: () => ({ Alias: "a b" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias with a slash", action: "CreateKey", body: () => ({ Alias: "a/b" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias with a trailing newline", action: "CreateKey", body: () => ({ Alias: "abc\n" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "CreateKey Alias already taken", action: "CreateKey", body: () => ({ Alias: otherAlias }), code: "InvalidParameterValue.AliasAlreadyExists", mentions: ['"Alias"', () => otherAlias] },
  ...wrongTypes("CreateKey", "Description", () => ({ Alias: "x2" }), "string"),
  { name: "CreateKey Description of 1025 ASCII bytes", action: "CreateKey", body: () => ({ Alias: "x3", Description: "d".repeat(1025) }), code: IPV, mentions: ['"Description"', "1024"] },
  {
    name: "CreateKey Description of 513 characters, 1025 UTF-8 bytes",
    action: "CreateKey",
    body: () => ({ Alias: "x4", Description: "é".repeat(512) + "a" }),
    code: IPV,
    mentions: ['"Description"', "bytes"],
  },
  { name: "CreateKey Description of 342 CJK characters (1026 bytes)", action: "CreateKey", body: () => ({ Alias: "x5", Description: "密".repeat(342) }), code: IPV, mentions: ['"Description"'] },
  { name: "CreateKey KeyUsage unknown", action: "CreateKey", body: () => ({ Alias: "x6", KeyUsage: "ENCRYPT" }), code: "InvalidParameterValue.InvalidKeyUsage", mentions: ['"KeyUsage"'] },
  { name: "CreateKey KeyUsage lower case", action: "CreateKey", body: () => ({ Alias: "x6", KeyUsage: "encrypt_decrypt" }), code: "InvalidParameterValue.InvalidKeyUsage", mentions: ['"KeyUsage"'] },
  {
    name: "CreateKey KeyUsage an asymmetric usage with a symmetric KeySpec",
    action: "CreateKey",
    body: () => ({ Alias: "x6", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2", KeySpec: "SM4" }),
    code: IPV,
    mentions: ['"KeySpec"', "ASYMMETRIC_SIGN_VERIFY_SM2"],
  },
  { name: "CreateKey KeyUsage a number", action: "CreateKey", body: () => ({ Alias: "x6", KeyUsage: 1 }), code: IV, mentions: ['"KeyUsage"'] },
  { name: "CreateKey Type 0", action: "CreateKey", body: () => ({ Alias: "x7", Type: 0 }), code: "InvalidParameterValue.InvalidType", mentions: ['"Type"'] },
  { name: "CreateKey Type 3", action: "CreateKey", body: () => ({ Alias: "x7", Type: 3 }), code: "InvalidParameterValue.InvalidType", mentions: ['"Type"'] },
  ...wrongTypes("CreateKey", "Type", () => ({ Alias: "x7" }), "integer"),
  {
    name: "CreateKey Type 2 (EXTERNAL) with an asymmetric usage",
    action: "CreateKey",
    body: () => ({ Alias: "x7", Type: 2, KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC" }),
    code: "InvalidParameterValue.InvalidKeyUsage",
    mentions: ['"Type"'],
  },
  { name: "CreateKey KeySpec AES_128", action: "CreateKey", body: () => ({ Alias: "x8", KeySpec: "AES_128" }), code: IPV, mentions: ['"KeySpec"'] },
  { name: "CreateKey HsmClusterId set", action: "CreateKey", body: () => ({ Alias: "x9", HsmClusterId: "cls-123" }), code: "InvalidParameterValue.InvalidHsmClusterId", mentions: ['"HsmClusterId"'] },
  { name: "CreateKey HsmClusterId a number", action: "CreateKey", body: () => ({ Alias: "x9", HsmClusterId: 1 }), code: IV, mentions: ['"HsmClusterId"'] },
  ...wrongTypes("CreateKey", "Tags", () => ({ Alias: "x10" }), "array"),
  { name: "CreateKey Tags item a string", action: "CreateKey", body: () => ({ Alias: "x10", Tags: ["team=a"] }), code: IV, mentions: ['"Tags.0"'] },
  { name: "CreateKey Tags item null", action: "CreateKey", body: () => ({ Alias: "x10", Tags: [null] }), code: IV, mentions: ['"Tags.0"'] },
  { name: "CreateKey Tags item without TagValue", action: "CreateKey", body: () => ({ Alias: "x10", Tags: [{ TagKey: "a" }] }), code: "MissingParameter", mentions: ['"Tags.0.TagValue"'] },
  {
    name: "CreateKey Tags item with an unknown field",
    action: "CreateKey",
    body: () => ({ Alias: "x10", Tags: [{ TagKey: "a", TagValue: "b", Owner: "c" }] }),
    code: "UnknownParameter",
    mentions: ['"Tags.0.Owner"'],
  },
  { name: "CreateKey TagKey empty", action: "CreateKey", body: () => ({ Alias: "x10", Tags: [{ TagKey: "", TagValue: "b" }] }), code: IPV, mentions: ['"Tags.0.TagKey"'] },
  { name: "CreateKey TagKey of 128 characters", action: "CreateKey", body: () => ({ Alias: "x10", Tags: [{ TagKey: "k".repeat(128), TagValue: "b" }] }), code: IPV, mentions: ['"Tags.0.TagKey"'] },
  { name: "CreateKey TagValue a number", action: "CreateKey", body: () => ({ Alias: "x10", Tags: [{ TagKey: "a", TagValue: 1 }] }), code: IV, mentions: ['"Tags.0.TagValue"'] },
  {
    name: "CreateKey Tags with a tag key twice",
    action: "CreateKey",
    body: () => ({ Alias: "x10", Tags: [{ TagKey: "env", TagValue: "a" }, { TagKey: "env", TagValue: "b" }] }),
    code: "InvalidParameterValue.TagKeysDuplicated",
    mentions: ['"Tags"', "env"],
  },
  {
    name: "CreateKey with 51 tags",
    action: "CreateKey",
    body: () => ({ Alias: "x10", Tags: Array.from({ length: 51 }, (_, i) => ({ TagKey: `t${i}`, TagValue: "v" })) }),
    code: IPV,
    mentions: ['"Tags"'],
  },

  // ---- key ids ----
  { name: "DescribeKey without KeyId", action: "DescribeKey", body: () => ({}), code: "MissingParameter", mentions: ['"KeyId"'] },
  ...wrongTypes("DescribeKey", "KeyId", () => ({}), "string"),
  { name: "DescribeKey KeyId empty", action: "DescribeKey", body: () => ({ KeyId: "" }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey KeyId not a UUID", action: "DescribeKey", body: () => ({ KeyId: "alias/params-key" }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey KeyId upper case", action: "DescribeKey", body: () => ({ KeyId: k.toUpperCase() }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey KeyId with a space", action: "DescribeKey", body: () => ({ KeyId: ` ${k}` }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey KeyId with SQL", action: "DescribeKey", body: () => ({ KeyId: `${k}' OR '1'='1` }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey KeyId of 10,000 characters", action: "DescribeKey", body: () => ({ KeyId: "a".repeat(10_000) }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "DescribeKey with MemberAccount", action: "DescribeKey", body: () => ({ KeyId: k, MemberAccount: "100000000001" }), code: "UnsupportedOperation", mentions: ['"MemberAccount"'] },
  // Issue 21: these answered UnknownParameter where every other action answers UnsupportedOperation.
  ...["ArchiveKey", "CancelKeyArchive", "CancelKeyDeletion", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "RotateKey", "ScheduleKeyDeletion"].map((action) => ({
    name: `${action} with MemberAccount`,
    action,
    body: () => ({ KeyId: k, MemberAccount: "100000000001", ...(action === "ScheduleKeyDeletion" ? { PendingWindowInDays: 7 } : {}) }),
    code: "UnsupportedOperation",
    mentions: ['"MemberAccount"'],
  })),
  { name: "DescribeKey of a key that does not exist", action: "DescribeKey", body: () => ({ KeyId: missing }), code: "ResourceUnavailable.CmkNotFound", mentions: [missing] },

  // ---- arrays of key ids ----
  ...["DescribeKeys", "EnableKeys", "DisableKeys"].flatMap((action): Case[] => [
    { name: `${action} without KeyIds`, action, body: () => ({}), code: "MissingParameter", mentions: ['"KeyIds"'] },
    ...wrongTypes(action, "KeyIds", () => ({}), "array"),
    { name: `${action} KeyIds empty`, action, body: () => ({ KeyIds: [] }), code: IPV, mentions: ['"KeyIds"', "100"] },
    { name: `${action} KeyIds of 101`, action, body: () => ({ KeyIds: Array.from({ length: 101 }, () => k) }), code: IPV, mentions: ['"KeyIds"', "100"] },
    { name: `${action} KeyIds with one twice`, action, body: () => ({ KeyIds: [k, other, k] }), code: "InvalidParameterValue.DuplicatedKeyId", mentions: ['"KeyIds"', () => k] },
    { name: `${action} KeyIds with a bad id`, action, body: () => ({ KeyIds: [k, "nope"] }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyIds.1"'] },
    { name: `${action} KeyIds with a number`, action, body: () => ({ KeyIds: [k, 7] }), code: IV, mentions: ['"KeyIds.1"'] },
    { name: `${action} KeyIds with a missing key`, action, body: () => ({ KeyIds: [k, other, missing] }), code: "ResourceUnavailable.CmkNotFound", mentions: [missing] },
  ]),

  // ---- paging ----
  ...["ListKeys", "ListKeyDetail"].flatMap((action): Case[] => [
    { name: `${action} Limit 0`, action, body: () => ({ Limit: 0 }), code: IPV, mentions: ['"Limit"'] },
    { name: `${action} Limit 201`, action, body: () => ({ Limit: 201 }), code: IPV, mentions: ['"Limit"', "200"] },
    { name: `${action} Offset -1`, action, body: () => ({ Offset: -1 }), code: IPV, mentions: ['"Offset"'] },
    { name: `${action} Offset 2^31`, action, body: () => ({ Offset: 2 ** 31 }), code: IPV, mentions: ['"Offset"'] },
    { name: `${action} Offset 1e400 (Infinity)`, action, body: () => `{"Offset":1e400}`, code: IV, mentions: ['"Offset"'] },
    ...wrongTypes(action, "Limit", () => ({}), "integer"),
    ...wrongTypes(action, "Offset", () => ({}), "integer"),
    { name: `${action} Role 2`, action, body: () => ({ Role: 2 }), code: IPV, mentions: ['"Role"'] },
    { name: `${action} HsmClusterId set`, action, body: () => ({ HsmClusterId: "x" }), code: "InvalidParameterValue.InvalidHsmClusterId", mentions: ['"HsmClusterId"'] },
    { name: `${action} with an unknown parameter`, action, body: () => ({ Page: 1 }), code: "UnknownParameter", mentions: ['"Page"'] },
  ]),
  { name: "ListKeyDetail KeyState 6", action: "ListKeyDetail", body: () => ({ KeyState: 6 }), code: IPV, mentions: ['"KeyState"'] },
  { name: "ListKeyDetail OrderType 2", action: "ListKeyDetail", body: () => ({ OrderType: 2 }), code: IPV, mentions: ['"OrderType"'] },
  { name: "ListKeyDetail Origin in lower case", action: "ListKeyDetail", body: () => ({ Origin: "all" }), code: IPV, mentions: ['"Origin"'] },
  { name: "ListKeyDetail KeyUsage unknown", action: "ListKeyDetail", body: () => ({ KeyUsage: "SIGN" }), code: IPV, mentions: ['"KeyUsage"'] },
  { name: "ListKeyDetail SearchKeyAlias of 129 characters", action: "ListKeyDetail", body: () => ({ SearchKeyAlias: "s".repeat(129) }), code: IPV, mentions: ['"SearchKeyAlias"'] },
  { name: "ListKeyDetail 11 TagFilters", action: "ListKeyDetail", body: () => ({ TagFilters: Array.from({ length: 11 }, (_, i) => ({ TagKey: `t${i}` })) }), code: IPV, mentions: ['"TagFilters"'] },
  { name: "ListKeyDetail TagFilter without TagKey", action: "ListKeyDetail", body: () => ({ TagFilters: [{ TagValue: ["a"] }] }), code: "MissingParameter", mentions: ['"TagFilters.0.TagKey"'] },
  { name: "ListKeyDetail TagFilter TagValue a string", action: "ListKeyDetail", body: () => ({ TagFilters: [{ TagKey: "a", TagValue: "b" }] }), code: IV, mentions: ['"TagFilters.0.TagValue"'] },
  { name: "ListKeyDetail with MemberAccounts", action: "ListKeyDetail", body: () => ({ MemberAccounts: ["1"] }), code: "UnsupportedOperation", mentions: ['"MemberAccounts"'] },

  // ---- key lifecycle ----
  { name: "ScheduleKeyDeletion without PendingWindowInDays", action: "ScheduleKeyDeletion", body: () => ({ KeyId: k }), code: "MissingParameter", mentions: ['"PendingWindowInDays"'] },
  ...wrongTypes("ScheduleKeyDeletion", "PendingWindowInDays", () => ({ KeyId: k }), "integer"),
  { name: "ScheduleKeyDeletion window of 6 days", action: "ScheduleKeyDeletion", body: () => ({ KeyId: k, PendingWindowInDays: 6 }), code: "InvalidParameter.InvalidPendingWindowInDays", mentions: ['"PendingWindowInDays"'] },
  { name: "ScheduleKeyDeletion window of 31 days", action: "ScheduleKeyDeletion", body: () => ({ KeyId: k, PendingWindowInDays: 31 }), code: "InvalidParameter.InvalidPendingWindowInDays", mentions: ['"PendingWindowInDays"'] },
  { name: "ScheduleKeyDeletion with a bad KeyId", action: "ScheduleKeyDeletion", body: () => ({ KeyId: "KEY", PendingWindowInDays: 7 }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "EnableKeyRotation RotateDays 6", action: "EnableKeyRotation", body: () => ({ KeyId: k, RotateDays: 6 }), code: IPV, mentions: ['"RotateDays"'] },
  { name: "EnableKeyRotation RotateDays 366", action: "EnableKeyRotation", body: () => ({ KeyId: k, RotateDays: 366 }), code: IPV, mentions: ['"RotateDays"'] },
  ...wrongTypes("EnableKeyRotation", "RotateDays", () => ({ KeyId: k }), "integer"),
  { name: "RotateKey without KeyId", action: "RotateKey", body: () => ({}), code: "MissingParameter", mentions: ['"KeyId"'] },
  {
    name: "GetParametersForImport WrappingKeySpec RSA_4096",
    action: "GetParametersForImport",
    body: () => ({ KeyId: k, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_4096" }),
    code: IPV,
    mentions: ['"WrappingKeySpec"'],
  },
  {
    name: "GetParametersForImport SM2PKE with RSA_2048",
    action: "GetParametersForImport",
    body: () => ({ KeyId: k, WrappingAlgorithm: "SM2PKE", WrappingKeySpec: "RSA_2048" }),
    code: IPV,
    mentions: ['"WrappingAlgorithm"'],
  },
  {
    name: "ImportKeyMaterial EncryptedKeyMaterial not base64",
    action: "ImportKeyMaterial",
    body: () => ({ KeyId: k, ImportToken: "t", EncryptedKeyMaterial: "not base64!" }),
    code: IPV,
    mentions: ['"EncryptedKeyMaterial"'],
  },
  {
    name: "ImportKeyMaterial ValidTo past 2147443200",
    action: "ImportKeyMaterial",
    body: () => ({ KeyId: k, ImportToken: "t", EncryptedKeyMaterial: "AAAA", ValidTo: 2_147_443_201 }),
    code: IPV,
    mentions: ['"ValidTo"'],
  },
  { name: "ImportKeyMaterial without ImportToken", action: "ImportKeyMaterial", body: () => ({ KeyId: k, EncryptedKeyMaterial: "AAAA" }), code: "MissingParameter", mentions: ['"ImportToken"'] },

  // ---- UpdateAlias / UpdateKeyDescription ----
  { name: "UpdateAlias without Alias", action: "UpdateAlias", body: () => ({ KeyId: k }), code: "MissingParameter", mentions: ['"Alias"'] },
  { name: "UpdateAlias without KeyId", action: "UpdateAlias", body: () => ({ Alias: "fresh" }), code: "MissingParameter", mentions: ['"KeyId"'] },
  { name: "UpdateAlias Alias of 61 characters", action: "UpdateAlias", body: () => ({ KeyId: k, Alias: "b".repeat(61) }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "UpdateAlias Alias starting with -", action: "UpdateAlias", body: () => ({ KeyId: k, Alias: "-x" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  { name: "UpdateAlias Alias with kms-", action: "UpdateAlias", body: () => ({ KeyId: k, Alias: "kms-x" }), code: "InvalidParameterValue.InvalidAlias", mentions: ['"Alias"'] },
  {
    name: "UpdateAlias to another key's alias",
    action: "UpdateAlias",
    body: () => ({ KeyId: k, Alias: otherAlias }),
    code: "InvalidParameterValue.AliasAlreadyExists",
    mentions: ['"Alias"', () => otherAlias],
  },
  { name: "UpdateAlias of a missing key", action: "UpdateAlias", body: () => ({ KeyId: missing, Alias: "fresh" }), code: "ResourceUnavailable.CmkNotFound", mentions: [missing] },
  ...wrongTypes("UpdateAlias", "Alias", () => ({ KeyId: k }), "string"),
  { name: "UpdateKeyDescription without Description", action: "UpdateKeyDescription", body: () => ({ KeyId: k }), code: "MissingParameter", mentions: ['"Description"'] },
  {
    name: "UpdateKeyDescription of 1025 bytes",
    action: "UpdateKeyDescription",
    body: () => ({ KeyId: k, Description: "🔑".repeat(256) + "a" }),
    code: IPV,
    mentions: ['"Description"'],
  },
  ...wrongTypes("UpdateKeyDescription", "Description", () => ({ KeyId: k }), "string"),

  // ---- Encrypt: base64 and encryption context ----
  { name: "Encrypt without Plaintext", action: "Encrypt", body: () => ({ KeyId: k }), code: "MissingParameter", mentions: ['"Plaintext"'] },
  { name: "Encrypt without KeyId", action: "Encrypt", body: () => ({ Plaintext: b64(4) }), code: "MissingParameter", mentions: ['"KeyId"'] },
  ...wrongTypes("Encrypt", "Plaintext", () => ({ KeyId: k }), "string"),
  { name: "Encrypt Plaintext empty", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext not base64", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "hello world!" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext of 4097 bytes", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: b64(4097) }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"', "4096"] },
  { name: "Encrypt Plaintext of 1 MB", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: b64(40_000) }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext in base64url", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "-_-_" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext without padding", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "QUJD RA".replace(" ", "") }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext with extra padding", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "QUJD====" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext with a newline", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "QUJD\nRA==" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext with a space", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: " QUJD" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt Plaintext with padding inside", action: "Encrypt", body: () => ({ KeyId: k, Plaintext: "QQ==QUJD" }), code: "InvalidParameterValue.InvalidPlaintext", mentions: ['"Plaintext"'] },
  { name: "Encrypt KeyId not a UUID", action: "Encrypt", body: () => ({ KeyId: "params-key", Plaintext: b64(4) }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"KeyId"'] },
  { name: "Encrypt under a missing key", action: "Encrypt", body: () => ({ KeyId: missing, Plaintext: b64(4) }), code: "ResourceUnavailable.CmkNotFound", mentions: [missing] },
  ...wrongTypes("Encrypt", "EncryptionContext", () => ({ KeyId: k, Plaintext: b64(4) }), "string"),
  ...(
    [
      ["not JSON", "{a:1}"],
      ["truncated JSON", '{"a":"b"'],
      ["a JSON array", '["a","b"]'],
      ["a JSON number", "5"],
      ["a JSON string", '"ab"'],
      ["JSON null", "null"],
      ["a number value", '{"a":1}'],
      ["an object value", '{"a":{"b":"c"}}'],
      ["an array value", '{"a":["b"]}'],
      ["a null value", '{"a":null}'],
      ["a boolean value", '{"a":true}'],
      ["1025 characters", JSON.stringify({ a: "x".repeat(1017) })],
      ["1025 characters of which some are multi-byte", JSON.stringify({ 键: "值".repeat(1017) })],
    ] as const
  ).map(
    ([label, value]): Case => ({
      name: `Encrypt EncryptionContext ${label}`,
      action: "Encrypt",
      body: () => ({ KeyId: k, Plaintext: b64(4), EncryptionContext: value }),
      code: IPV,
      mentions: ['"EncryptionContext"'],
    }),
  ),

  // ---- Decrypt / ReEncrypt ----
  { name: "Decrypt without CiphertextBlob", action: "Decrypt", body: () => ({}), code: "MissingParameter", mentions: ['"CiphertextBlob"'] },
  ...wrongTypes("Decrypt", "CiphertextBlob", () => ({}), "string"),
  { name: "Decrypt CiphertextBlob not base64", action: "Decrypt", body: () => ({ CiphertextBlob: "not a blob!" }), code: "InvalidParameterValue.InvalidCiphertext", mentions: ['"CiphertextBlob"'] },
  { name: "Decrypt CiphertextBlob in Tencent's -k- form", action: "Decrypt", body: () => ({ CiphertextBlob: `${b64(64)}-k-${b64(16)}-k-${b64(68)}` }), code: "InvalidParameterValue.InvalidCiphertext", mentions: ['"CiphertextBlob"'] },
  { name: "Decrypt with a KeyId (Decrypt takes none)", action: "Decrypt", body: () => ({ CiphertextBlob: blob, KeyId: k }), code: "UnknownParameter", mentions: ['"KeyId"'] },
  { name: "Decrypt with an EncryptionPublicKey that is no key", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionPublicKey: "MFkw" }), code: IPV, mentions: ['"EncryptionPublicKey"'] },
  { name: "Decrypt with EncryptionAlgorithm and no EncryptionPublicKey", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionAlgorithm: "SM2" }), code: "MissingParameter", mentions: ['"EncryptionAlgorithm"', '"EncryptionPublicKey"'] },
  ...wrongTypes("Decrypt", "EncryptionPublicKey", () => ({ CiphertextBlob: blob }), "string"),
  { name: "Decrypt EncryptionAlgorithm unknown", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionPublicKey: "MFkw", EncryptionAlgorithm: "RSA" }), code: IPV, mentions: ['"EncryptionAlgorithm"'] },
  { name: "Decrypt EncryptionPublicKey empty", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionPublicKey: "" }), code: IPV, mentions: ['"EncryptionPublicKey"'] },
  { name: "Decrypt EncryptionPublicKey over 4096 characters", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionPublicKey: "A".repeat(4097) }), code: IPV, mentions: ['"EncryptionPublicKey"', "4096"] },
  { name: "Decrypt EncryptionContext an object, not a string", action: "Decrypt", body: () => ({ CiphertextBlob: blob, EncryptionContext: { a: "b" } }), code: IV, mentions: ['"EncryptionContext"'] },
  { name: "ReEncrypt DestinationKeyId not a UUID", action: "ReEncrypt", body: () => ({ CiphertextBlob: blob, DestinationKeyId: "x" }), code: "InvalidParameterValue.InvalidKeyId", mentions: ['"DestinationKeyId"'] },
  { name: "ReEncrypt DestinationKeyId missing key", action: "ReEncrypt", body: () => ({ CiphertextBlob: blob, DestinationKeyId: missing }), code: "ResourceUnavailable.CmkNotFound", mentions: [missing] },
  { name: "ReEncrypt SourceEncryptionContext not JSON", action: "ReEncrypt", body: () => ({ CiphertextBlob: blob, SourceEncryptionContext: "{" }), code: IPV, mentions: ['"SourceEncryptionContext"'] },
  { name: "ReEncrypt DestinationEncryptionContext non-string value", action: "ReEncrypt", body: () => ({ CiphertextBlob: blob, DestinationEncryptionContext: '{"a":2}' }), code: IPV, mentions: ['"DestinationEncryptionContext"'] },
  { name: "ReEncrypt without CiphertextBlob", action: "ReEncrypt", body: () => ({ DestinationKeyId: k }), code: "MissingParameter", mentions: ['"CiphertextBlob"'] },

  // ---- GenerateDataKey / GenerateRandom ----
  { name: "GenerateDataKey with neither KeySpec nor NumberOfBytes", action: "GenerateDataKey", body: () => ({ KeyId: k }), code: "MissingParameter", mentions: ['"KeySpec"', '"NumberOfBytes"'] },
  { name: "GenerateDataKey NumberOfBytes 0", action: "GenerateDataKey", body: () => ({ KeyId: k, NumberOfBytes: 0 }), code: IPV, mentions: ['"NumberOfBytes"'] },
  { name: "GenerateDataKey NumberOfBytes 1025", action: "GenerateDataKey", body: () => ({ KeyId: k, NumberOfBytes: 1025 }), code: IPV, mentions: ['"NumberOfBytes"', "1024"] },
  { name: "GenerateDataKey NumberOfBytes -16", action: "GenerateDataKey", body: () => ({ KeyId: k, NumberOfBytes: -16 }), code: IPV, mentions: ['"NumberOfBytes"'] },
  ...wrongTypes("GenerateDataKey", "NumberOfBytes", () => ({ KeyId: k }), "integer"),
  { name: "GenerateDataKey KeySpec AES_512", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_512" }), code: IPV, mentions: ['"KeySpec"'] },
  { name: "GenerateDataKey KeySpec lower case", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "aes_256" }), code: IPV, mentions: ['"KeySpec"'] },
  { name: "GenerateDataKey KeySpec a number", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: 256 }), code: IV, mentions: ['"KeySpec"'] },
  {
    name: "GenerateDataKey IsHostedByKms 1 (hosted data keys are not offered)",
    action: "GenerateDataKey",
    body: () => ({ KeyId: k, KeySpec: "AES_256", IsHostedByKms: 1, DataKeyName: "dk" }),
    code: "UnsupportedOperation",
    // Either parameter may be the one named: both belong to the feature that is not offered.
    mentions: ["not supported"],
  },
  {
    name: "GenerateDataKey IsHostedByKms 1 alone",
    action: "GenerateDataKey",
    body: () => ({ KeyId: k, KeySpec: "AES_256", IsHostedByKms: 1 }),
    code: "UnsupportedOperation",
    mentions: ['"IsHostedByKms"'],
  },
  { name: "GenerateDataKey IsHostedByKms 2", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", IsHostedByKms: 2 }), code: IPV, mentions: ['"IsHostedByKms"'] },
  { name: "GenerateDataKey IsHostedByKms a string", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", IsHostedByKms: "0" }), code: IV, mentions: ['"IsHostedByKms"'] },
  { name: "GenerateDataKey with DataKeyName", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", DataKeyName: "dk" }), code: "UnsupportedOperation", mentions: ['"DataKeyName"'] },
  { name: "GenerateDataKey with Description", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", Description: "d" }), code: "UnsupportedOperation", mentions: ['"Description"'] },
  { name: "GenerateDataKey with Tags", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", Tags: [] }), code: "UnsupportedOperation", mentions: ['"Tags"'] },
  { name: "GenerateDataKey with an EncryptionPublicKey that is no key", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", EncryptionPublicKey: "MFkw" }), code: IPV, mentions: ['"EncryptionPublicKey"'] },
  { name: "GenerateDataKey HsmClusterId set", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", HsmClusterId: "h" }), code: "InvalidParameterValue.InvalidHsmClusterId", mentions: ['"HsmClusterId"'] },
  { name: "GenerateDataKey EncryptionContext an array", action: "GenerateDataKey", body: () => ({ KeyId: k, KeySpec: "AES_256", EncryptionContext: "[]" }), code: IPV, mentions: ['"EncryptionContext"'] },
  { name: "GenerateRandom without NumberOfBytes", action: "GenerateRandom", body: () => ({}), code: "MissingParameter", mentions: ['"NumberOfBytes"'] },
  { name: "GenerateRandom NumberOfBytes 0", action: "GenerateRandom", body: () => ({ NumberOfBytes: 0 }), code: IPV, mentions: ['"NumberOfBytes"'] },
  { name: "GenerateRandom NumberOfBytes 1025", action: "GenerateRandom", body: () => ({ NumberOfBytes: 1025 }), code: IPV, mentions: ['"NumberOfBytes"'] },
  ...wrongTypes("GenerateRandom", "NumberOfBytes", () => ({}), "integer"),

  // ---- actions without parameters ----
  ...["GetServiceStatus", "ListAlgorithms", "GetRegions"].map((action): Case => ({ name: `${action} with a parameter`, action, body: () => ({ Region: "local" }), code: "UnknownParameter", mentions: ['"Region"'] })),
];

describe("bad parameters are refused and change nothing", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const before = await snapshotKeys(s.service, s.caller);
      const body = c.body();
      const r = await s.raw(c.action, body);
      assertError(r, c.code, ...c.mentions.map((m) => (typeof m === "function" ? m() : m)));
      assert.equal(await snapshotKeys(s.service, s.caller), before, "the refused request changed a key");
    });
  }
});

describe("edges that are allowed", () => {
  it("takes the largest values at each limit", async () => {
    const alias = "m".repeat(60);
    const created = await s.call("CreateKey", {
      Alias: alias,
      Description: "é".repeat(512),
      Tags: Array.from({ length: 50 }, (_, i) => ({ TagKey: `t${i}`.padEnd(127, "k"), TagValue: "v".repeat(255) })),
    });
    assert.equal(created.Alias, alias);
    await s.call("Encrypt", { KeyId: k, Plaintext: b64(4096), EncryptionContext: JSON.stringify({ a: "x".repeat(1016) }) });
    // The limit counts characters, as Tencent documents it: 1024 characters of 3-byte UTF-8 pass.
    await s.call("Encrypt", { KeyId: k, Plaintext: b64(16), EncryptionContext: JSON.stringify({ 键: "值".repeat(1016) }) });
    await s.call("GenerateDataKey", { KeyId: k, NumberOfBytes: 1024 });
    await s.call("GenerateRandom", { NumberOfBytes: 1024 });
    await s.call("ListKeys", { Limit: 200, Offset: 2 ** 31 - 1 });
    await s.call("DescribeKeys", { KeyIds: [k, other] });
  });

  it("takes the smallest values at each limit", async () => {
    await s.call("CreateKey", { Alias: "Z" });
    await s.call("Encrypt", { KeyId: k, Plaintext: b64(1), EncryptionContext: "" });
    await s.call("GenerateDataKey", { KeyId: k, NumberOfBytes: 1 });
    await s.call("GenerateRandom", { NumberOfBytes: 1 });
    await s.call("ListKeys", { Limit: 1, Offset: 0 });
  });

  it("treats a null optional parameter as absent", async () => {
    await s.call("ListKeys", { Limit: null, Offset: null });
    await s.call("CreateKey", { Alias: "null-description", Description: null });
  });

  it("lets NumberOfBytes win over KeySpec", async () => {
    const r = await s.call("GenerateDataKey", { KeyId: k, KeySpec: "AES_256", NumberOfBytes: 5 });
    assert.equal(Buffer.from(r.Plaintext as string, "base64").length, 5);
  });

  it("lets a key keep its own alias (UpdateAlias to the same alias)", async () => {
    await s.call("UpdateAlias", { KeyId: other, Alias: otherAlias });
    assert.equal((await s.service.describeKey(s.caller, other)).alias, otherAlias);
  });
});

describe("batches are all or nothing", () => {
  it("a failing EnableKeys with one missing id leaves every key as it was", async () => {
    const ids = await Promise.all(["batch-a", "batch-b", "batch-c"].map(async (Alias) => (await s.call("CreateKey", { Alias })).KeyId as string));
    await s.call("DisableKeys", { KeyIds: ids });
    const before = await snapshotKeys(s.service, s.caller);
    assertError(await s.raw("EnableKeys", { KeyIds: [ids[0], ids[1], missing, ids[2]] }), "ResourceUnavailable.CmkNotFound", missing);
    assert.equal(await snapshotKeys(s.service, s.caller), before);
    for (const id of ids) assert.equal((await s.service.describeKey(s.caller, id)).state, "Disabled");
  });

  it("a failing DisableKeys with one key in a state that forbids it leaves every key as it was", async () => {
    const ids = await Promise.all(["batch-d", "batch-e"].map(async (Alias) => (await s.call("CreateKey", { Alias })).KeyId as string));
    const pending = (await s.call("CreateKey", { Alias: "batch-pending" })).KeyId as string;
    const record = await s.service.describeKey(s.caller, pending);
    await s.dataDir.store.updateKey({ ...record, state: "PendingDelete", deletionDate: s.clock.seconds() + 7 * 86_400 });
    const before = await snapshotKeys(s.service, s.caller);
    assertError(await s.raw("DisableKeys", { KeyIds: [ids[0], pending, ids[1]] }), "ResourceUnavailable.CmkStateNotSupport", pending);
    assert.equal(await snapshotKeys(s.service, s.caller), before);
    for (const id of ids) assert.equal((await s.service.describeKey(s.caller, id)).state, "Enabled");
  });
});

describe("hygiene", () => {
  it("logged one line per request and no internal error", () => {
    const records = s.logs.records();
    assert.ok(records.length >= cases.length);
    assert.deepEqual(
      records.filter((r) => r.code === "InternalError" || (r.level as number) >= 50),
      [],
    );
    assert.ok(!s.logs.text().includes(s.secretKey));
  });
});
