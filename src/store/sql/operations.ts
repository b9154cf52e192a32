// The store's operations, written once over one `exec` for SQLite and PostgreSQL: each is a shared
// statement, its values and the mapping of its rows. What the dialects must do differently (an
// operation of several statements, a page with its count) each store writes itself.

import type { Checkpoint } from "../../audit/checkpoint.js";
import { checkAuditQuery, checkAuditSearch, type AccountAuditPage, type AccountAuditPosition, type AccountAuditSearch, type AuditHead, type AuditRecordQuery } from "../../audit/port.js";
import type { AuditRecord } from "../../audit/record.js";
import type { ImportTokenRecord, KeyRecord, KeyVersionRecord } from "../../keys/key.js";
import { StoreConflictError, type AccessKeyRecord, type KeyListQuery, type KmipClientRecord, type Page, type StoreOperations } from "../store.js";
import type { PolicyAttachmentRecord, PolicyRecord, PrincipalKind, PrincipalRecord, RoleSessionRecord } from "../store.js";
import type { WrappedValue, WrappedValueKind, WrappedValuePosition } from "../store.js";
import { auditListQuery, auditSearchPage, auditSearchQueries } from "./audit.js";
import * as rows from "./rows.js";
import type { SharedStatements, Dialect, SqlStatement } from "./statements.js";

/** A write may fail with an expected error (a conflict): a store may run it under a savepoint. */
export type Kind = "read" | "write";

/** A unique or foreign-key violation, as both databases report it: `on` names the unique columns ("table.column, …"). */
export type Violation = { kind: "unique"; on: string } | { kind: "foreignKey" };

/** Maps a violation to what the port promises; undefined leaves the error as it is. */
export type ViolationMapper = (violation: Violation) => Error | undefined;

/** What a statement gave: its rows, and for a write without RETURNING how many rows it changed. */
export type RowsTo<R, T> = (rows: R[], changes: number) => T;

export abstract class SqlOperations implements StoreOperations {
  protected readonly dialect: Dialect;
  protected readonly sql: SharedStatements;

  constructor(dialect: Dialect, sql: SharedStatements) {
    this.dialect = dialect;
    this.sql = sql;
  }

  /** Runs one statement and maps its result; rejects with the store's clean error, `violations` mapped first. */
  protected abstract exec<R, T>(op: string, s: SqlStatement, values: unknown[], kind: Kind, result: RowsTo<R, T>, violations?: ViolationMapper): Promise<T>;

  // ---- written by each store: several statements, or pages with their count in one snapshot ----

  abstract insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void>;
  abstract updateKey(key: KeyRecord): Promise<void>;
  abstract listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }>;
  abstract deleteKey(keyId: string): Promise<boolean>;
  abstract listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>>;
  abstract deletePrincipal(principalId: string): Promise<boolean>;
  abstract listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>>;
  abstract deletePolicy(policyId: number): Promise<boolean>;
  abstract appendAuditRecords(records: readonly AuditRecord[]): Promise<void>;
  abstract pruneAuditRecords(throughSeq: number): Promise<number>;

  // ---- meta ----

  getMeta(name: string): Promise<string | undefined> {
    return this.exec("getMeta", this.sql.getMeta, [name], "read", metaValue);
  }

  setMeta(name: string, value: string): Promise<void> {
    return this.exec("setMeta", this.sql.setMeta, [name, value], "write", nothing);
  }

  // ---- keys ----

  insertKeyVersion(version: KeyVersionRecord): Promise<void> {
    return this.exec("insertKeyVersion", this.sql.insertKeyVersion, rows.keyVersionValues(version), "write", nothing, (v) => {
      if (v.kind === "foreignKey") return new Error(`insertKeyVersion: no key with id ${version.keyId}`);
      return v.on === "key_versions.key_id, key_versions.version" ? new StoreConflictError("keyVersion", `key ${version.keyId} already has a version ${version.version}`) : undefined;
    });
  }

  getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.exec("getKey", this.sql.getKey, [keyId], "read", firstKey);
  }

  getKeyByAlias(alias: string): Promise<KeyRecord | undefined> {
    return this.exec("getKeyByAlias", this.sql.getKeyByAlias, [alias], "read", firstKey);
  }

  countKeys(accountUin?: string): Promise<number> {
    return accountUin === undefined
      ? this.exec("countKeys", this.sql.countKeys, [], "read", count)
      : this.exec("countKeys", this.sql.countKeysOf, [accountUin], "read", count);
  }

  getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    // An int4 parameter out of range would be an error in PostgreSQL; no such version exists either way.
    if (!Number.isSafeInteger(version) || version < -2_147_483_648 || version > 2_147_483_647) return Promise.resolve(undefined);
    return this.exec("getKeyVersion", this.sql.getKeyVersion, [keyId, version], "read", firstKeyVersion);
  }

  listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    return this.exec("listKeyVersions", this.sql.listKeyVersions, [keyId], "read", (r: rows.KeyVersionRow[]) => r.map(rows.fromKeyVersionRow));
  }

  deleteKeyVersions(keyId: string): Promise<number> {
    return this.exec("deleteKeyVersions", this.sql.deleteKeyVersions, [keyId], "write", changes);
  }

  async listDueKeys(now: number, limit: number): Promise<KeyRecord[]> {
    checkCount("limit", limit);
    return this.exec("listDueKeys", this.sql.listDueKeys, [now, limit], "read", (r: rows.KeyRow[]) => r.map(rows.fromKeyRow));
  }

  insertImportToken(token: ImportTokenRecord): Promise<void> {
    const values = [token.tokenId, token.keyId, token.wrappingKeySpec, token.wrappingAlgorithm, token.wrappedPrivateKey, token.expiresAt, token.used];
    return this.exec("insertImportToken", this.sql.insertImportToken, values, "write", nothing, (v) => {
      if (v.kind === "foreignKey") return new Error(`insertImportToken: no key with id ${token.keyId}`);
      return v.on === "import_tokens.token_id" ? new StoreConflictError("importToken", `an import token ${token.tokenId} already exists`) : undefined;
    });
  }

  getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined> {
    return this.exec("getImportToken", this.sql.getImportToken, [tokenId], "read", rows.first(rows.fromImportTokenRow));
  }

  useImportToken(tokenId: string): Promise<boolean> {
    return this.exec("useImportToken", this.sql.useImportToken, [tokenId], "write", changedOne);
  }

  deleteExpiredImportTokens(now: number): Promise<number> {
    return this.exec("deleteExpiredImportTokens", this.sql.deleteExpiredImportTokens, [now], "write", changes);
  }

  // ---- identity ----

  insertAccessKey(record: AccessKeyRecord): Promise<void> {
    const values = [record.secretId, record.wrappedSecret, record.uin, record.principalId, record.status, record.createTime, record.lastUsedTime];
    return this.exec("insertAccessKey", this.sql.insertAccessKey, values, "write", nothing, (v) =>
      v.kind === "unique" && v.on === "access_keys.secret_id"
        ? new StoreConflictError("secretId", `an access key with SecretId ${record.secretId} already exists`)
        : undefined,
    );
  }

  getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined> {
    return this.exec("getAccessKey", this.sql.getAccessKey, [secretId], "read", firstAccessKey);
  }

  listAccountRoots(): Promise<PrincipalRecord[]> {
    return this.exec("listAccountRoots", this.sql.listAccountRoots, [], "read", (r: rows.PrincipalRow[]) => r.map(rows.fromPrincipalRow));
  }

  listAccessKeys(principalId: string): Promise<AccessKeyRecord[]> {
    return this.exec("listAccessKeys", this.sql.listAccessKeys, [principalId], "read", (r: rows.AccessKeyRow[]) => r.map(rows.fromAccessKeyRow));
  }

  updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): Promise<boolean> {
    return this.exec("updateAccessKeyStatus", this.sql.updateAccessKeyStatus, [secretId, status], "write", changedOne);
  }

  deleteAccessKey(secretId: string): Promise<boolean> {
    return this.exec("deleteAccessKey", this.sql.deleteAccessKey, [secretId], "write", changedOne);
  }

  touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): Promise<void> {
    return this.exec("touchAccessKey", this.sql.touchAccessKey, [secretId, time, time - minIntervalSeconds], "write", nothing);
  }

  insertKmipClient(record: KmipClientRecord): Promise<void> {
    const values = [record.fingerprint, record.accountUin, record.principalId, record.subject, record.createTime];
    return this.exec("insertKmipClient", this.sql.insertKmipClient, values, "write", nothing, (v) =>
      v.kind === "unique" && v.on === "kmip_clients.fingerprint"
        ? new StoreConflictError("kmipClient", `the certificate ${record.fingerprint} is mapped already`)
        : undefined,
    );
  }

  getKmipClient(fingerprint: string): Promise<KmipClientRecord | undefined> {
    return this.exec("getKmipClient", this.sql.getKmipClient, [fingerprint], "read", rows.first(rows.fromKmipClientRow));
  }

  listKmipClients(accountUin: string): Promise<KmipClientRecord[]> {
    return this.exec("listKmipClients", this.sql.listKmipClients, [accountUin], "read", (r: rows.KmipClientRow[]) => r.map(rows.fromKmipClientRow));
  }

  deleteKmipClient(fingerprint: string): Promise<boolean> {
    return this.exec("deleteKmipClient", this.sql.deleteKmipClient, [fingerprint], "write", changedOne);
  }

  insertPrincipal(record: PrincipalRecord): Promise<void> {
    const values = [record.principalId, record.accountUin, record.kind, record.name, record.remark, record.trustPolicy, record.maxSessionSeconds, record.createTime];
    return this.exec("insertPrincipal", this.sql.insertPrincipal, values, "write", nothing, (v) => {
      if (v.kind !== "unique" || !v.on.startsWith("principals.")) return undefined;
      return v.on === "principals.principal_id"
        ? new StoreConflictError("principal", `a principal with id ${record.principalId} already exists`)
        : new StoreConflictError("principal", `a ${record.kind} named "${record.name}" already exists in account ${record.accountUin}`);
    });
  }

  getPrincipal(principalId: string): Promise<PrincipalRecord | undefined> {
    return this.exec("getPrincipal", this.sql.getPrincipal, [principalId], "read", firstPrincipal);
  }

  getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    return this.exec("getPrincipalByName", this.sql.getPrincipalByName, [accountUin, kind, name], "read", firstPrincipal);
  }

  insertPolicy(record: PolicyRecord): Promise<void> {
    const values = [record.policyId, record.accountUin, record.name, record.description, record.document, record.createTime, record.updateTime];
    return this.exec("insertPolicy", this.sql.insertPolicy, values, "write", nothing, (v) => {
      if (v.kind !== "unique" || !v.on.startsWith("policies.")) return undefined;
      return v.on === "policies.policy_id"
        ? new StoreConflictError("policy", `a policy with id ${record.policyId} already exists`)
        : new StoreConflictError("policy", `a policy named "${record.name}" already exists in account ${record.accountUin}`);
    });
  }

  getPolicy(policyId: number): Promise<PolicyRecord | undefined> {
    if (!isPolicyId(policyId)) return Promise.resolve(undefined);
    return this.exec("getPolicy", this.sql.getPolicy, [policyId], "read", firstPolicy);
  }

  getPolicyByName(accountUin: string, name: string): Promise<PolicyRecord | undefined> {
    return this.exec("getPolicyByName", this.sql.getPolicyByName, [accountUin, name], "read", firstPolicy);
  }

  attachPolicy(record: PolicyAttachmentRecord): Promise<boolean> {
    const values = [record.principalId, record.policyId, record.accountUin, record.createTime];
    return this.exec("attachPolicy", this.sql.attachPolicy, values, "write", changedOne, (v) =>
      v.kind === "foreignKey" ? new Error(`attachPolicy: no principal with id ${record.principalId}`) : undefined,
    );
  }

  async detachPolicy(principalId: string, policyId: number): Promise<boolean> {
    if (!isPolicyId(policyId)) return false;
    return this.exec("detachPolicy", this.sql.detachPolicy, [principalId, policyId], "write", changedOne);
  }

  listAttachedPolicies(principalId: string): Promise<PolicyAttachmentRecord[]> {
    return this.exec("listAttachedPolicies", this.sql.listAttachedPolicies, [principalId], "read", (r: rows.PolicyAttachmentRow[]) =>
      r.map(rows.fromPolicyAttachmentRow),
    );
  }

  async countPolicyAttachments(policyId: number): Promise<number> {
    if (!isPolicyId(policyId)) return 0;
    return this.exec("countPolicyAttachments", this.sql.countPolicyAttachments, [policyId], "read", count);
  }

  insertRoleSession(record: RoleSessionRecord): Promise<void> {
    const values = [record.tmpSecretId, record.roleId, record.accountUin, record.sessionName, record.assumedBy, record.createTime, record.expiresAt];
    return this.exec("insertRoleSession", this.sql.insertRoleSession, values, "write", nothing, (v) =>
      v.kind === "foreignKey" ? new Error(`insertRoleSession: no principal with id ${record.roleId}`) : undefined,
    );
  }

  getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined> {
    return this.exec("getRoleSession", this.sql.getRoleSession, [tmpSecretId], "read", rows.first(rows.fromRoleSessionRow));
  }

  deleteExpiredRoleSessions(now: number): Promise<number> {
    return this.exec("deleteExpiredRoleSessions", this.sql.deleteExpiredRoleSessions, [now], "write", changes);
  }

  // ---- audit log ----

  auditHead(): Promise<AuditHead | undefined> {
    return this.exec("auditHead", this.sql.auditHead, [], "read", (r: AuditHead[]) => r[0]);
  }

  async listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]> {
    checkAuditQuery(query);
    const { statement, values } = auditListQuery(this.dialect, query);
    return this.exec("listAuditRecords", statement, values, "read", (r: rows.AuditRow[]) => r.map(rows.fromAuditRow));
  }

  async searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage> {
    checkAuditSearch(search);
    const queries = auditSearchQueries(this.dialect, search);
    const boundary = await this.exec("searchAccountAudit", queries.boundary.statement, queries.boundary.values, "read", firstPosition);
    const found = queries.rows(boundary);
    const records = await this.exec("searchAccountAudit", found.statement, found.values, "read", (r: rows.AccountAuditRow[]) => r);
    return auditSearchPage(search, records, boundary);
  }

  accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined> {
    return this.exec("accountAuditPosition", this.sql.accountAuditPosition, [accountUin, accountSeq], "read", firstPosition);
  }

  insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void> {
    return this.exec("insertAuditCheckpoint", this.sql.insertAuditCheckpoint, rows.checkpointValues(checkpoint), "write", nothing, (v) =>
      v.kind === "unique" && v.on.startsWith("audit_checkpoints.")
        ? new StoreConflictError("auditCheckpoint", `an audit checkpoint at seq ${checkpoint.seq} (pruned through ${checkpoint.prunedThrough}) exists already`)
        : undefined,
    );
  }

  async listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]> {
    if (query.limit !== undefined) checkCount("limit", query.limit);
    const s = query.order === "asc" ? this.sql.listAuditCheckpointsAsc : this.sql.listAuditCheckpointsDesc;
    return this.exec("listAuditCheckpoints", s, [query.limit ?? this.dialect.noLimit], "read", (r: rows.CheckpointRow[]) => r.map(rows.fromCheckpointRow));
  }

  // ---- root key rotation (StoreRewrap): wrapped values in pages, compare-and-set ----

  async listWrappedValues(kind: WrappedValueKind, after: WrappedValuePosition | null, limit: number): Promise<WrappedValue[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`"limit" must be a positive integer, got ${limit}`);
    return this.exec("listWrappedValues", this.sql.wrapped[kind].list, [after?.id ?? null, after?.version ?? 0, limit], "read", (r: WrappedValue[]) =>
      r.map(({ id, version, wrapped }) => ({ id, version, wrapped })),
    );
  }

  replaceWrappedValue(kind: WrappedValueKind, position: WrappedValuePosition, expected: Buffer, replacement: Buffer): Promise<boolean> {
    return this.exec("replaceWrappedValue", this.sql.wrapped[kind].replace, [position.id, position.version, expected, replacement], "write", changedOne);
  }
}

// The mappings of results, made once (not a closure per call on the hot paths).
const nothing = (): void => undefined;
const changes = (_rows: unknown[], n: number): number => n;
const changedOne = (_rows: unknown[], n: number): boolean => n === 1;
const count = (r: rows.CountRow[]): number => Number(r[0]?.n ?? 0);
const metaValue = (r: { value: string }[]): string | undefined => r[0]?.value;
export const firstKey = rows.first(rows.fromKeyRow);

/** `key` frozen with its tags, for a record shared by several readers: no reader can change what the others see. */
export function frozenKey<K extends KeyRecord | undefined>(key: K): K {
  if (key === undefined) return key;
  for (const tag of key.tags) Object.freeze(tag);
  Object.freeze(key.tags);
  return Object.freeze(key);
}
const firstKeyVersion = rows.first(rows.fromKeyVersionRow);
const firstAccessKey = rows.first(rows.fromAccessKeyRow);
const firstPrincipal = rows.first(rows.fromPrincipalRow);
const firstPolicy = rows.first(rows.fromPolicyRow);
const firstPosition = rows.first((row: { time: number; account_seq: number }): AccountAuditPosition => ({ time: Number(row.time), accountSeq: Number(row.account_seq) }));

/** The conflicts of inserting or updating a key (its id, its alias). */
export function keyConflict(keyId: string, alias: string): ViolationMapper {
  return (v) => {
    if (v.kind !== "unique") return undefined;
    if (v.on === "keys.key_id") return new StoreConflictError("keyId", `a key with id ${keyId} already exists`);
    if (v.on === "keys.alias") return new StoreConflictError("alias", `a key with alias "${alias}" already exists`);
    return undefined;
  };
}

export function checkFirstVersion(key: KeyRecord, firstVersion: KeyVersionRecord | null): void {
  if (firstVersion !== null && firstVersion.keyId !== key.keyId) {
    throw new Error(`insertKey: the first version belongs to key ${firstVersion.keyId}, not ${key.keyId}`);
  }
}

export function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`"${name}" must be a non-negative integer, got ${value}`);
}

/** The LIKE pattern of a case-insensitive substring search: its wildcards escaped (with ESCAPE '\'). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Policy ids are 64-bit integers: any other number names no policy (and would be an error as a parameter). */
function isPolicyId(policyId: number): boolean {
  return Number.isSafeInteger(policyId);
}
