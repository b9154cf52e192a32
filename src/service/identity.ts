// Identity management: the CAM and STS actions over users, access keys, policies, their
// attachments and roles (with AssumeRole), and policy simulation.

import { randomInt } from "node:crypto";
import { randomAlphanumeric } from "../crypto/random.js";
import { evaluate, explain, type AuthorizationRequest, type Decision } from "../policy/evaluate.js";
import { parsePolicyDocument, PolicyDocumentError, type PolicyDocument } from "../policy/document.js";
import { PRESET_POLICIES } from "../policy/presets.js";
import { accessKeySecretAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import {
  StoreConflictError,
  type AccessKeyRecord,
  type Page,
  type PolicyRecord,
  type PrincipalRecord,
  type RoleSessionRecord,
  type Store,
  type StoreOperations,
} from "../store/store.js";
import type { Auditor } from "../audit/writer.js";
import type { Authentication } from "./authentication.js";
import type { Clock } from "./clock.js";
import { KmsError, needs } from "./errors.js";
import { ACCOUNT_RESOURCE, policyResource, PRESET_BY_ID, principalName, roleResource, userResource, type Caller, type PolicyPermissions } from "./permissions.js";
import { auditedTransaction } from "./request-audit.js";

/** Tencent: at most two access keys per user. */
export const MAX_ACCESS_KEYS_PER_USER = 2;
/** STS AssumeRole: 15 minutes to 12 hours, 2 hours when not given. */
export const MIN_SESSION_SECONDS = 900;
export const MAX_SESSION_SECONDS = 43_200;
export const DEFAULT_SESSION_SECONDS = 7_200;
/** Ids below this are preset policies (defined in code); custom ones are random above it. */
export const FIRST_CUSTOM_POLICY_ID = 100_000_000;

// ---- the management API's views ----

export interface PolicyView {
  policyId: number;
  name: string;
  description: string;
  document: string;
  /** 1: custom, 2: preset (Tencent's Type). */
  type: 1 | 2;
  createTime: number;
  updateTime: number;
}

export interface AttachmentView extends PolicyView {
  attachTime: number;
}

const PRESETS: readonly PolicyView[] = PRESET_POLICIES.map((p) => ({
  policyId: p.policyId,
  name: p.policyName,
  description: p.description,
  document: JSON.stringify(p.document),
  type: 2,
  createTime: 0,
  updateTime: 0,
}));

/** The names users, roles, policies and sessions may have (Tencent: letters, digits and +=,.@_-). */
const NAME_PATTERN = /^[A-Za-z0-9+=,.@_-]{1,64}$/;

export interface IdentityManagementOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  clock: Clock;
  auditor: Auditor<StoreOperations> | undefined;
  authentication: Authentication;
  permissions: PolicyPermissions;
}

export class IdentityManagement {
  readonly #store: Store;
  readonly #root: RootOfTrust;
  readonly #clock: Clock;
  readonly #auditor: Auditor<StoreOperations> | undefined;
  readonly #authentication: Authentication;
  readonly #permissions: PolicyPermissions;

  constructor(options: IdentityManagementOptions) {
    this.#store = options.store;
    this.#root = options.rootOfTrust;
    this.#clock = options.clock;
    this.#auditor = options.auditor;
    this.#authentication = options.authentication;
    this.#permissions = options.permissions;
  }

  // ---- users ----

  /** AddUser: a sub-user, and with `useApi` its first access key (the only copy of its secret). */
  async addUser(
    caller: Caller,
    input: { name: string; remark: string; useApi: boolean },
  ): Promise<{ user: PrincipalRecord; accessKey?: { secretId: string; secretKey: string } }> {
    this.#require(caller, "cam:AddUser", ACCOUNT_RESOURCE);
    checkUserName(input.name);
    const user: PrincipalRecord = {
      principalId: randomUin(),
      accountUin: caller.uin,
      kind: "user",
      name: input.name,
      remark: input.remark,
      trustPolicy: null,
      maxSessionSeconds: 0,
      createTime: this.#seconds(),
    };
    const made = input.useApi ? await this.#newAccessKey(caller.uin, user.principalId) : undefined;
    try {
      await this.#transaction(caller, async (tx) => {
        await tx.insertPrincipal(user);
        if (made) await tx.insertAccessKey(made.record);
      });
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "principal") throw new KmsError("UserNameInUse", `"Name" ${input.name}: the account already has a user of that name`);
      throw e;
    }
    return made ? { user, accessKey: { secretId: made.record.secretId, secretKey: made.secretKey } } : { user };
  }

  getUser(caller: Caller, name: string): Promise<PrincipalRecord> {
    return this.#principalOf(caller, "user", { name }, "cam:GetUser");
  }

  async listUsers(caller: Caller): Promise<PrincipalRecord[]> {
    this.#require(caller, "cam:ListUsers", ACCOUNT_RESOURCE);
    return (await this.#store.listPrincipals(caller.uin, "user", 0, 10_000)).items;
  }

  /** DeleteUser: refused while the user has access keys, unless `force` (which deletes them too). */
  async deleteUser(caller: Caller, name: string, force: boolean): Promise<void> {
    const user = await this.#principalOf(caller, "user", { name }, "cam:DeleteUser");
    await this.#transaction(caller, async (tx) => {
      const keys = await tx.listAccessKeys(user.principalId);
      needs(force || keys.length === 0, "UserHasAccessKey", `user ${name} still has ${keys.length} access key(s): delete them first, or pass "Force" 1`);
      await tx.deletePrincipal(user.principalId);
    });
    this.#forget();
  }

  // ---- access keys ----

  /** The user (sub-user uin, or the caller itself when `targetUin` is absent) whose keys are managed. */
  async #targetUser(caller: Caller, action: string, targetUin: string | undefined): Promise<PrincipalRecord> {
    const id = targetUin ?? caller.principal.id;
    const target = await this.#store.getPrincipal(id);
    this.#require(caller, action, [userResource(caller.uin, id)]);
    needs(target && target.accountUin === caller.uin && target.kind !== "role", "UserNotExist", `"TargetUin" ${id}: no such user`);
    // A policy can grant CAM rights on users, never on the root: only the root manages its own keys.
    needs(target.kind !== "root" || caller.principal.kind === "root", "UnauthorizedOperation", `only the account's root may manage the root's access keys`);
    return target;
  }

  async createAccessKey(caller: Caller, targetUin?: string): Promise<{ record: AccessKeyRecord; secretKey: string }> {
    const user = await this.#targetUser(caller, "cam:CreateAccessKey", targetUin);
    const made = await this.#newAccessKey(caller.uin, user.principalId);
    await this.#transaction(caller, async (tx) => {
      const existing = await tx.listAccessKeys(user.principalId);
      needs(
        existing.length < MAX_ACCESS_KEYS_PER_USER,
        "AccessKeyOverLimit",
        `user ${user.name} already has ${MAX_ACCESS_KEYS_PER_USER} access keys: delete one first`,
      );
      await tx.insertAccessKey(made.record);
    });
    return made;
  }

  /** Creates an access key for an account's root outside any request (init, new accounts). */
  async createRootAccessKey(accountUin: string): Promise<{ secretId: string; secretKey: string }> {
    const made = await this.#newAccessKey(accountUin, accountUin);
    await this.#store.transaction(async (tx) => {
      if (!(await tx.getPrincipal(accountUin))) {
        await tx.insertPrincipal({
          principalId: accountUin,
          accountUin,
          kind: "root",
          name: "root",
          remark: "",
          trustPolicy: null,
          maxSessionSeconds: 0,
          createTime: this.#seconds(),
        });
      }
      await tx.insertAccessKey(made.record);
    });
    return { secretId: made.record.secretId, secretKey: made.secretKey };
  }

  async #newAccessKey(accountUin: string, principalId: string): Promise<{ record: AccessKeyRecord; secretKey: string }> {
    const secretId = `AKID${randomAlphanumeric(32)}`;
    const secretKey = randomAlphanumeric(40);
    const wrappedSecret = await this.#root.wrap(Buffer.from(secretKey, "utf8"), accessKeySecretAad(secretId));
    return {
      record: { secretId, wrappedSecret, uin: accountUin, principalId, status: "Active", createTime: this.#seconds(), lastUsedTime: 0 },
      secretKey,
    };
  }

  async listAccessKeys(caller: Caller, targetUin?: string): Promise<AccessKeyRecord[]> {
    const user = await this.#targetUser(caller, "cam:ListAccessKeys", targetUin);
    return this.#store.listAccessKeys(user.principalId);
  }

  async updateAccessKey(caller: Caller, secretId: string, status: AccessKeyRecord["status"], targetUin?: string): Promise<void> {
    const user = await this.#targetUser(caller, "cam:UpdateAccessKey", targetUin);
    const key = await this.#store.getAccessKey(secretId);
    needs(key && key.principalId === user.principalId, "AccessKeyNotExist", `"AccessKeyId" ${secretId}: user ${user.name} has no such access key`);
    await this.#transaction(caller, (tx) => tx.updateAccessKeyStatus(secretId, status));
    this.#forget();
  }

  async deleteAccessKey(caller: Caller, secretId: string, targetUin?: string): Promise<void> {
    const user = await this.#targetUser(caller, "cam:DeleteAccessKey", targetUin);
    const key = await this.#store.getAccessKey(secretId);
    needs(key && key.principalId === user.principalId, "AccessKeyNotExist", `"AccessKeyId" ${secretId}: user ${user.name} has no such access key`);
    await this.#transaction(caller, (tx) => tx.deleteAccessKey(secretId));
    this.#forget();
  }

  // ---- policies ----

  async createPolicy(caller: Caller, input: { name: string; document: string; description: string }): Promise<number> {
    this.#require(caller, "cam:CreatePolicy", ACCOUNT_RESOURCE);
    checkName("PolicyName", input.name);
    needs(!PRESETS.some((p) => p.name === input.name), "PolicyNameInUse", `"PolicyName" ${input.name} is the name of a preset policy`);
    parseDocument("PolicyDocument", input.document, "identity");
    const now = this.#seconds();
    for (let attempt = 0; ; attempt++) {
      const policyId = randomInt(FIRST_CUSTOM_POLICY_ID, 2 ** 32);
      try {
        const record: PolicyRecord = { policyId, accountUin: caller.uin, name: input.name, description: input.description, document: input.document, createTime: now, updateTime: now };
        caller.audit?.addResource(policyResource(caller.uin, policyId));
        await this.#transaction(caller, (tx) => tx.insertPolicy(record));
        return policyId;
      } catch (e) {
        if (!(e instanceof StoreConflictError)) throw e;
        const sameName = await this.#store.getPolicyByName(caller.uin, input.name);
        if (sameName || attempt >= 3) {
          throw new KmsError("PolicyNameInUse", `"PolicyName" ${input.name}: the account already has a policy of that name`);
        }
      }
    }
  }

  /** A custom policy of the caller's account, or a preset one. */
  async #policy(caller: Caller, policyId: number): Promise<PolicyView | undefined> {
    const preset = PRESETS.find((p) => p.policyId === policyId);
    if (preset) return preset;
    const record = await this.#store.getPolicy(policyId);
    if (!record || record.accountUin !== caller.uin) return undefined;
    return { policyId, name: record.name, description: record.description, document: record.document, type: 1, createTime: record.createTime, updateTime: record.updateTime };
  }

  async getPolicy(caller: Caller, policyId: number): Promise<PolicyView> {
    this.#require(caller, "cam:GetPolicy", [policyResource(caller.uin, policyId)]);
    const policy = await this.#policy(caller, policyId);
    needs(policy, "PolicyNotExist", `"PolicyId" ${policyId}: no such policy`);
    return policy;
  }

  /** ListPolicies: `scope` All, QCS (presets) or Local (the account's own); pages count from 1. */
  async listPolicies(
    caller: Caller,
    input: { page: number; perPage: number; scope: "All" | "QCS" | "Local"; keyword?: string },
  ): Promise<Page<PolicyView & { attachments: number }>> {
    this.#require(caller, "cam:ListPolicies", ACCOUNT_RESOURCE);
    const keyword = input.keyword?.toLowerCase();
    const presets = input.scope === "Local" ? [] : PRESETS.filter((p) => keyword === undefined || p.name.toLowerCase().includes(keyword));
    const offset = (input.page - 1) * input.perPage;
    const items: (PolicyView & { attachments: number })[] = [];
    for (const p of presets.slice(offset, offset + input.perPage)) items.push({ ...p, attachments: await this.#store.countPolicyAttachments(p.policyId) });
    let customTotal = 0;
    if (input.scope !== "QCS") {
      const customOffset = Math.max(0, offset - presets.length);
      const room = input.perPage - items.length;
      const page = await this.#store.listPolicies(caller.uin, customOffset, Math.max(room, 1), input.keyword);
      customTotal = page.totalCount;
      for (const r of page.items.slice(0, room)) {
        items.push({
          policyId: r.policyId,
          name: r.name,
          description: r.description,
          document: r.document,
          type: 1,
          createTime: r.createTime,
          updateTime: r.updateTime,
          attachments: await this.#store.countPolicyAttachments(r.policyId),
        });
      }
    }
    return { items, totalCount: presets.length + customTotal };
  }

  /** DeletePolicy: all or nothing; attachments of the policies go with them. Presets cannot be deleted. */
  async deletePolicies(caller: Caller, policyIds: readonly number[]): Promise<void> {
    for (const id of policyIds) this.#require(caller, "cam:DeletePolicy", [policyResource(caller.uin, id)]);
    await this.#transaction(caller, async (tx) => {
      for (const id of policyIds) {
        needs(!PRESET_BY_ID.has(id), "OperationDenied", `"PolicyId" ${id} is a preset policy, which cannot be deleted`);
        const record = await tx.getPolicy(id);
        needs(record && record.accountUin === caller.uin, "PolicyNotExist", `"PolicyId" ${id}: no such policy`);
        await tx.deletePolicy(id);
      }
    });
    this.#forget();
  }

  // ---- attachments ----

  async #principalOf(caller: Caller, kind: "user" | "role", by: { id?: string; name?: string }, action: string): Promise<PrincipalRecord> {
    const found = by.id !== undefined ? await this.#store.getPrincipal(by.id) : await this.#store.getPrincipalByName(caller.uin, kind, by.name ?? "");
    const mine = found && found.accountUin === caller.uin && found.kind === kind ? found : undefined;
    const resource = kind === "user" ? userResource(caller.uin, mine?.principalId ?? by.id ?? "*") : roleResource(caller.uin, mine?.name ?? by.name ?? "*");
    this.#require(caller, action, [resource]);
    if (kind === "user") needs(mine, "UserNotExist", `user ${by.id ?? by.name}: no such user`);
    else needs(mine, "RoleNotExist", `role ${by.id ?? by.name}: no such role`);
    return mine;
  }

  async #policyByIdOrName(caller: Caller, by: { policyId?: number; policyName?: string }): Promise<PolicyView> {
    let policy: PolicyView | undefined;
    if (by.policyId !== undefined) policy = await this.#policy(caller, by.policyId);
    else {
      policy = PRESETS.find((p) => p.name === by.policyName);
      const record = policy ? undefined : await this.#store.getPolicyByName(caller.uin, by.policyName ?? "");
      if (record) policy = await this.#policy(caller, record.policyId);
    }
    needs(policy, "PolicyNotExist", `policy ${by.policyId ?? by.policyName}: no such policy`);
    return policy;
  }

  async attachPolicy(caller: Caller, kind: "user" | "role", principal: { id?: string; name?: string }, policy: { policyId?: number; policyName?: string }): Promise<void> {
    const target = await this.#principalOf(caller, kind, principal, kind === "user" ? "cam:AttachUserPolicy" : "cam:AttachRolePolicy");
    const found = await this.#policyByIdOrName(caller, policy);
    // Attaching twice is not an error (Tencent answers success): the first attachment stays.
    const attachment = { principalId: target.principalId, policyId: found.policyId, accountUin: caller.uin, createTime: this.#seconds() };
    await this.#transaction(caller, (tx) => tx.attachPolicy(attachment));
    this.#forget();
  }

  async detachPolicy(caller: Caller, kind: "user" | "role", principal: { id?: string; name?: string }, policy: { policyId?: number; policyName?: string }): Promise<void> {
    const target = await this.#principalOf(caller, kind, principal, kind === "user" ? "cam:DetachUserPolicy" : "cam:DetachRolePolicy");
    const found = await this.#policyByIdOrName(caller, policy);
    await this.#transaction(caller, async (tx) => {
      needs(await tx.detachPolicy(target.principalId, found.policyId), "PolicyNotAttached", `policy ${found.policyId} is not attached to ${kind} ${target.name}`);
    });
    this.#forget();
  }

  async listAttachedPolicies(caller: Caller, kind: "user" | "role", principal: { id?: string; name?: string }, page: { page: number; perPage: number }): Promise<Page<AttachmentView>> {
    const target = await this.#principalOf(caller, kind, principal, kind === "user" ? "cam:ListAttachedUserPolicies" : "cam:ListAttachedRolePolicies");
    const attachments = await this.#store.listAttachedPolicies(target.principalId);
    const items: AttachmentView[] = [];
    for (const a of attachments.slice((page.page - 1) * page.perPage, page.page * page.perPage)) {
      const policy = await this.#policy(caller, a.policyId);
      if (policy) items.push({ ...policy, attachTime: a.createTime });
    }
    return { items, totalCount: attachments.length };
  }

  // ---- roles and temporary credentials ----

  /** CreateRole: `trustPolicy` says who may assume it (name/sts:AssumeRole for listed principals). */
  async createRole(caller: Caller, input: { name: string; trustPolicy: string; description: string; sessionSeconds?: number }): Promise<PrincipalRecord> {
    this.#require(caller, "cam:CreateRole", ACCOUNT_RESOURCE);
    checkName("RoleName", input.name);
    parseDocument("PolicyDocument", input.trustPolicy, "trust");
    const sessionSeconds = input.sessionSeconds ?? MAX_SESSION_SECONDS;
    needs(
      Number.isInteger(sessionSeconds) && sessionSeconds >= MIN_SESSION_SECONDS && sessionSeconds <= MAX_SESSION_SECONDS,
      "InvalidParameterValue",
      `"SessionDuration" must be between ${MIN_SESSION_SECONDS} and ${MAX_SESSION_SECONDS} seconds`,
    );
    const role: PrincipalRecord = {
      principalId: randomUin(),
      accountUin: caller.uin,
      kind: "role",
      name: input.name,
      remark: input.description,
      trustPolicy: input.trustPolicy,
      maxSessionSeconds: sessionSeconds,
      createTime: this.#seconds(),
    };
    try {
      await this.#transaction(caller, (tx) => tx.insertPrincipal(role));
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "principal") throw new KmsError("RoleNameInUse", `"RoleName" ${input.name}: the account already has a role of that name`);
      throw e;
    }
    return role;
  }

  getRole(caller: Caller, by: { id?: string; name?: string }): Promise<PrincipalRecord> {
    return this.#principalOf(caller, "role", by, "cam:GetRole");
  }

  /** DeleteRole: its attachments and every session assumed from it go too (the tokens stop at once). */
  async deleteRole(caller: Caller, by: { id?: string; name?: string }): Promise<void> {
    const role = await this.#principalOf(caller, "role", by, "cam:DeleteRole");
    await this.#transaction(caller, (tx) => tx.deletePrincipal(role.principalId));
    this.#forget();
  }

  /**
   * AssumeRole: the caller's own policies must allow sts:AssumeRole on the role, and the role's trust
   * policy must name the caller. Returns the only copy of the temporary secret and token.
   */
  async assumeRole(
    caller: Caller,
    input: { roleArn: string; sessionName: string; durationSeconds?: number },
  ): Promise<{ tmpSecretId: string; tmpSecretKey: string; token: string; expiresAt: number }> {
    const arn = /^qcs::cam::uin\/(\d{1,20}):role(?:Name)?\/([A-Za-z0-9+=,.@_-]{1,128})$/.exec(input.roleArn);
    needs(arn, "InvalidParameterValue", `"RoleArn" must look like qcs::cam::uin/<uin>:roleName/<name>`);
    needs(/^[A-Za-z0-9+=,.@_-]{2,128}$/.test(input.sessionName), "InvalidParameterValue", `"RoleSessionName" must be 2 to 128 of letters, digits and +=,.@_-`);
    const [, accountUin, roleName] = arn as unknown as [string, string, string];
    // No role chaining: a session cannot assume a role (and so cannot renew itself past its expiry).
    needs(caller.principal.kind !== "role", "UnauthorizedOperation", `temporary credentials cannot assume a role: use a user's access key`);
    this.#require(caller, "sts:AssumeRole", [roleResource(accountUin, roleName)]);
    // Another account's roles are as absent as missing ones: cross-account roles are not offered.
    const role = accountUin === caller.uin ? await this.#store.getPrincipalByName(accountUin, "role", roleName) : undefined;
    needs(role, "RoleNotExist", `"RoleArn" ${input.roleArn}: no such role`);
    const trust = parsePolicyDocument(role.trustPolicy ?? "", "trust", "store");
    const me = principalName(caller.uin, caller.principal);
    const trusted = evaluate([{ policyId: 0, policyName: `trust policy of ${role.name}`, document: withPrincipalCheck(trust, me) }], {
      action: "sts:AssumeRole",
      resources: [roleResource(accountUin, roleName)],
      context: { currentTime: this.#clock.now(), ...(caller.sourceIp === undefined ? {} : { sourceIp: caller.sourceIp }) },
    });
    if (!trusted.allowed) {
      throw new KmsError("UnauthorizedOperation", `the trust policy of role ${role.name} does not allow ${me} to assume it`);
    }
    const duration = input.durationSeconds ?? Math.min(DEFAULT_SESSION_SECONDS, role.maxSessionSeconds);
    needs(
      Number.isInteger(duration) && duration >= MIN_SESSION_SECONDS && duration <= role.maxSessionSeconds,
      "InvalidParameterValue",
      `"DurationSeconds" must be between ${MIN_SESSION_SECONDS} and the role's session duration, ${role.maxSessionSeconds}`,
    );
    const tmpSecretId = `AKID${randomAlphanumeric(32)}`;
    const now = this.#seconds();
    const session: RoleSessionRecord = {
      tmpSecretId,
      roleId: role.principalId,
      accountUin,
      sessionName: input.sessionName,
      assumedBy: caller.principal.id,
      createTime: now,
      expiresAt: now + duration,
    };
    await this.#transaction(caller, (tx) => tx.insertRoleSession(session));
    return { tmpSecretId, tmpSecretKey: await this.#authentication.sessionSecretKey(tmpSecretId), token: await this.#authentication.sessionToken(tmpSecretId), expiresAt: session.expiresAt };
  }

  /** Removes expired sessions (the scheduler's job). */
  deleteExpiredSessions(): Promise<number> {
    return this.#store.deleteExpiredRoleSessions(this.#seconds());
  }
  // ---- simulation ----

  /**
   * What would happen if a user or role of the caller's account made a request: the decision and a
   * human explanation naming the statement that decides. Needs cam:GetPolicy-like rights, so it is
   * governed by cam:SimulatePrincipalPolicy.
   */
  async simulate(caller: Caller, input: SimulationInput): Promise<{ decision: Decision; explanation: string }> {
    const target = await this.#principalOf(caller, input.kind, { name: input.name }, "cam:SimulatePrincipalPolicy");
    const policies = await this.#permissions.policiesOf(target.principalId);
    const request: AuthorizationRequest = {
      action: input.action.replace(/^name\//, ""),
      resources: [input.resource],
      context: { currentTime: this.#clock.now(), ...(input.encryptionContext === undefined ? {} : { encryptionContext: input.encryptionContext }) },
    };
    return { decision: evaluate(policies, request), explanation: explain(policies, request) };
  }

  /** Forgets what this node remembers of principals and policies: their changes apply at once here. */
  #forget(): void {
    this.#authentication.forget();
    this.#permissions.forget();
  }

  #seconds(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  /** The policy check of a CAM or STS action; the resource is named in the request's audit record. */
  #require(caller: Caller, action: string, resources: readonly string[]): void {
    for (const r of resources) if (r !== "*") caller.audit?.addResource(r);
    caller.permissions.require(action, resources);
  }

  /** A state change, committed with the request's audit record. */
  #transaction<T>(caller: Caller, fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    return auditedTransaction(this.#store, this.#auditor, caller.audit, fn);
  }
}

/** The request SimulatePrincipalPolicy imagines: who, what, on which resource, with which encryption context. */
export interface SimulationInput {
  kind: "user" | "role";
  name: string;
  action: string;
  resource: string;
  encryptionContext?: Readonly<Record<string, string>>;
}

/** A random 12-digit uin or role id (Tencent's sub-account uins are numbers of that size). */
function randomUin(): string {
  return String(randomInt(100_000_000_000, 999_999_999_999));
}

function checkName(parameter: string, name: string): void {
  needs(NAME_PATTERN.test(name), "InvalidParameterValue", `"${parameter}" must be 1 to 64 of letters, digits and +=,.@_-`);
}

/**
 * A new user's name must not read as another principal where principals are shown by name: audit
 * records (and LookUpEvents' Username) name the account's root "root", and the CLI prints "-" for a
 * record without a user. Roles need no such rule: their sessions are named "<role>/<session>",
 * which no user name (no "/") can equal. Users named so before this rule keep working.
 */
function checkUserName(name: string): void {
  checkName("Name", name);
  needs(name.toLowerCase() !== "root", "InvalidParameterValue", `"Name" ${name} is reserved: audit records name the account's root "root"; choose another name`);
  needs(/[A-Za-z0-9]/.test(name), "InvalidParameterValue", `"Name" must hold at least one letter or digit`);
}

function parseDocument(parameter: string, text: string, kind: "identity" | "trust"): PolicyDocument {
  try {
    return parsePolicyDocument(text, kind);
  } catch (e) {
    if (e instanceof PolicyDocumentError) throw new KmsError("PolicyDocumentError", `"${parameter}": ${e.message}`);
    throw e;
  }
}

/**
 * A trust policy as an identity policy for one caller: only its statements whose `principal.qcs`
 * names the caller (or its account's root pattern) stay.
 */
function withPrincipalCheck(trust: PolicyDocument, caller: string): PolicyDocument {
  const statement = trust.statement
    .filter((s) => (s.principal?.qcs ?? []).some((p) => p === caller || (p.endsWith(":root") && caller.startsWith(p.slice(0, -"root".length)))))
    .map(({ principal: _principal, ...rest }) => rest);
  return { version: trust.version, statement };
}
