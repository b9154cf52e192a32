// The persistence port: asynchronous, so that a networked database (PostgreSQL) can implement it
// exactly as the embedded SQLite store does. Split by concern (keys, identity, audit, meta);
// `StoreOperations` and `Store` are their union. The audit part is the audit log's own port.

import type { AuditMeta, AuditStore } from "../audit/port.js";
import type { ImportTokenRecord, KeyRecord, KeyState, KeyVersionRecord, Tag } from "../keys/key.js";

export interface AccessKeyRecord {
  secretId: string;
  /** The SecretKey, wrapped by the root of trust with the SecretId as authenticated data. */
  wrappedSecret: Buffer;
  /** The account (uin) this key acts for. */
  uin: string;
  /** The principal (root or sub-user) the key belongs to. */
  principalId: string;
  status: "Active" | "Inactive";
  createTime: number;
  /** Unix seconds of the last request signed with it (0: never); recorded at most once a minute. */
  lastUsedTime: number;
}

export type PrincipalKind = "root" | "user" | "role";

/**
 * An identity inside an account: the account's root (principalId = the account uin), a sub-user
 * (principalId = its own uin) or a role (principalId = its RoleId).
 */
export interface PrincipalRecord {
  principalId: string;
  accountUin: string;
  kind: PrincipalKind;
  /** Unique per account and kind. */
  name: string;
  remark: string;
  /** Roles only: the trust policy document (who may assume the role), as saved. */
  trustPolicy: string | null;
  /** Roles only: the longest session AssumeRole may grant, seconds. */
  maxSessionSeconds: number;
  createTime: number;
}

/** A custom policy of an account. Preset policies live in code and are never stored. */
export interface PolicyRecord {
  policyId: number;
  accountUin: string;
  name: string;
  description: string;
  /** The policy document (CAM policy language v2.0), as saved after validation. */
  document: string;
  createTime: number;
  updateTime: number;
}

export interface PolicyAttachmentRecord {
  principalId: string;
  policyId: number;
  accountUin: string;
  createTime: number;
}

/** Temporary credentials from AssumeRole. Their secret and token are derived, never stored. */
export interface RoleSessionRecord {
  tmpSecretId: string;
  roleId: string;
  accountUin: string;
  sessionName: string;
  /** The principal id that called AssumeRole. */
  assumedBy: string;
  createTime: number;
  expiresAt: number;
}

/** A KMIP client certificate mapped to the principal its requests act as. */
export interface KmipClientRecord {
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
  accountUin: string;
  principalId: string;
  /** The certificate's subject, as the operator saw it (for lists; identification is by fingerprint). */
  subject: string;
  createTime: number;
}

export interface Page<T> {
  items: T[];
  totalCount: number;
}

export interface KeyListQuery {
  offset: number;
  limit: number;
  /** Only keys in one of these states; undefined means all. */
  states?: readonly KeyState[];
  /** Newest first unless "asc". */
  order: "desc" | "asc";
  /** Case-insensitive substring of the key id or alias. */
  search?: string;
  origin?: KeyRecord["origin"];
  keyUsages?: readonly KeyRecord["keyUsage"][];
  owner?: string;
  /** Only keys of this account (their creatorUin). */
  accountUin?: string;
  /** Each filter must match: the key has the tag key with one of the values (any value when `values` is empty). */
  tagFilters?: readonly { key: string; values: readonly string[] }[];
}

/** Named values (the service's secrets, the audit keys): the store's settings. */
export type MetaStore = AuditMeta;

/** CMKs with their versions, tags and import tokens. */
export interface KeyStore {
  /**
   * Throws `StoreConflictError` when the key id or alias exists; writes nothing then. `firstVersion`
   * is null for a key created without material (EXTERNAL, PendingImport).
   */
  insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void>;
  /** Adds a version to an existing key (rotation, import). Throws `StoreConflictError` ("keyVersion") if it exists. */
  insertKeyVersion(version: KeyVersionRecord): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  getKeyByAlias(alias: string): Promise<KeyRecord | undefined>;
  /**
   * Overwrites the mutable fields (alias, description, state, deletionDate, currentVersion, tags,
   * and the lifecycle fields rotationEnabled, rotateDays, lastRotateTime, nextRotateTime, validTo,
   * materialDigest).
   */
  updateKey(key: KeyRecord): Promise<void>;
  listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }>;
  /** Keys of one account (creatorUin), or of every account when undefined. */
  countKeys(accountUin?: string): Promise<number>;
  getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined>;
  /** Every version of the key, oldest first; empty for an unknown key. */
  listKeyVersions(keyId: string): Promise<KeyVersionRecord[]>;
  /** Removes every version (and so every wrapped material) of the key; returns how many there were. */
  deleteKeyVersions(keyId: string): Promise<number>;
  /** Removes the key with its versions, tags and import tokens; false when there was no such key. */
  deleteKey(keyId: string): Promise<boolean>;
  /**
   * Keys with work due at `now` (unix seconds), oldest due first, at most `limit`: rotation enabled,
   * Enabled and nextRotateTime <= now; PendingDelete and deletionDate <= now; or validTo set and
   * <= now while the key still has material (state not PendingImport).
   */
  listDueKeys(now: number, limit: number): Promise<KeyRecord[]>;

  /** Throws `StoreConflictError` ("importToken") if the token id exists. */
  insertImportToken(token: ImportTokenRecord): Promise<void>;
  getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined>;
  /** Marks an unused token used; false when it is unknown or already used (someone else took it). */
  useImportToken(tokenId: string): Promise<boolean>;
  /** Removes tokens whose expiresAt <= now; returns how many. */
  deleteExpiredImportTokens(now: number): Promise<number>;
}

/** Access keys, principals (root, users, roles), custom policies, their attachments and role sessions. */
export interface IdentityStore {
  /** Throws `StoreConflictError` ("secretId") if the SecretId exists. */
  insertAccessKey(record: AccessKeyRecord): Promise<void>;
  getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined>;
  /** The principal's access keys, oldest first. */
  listAccessKeys(principalId: string): Promise<AccessKeyRecord[]>;
  /** False when there is no such key. */
  updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): Promise<boolean>;
  /** False when there is no such key. */
  deleteAccessKey(secretId: string): Promise<boolean>;
  /** Sets lastUsedTime to `time` if it is older than `time - minIntervalSeconds` (so a busy key writes once a minute). */
  touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): Promise<void>;

  /** Throws `StoreConflictError` ("principal") when the id or the (account, kind, name) exists. */
  insertPrincipal(record: PrincipalRecord): Promise<void>;
  getPrincipal(principalId: string): Promise<PrincipalRecord | undefined>;
  getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined>;
  /** The root principal of every account of the installation (`tresor account list`), oldest first. */
  listAccountRoots(): Promise<PrincipalRecord[]>;
  /** Principals of one kind in an account, by name. */
  listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>>;
  /**
   * Removes the principal with its access keys, policy attachments and role sessions; false when
   * there was no such principal.
   */
  deletePrincipal(principalId: string): Promise<boolean>;

  /** Throws `StoreConflictError` ("policy") when the id or the (account, name) exists. */
  insertPolicy(record: PolicyRecord): Promise<void>;
  getPolicy(policyId: number): Promise<PolicyRecord | undefined>;
  getPolicyByName(accountUin: string, name: string): Promise<PolicyRecord | undefined>;
  /** An account's custom policies by name; `keyword` a case-insensitive substring of the name. */
  listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>>;
  /** Removes the policy and every attachment of it; false when there was no such policy. */
  deletePolicy(policyId: number): Promise<boolean>;

  /** False (and nothing written) when that policy is already attached to that principal. */
  attachPolicy(record: PolicyAttachmentRecord): Promise<boolean>;
  /** False when it was not attached. */
  detachPolicy(principalId: string, policyId: number): Promise<boolean>;
  /** The principal's attachments, oldest first. */
  listAttachedPolicies(principalId: string): Promise<PolicyAttachmentRecord[]>;
  /** How many principals have the policy attached. */
  countPolicyAttachments(policyId: number): Promise<number>;

  /** Throws `StoreConflictError` ("kmipClient") if the fingerprint is mapped already. */
  insertKmipClient(record: KmipClientRecord): Promise<void>;
  getKmipClient(fingerprint: string): Promise<KmipClientRecord | undefined>;
  /** An account's mapped certificates, oldest first. */
  listKmipClients(accountUin: string): Promise<KmipClientRecord[]>;
  /** False when there was no such mapping. */
  deleteKmipClient(fingerprint: string): Promise<boolean>;

  insertRoleSession(record: RoleSessionRecord): Promise<void>;
  getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined>;
  /** Removes sessions whose expiresAt <= now; returns how many. */
  deleteExpiredRoleSessions(now: number): Promise<number>;
}

/** The reads and writes of the store. Inside `Store.transaction` the same calls run on the transaction. */
export interface StoreOperations extends KeyStore, IdentityStore, AuditStore, MetaStore {}

/**
 * The persistence port. Every operation is durable once its promise resolves. Implementations:
 * SQLite (embedded default), PostgreSQL (clusters).
 */
export interface Store extends StoreOperations, StoreBackup, StoreRewrap {
  /**
   * Runs `fn` in one serializable transaction: every read and write inside goes through `tx`; it
   * commits when `fn` resolves and rolls back everything when it rejects. Not nestable. Other
   * callers never see a half-done transaction. `fn` may run more than once (PostgreSQL reruns it
   * after a serialization failure), so it must have no effects outside `tx`.
   */
  transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T>;
  /**
   * Inserts the key (as `insertKey`) unless its account (creatorUin) already holds `maxKeys` keys:
   * false, and nothing written, when it does. Atomic against every other call of it, on every node,
   * so the limit holds under any concurrency; each store picks the cheapest way (PostgreSQL: one
   * lock for key creation instead of serializable count-then-insert transactions that abort each
   * other). `also` runs in the same transaction after the insert (the request's audit record).
   */
  insertKeyWithinLimit(key: KeyRecord, firstVersion: KeyVersionRecord | null, maxKeys: number, also?: (tx: StoreOperations) => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
  constructor(
    readonly field: "keyId" | "alias" | "secretId" | "keyVersion" | "importToken" | "principal" | "policy" | "kmipClient" | "auditHead" | "auditCheckpoint",
    message: string,
  ) {
    super(message);
  }
}

export type { Tag };
export type {
  AccountAuditPage,
  AccountAuditPosition,
  AccountAuditRecord,
  AccountAuditSearch,
  AuditHead,
  AuditRecordFilters,
  AuditRecordQuery,
  AuditStore,
} from "../audit/port.js";

// ---- backup: a consistent export of every table, and an import into an empty store ----------

/** How a column's values travel in a backup, whatever the database calls its type. */
export type PortableType = "integer" | "text" | "boolean" | "bytes";
export type PortableValue = number | string | boolean | Buffer | null;

/** One table as a backup carries it. */
export interface TableShape {
  readonly name: string;
  readonly columns: readonly { readonly name: string; readonly type: PortableType }[];
  /** The primary key's columns: rows are exported in this order. */
  readonly key: readonly string[];
}

/** A read-only view of the whole store at one instant (one read transaction). */
export interface StoreSnapshot {
  readonly schemaVersion: number;
  /** Every table except the migration history, each after the tables its foreign keys point at. */
  readonly tables: readonly TableShape[];
  /**
   * Up to `limit` rows of `table` in key order, after the row whose key values are `after` (null:
   * from the first). Each row holds the values of the table's columns, in their order.
   */
  exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]>;
}

/** Writes into an empty store, inside the one transaction of `StoreBackup.importInto`. */
export interface StoreImport {
  readonly schemaVersion: number;
  readonly tables: readonly TableShape[];
  /** Inserts rows whose values are given in the order of `columns`. Parents before children. */
  importRows(table: string, columns: readonly string[], rows: readonly (readonly PortableValue[])[]): Promise<void>;
}

export interface StoreBackup {
  /**
   * Runs `fn` on one consistent snapshot of every table while other callers go on reading and
   * writing. `fn` must not call the store itself.
   */
  snapshot<T>(fn: (snapshot: StoreSnapshot) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` once, in one transaction on a store whose tables must all be empty (else
   * `StoreNotEmptyError`, before `fn` runs). Commits when `fn` resolves; when it rejects nothing
   * is written. `fn` must not call the store itself.
   */
  importInto<T>(fn: (target: StoreImport) => Promise<T>): Promise<T>;
}

export class StoreNotEmptyError extends Error {
  override readonly name = "StoreNotEmptyError";
}

/** Tables in foreign-key order (parents first), ties by name; `parents` maps a table to those it references. */
export function orderTables(names: readonly string[], parents: ReadonlyMap<string, readonly string[]>): string[] {
  const ordered: string[] = [];
  const placed = new Set<string>();
  const pending = [...names].sort();
  while (pending.length > 0) {
    const ready = pending.filter((t) => (parents.get(t) ?? []).every((p) => p === t || placed.has(p) || !names.includes(p)));
    if (ready.length === 0) throw new Error(`the foreign keys of the tables ${pending.join(", ")} form a cycle`);
    for (const t of ready) {
      ordered.push(t);
      placed.add(t);
      pending.splice(pending.indexOf(t), 1);
    }
  }
  return ordered;
}

// ---- root key rotation: every value wrapped by the root of trust, in pages, rewrapped one by one ----

/** The kinds of stored values the root of trust wraps (meta values are read and written with getMeta/setMeta). */
export const WRAPPED_VALUE_KINDS = ["keyVersion", "accessKey", "importToken"] as const;
export type WrappedValueKind = (typeof WRAPPED_VALUE_KINDS)[number];

/**
 * Where a wrapped value sits, and the order of the pages: a key version's (key id, version); an
 * access key's (SecretId, 0); an import token's (token id, 0).
 */
export interface WrappedValuePosition {
  id: string;
  version: number;
}

export interface WrappedValue extends WrappedValuePosition {
  wrapped: Buffer;
}

export interface StoreRewrap {
  /**
   * Up to `limit` values of `kind` after position `after` (null: from the first), in position order
   * (ids compared as bytes, then versions). Key versions of keys whose protection level is HSM hold
   * a token reference, not a wrapped value, and are left out.
   */
  listWrappedValues(kind: WrappedValueKind, after: WrappedValuePosition | null, limit: number): Promise<WrappedValue[]>;
  /**
   * Compare and set: replaces the value at `position` with `replacement` only if it is still
   * `expected`; false when it is not (changed or deleted meanwhile), and nothing is written then.
   */
  replaceWrappedValue(kind: WrappedValueKind, position: WrappedValuePosition, expected: Buffer, replacement: Buffer): Promise<boolean>;
}

