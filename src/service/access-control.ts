// Access control: who is calling (authentication.ts), what they may do (permissions.ts), and the
// management of principals, access keys, policies and roles (identity.ts). AccessControl is the
// facade the protocol adapters and the service call; this file also names what they import.

import type { Auditor } from "../audit/writer.js";
import type { Decision } from "../policy/evaluate.js";
import type { RootOfTrust } from "../rootkey/root-of-trust.js";
import type { AccessKeyRecord, Page, PrincipalRecord, Store, StoreOperations } from "../store/store.js";
import { Authentication, type ResolvedCredential } from "./authentication.js";
import type { Clock } from "./clock.js";
import { IdentityManagement, type AttachmentView, type PolicyView, type SimulationInput } from "./identity.js";
import { KmipClients, type KmipClientView } from "./kmip-clients.js";
import { PolicyPermissions, type Caller } from "./permissions.js";

export { ROLE_SESSION_SECRET, type ResolvedCredential } from "./authentication.js";
export {
  DEFAULT_SESSION_SECONDS,
  FIRST_CUSTOM_POLICY_ID,
  MAX_ACCESS_KEYS_PER_USER,
  MAX_SESSION_SECONDS,
  MIN_SESSION_SECONDS,
  type AttachmentView,
  type PolicyView,
} from "./identity.js";
export { certificateFingerprint, type KmipClientView } from "./kmip-clients.js";
export {
  ACCOUNT_RESOURCE,
  keyResourceNames,
  policyResource,
  principalName,
  roleResource,
  rootCaller,
  userResource,
  type Caller,
  type Permissions,
  type PrincipalRef,
  type RequestFacts,
} from "./permissions.js";

export interface AccessControlOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  clock: Clock;
  region: string;
  /** How long found credentials and loaded policies are remembered (default 1000 ms). */
  cacheMs?: number;
  /** Where state changes record their request (default: nowhere). */
  auditor?: Auditor<StoreOperations>;
}

type PrincipalBy = { id?: string; name?: string };
type PolicyBy = { policyId?: number; policyName?: string };

export class AccessControl {
  readonly #permissions: PolicyPermissions;
  readonly #authentication: Authentication;
  readonly #identity: IdentityManagement;
  readonly #kmipClients: KmipClients;
  readonly region: string;

  constructor(options: AccessControlOptions) {
    this.region = options.region;
    const cacheMs = options.cacheMs ?? 1000;
    this.#permissions = new PolicyPermissions({ store: options.store, clock: options.clock, cacheMs });
    this.#authentication = new Authentication({ store: options.store, rootOfTrust: options.rootOfTrust, clock: options.clock, cacheMs, permissions: this.#permissions });
    this.#identity = new IdentityManagement({
      store: options.store,
      rootOfTrust: options.rootOfTrust,
      clock: options.clock,
      auditor: options.auditor,
      authentication: this.#authentication,
      permissions: this.#permissions,
    });
    this.#kmipClients = new KmipClients({ store: options.store, auditor: options.auditor, clock: options.clock });
  }

  // ---- authentication ----

  resolveAccessKey(secretId: string): Promise<ResolvedCredential | undefined> {
    return this.#authentication.resolveAccessKey(secretId);
  }

  resolveTemporaryCredential(tmpSecretId: string, token: string): Promise<ResolvedCredential> {
    return this.#authentication.resolveTemporaryCredential(tmpSecretId, token);
  }

  callerFor(credential: ResolvedCredential, sourceIp: string | undefined): Promise<Caller> {
    return this.#authentication.callerFor(credential, sourceIp);
  }

  /** The credential of a KMIP client's TLS certificate (DER); undefined when it is mapped to no user. */
  resolveKmipClient(certificateDer: Buffer): Promise<ResolvedCredential | undefined> {
    return this.#kmipClients.resolve(certificateDer);
  }

  // ---- KMIP client certificates ----

  addKmipClient(caller: Caller, input: { userName: string; certificatePem: string }): Promise<KmipClientView> {
    return this.#kmipClients.add(caller, input);
  }

  listKmipClients(caller: Caller): Promise<KmipClientView[]> {
    return this.#kmipClients.list(caller);
  }

  deleteKmipClient(caller: Caller, fingerprint: string): Promise<void> {
    return this.#kmipClients.delete(caller, fingerprint);
  }

  // ---- users and access keys ----

  addUser(caller: Caller, input: { name: string; remark: string; useApi: boolean }): Promise<{ user: PrincipalRecord; accessKey?: { secretId: string; secretKey: string } }> {
    return this.#identity.addUser(caller, input);
  }

  getUser(caller: Caller, name: string): Promise<PrincipalRecord> {
    return this.#identity.getUser(caller, name);
  }

  listUsers(caller: Caller): Promise<PrincipalRecord[]> {
    return this.#identity.listUsers(caller);
  }

  deleteUser(caller: Caller, name: string, force: boolean): Promise<void> {
    return this.#identity.deleteUser(caller, name, force);
  }

  createAccessKey(caller: Caller, targetUin?: string): Promise<{ record: AccessKeyRecord; secretKey: string }> {
    return this.#identity.createAccessKey(caller, targetUin);
  }

  createRootAccessKey(accountUin: string): Promise<{ secretId: string; secretKey: string }> {
    return this.#identity.createRootAccessKey(accountUin);
  }

  listAccessKeys(caller: Caller, targetUin?: string): Promise<AccessKeyRecord[]> {
    return this.#identity.listAccessKeys(caller, targetUin);
  }

  updateAccessKey(caller: Caller, secretId: string, status: AccessKeyRecord["status"], targetUin?: string): Promise<void> {
    return this.#identity.updateAccessKey(caller, secretId, status, targetUin);
  }

  deleteAccessKey(caller: Caller, secretId: string, targetUin?: string): Promise<void> {
    return this.#identity.deleteAccessKey(caller, secretId, targetUin);
  }

  // ---- policies and attachments ----

  createPolicy(caller: Caller, input: { name: string; document: string; description: string }): Promise<number> {
    return this.#identity.createPolicy(caller, input);
  }

  getPolicy(caller: Caller, policyId: number): Promise<PolicyView> {
    return this.#identity.getPolicy(caller, policyId);
  }

  listPolicies(caller: Caller, input: { page: number; perPage: number; scope: "All" | "QCS" | "Local"; keyword?: string }): Promise<Page<PolicyView & { attachments: number }>> {
    return this.#identity.listPolicies(caller, input);
  }

  deletePolicies(caller: Caller, policyIds: readonly number[]): Promise<void> {
    return this.#identity.deletePolicies(caller, policyIds);
  }

  attachPolicy(caller: Caller, kind: "user" | "role", principal: PrincipalBy, policy: PolicyBy): Promise<void> {
    return this.#identity.attachPolicy(caller, kind, principal, policy);
  }

  detachPolicy(caller: Caller, kind: "user" | "role", principal: PrincipalBy, policy: PolicyBy): Promise<void> {
    return this.#identity.detachPolicy(caller, kind, principal, policy);
  }

  listAttachedPolicies(caller: Caller, kind: "user" | "role", principal: PrincipalBy, page: { page: number; perPage: number }): Promise<Page<AttachmentView>> {
    return this.#identity.listAttachedPolicies(caller, kind, principal, page);
  }

  // ---- roles and temporary credentials ----

  createRole(caller: Caller, input: { name: string; trustPolicy: string; description: string; sessionSeconds?: number }): Promise<PrincipalRecord> {
    return this.#identity.createRole(caller, input);
  }

  getRole(caller: Caller, by: PrincipalBy): Promise<PrincipalRecord> {
    return this.#identity.getRole(caller, by);
  }

  deleteRole(caller: Caller, by: PrincipalBy): Promise<void> {
    return this.#identity.deleteRole(caller, by);
  }

  assumeRole(caller: Caller, input: { roleArn: string; sessionName: string; durationSeconds?: number }): Promise<{ tmpSecretId: string; tmpSecretKey: string; token: string; expiresAt: number }> {
    return this.#identity.assumeRole(caller, input);
  }

  /** Removes expired sessions (the scheduler's job). */
  deleteExpiredSessions(): Promise<number> {
    return this.#identity.deleteExpiredSessions();
  }

  simulate(caller: Caller, input: SimulationInput): Promise<{ decision: Decision; explanation: string }> {
    return this.#identity.simulate(caller, input);
  }

  close(): void {
    this.#authentication.close();
    this.#permissions.close();
  }
}
