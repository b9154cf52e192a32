// Permissions: who a caller is (Caller), the resource names policies speak of, and what a caller's
// attached policies allow. Every decision is made by `Permissions.require`, which the KMS and
// management actions call before they change or reveal anything.

import type { KeyRecord } from "../keys/key.js";
import { evaluate, type AttachedPolicy, type AuthorizationRequest, type Decision } from "../policy/evaluate.js";
import { parsePolicyDocument } from "../policy/document.js";
import { PRESET_POLICIES } from "../policy/presets.js";
import type { PolicyRecord, PrincipalKind, Store } from "../store/store.js";
import type { Clock } from "./clock.js";
import { KmsError } from "./errors.js";
import { AUDIT_FLAGS, type RequestAudit } from "./request-audit.js";

const MAX_CACHED = 10_000;

export interface PrincipalRef {
  id: string;
  kind: PrincipalKind;
  name: string;
}

/** An authenticated request's identity, with the policies that govern it loaded. */
export interface Caller {
  /** The account acted in. */
  uin: string;
  principal: PrincipalRef;
  /** The SecretId (or TmpSecretId) that signed the request. */
  secretId: string;
  sourceIp?: string;
  /** Set when the request was signed with temporary credentials from AssumeRole. */
  session?: { sessionName: string; expiresAt: number };
  permissions: Permissions;
  /** The request's audit record; absent outside requests (the scheduler, the account's own tools). */
  audit?: RequestAudit;
}

/** Facts a policy condition may test besides the source address and the time. */
export interface RequestFacts {
  encryptionContext?: Readonly<Record<string, string>>;
  resourceTags?: Readonly<Record<string, string>>;
}

/**
 * What one caller may do. `require` throws UnauthorizedOperation (and changes nothing) unless the
 * caller's policies allow `action` ("kms:Encrypt") on one of `resources`' names (["*"] for
 * account-level actions).
 */
export interface Permissions {
  require(action: string, resources: readonly string[], facts?: RequestFacts): void;
  /** The decision without throwing, and the statement that made it. */
  decide(action: string, resources: readonly string[], facts?: RequestFacts): Decision;
}

/** An account's root may do everything in its account, as in CAM: no policy is consulted. */
export const ROOT_PERMISSIONS: Permissions = Object.freeze({
  require: () => {},
  decide: (): Decision => ({ allowed: true, reason: "allow" }),
});

/** A caller acting as an account's root outside any request (the account's own tools, tests). */
export function rootCaller(accountUin: string): Caller {
  return { uin: accountUin, principal: { id: accountUin, kind: "root", name: "root" }, secretId: "", permissions: ROOT_PERMISSIONS };
}

// ---- resource names ----

export function keyResourceNames(region: string, key: Pick<KeyRecord, "creatorUin" | "keyId" | "alias">): string[] {
  const account = `qcs::kms:${region}:uin/${key.creatorUin}`;
  const names = [`${account}:key/creatorUin/${key.creatorUin}/${key.keyId}`];
  if (key.alias) names.push(`${account}:alias/${key.alias}`);
  return names;
}

export const ACCOUNT_RESOURCE: readonly string[] = Object.freeze(["*"]);

export function userResource(accountUin: string, uin: string): string {
  return `qcs::cam::uin/${accountUin}:uin/${uin}`;
}

export function policyResource(accountUin: string, policyId: number): string {
  return `qcs::cam::uin/${accountUin}:policyid/${policyId}`;
}

export function roleResource(accountUin: string, roleName: string): string {
  return `qcs::cam::uin/${accountUin}:roleName/${roleName}`;
}

/** How a principal is named in a trust policy's `principal.qcs`. */
export function principalName(accountUin: string, principal: PrincipalRef): string {
  if (principal.kind === "root") return `qcs::cam::uin/${accountUin}:root`;
  if (principal.kind === "user") return `qcs::cam::uin/${accountUin}:uin/${principal.id}`;
  return `qcs::cam::uin/${accountUin}:roleName/${principal.name}`;
}

export const PRESET_BY_ID = new Map(PRESET_POLICIES.map((p) => [p.policyId, p]));

class DeniedError extends KmsError {
  constructor(action: string, resource: string) {
    super("UnauthorizedOperation", `you are not authorized to perform operation (${action}) on resource (${resource})`);
  }
}

/** Remembers `value` in a bounded cache map (emptied when full). */
export function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  if (map.size >= MAX_CACHED) map.clear();
  map.set(key, value);
}

/** Principals' attached policies, loaded and parsed (remembered for the cache time), and the Permissions they give. */
export class PolicyPermissions {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #cacheMs: number;
  readonly #policies = new Map<string, { policies: AttachedPolicy[]; expiresAt: number }>();
  /** Parsed custom policies by id, with the update time they were parsed at. */
  readonly #parsed = new Map<number, { updateTime: number; policy: AttachedPolicy }>();

  constructor(options: { store: Store; clock: Clock; cacheMs: number }) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#cacheMs = options.cacheMs;
  }

  /** What `caller` may do under `policies`. */
  of(caller: Caller, policies: readonly AttachedPolicy[]): Permissions {
    const decide = (action: string, resources: readonly string[], facts: RequestFacts = {}): Decision => {
      const request: AuthorizationRequest = {
        action,
        resources: [...resources],
        context: {
          currentTime: this.#clock.now(),
          ...(caller.sourceIp === undefined ? {} : { sourceIp: caller.sourceIp }),
          ...(facts.encryptionContext ? { encryptionContext: facts.encryptionContext } : {}),
          ...(facts.resourceTags ? { resourceTags: facts.resourceTags } : {}),
        },
      };
      return evaluate(policies, request);
    };
    return {
      decide,
      require: (action, resources, facts) => {
        const decision = decide(action, resources, facts);
        if (decision.allowed) return;
        const resource = resources[0] ?? "*";
        caller.audit?.flags.add(AUDIT_FLAGS.policyDenied);
        throw new DeniedError(action, resource);
      },
    };
  }

  /** The principal's attached policies, parsed; remembered for the cache time. */
  async policiesOf(principalId: string): Promise<AttachedPolicy[]> {
    const now = this.#clock.now();
    const cached = this.#policies.get(principalId);
    if (cached && cached.expiresAt > now) return cached.policies;
    const policies: AttachedPolicy[] = [];
    for (const attachment of await this.#store.listAttachedPolicies(principalId)) {
      const preset = PRESET_BY_ID.get(attachment.policyId);
      if (preset) {
        policies.push({ policyId: preset.policyId, policyName: preset.policyName, document: preset.document, ownerUin: attachment.accountUin });
        continue;
      }
      const record = await this.#store.getPolicy(attachment.policyId);
      if (record) policies.push({ ...this.#parse(record), ownerUin: record.accountUin });
    }
    remember(this.#policies, principalId, { policies, expiresAt: now + this.#cacheMs });
    return policies;
  }

  #parse(record: PolicyRecord): AttachedPolicy {
    const hit = this.#parsed.get(record.policyId);
    if (hit && hit.updateTime === record.updateTime) return hit.policy;
    const policy = { policyId: record.policyId, policyName: record.name, document: parsePolicyDocument(record.document, "identity", "store") };
    remember(this.#parsed, record.policyId, { updateTime: record.updateTime, policy });
    return policy;
  }

  /** Forgets the principals' policies this node remembers: their changes apply at once here. */
  forget(): void {
    this.#policies.clear();
  }

  close(): void {
    this.#policies.clear();
    this.#parsed.clear();
  }
}
