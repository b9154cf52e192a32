// AWS actions over what Tresor models differently: aliases (a key holds one: its Tencent alias),
// key policies and grants (Tresor has neither: access is CAM policies on principals, so the answers
// say what is true, docs/aws.md), tags (read), and rotation (Tencent's periods and versions).

import { isUuid } from "../../keys/blob.js";
import { KmsError } from "../../service/errors.js";
import { array, integer, optional, string } from "../tencent/params.js";
import { action, keyOf, type AwsActionContext, type AwsActionDefinition } from "./action.js";
import { aliasArn, awsAliasOf, keyArn } from "./identifiers.js";
import { keyIdParam, tag, toTags, unsupported } from "./params.js";

/** The one key policy name AWS has. */
const DEFAULT_POLICY = "default";
/** Tencent's alias rule, which every alias must also meet: letters, digits, - and _, not kms-. */
const TENCENT_ALIAS = /^(?!kms-)[A-Za-z0-9][A-Za-z0-9_-]{0,59}$/;
/** AWS: rotation periods of 90 to 2560 days; Tresor's (Tencent's) end at 365. */
const MIN_ROTATION_DAYS = 90;
const MAX_ROTATION_DAYS = 365;

const marker = optional(string({ min: 1, max: 10, pattern: /^[0-9]+$/, patternText: "a NextMarker this service gave" }));

/** The name after alias/ of an AliasName this service can hold. */
function aliasName(value: string): string {
  const name = value.startsWith("alias/") ? value.slice("alias/".length) : "";
  if (name.startsWith("aws/")) throw new KmsError("InvalidAlias", `"AliasName": the prefix alias/aws/ is reserved for AWS managed keys`);
  if (!TENCENT_ALIAS.test(name) || isUuid(name)) {
    throw new KmsError("InvalidAlias", `"AliasName" must be alias/ then 1 to 60 letters, digits, - and _, starting with a letter or digit, not kms- and not a key id`);
  }
  return name;
}

/**
 * The key policy every key has in effect: the account may do everything, and its principals what
 * their CAM policies allow. It is AWS's default key policy, which delegates to identity policies.
 */
function effectivePolicy(account: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Id: "tresor-default",
    Statement: [
      { Sid: "Enable CAM policies", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "kms:*", Resource: "*" },
    ],
  });
}

/** Checks the key exists and the caller may describe it; its id. */
async function describedKey(ctx: AwsActionContext, keyIdValue: string) {
  return ctx.service.describeKey(ctx.caller, await keyOf(ctx, keyIdValue));
}

const noGrants = { Grants: [], Truncated: false };
/** CreateGrant's members (KMS API reference): accepted as given, since the action is refused whatever they say. */
const CREATE_GRANT_MEMBERS = ["KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "GrantTokens", "Name", "DryRun"] as const;
const anyValue = optional({ required: true, parse: (value: unknown) => value });
const noGrantsFeature = "grants: access is governed by CAM policies on principals (docs/aws.md)";

export const MANAGEMENT_ACTIONS: Readonly<Record<string, AwsActionDefinition>> = {
  CreateAlias: action("UpdateAlias", { AliasName: string({ min: 1, max: 256 }), TargetKeyId: keyIdParam() }, async (p, ctx) => {
    await ctx.service.assignAlias(ctx.caller, await keyOf(ctx, p.TargetKeyId, "TargetKeyId"), aliasName(p.AliasName), false);
    return {};
  }),

  UpdateAlias: action("UpdateAlias", { AliasName: string({ min: 1, max: 256 }), TargetKeyId: keyIdParam() }, async (p, ctx) => {
    await ctx.service.assignAlias(ctx.caller, await keyOf(ctx, p.TargetKeyId, "TargetKeyId"), aliasName(p.AliasName), true);
    return {};
  }),

  DeleteAlias: action("UpdateAlias", { AliasName: string({ min: 1, max: 256 }) }, async (p, ctx) => {
    await ctx.service.removeAlias(ctx.caller, aliasName(p.AliasName));
    return {};
  }),

  ListAliases: action("ListKeyDetail", { KeyId: optional(keyIdParam()), Limit: optional(integer(1, 100)), Marker: marker }, async (p, ctx) => {
    const entry = (key: { keyId: string; alias: string }) => {
      const name = awsAliasOf(key);
      return name === undefined ? [] : [{ AliasName: name, AliasArn: aliasArn(ctx.scope, name), TargetKeyId: key.keyId }];
    };
    if (p.KeyId !== undefined) return { Aliases: entry(await describedKey(ctx, p.KeyId)), Truncated: false };
    // Pages run over keys, so a page may hold fewer aliases than Limit (AWS allows that too).
    const offset = Number(p.Marker ?? 0);
    const { keys, totalCount } = await ctx.service.listKeyDetail(ctx.caller, { offset, limit: p.Limit ?? 50, role: 0, order: "asc" });
    const truncated = offset + keys.length < totalCount;
    return { Aliases: keys.flatMap(entry), Truncated: truncated, ...(truncated ? { NextMarker: String(offset + keys.length) } : {}) };
  }),

  GetKeyPolicy: action("DescribeKey", { KeyId: keyIdParam(), PolicyName: optional(string({ min: 1, max: 128 })) }, async (p, ctx) => {
    await describedKey(ctx, p.KeyId);
    const name = p.PolicyName ?? DEFAULT_POLICY;
    if (name !== DEFAULT_POLICY) throw new KmsError("CmkNotFound", `the key has no policy named ${name}: its one policy is "default"`);
    return { Policy: effectivePolicy(ctx.caller.uin), PolicyName: DEFAULT_POLICY };
  }),

  ListKeyPolicies: action("DescribeKey", { KeyId: keyIdParam(), Limit: optional(integer(1, 1000)), Marker: marker }, async (p, ctx) => {
    await describedKey(ctx, p.KeyId);
    return { PolicyNames: [DEFAULT_POLICY], Truncated: false };
  }),

  PutKeyPolicy: action(
    "DescribeKey",
    { KeyId: keyIdParam(), Policy: string({ min: 1, max: 131_072 }), PolicyName: optional(string({ max: 128 })), BypassPolicyLockoutSafetyCheck: unsupported("key policies") },
    () => {
      throw new KmsError("UnsupportedOperation", `key policies cannot be changed: access is governed by CAM policies on principals (docs/aws.md)`);
    },
  ),

  ListGrants: action(
    "DescribeKey",
    { KeyId: keyIdParam(), Limit: optional(integer(1, 100)), Marker: marker, GrantId: optional(string({ min: 1, max: 128 })), GranteePrincipal: optional(string({ min: 1, max: 256 })) },
    async (p, ctx) => {
      await describedKey(ctx, p.KeyId);
      return noGrants;
    },
  ),

  ListRetirableGrants: action("DescribeKey", { RetiringPrincipal: string({ min: 1, max: 256 }), Limit: optional(integer(1, 100)), Marker: marker }, () => noGrants),

  CreateGrant: action("DescribeKey", Object.fromEntries(CREATE_GRANT_MEMBERS.map((m) => [m, anyValue])), () => {
    throw new KmsError("UnsupportedOperation", `grants are not offered: ${noGrantsFeature}`);
  }),

  RetireGrant: action("DescribeKey", { GrantToken: optional(string({ min: 1, max: 8192 })), KeyId: optional(keyIdParam()), GrantId: optional(string({ min: 1, max: 128 })), DryRun: optional(unsupported("dry runs")) }, () => {
    throw new KmsError("CmkNotFound", `no such grant: this service has no grants (${noGrantsFeature})`);
  }),

  RevokeGrant: action("DescribeKey", { KeyId: keyIdParam(), GrantId: string({ min: 1, max: 128 }), DryRun: optional(unsupported("dry runs")) }, async (p, ctx) => {
    await describedKey(ctx, p.KeyId);
    throw new KmsError("CmkNotFound", `no grant ${p.GrantId}: this service has no grants (${noGrantsFeature})`);
  }),

  TagResource: action("TagResource", { KeyId: keyIdParam(), Tags: array(tag, { min: 1, max: 50 }) }, async (p, ctx) => {
    await ctx.service.tagKey(ctx.caller, await keyOf(ctx, p.KeyId), toTags(p.Tags));
    return {};
  }),

  UntagResource: action("UntagResource", { KeyId: keyIdParam(), TagKeys: array(string({ min: 1, max: 128 }), { min: 1, max: 50 }) }, async (p, ctx) => {
    await ctx.service.untagKey(ctx.caller, await keyOf(ctx, p.KeyId), p.TagKeys);
    return {};
  }),

  ListResourceTags: action("ListResourceTags", { KeyId: keyIdParam(), Limit: optional(integer(1, 50)), Marker: marker }, async (p, ctx) => {
    const tags = await ctx.service.listKeyTags(ctx.caller, await keyOf(ctx, p.KeyId));
    return { Tags: tags.map((t) => ({ TagKey: t.key, TagValue: t.value })), Truncated: false };
  }),

  EnableKeyRotation: action("EnableKeyRotation", { KeyId: keyIdParam(), RotationPeriodInDays: optional(integer(MIN_ROTATION_DAYS, MAX_ROTATION_DAYS)) }, async (p, ctx) => {
    await ctx.service.enableKeyRotation(ctx.caller, await keyOf(ctx, p.KeyId), p.RotationPeriodInDays ?? MAX_ROTATION_DAYS);
    return {};
  }),

  DisableKeyRotation: action("DisableKeyRotation", { KeyId: keyIdParam() }, async (p, ctx) => {
    await ctx.service.disableKeyRotation(ctx.caller, await keyOf(ctx, p.KeyId));
    return {};
  }),

  GetKeyRotationStatus: action("GetKeyRotationStatus", { KeyId: keyIdParam() }, async (p, ctx) => {
    const key = await ctx.service.getKeyRotationStatus(ctx.caller, await keyOf(ctx, p.KeyId));
    return {
      KeyId: keyArn(ctx.scope, key.keyId),
      KeyRotationEnabled: key.rotationEnabled,
      ...(key.rotationEnabled ? { RotationPeriodInDays: key.rotateDays, NextRotationDate: key.nextRotateTime } : {}),
    };
  }),

  RotateKeyOnDemand: action("RotateKey", { KeyId: keyIdParam() }, async (p, ctx) => {
    const keyId = await keyOf(ctx, p.KeyId);
    await ctx.service.rotateKey(ctx.caller, keyId);
    return { KeyId: keyArn(ctx.scope, keyId) };
  }),

  ListKeyRotations: action("ListKeyVersions", { KeyId: keyIdParam(), Limit: optional(integer(1, 1000)), Marker: marker, IncludeKeyMaterial: unsupported("key material ids") }, async (p, ctx) => {
    const { key, versions } = await ctx.service.listKeyVersions(ctx.caller, await keyOf(ctx, p.KeyId));
    // Version 1 is the key's first material; every later one is a rotation.
    const rotations = versions.filter((v) => v.version > 1).map((v) => ({ KeyId: keyArn(ctx.scope, key.keyId), RotationDate: v.createTime }));
    return { Rotations: rotations, Truncated: false };
  }),
};

