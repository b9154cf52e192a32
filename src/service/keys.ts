// Key management: creating keys, reading and listing them, their states (enable, disable,
// archive, deletion), alias and description; and what the service offers (status, algorithms,
// regions).

import { randomUUID } from "node:crypto";
import {
  KEY_LIFECYCLE_DEFAULTS,
  KEY_USAGES,
  MAC_KEY_SPECS,
  MAC_USAGE,
  SYMMETRIC_KEY_SPECS,
  type MacKeySpec,
  type AsymmetricKeyUsage,
  type KeyOrigin,
  type KeyRecord,
  type KeySpec,
  type KeyState,
  type KeyUsage,
  type KeyVersionRecord,
  type ProtectionLevel,
  type SymmetricKeySpec,
  type Tag,
} from "../keys/key.js";
import { stateAfter } from "../keys/lifecycle.js";
import { ASYMMETRIC_SPECS, ASYMMETRIC_USAGES, hsmSupports, isAsymmetricUsage, isSymmetricSpec, type UsageInfo } from "../keys/specs.js";
import { StoreConflictError, type KeyListQuery } from "../store/store.js";
import { ACCOUNT_RESOURCE, type Caller } from "./permissions.js";
import { CURRENT_VERSION_ERRORS, DAY_SECONDS, USER_OWNER, usingMaterial, type BatchAction, type ServiceContext } from "./context.js";
import { KmsError, needs } from "./errors.js";
import { auditedInsert } from "./request-audit.js";

export interface CreateKeyInput {
  /** Unique; absent (a key made through the AWS door, which has no alias at creation): the key's own id. */
  alias?: string;
  description: string;
  keyUsage: KeyUsage;
  keySpec?: KeySpec;
  tags: Tag[];
  /** EXTERNAL: created without material, PendingImport until ImportKeyMaterial (symmetric keys only). */
  origin?: KeyOrigin;
  /** HSM: the material is made and used inside the PKCS#11 token (default SOFTWARE). */
  protectionLevel?: ProtectionLevel;
}

export interface ListKeyDetailInput {
  offset: number;
  limit: number;
  /** 0: keys the user created; 1: keys cloud products created (Tresor has none). */
  role: 0 | 1;
  order: "desc" | "asc";
  states?: readonly KeyState[];
  search?: string;
  origin?: KeyOrigin;
  keyUsages?: readonly KeyUsage[];
  tagFilters?: readonly { key: string; values: readonly string[] }[];
}

export interface AlgorithmEntry {
  keyUsage: KeyUsage;
  algorithm: string;
  protectionLevels: ProtectionLevel[];
}

/** Most tags one key holds (CreateKey's Tags, and TagResource adding to them). */
export const MAX_KEY_TAGS = 50;

/** Tencent's ListKeys shows keys in these states only. */
const LIST_KEYS_STATES: readonly KeyState[] = ["Enabled", "Disabled", "PendingImport"];

/** A new key's record at version 1: Enabled, or PendingImport when its material is to be imported. */
export function newKeyRecord(
  fields: Pick<KeyRecord, "keyId" | "alias" | "description" | "keyUsage" | "keySpec" | "origin" | "creatorUin" | "createTime" | "tags" | "protectionLevel">,
): KeyRecord {
  return {
    ...fields,
    state: fields.origin === "EXTERNAL" ? "PendingImport" : "Enabled",
    owner: USER_OWNER,
    deletionDate: 0,
    currentVersion: 1,
    ...KEY_LIFECYCLE_DEFAULTS,
    protectionLevel: fields.protectionLevel,
  };
}

/** A CMK of ProtectionLevel HSM needs a pkcs11 root of trust and a key spec its token can hold. */
export function checkHsmKey(ctx: ServiceContext, keySpec: KeySpec, origin: KeyOrigin): void {
  const token = ctx.materials.hsm.token;
  needs(
    token !== undefined,
    "UnsupportedOperation",
    `"ProtectionLevel" HSM needs a data directory whose root of trust is pkcs11 (an HSM); this one's is ${ctx.root.description.split(":")[0]}`,
  );
  needs(origin === "TENCENT_KMS", "UnsupportedOperation", `"ProtectionLevel" HSM keys are generated inside the HSM: "Type" 2 (EXTERNAL key material) is not supported`);
  needs(
    hsmSupports(keySpec),
    "UnsupportedOperation",
    `"ProtectionLevel" HSM is not supported for key spec ${keySpec} on ${token}; ListAlgorithms shows what each protection level offers`,
  );
}

export class KeyManagement {
  constructor(private readonly ctx: ServiceContext) {}

  async createKey(caller: Caller, input: CreateKeyInput): Promise<KeyRecord> {
    const ctx = this.ctx;
    caller.permissions.require("kms:CreateKey", ACCOUNT_RESOURCE);
    needs((KEY_USAGES as readonly string[]).includes(input.keyUsage), "InvalidKeyUsage", `"KeyUsage" ${input.keyUsage} is not supported`);
    let keySpec: KeySpec;
    if (isAsymmetricUsage(input.keyUsage)) {
      needs(ASYMMETRIC_USAGES[input.keyUsage].purpose !== "exchange", "InvalidKeyUsage", `"KeyUsage" ${input.keyUsage} keys are made by CreateTangServer, with their Tang server`);
      keySpec = ASYMMETRIC_USAGES[input.keyUsage].spec;
      needs(
        input.keySpec === undefined || input.keySpec === keySpec,
        "InvalidParameterValue",
        `"KeySpec" ${String(input.keySpec)} does not fit "KeyUsage" ${input.keyUsage}, whose key spec is ${keySpec}`,
      );
    } else if (input.keyUsage === MAC_USAGE) {
      // The national default (SM4) pairs with HMAC-SM3; AES with HMAC-SHA-256.
      keySpec = input.keySpec ?? (ctx.defaultKeySpec === "SM4" ? "HMAC_SM3" : "HMAC_SHA256");
      needs(MAC_KEY_SPECS.includes(keySpec as MacKeySpec), "InvalidParameterValue", `"KeySpec" ${keySpec} is not an HMAC key spec (${MAC_KEY_SPECS.join(", ")})`);
    } else {
      keySpec = input.keySpec ?? ctx.defaultKeySpec;
      needs(SYMMETRIC_KEY_SPECS.includes(keySpec as SymmetricKeySpec), "InvalidParameterValue", `"KeySpec" ${keySpec} is not a symmetric key spec (${SYMMETRIC_KEY_SPECS.join(", ")})`);
    }
    const origin = input.origin ?? "TENCENT_KMS";
    needs(
      origin === "TENCENT_KMS" || isSymmetricSpec(keySpec),
      "InvalidKeyUsage",
      `"Type" 2 (EXTERNAL key material) needs an ENCRYPT_DECRYPT key (${SYMMETRIC_KEY_SPECS.join(" or ")}), not ${input.keyUsage}`,
    );
    const protectionLevel = input.protectionLevel ?? "SOFTWARE";
    needs(
      protectionLevel === "SOFTWARE" || !isAsymmetricUsage(input.keyUsage) || ASYMMETRIC_USAGES[input.keyUsage].purpose !== "agree",
      "UnsupportedOperation",
      `"ProtectionLevel" HSM is not supported for key agreement keys (${input.keyUsage})`,
    );
    if (protectionLevel === "HSM") checkHsmKey(ctx, keySpec, origin);
    const keyId = randomUUID();
    const alias = input.alias ?? keyId;
    needs(!(await ctx.store.getKeyByAlias(alias)), "AliasAlreadyExists", `"Alias" ${alias} is already in use`);
    needs((await ctx.store.countKeys(caller.uin)) < ctx.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${ctx.cmkLimit} keys`);

    const now = ctx.now();
    const key = newKeyRecord({ keyId, alias, description: input.description, keyUsage: input.keyUsage, keySpec, origin, creatorUin: caller.uin, createTime: now, tags: input.tags, protectionLevel });
    if (origin === "EXTERNAL") {
      await this.#insertKey(caller, key, null);
      return key;
    }
    const material = ctx.materials.for(key);
    const made = await usingMaterial(() => material.generate(key, 1), CURRENT_VERSION_ERRORS);
    try {
      await this.#insertKey(caller, key, { keyId, version: 1, wrappedMaterial: made.stored, publicKey: made.publicKey, createTime: now });
    } catch (e) {
      // Only when the insert certainly did not happen (a refusal); after any other error the key
      // may exist, and its material (an HSM object) with it.
      if (e instanceof KmsError || e instanceof StoreConflictError) await material.discard(keyId, made.stored);
      throw e;
    }
    return key;
  }

  async #insertKey(caller: Caller, key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    const ctx = this.ctx;
    // The record names the new key, so a search by key finds its creation too.
    caller.audit?.addResource(key.keyId);
    try {
      // Checked again with the insert, atomically: another request (on any node) may have taken the last slot.
      const inserted = await auditedInsert(ctx.auditor, caller.audit, (also) => ctx.store.insertKeyWithinLimit(key, firstVersion, ctx.cmkLimit, also));
      needs(inserted, "CmkLimitExceeded", `the account holds the maximum of ${ctx.cmkLimit} keys`);
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "alias") throw new KmsError("AliasAlreadyExists", `"Alias" ${key.alias} is already in use`);
      throw e;
    }
  }

  describeKey(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.ctx.keyFor(this.ctx.store, caller, "DescribeKey", keyId);
  }

  /**
   * The id of the caller's account's key with this alias, for a door whose identifiers name keys by
   * alias. Not an action of its own: the action done with the key authorizes it.
   */
  async keyIdOfAlias(caller: Caller, alias: string): Promise<string> {
    const key = await this.ctx.store.getKeyByAlias(alias);
    needs(key && key.creatorUin === caller.uin, "CmkNotFound", `no key has the alias ${alias}`);
    return key.keyId;
  }

  describeKeys(caller: Caller, keyIds: readonly string[]): Promise<KeyRecord[]> {
    return this.ctx.store.transaction(async (tx) => {
      const keys: KeyRecord[] = [];
      for (const id of keyIds) keys.push(await this.ctx.keyFor(tx, caller, "DescribeKey", id, { batch: "DescribeKeys" }));
      return keys;
    });
  }

  async listKeys(caller: Caller, input: { offset: number; limit: number; role: 0 | 1 }): Promise<{ keyIds: string[]; totalCount: number }> {
    caller.permissions.require("kms:ListKeys", ACCOUNT_RESOURCE);
    const { keys, totalCount } = await this.#listKeys(caller, { ...input, order: "desc", states: LIST_KEYS_STATES });
    return { keyIds: keys.map((k) => k.keyId), totalCount };
  }

  listKeyDetail(caller: Caller, input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    caller.permissions.require("kms:ListKeyDetail", ACCOUNT_RESOURCE);
    return this.#listKeys(caller, input);
  }

  /** The caller's account's keys. */
  async #listKeys(caller: Caller, input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    if (input.role === 1) return { keys: [], totalCount: 0 };
    const query: KeyListQuery = { offset: input.offset, limit: input.limit, order: input.order, owner: USER_OWNER, accountUin: caller.uin };
    if (input.states) query.states = input.states;
    if (input.search) query.search = input.search;
    if (input.origin) query.origin = input.origin;
    if (input.keyUsages) query.keyUsages = input.keyUsages;
    if (input.tagFilters && input.tagFilters.length > 0) query.tagFilters = input.tagFilters;
    return this.ctx.store.listKeys(query);
  }

  /** EnableKey, DisableKey, ArchiveKey, CancelKeyArchive; with `batch`, all or nothing over several keys. */
  changeStates(caller: Caller, action: "EnableKey" | "DisableKey" | "ArchiveKey" | "CancelKeyArchive", keyIds: readonly string[], batch?: BatchAction): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const keys: KeyRecord[] = [];
      for (const id of keyIds) keys.push(await this.ctx.keyFor(tx, caller, action, id, batch ? { batch } : {}));
      for (const key of keys) {
        const state = stateAfter(action, key.state);
        if (state !== key.state) await tx.updateKey({ ...key, state });
      }
    });
  }

  updateAlias(caller: Caller, keyId: string, alias: string): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "UpdateAlias", keyId);
      if (key.alias === alias) return;
      needs(!(await tx.getKeyByAlias(alias)), "AliasAlreadyExists", `"Alias" ${alias} is already in use`);
      await tx.updateKey({ ...key, alias });
    });
  }

  /**
   * Gives `alias` to a key that has none (its alias is its own id, as for keys made without one).
   * `move`: the alias exists and moves from its key (left with none) to `keyId`, in one
   * transaction; otherwise it must be new. A key holds one alias (docs/aws.md).
   */
  assignAlias(caller: Caller, keyId: string, alias: string, move: boolean): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const holder = await tx.getKeyByAlias(alias);
      const target = await this.ctx.keyFor(tx, caller, "UpdateAlias", keyId);
      if (move) {
        needs(holder && holder.creatorUin === caller.uin && holder.keyId !== holder.alias, "CmkNotFound", `no key has the alias ${alias}`);
        if (holder.keyId === target.keyId) return;
        await tx.updateKey({ ...(await this.ctx.keyFor(tx, caller, "UpdateAlias", holder.keyId)), alias: holder.keyId });
      } else {
        needs(!holder, "AliasAlreadyExists", `the alias ${alias} is already in use`);
      }
      needs(target.alias === target.keyId, "AliasAlreadyExists", `key ${keyId} already has the alias ${target.alias}: a key holds one alias`);
      await tx.updateKey({ ...target, alias });
    });
  }

  /** Takes `alias` from its key, which is left with none (its alias becomes its id). */
  removeAlias(caller: Caller, alias: string): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const holder = await tx.getKeyByAlias(alias);
      needs(holder && holder.creatorUin === caller.uin && holder.keyId !== holder.alias, "CmkNotFound", `no key has the alias ${alias}`);
      const key = await this.ctx.keyFor(tx, caller, "UpdateAlias", holder.keyId);
      await tx.updateKey({ ...key, alias: key.keyId });
    });
  }

  /** Adds tags to a key, or gives existing tag keys new values; at most MAX_KEY_TAGS in all. */
  tagKey(caller: Caller, keyId: string, tags: readonly Tag[]): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "TagResource", keyId);
      const merged = new Map(key.tags.map((t) => [t.key, t.value]));
      for (const t of tags) merged.set(t.key, t.value);
      needs(merged.size <= MAX_KEY_TAGS, "InvalidParameterValue", `a key holds at most ${MAX_KEY_TAGS} tags; key ${keyId} would hold ${merged.size}`);
      await tx.updateKey({ ...key, tags: [...merged].map(([k, value]) => ({ key: k, value })) });
    });
  }

  /** A key's tags, sorted by tag key (as the store gives them). */
  async listKeyTags(caller: Caller, keyId: string): Promise<Tag[]> {
    return (await this.ctx.keyFor(this.ctx.store, caller, "ListResourceTags", keyId)).tags;
  }

  /** Removes the tags with these keys from a key; a tag key it does not have is no error. */
  untagKey(caller: Caller, keyId: string, tagKeys: readonly string[]): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "UntagResource", keyId);
      await tx.updateKey({ ...key, tags: key.tags.filter((t) => !tagKeys.includes(t.key)) });
    });
  }

  updateKeyDescription(caller: Caller, keyId: string, description: string): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "UpdateKeyDescription", keyId);
      await tx.updateKey({ ...key, description });
    });
  }

  /**
   * Moves a Disabled (or PendingImport) key to PendingDelete; the scheduler destroys it at the
   * returned time. `step` ScheduleKeyDeletionAws takes Enabled keys too, as AWS does.
   */
  async scheduleKeyDeletion(
    caller: Caller,
    keyId: string,
    pendingWindowInDays: number,
    step: "ScheduleKeyDeletion" | "ScheduleKeyDeletionAws" = "ScheduleKeyDeletion",
  ): Promise<{ keyId: string; deletionDate: number }> {
    needs(
      Number.isInteger(pendingWindowInDays) && pendingWindowInDays >= 7 && pendingWindowInDays <= 30,
      "InvalidPendingWindowInDays",
      `"PendingWindowInDays" must be between 7 and 30`,
    );
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, step, keyId);
      const deletionDate = this.ctx.now() + pendingWindowInDays * DAY_SECONDS;
      await tx.updateKey({ ...key, state: stateAfter(step, key.state), deletionDate });
      return { keyId: key.keyId, deletionDate };
    });
  }

  /** Back to Disabled; an EXTERNAL key without material (deleted or expired meanwhile) to PendingImport. */
  cancelKeyDeletion(caller: Caller, keyId: string): Promise<{ keyId: string }> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "CancelKeyDeletion", keyId);
      const noMaterial = key.origin === "EXTERNAL" && (await tx.listKeyVersions(keyId)).length === 0;
      await tx.updateKey({ ...key, state: noMaterial ? "PendingImport" : stateAfter("CancelKeyDeletion", key.state), deletionDate: 0 });
      return { keyId: key.keyId };
    });
  }

  // ---- service information ----

  async getServiceStatus(caller: Caller): Promise<{ cmkUserCount: number; cmkLimit: number }> {
    caller.permissions.require("kms:GetServiceStatus", ACCOUNT_RESOURCE);
    return { cmkUserCount: await this.ctx.store.countKeys(caller.uin), cmkLimit: this.ctx.cmkLimit };
  }

  /** Each algorithm with the protection levels this node offers it at (HSM only with a pkcs11 root of trust). */
  listAlgorithms(caller: Caller): { symmetric: AlgorithmEntry[]; asymmetric: AlgorithmEntry[]; signVerify: AlgorithmEntry[] } {
    caller.permissions.require("kms:ListAlgorithms", ACCOUNT_RESOURCE);
    const levels = (spec: KeySpec): ProtectionLevel[] => this.ctx.materials.levels(spec);
    const asymmetric: AlgorithmEntry[] = [];
    const signVerify: AlgorithmEntry[] = [];
    for (const [keyUsage, usage] of Object.entries(ASYMMETRIC_USAGES) as [AsymmetricKeyUsage, UsageInfo][]) {
      // Exchange keys are Tang servers' (CreateTangServer), not CreateKey's.
      if (usage.purpose === "exchange") continue;
      const signs = usage.purpose === "sign" || usage.purpose === "pq-sign";
      // Key agreement keys are software keys (createKey refuses HSM for them).
      const protectionLevels: ProtectionLevel[] = usage.purpose === "agree" ? ["SOFTWARE"] : levels(usage.spec);
      (signs ? signVerify : asymmetric).push({ keyUsage, algorithm: ASYMMETRIC_SPECS[usage.spec].algorithmName, protectionLevels });
    }
    const symmetric = [
      ...SYMMETRIC_KEY_SPECS.map((spec): AlgorithmEntry => ({ keyUsage: "ENCRYPT_DECRYPT", algorithm: spec, protectionLevels: levels(spec) })),
      ...MAC_KEY_SPECS.map((spec): AlgorithmEntry => ({ keyUsage: MAC_USAGE, algorithm: spec, protectionLevels: levels(spec) })),
    ];
    return { symmetric, asymmetric, signVerify };
  }

  getRegions(caller: Caller): string[] {
    caller.permissions.require("kms:GetRegions", ACCOUNT_RESOURCE);
    return [this.ctx.region];
  }
}
