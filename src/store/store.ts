// The persistence port: asynchronous, so that a networked database (PostgreSQL) can implement it
// exactly as the embedded SQLite store does.

import type { Checkpoint } from "../audit/checkpoint.js";
import type { AuditRecord } from "../audit/record.js";
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

/** The chain head of the audit log: the last record appended (seq 0 and the genesis hash before the first). */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** What a search of one account's records may match; each given filter must match exactly. */
export interface AuditRecordFilters {
  /** The record's number within its account (CloudAudit's EventId). */
  accountSeq?: number;
  action?: string;
  /**
   * One of the record's resource names: `resourceName` holds the names a request acted on joined
   * by "," (a batch action names several keys), and this matches any one of them whole.
   */
  resourceName?: string;
  resourceType?: string;
  requestId?: string;
  principalName?: string;
  accessKeyId?: string;
  readOnly?: boolean;
  /** Records whose flags include this one. */
  flag?: string;
}

/** The whole log in chain order (verification, export, pruning). */
export interface AuditRecordQuery {
  /** Unix milliseconds, inclusive. */
  fromTime?: number;
  /** Unix milliseconds, inclusive. */
  toTime?: number;
  /** A cursor: only records after this seq in the listing's order (greater when "asc", smaller when "desc"). */
  afterSeq?: number;
  limit: number;
  /** By seq. */
  order: "asc" | "desc";
}

/** A record with its number within its account: 1, 2, 3, … in the order the account's records were appended. */
export interface AccountAuditRecord extends AuditRecord {
  accountSeq: number;
}

/** A place in one account's records, which a search walks newest first: by time, then accountSeq, both descending. */
export interface AccountAuditPosition {
  time: number;
  accountSeq: number;
}

/**
 * One call of a search through one account's records (CloudAudit). It examines at most
 * `scanLimit` records of the range, so that no call costs more than a bounded amount of work
 * however large the log and however rare the matches; `next` says where the following call goes on.
 */
export interface AccountAuditSearch {
  accountUin: string;
  /** Unix milliseconds, inclusive. */
  fromTime: number;
  /** Unix milliseconds, inclusive. */
  toTime: number;
  /** Only records after this place (a previous page's `next`). */
  after?: AccountAuditPosition;
  filters: AuditRecordFilters;
  /** Matches returned at most. */
  limit: number;
  /** Records examined at most (at least `limit`). */
  scanLimit: number;
}

export interface AccountAuditPage {
  /** Newest first. */
  records: AccountAuditRecord[];
  /** Where the next call goes on; absent when the range holds nothing more. */
  next?: AccountAuditPosition;
}

/** A search's equality filter that has an index of (account_uin, column, time, account_seq), most selective first. */
export const AUDIT_INDEXED_FILTERS = [
  ["requestId", "request_id", "audit_records_by_account_request"],
  ["accessKeyId", "access_key_id", "audit_records_by_account_access_key"],
  ["principalName", "principal_name", "audit_records_by_account_principal"],
  ["action", "action", "audit_records_by_account_action"],
] as const satisfies readonly (readonly [keyof AuditRecordFilters, string, string])[];

/**
 * The index a search walks: the account's record number for an EventId, else the first indexed
 * equality filter given, else time alone. Its column, if any, is compared with `value`.
 */
export function auditSearchIndex(filters: AuditRecordFilters): { index: string; column?: string; name?: keyof typeof AUDIT_FILTER_COLUMNS } {
  if (filters.accountSeq !== undefined) return { index: "audit_records_by_account_seq", column: "account_seq", name: "accountSeq" };
  for (const [name, column, index] of AUDIT_INDEXED_FILTERS) if (filters[name] !== undefined) return { index, column, name };
  return { index: "audit_records_by_account_time" };
}

/** The upper end of a search's walk, exclusive: the cursor or the end of the time range, whichever comes first. */
export function auditSearchUpper(search: AccountAuditSearch): AccountAuditPosition {
  const end = { time: search.toTime + 1, accountSeq: 0 };
  const after = search.after;
  return after !== undefined && (after.time < end.time || (after.time === end.time && after.accountSeq < end.accountSeq)) ? after : end;
}

export function checkAuditSearch(search: AccountAuditSearch): void {
  if (typeof search.accountUin !== "string") throw new TypeError(`"accountUin" must be a string`);
  for (const name of ["fromTime", "toTime"] as const) {
    if (!Number.isSafeInteger(search[name])) throw new RangeError(`"${name}" must be a safe integer, got ${search[name]}`);
  }
  if (search.after !== undefined && !(Number.isSafeInteger(search.after.time) && Number.isSafeInteger(search.after.accountSeq))) {
    throw new RangeError(`"after" must hold safe integers`);
  }
  if (!Number.isSafeInteger(search.limit) || search.limit < 1) throw new RangeError(`"limit" must be a positive integer, got ${search.limit}`);
  if (!Number.isSafeInteger(search.scanLimit) || search.scanLimit < search.limit) throw new RangeError(`"scanLimit" must be an integer of at least "limit", got ${search.scanLimit}`);
}

/**
 * The audit log's part of the store. On StoreOperations, so that a state change and its record
 * commit in one transaction.
 */
export interface AuditStore {
  /**
   * The chain head (undefined before the first record). Inside a transaction it also locks the
   * head until the transaction ends, so nobody else appends meanwhile; as the first statement of a
   * transaction it reads the latest head (PostgreSQL: the lock is taken before the snapshot).
   */
  auditHead(): Promise<AuditHead | undefined>;
  /**
   * Appends records that continue the chain: consecutive seqs, each prevHash the hash before it,
   * the first one following the current head. Otherwise throws `StoreConflictError` ("auditHead")
   * and writes nothing. Moves the head to the last record.
   */
  appendAuditRecords(records: readonly AuditRecord[]): Promise<void>;
  listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]>;
  /** One call of a bounded search through one account's records (see AccountAuditSearch). */
  searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage>;
  /** Where the account's record `accountSeq` stands, undefined when there is none (any more). */
  accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined>;
  /** Throws `StoreConflictError` ("auditCheckpoint") when one with the same seq and prunedThrough exists. */
  insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Checkpoints by (seq, prunedThrough), at most `limit` (all when omitted). */
  listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]>;
  /**
   * Deletes the records with seq <= throughSeq and the checkpoints with seq <= throughSeq (they
   * cover only pruned records); returns how many records. The head stays. The caller records the
   * pruned prefix in a new checkpoint, in the same transaction.
   */
  pruneAuditRecords(throughSeq: number): Promise<number>;
}

/** The reads and writes of the store. Inside `Store.transaction` the same calls run on the transaction. */
export interface StoreOperations extends AuditStore {
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;

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

  insertRoleSession(record: RoleSessionRecord): Promise<void>;
  getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined>;
  /** Removes sessions whose expiresAt <= now; returns how many. */
  deleteExpiredRoleSessions(now: number): Promise<number>;
}

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
    readonly field: "keyId" | "alias" | "secretId" | "keyVersion" | "importToken" | "principal" | "policy" | "auditHead" | "auditCheckpoint",
    message: string,
  ) {
    super(message);
  }
}

export type { Tag };

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

// ---- audit log: checks both stores make before an append -----------------------------------------

/** Throws unless `records` is non-empty, with consecutive seqs, each linked to the one before. */
export function checkAuditAppend(records: readonly AuditRecord[]): { first: AuditRecord; last: AuditRecord } {
  const first = records[0];
  const last = records.at(-1);
  if (first === undefined || last === undefined) throw new RangeError("appendAuditRecords: no records");
  if (!Number.isSafeInteger(first.seq) || first.seq < 1) throw new RangeError(`appendAuditRecords: seq must be a positive safe integer, got ${first.seq}`);
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    const before = records[i - 1]!;
    if (r.seq !== before.seq + 1 || r.prevHash !== before.hash) {
      throw new RangeError(`appendAuditRecords: the record with seq ${r.seq} does not follow the one with seq ${before.seq}`);
    }
  }
  return { first, last };
}

/** The search filters compared for equality, with the column each compares. */
export const AUDIT_FILTER_COLUMNS = {
  accountSeq: "account_seq",
  action: "action",
  resourceType: "resource_type",
  requestId: "request_id",
  principalName: "principal_name",
  accessKeyId: "access_key_id",
  readOnly: "read_only",
} as const satisfies Readonly<Record<Exclude<keyof AuditRecordFilters, "flag" | "resourceName">, string>>;

export function checkAuditQuery(query: AuditRecordQuery): void {
  if (!Number.isSafeInteger(query.limit) || query.limit < 0) throw new RangeError(`"limit" must be a non-negative integer, got ${query.limit}`);
  if (query.order !== "asc" && query.order !== "desc") throw new RangeError(`"order" must be "asc" or "desc"`);
  for (const name of ["fromTime", "toTime", "afterSeq"] as const) {
    const v = query[name];
    if (v !== undefined && !Number.isSafeInteger(v)) throw new RangeError(`"${name}" must be a safe integer, got ${v}`);
  }
}
