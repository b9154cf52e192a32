// The embedded Store: one SQLite file in WAL mode through better-sqlite3. Every acknowledged write
// is durable (synchronous=FULL fsyncs the WAL on each commit), so a key handed to a caller
// survives kill -9 and power loss. better-sqlite3 is synchronous; the async port is met by running
// each operation synchronously and queueing only behind an open transaction (see SqliteStore).

import { AsyncLocalStorage } from "node:async_hooks";
import { closeSync, constants, existsSync, fsyncSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import type { ImportTokenRecord, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, KeyVersionRecord, ProtectionLevel, Tag } from "../keys/key.js";
import { MIGRATIONS, type Migration } from "./migrations/index.js";
import { StoreConflictError, type AccessKeyRecord, type KeyListQuery, type Store, type StoreOperations } from "./store.js";
import type { Page, PolicyAttachmentRecord, PolicyRecord, PrincipalKind, PrincipalRecord, RoleSessionRecord } from "./store.js";
import { orderTables, StoreNotEmptyError, type PortableType, type PortableValue, type StoreImport, type StoreSnapshot, type TableShape } from "./store.js";
import type { WrappedValue, WrappedValueKind, WrappedValuePosition } from "./store.js";
import { AUDIT_FILTER_COLUMNS, auditSearchIndex, auditSearchUpper, checkAuditAppend, checkAuditQuery, checkAuditSearch, type AuditHead, type AuditRecordQuery } from "./store.js";
import type { AccountAuditPage, AccountAuditPosition, AccountAuditSearch } from "./store.js";
import type { Checkpoint } from "../audit/checkpoint.js";
import { GENESIS_HASH, type AuditRecord, type AuditService } from "../audit/record.js";

const BUSY_TIMEOUT_MS = 5000;

interface KeyRow {
  key_id: string;
  alias: string;
  description: string;
  key_usage: string;
  key_spec: string;
  origin: string;
  state: string;
  creator_uin: string;
  owner: string;
  create_time: number;
  deletion_date: number;
  current_version: number;
  rotation_enabled: number;
  rotate_days: number;
  last_rotate_time: number;
  next_rotate_time: number;
  valid_to: number;
  material_digest: Buffer | null;
  protection_level: string;
  tags_json: string;
}

interface ImportTokenRow {
  token_id: string;
  key_id: string;
  wrapping_key_spec: string;
  wrapping_algorithm: string;
  wrapped_private_key: Buffer;
  expires_at: number;
  used: number;
}

interface KeyVersionRow {
  key_id: string;
  version: number;
  wrapped_material: Buffer;
  public_key: Buffer | null;
  create_time: number;
}

interface AccessKeyRow {
  secret_id: string;
  wrapped_secret: Buffer;
  uin: string;
  principal_id: string;
  status: string;
  create_time: number;
  last_used_time: number;
}

interface PrincipalRow {
  principal_id: string;
  account_uin: string;
  kind: string;
  name: string;
  remark: string;
  trust_policy: string | null;
  max_session_seconds: number;
  create_time: number;
}

interface PolicyRow {
  policy_id: number;
  account_uin: string;
  name: string;
  description: string;
  document: string;
  create_time: number;
  update_time: number;
}

interface PolicyAttachmentRow {
  principal_id: string;
  policy_id: number;
  account_uin: string;
  create_time: number;
}

interface RoleSessionRow {
  tmp_secret_id: string;
  role_id: string;
  account_uin: string;
  session_name: string;
  assumed_by: string;
  create_time: number;
  expires_at: number;
}

interface AuditRow {
  seq: number;
  time: number;
  request_id: string;
  trace_id: string;
  node_id: string;
  account_uin: string;
  principal_uin: string;
  principal_name: string;
  access_key_id: string;
  source_ip: string;
  user_agent: string;
  region: string;
  service: string;
  action: string;
  resource_type: string;
  resource_name: string;
  read_only: number;
  result: string;
  latency_ms: number;
  params_digest: string;
  flags: string;
  prev_hash: string;
  hash: string;
}

interface AccountAuditRow extends AuditRow {
  account_seq: number;
}

const AUDIT_COLUMNS = `seq, time, request_id, trace_id, node_id, account_uin, principal_uin, principal_name, access_key_id,
  source_ip, user_agent, region, service, action, resource_type, resource_name, read_only, result, latency_ms,
  params_digest, flags, prev_hash, hash`.replace(/\s+/g, " ");

interface CheckpointRow {
  seq: number;
  pruned_through: number;
  time: number;
  head_hash: string;
  pruned_head_hash: string;
  signature: string;
}

const CHECKPOINT_COLUMNS = "seq, pruned_through, time, head_hash, pruned_head_hash, signature";

/** Named parameters of the list statements; null means "no filter". Lists travel as JSON arrays. */
interface ListParams {
  states: string | null;
  pattern: string | null;
  origin: string | null;
  keyUsages: string | null;
  owner: string | null;
  accountUin: string | null;
  tagFilters: string | null;
}

// Tags come along as one JSON column, so reading a key is a single statement (no read transaction
// on the hot path of every cryptographic request).
const KEY_COLUMNS = `k.key_id, k.alias, k.description, k.key_usage, k.key_spec, k.origin, k.state,
  k.creator_uin, k.owner, k.create_time, k.deletion_date, k.current_version,
  k.rotation_enabled, k.rotate_days, k.last_rotate_time, k.next_rotate_time, k.valid_to, k.material_digest,
  k.protection_level,
  (SELECT json_group_array(json_array(tag_key, tag_value))
     FROM (SELECT tag_key, tag_value FROM key_tags WHERE key_id = k.key_id ORDER BY tag_key)) AS tags_json`;

// Every filter of KeyListQuery in one statement, so the statements are prepared once: a null
// parameter disables its filter, lists arrive as JSON and are expanded with json_each.
// An empty list matches nothing (no state is "one of no states").
const LIST_WHERE = `
  (@states IS NULL OR k.state IN (SELECT value FROM json_each(@states)))
  AND (@pattern IS NULL OR k.key_id LIKE @pattern ESCAPE '\\' OR k.alias LIKE @pattern ESCAPE '\\')
  AND (@origin IS NULL OR k.origin = @origin)
  AND (@keyUsages IS NULL OR k.key_usage IN (SELECT value FROM json_each(@keyUsages)))
  AND (@owner IS NULL OR k.owner = @owner)
  AND (@accountUin IS NULL OR k.creator_uin = @accountUin)
  AND (@tagFilters IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each(@tagFilters) AS f
    WHERE NOT EXISTS (
      SELECT 1 FROM key_tags AS t
      WHERE t.key_id = k.key_id
        AND t.tag_key = json_extract(f.value, '$.key')
        AND (json_array_length(f.value, '$.values') = 0
             OR t.tag_value IN (SELECT value FROM json_each(f.value, '$.values'))))))`;

const ACCESS_KEY_COLUMNS = "secret_id, wrapped_secret, uin, principal_id, status, create_time, last_used_time";
const PRINCIPAL_COLUMNS = "principal_id, account_uin, kind, name, remark, trust_policy, max_session_seconds, create_time";
const POLICY_COLUMNS = "policy_id, account_uin, name, description, document, create_time, update_time";
const ROLE_SESSION_COLUMNS = "tmp_secret_id, role_id, account_uin, session_name, assumed_by, create_time, expires_at";

function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE name = ?"),
    setMeta: db.prepare<[string, string]>(
      "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    ),
    insertKey: db.prepare<[Omit<KeyRow, "tags_json">]>(
      `INSERT INTO keys (key_id, alias, description, key_usage, key_spec, origin, state, creator_uin, owner,
         create_time, deletion_date, current_version, rotation_enabled, rotate_days, last_rotate_time,
         next_rotate_time, valid_to, material_digest, protection_level)
       VALUES (@key_id, @alias, @description, @key_usage, @key_spec, @origin, @state, @creator_uin, @owner,
         @create_time, @deletion_date, @current_version, @rotation_enabled, @rotate_days, @last_rotate_time,
         @next_rotate_time, @valid_to, @material_digest, @protection_level)`,
    ),
    updateKey: db.prepare<[Omit<KeyRow, "tags_json" | "key_usage" | "key_spec" | "origin" | "creator_uin" | "owner" | "create_time" | "protection_level">]>(
      `UPDATE keys SET alias = @alias, description = @description, state = @state,
         deletion_date = @deletion_date, current_version = @current_version,
         rotation_enabled = @rotation_enabled, rotate_days = @rotate_days, last_rotate_time = @last_rotate_time,
         next_rotate_time = @next_rotate_time, valid_to = @valid_to, material_digest = @material_digest
       WHERE key_id = @key_id`,
    ),
    listKeyVersions: db.prepare<[string], KeyVersionRow>(
      "SELECT key_id, version, wrapped_material, public_key, create_time FROM key_versions WHERE key_id = ? ORDER BY version",
    ),
    deleteKeyVersions: db.prepare<[string]>("DELETE FROM key_versions WHERE key_id = ?"),
    deleteImportTokensOfKey: db.prepare<[string]>("DELETE FROM import_tokens WHERE key_id = ?"),
    deleteKey: db.prepare<[string]>("DELETE FROM keys WHERE key_id = ?"),
    listDueKeys: db.prepare<[{ now: number; limit: number }], KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM keys AS k
       WHERE (k.rotation_enabled = 1 AND k.state = 'Enabled' AND k.next_rotate_time <= @now)
          OR (k.state = 'PendingDelete' AND k.deletion_date <= @now)
          OR (k.valid_to > 0 AND k.valid_to <= @now AND k.state <> 'PendingImport')
       ORDER BY min(
         CASE WHEN k.rotation_enabled = 1 AND k.state = 'Enabled' THEN k.next_rotate_time ELSE @now END,
         CASE WHEN k.state = 'PendingDelete' THEN k.deletion_date ELSE @now END,
         CASE WHEN k.valid_to > 0 THEN k.valid_to ELSE @now END), k.seq
       LIMIT @limit`,
    ),
    insertImportToken: db.prepare<[ImportTokenRow]>(
      `INSERT INTO import_tokens (token_id, key_id, wrapping_key_spec, wrapping_algorithm, wrapped_private_key, expires_at, used)
       VALUES (@token_id, @key_id, @wrapping_key_spec, @wrapping_algorithm, @wrapped_private_key, @expires_at, @used)`,
    ),
    getImportToken: db.prepare<[string], ImportTokenRow>(
      `SELECT token_id, key_id, wrapping_key_spec, wrapping_algorithm, wrapped_private_key, expires_at, used
       FROM import_tokens WHERE token_id = ?`,
    ),
    useImportToken: db.prepare<[string]>("UPDATE import_tokens SET used = 1 WHERE token_id = ? AND used = 0"),
    deleteExpiredImportTokens: db.prepare<[number]>("DELETE FROM import_tokens WHERE expires_at <= ?"),
    getKey: db.prepare<[string], KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys AS k WHERE k.key_id = ?`),
    getKeyByAlias: db.prepare<[string], KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys AS k WHERE k.alias = ?`),
    countKeys: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM keys"),
    countKeysOf: db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM keys WHERE creator_uin = ?"),
    listKeysDesc: db.prepare<[ListParams & { limit: number; offset: number }], KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM keys AS k WHERE ${LIST_WHERE}
       ORDER BY k.create_time DESC, k.seq DESC LIMIT @limit OFFSET @offset`,
    ),
    listKeysAsc: db.prepare<[ListParams & { limit: number; offset: number }], KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM keys AS k WHERE ${LIST_WHERE}
       ORDER BY k.create_time ASC, k.seq ASC LIMIT @limit OFFSET @offset`,
    ),
    countMatches: db.prepare<[ListParams], { n: number }>(`SELECT count(*) AS n FROM keys AS k WHERE ${LIST_WHERE}`),
    deleteTags: db.prepare<[string]>("DELETE FROM key_tags WHERE key_id = ?"),
    insertTag: db.prepare<[string, string, string]>("INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)"),
    insertKeyVersion: db.prepare<[KeyVersionRow]>(
      `INSERT INTO key_versions (key_id, version, wrapped_material, public_key, create_time)
       VALUES (@key_id, @version, @wrapped_material, @public_key, @create_time)`,
    ),
    getKeyVersion: db.prepare<[string, number], KeyVersionRow>(
      "SELECT key_id, version, wrapped_material, public_key, create_time FROM key_versions WHERE key_id = ? AND version = ?",
    ),
    insertAccessKey: db.prepare<[AccessKeyRow]>(
      `INSERT INTO access_keys (secret_id, wrapped_secret, uin, principal_id, status, create_time, last_used_time)
       VALUES (@secret_id, @wrapped_secret, @uin, @principal_id, @status, @create_time, @last_used_time)`,
    ),
    getAccessKey: db.prepare<[string], AccessKeyRow>(`SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE secret_id = ?`),
    listAccessKeys: db.prepare<[string], AccessKeyRow>(
      `SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE principal_id = ? ORDER BY create_time, secret_id`,
    ),
    updateAccessKeyStatus: db.prepare<[string, string]>("UPDATE access_keys SET status = ? WHERE secret_id = ?"),
    deleteAccessKey: db.prepare<[string]>("DELETE FROM access_keys WHERE secret_id = ?"),
    touchAccessKey: db.prepare<[{ secret_id: string; time: number; before: number }]>(
      "UPDATE access_keys SET last_used_time = @time WHERE secret_id = @secret_id AND last_used_time < @before",
    ),
    deleteAccessKeysOfPrincipal: db.prepare<[string]>("DELETE FROM access_keys WHERE principal_id = ?"),

    insertPrincipal: db.prepare<[PrincipalRow]>(
      `INSERT INTO principals (${PRINCIPAL_COLUMNS})
       VALUES (@principal_id, @account_uin, @kind, @name, @remark, @trust_policy, @max_session_seconds, @create_time)`,
    ),
    getPrincipal: db.prepare<[string], PrincipalRow>(`SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE principal_id = ?`),
    getPrincipalByName: db.prepare<[string, string, string], PrincipalRow>(
      `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = ? AND kind = ? AND name = ?`,
    ),
    listPrincipals: db.prepare<[{ account_uin: string; kind: string; limit: number; offset: number }], PrincipalRow>(
      `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = @account_uin AND kind = @kind
       ORDER BY name, principal_id LIMIT @limit OFFSET @offset`,
    ),
    countPrincipals: db.prepare<[string, string], { n: number }>("SELECT count(*) AS n FROM principals WHERE account_uin = ? AND kind = ?"),
    deletePrincipal: db.prepare<[string]>("DELETE FROM principals WHERE principal_id = ?"),

    insertPolicy: db.prepare<[PolicyRow]>(
      `INSERT INTO policies (${POLICY_COLUMNS})
       VALUES (@policy_id, @account_uin, @name, @description, @document, @create_time, @update_time)`,
    ),
    getPolicy: db.prepare<[number], PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policies WHERE policy_id = ?`),
    getPolicyByName: db.prepare<[string, string], PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM policies WHERE account_uin = ? AND name = ?`),
    listPolicies: db.prepare<[{ account_uin: string; pattern: string | null; limit: number; offset: number }], PolicyRow>(
      `SELECT ${POLICY_COLUMNS} FROM policies
       WHERE account_uin = @account_uin AND (@pattern IS NULL OR name LIKE @pattern ESCAPE '\\')
       ORDER BY name, policy_id LIMIT @limit OFFSET @offset`,
    ),
    countPolicies: db.prepare<[{ account_uin: string; pattern: string | null }], { n: number }>(
      `SELECT count(*) AS n FROM policies
       WHERE account_uin = @account_uin AND (@pattern IS NULL OR name LIKE @pattern ESCAPE '\\')`,
    ),
    deletePolicy: db.prepare<[number]>("DELETE FROM policies WHERE policy_id = ?"),

    attachPolicy: db.prepare<[PolicyAttachmentRow]>(
      `INSERT INTO policy_attachments (principal_id, policy_id, account_uin, create_time)
       VALUES (@principal_id, @policy_id, @account_uin, @create_time)
       ON CONFLICT (principal_id, policy_id) DO NOTHING`,
    ),
    detachPolicy: db.prepare<[string, number]>("DELETE FROM policy_attachments WHERE principal_id = ? AND policy_id = ?"),
    listAttachedPolicies: db.prepare<[string], PolicyAttachmentRow>(
      `SELECT principal_id, policy_id, account_uin, create_time FROM policy_attachments
       WHERE principal_id = ? ORDER BY create_time, policy_id`,
    ),
    countPolicyAttachments: db.prepare<[number], { n: number }>("SELECT count(*) AS n FROM policy_attachments WHERE policy_id = ?"),
    deleteAttachmentsOfPrincipal: db.prepare<[string]>("DELETE FROM policy_attachments WHERE principal_id = ?"),
    deleteAttachmentsOfPolicy: db.prepare<[number]>("DELETE FROM policy_attachments WHERE policy_id = ?"),

    insertRoleSession: db.prepare<[RoleSessionRow]>(
      `INSERT INTO role_sessions (${ROLE_SESSION_COLUMNS})
       VALUES (@tmp_secret_id, @role_id, @account_uin, @session_name, @assumed_by, @create_time, @expires_at)`,
    ),
    getRoleSession: db.prepare<[string], RoleSessionRow>(`SELECT ${ROLE_SESSION_COLUMNS} FROM role_sessions WHERE tmp_secret_id = ?`),
    deleteExpiredRoleSessions: db.prepare<[number]>("DELETE FROM role_sessions WHERE expires_at <= ?"),
    deleteRoleSessionsOfRole: db.prepare<[string]>("DELETE FROM role_sessions WHERE role_id = ?"),

    auditHead: db.prepare<[], AuditHead>("SELECT seq, hash FROM audit_head WHERE id = 1"),
    setAuditHead: db.prepare<[number, string]>(
      "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    ),
    insertAuditRecord: db.prepare<[AccountAuditRow]>(
      `INSERT INTO audit_records (${AUDIT_COLUMNS}, account_seq) VALUES (${AUDIT_COLUMNS.split(", ").map((c) => `@${c}`).join(", ")}, @account_seq)`,
    ),
    accountAuditHead: db.prepare<[string], { seq: number }>("SELECT seq FROM audit_account_heads WHERE account_uin = ?"),
    setAccountAuditHead: db.prepare<[string, number]>(
      "INSERT INTO audit_account_heads (account_uin, seq) VALUES (?, ?) ON CONFLICT (account_uin) DO UPDATE SET seq = excluded.seq",
    ),
    accountAuditPosition: db.prepare<[string, number], { time: number; account_seq: number }>(
      "SELECT time, account_seq FROM audit_records WHERE account_uin = ? AND account_seq = ?",
    ),
    insertAuditCheckpoint: db.prepare<[CheckpointRow]>(
      `INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES (${CHECKPOINT_COLUMNS.split(", ").map((c) => `@${c}`).join(", ")})`,
    ),
    listAuditCheckpointsAsc: db.prepare<[number], CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq, pruned_through LIMIT ?`),
    listAuditCheckpointsDesc: db.prepare<[number], CheckpointRow>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, pruned_through DESC LIMIT ?`,
    ),
    pruneAuditRecords: db.prepare<[number]>("DELETE FROM audit_records WHERE seq <= ?"),
    pruneAuditCheckpoints: db.prepare<[number]>("DELETE FROM audit_checkpoints WHERE seq <= ?"),
    begin: db.prepare<[]>("BEGIN IMMEDIATE"),
    commit: db.prepare<[]>("COMMIT"),
    rollback: db.prepare<[]>("ROLLBACK"),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export interface SqliteDiagnostics {
  journalMode: string;
  /** 2 = FULL. */
  synchronous: number;
  foreignKeys: number;
  busyTimeout: number;
  schemaVersion: number;
}

/**
 * The operations themselves, synchronous, on the one connection. Outside a transaction each is
 * its own transaction; inside `SqliteStore.transaction` better-sqlite3 turns the inner ones into
 * savepoints, so a failed insertKey still leaves nothing half-written and the transaction usable.
 */
class Operations {
  readonly db: Database.Database;
  readonly #s: Statements;
  // BEGIN IMMEDIATE takes the write lock up front, so a writer waits on busy_timeout instead of
  // failing when a read transaction would have to be upgraded.
  readonly #write: (fn: () => unknown) => unknown;
  readonly #read: (fn: () => unknown) => unknown;
  /** listAuditRecords statements, one per combination of filters. */
  readonly #auditLists = new Map<string, Database.Statement<[Record<string, number | string>], AuditRow>>();

  constructor(db: Database.Database) {
    this.db = db;
    this.#s = prepareStatements(db);
    const run = db.transaction((fn: () => unknown) => fn());
    this.#write = run.immediate;
    this.#read = run.deferred;
  }

  begin(): void {
    this.#s.begin.run();
  }

  commit(): void {
    if (!this.db.inTransaction) throw new Error("SqliteStore: the transaction was aborted by SQLite before it could commit");
    try {
      this.#s.commit.run();
    } catch (err) {
      this.rollback(err);
      throw err;
    }
  }

  /** Rolls back the open transaction, if SQLite has not already; `cause` is why. */
  rollback(cause: unknown): void {
    if (!this.db.inTransaction) return;
    try {
      this.#s.rollback.run();
    } catch (err) {
      throw new AggregateError([cause, err], "SqliteStore: a failed transaction could not be rolled back");
    }
  }

  getMeta(name: string): string | undefined {
    return this.#s.getMeta.get(name)?.value;
  }

  setMeta(name: string, value: string): void {
    this.#s.setMeta.run(name, value);
  }

  insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): void {
    if (firstVersion !== null && firstVersion.keyId !== key.keyId) {
      throw new Error(`insertKey: the first version belongs to key ${firstVersion.keyId}, not ${key.keyId}`);
    }
    try {
      this.#write(() => {
        this.#s.insertKey.run(toKeyRow(key));
        if (firstVersion !== null) this.#s.insertKeyVersion.run(toKeyVersionRow(firstVersion));
        this.#insertTags(key.keyId, key.tags);
      });
    } catch (err) {
      throw conflictOrSelf(err, key.keyId, key.alias);
    }
  }

  insertKeyVersion(version: KeyVersionRecord): void {
    try {
      this.#s.insertKeyVersion.run(toKeyVersionRow(version));
    } catch (err) {
      // key_versions.key_id is its only foreign key (foreign_keys=ON, see open).
      if (err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`insertKeyVersion: no key with id ${version.keyId}`);
      }
      if (conflictField(err) === "keyVersion") {
        throw new StoreConflictError("keyVersion", `key ${version.keyId} already has a version ${version.version}`);
      }
      throw err;
    }
  }

  getKey(keyId: string): KeyRecord | undefined {
    return optionalKey(this.#s.getKey.get(keyId));
  }

  getKeyByAlias(alias: string): KeyRecord | undefined {
    return optionalKey(this.#s.getKeyByAlias.get(alias));
  }

  updateKey(key: KeyRecord): void {
    try {
      this.#write(() => {
        const { key_usage: _u, key_spec: _s, origin: _o, creator_uin: _c, owner: _w, create_time: _t, protection_level: _p, ...row } = toKeyRow(key);
        const result = this.#s.updateKey.run(row);
        if (result.changes !== 1) throw new Error(`updateKey: no key with id ${key.keyId}`);
        this.#s.deleteTags.run(key.keyId);
        this.#insertTags(key.keyId, key.tags);
      });
    } catch (err) {
      throw conflictOrSelf(err, key.keyId, key.alias);
    }
  }

  listKeys(query: KeyListQuery): { keys: KeyRecord[]; totalCount: number } {
    checkCount("offset", query.offset);
    checkCount("limit", query.limit);
    const params: ListParams = {
      states: query.states === undefined ? null : JSON.stringify(query.states),
      pattern: query.search === undefined ? null : `%${escapeLike(query.search)}%`,
      origin: query.origin ?? null,
      keyUsages: query.keyUsages === undefined ? null : JSON.stringify(query.keyUsages),
      owner: query.owner ?? null,
      accountUin: query.accountUin ?? null,
      tagFilters: query.tagFilters === undefined ? null : JSON.stringify(query.tagFilters.map((f) => ({ key: f.key, values: f.values }))),
    };
    const list = query.order === "asc" ? this.#s.listKeysAsc : this.#s.listKeysDesc;
    // One read transaction, so the page and the count come from the same snapshot.
    return this.#read(() => {
      const rows = list.all({ ...params, limit: query.limit, offset: query.offset });
      const totalCount = this.#s.countMatches.get(params)?.n ?? 0;
      return { keys: rows.map(fromKeyRow), totalCount };
    }) as { keys: KeyRecord[]; totalCount: number };
  }

  countKeys(accountUin?: string): number {
    return (accountUin === undefined ? this.#s.countKeys.get() : this.#s.countKeysOf.get(accountUin))?.n ?? 0;
  }

  getKeyVersion(keyId: string, version: number): KeyVersionRecord | undefined {
    const row = this.#s.getKeyVersion.get(keyId, version);
    return row === undefined ? undefined : fromKeyVersionRow(row);
  }

  listKeyVersions(keyId: string): KeyVersionRecord[] {
    return this.#s.listKeyVersions.all(keyId).map(fromKeyVersionRow);
  }

  deleteKeyVersions(keyId: string): number {
    return this.#s.deleteKeyVersions.run(keyId).changes;
  }

  deleteKey(keyId: string): boolean {
    return this.#write(() => {
      this.#s.deleteKeyVersions.run(keyId);
      this.#s.deleteTags.run(keyId);
      this.#s.deleteImportTokensOfKey.run(keyId);
      return this.#s.deleteKey.run(keyId).changes === 1;
    }) as boolean;
  }

  listDueKeys(now: number, limit: number): KeyRecord[] {
    checkCount("limit", limit);
    return this.#s.listDueKeys.all({ now, limit }).map(fromKeyRow);
  }

  insertImportToken(token: ImportTokenRecord): void {
    try {
      this.#s.insertImportToken.run({
        token_id: token.tokenId,
        key_id: token.keyId,
        wrapping_key_spec: token.wrappingKeySpec,
        wrapping_algorithm: token.wrappingAlgorithm,
        wrapped_private_key: token.wrappedPrivateKey,
        expires_at: token.expiresAt,
        used: token.used ? 1 : 0,
      });
    } catch (err) {
      if (err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`insertImportToken: no key with id ${token.keyId}`);
      }
      if (conflictField(err) === "importToken") throw new StoreConflictError("importToken", `an import token ${token.tokenId} already exists`);
      throw err;
    }
  }

  getImportToken(tokenId: string): ImportTokenRecord | undefined {
    const row = this.#s.getImportToken.get(tokenId);
    if (row === undefined) return undefined;
    return {
      tokenId: row.token_id,
      keyId: row.key_id,
      wrappingKeySpec: row.wrapping_key_spec as ImportTokenRecord["wrappingKeySpec"],
      wrappingAlgorithm: row.wrapping_algorithm as ImportTokenRecord["wrappingAlgorithm"],
      wrappedPrivateKey: row.wrapped_private_key,
      expiresAt: row.expires_at,
      used: row.used === 1,
    };
  }

  useImportToken(tokenId: string): boolean {
    return this.#s.useImportToken.run(tokenId).changes === 1;
  }

  deleteExpiredImportTokens(now: number): number {
    return this.#s.deleteExpiredImportTokens.run(now).changes;
  }

  insertAccessKey(record: AccessKeyRecord): void {
    try {
      this.#s.insertAccessKey.run({
        secret_id: record.secretId,
        wrapped_secret: record.wrappedSecret,
        uin: record.uin,
        principal_id: record.principalId,
        status: record.status,
        create_time: record.createTime,
        last_used_time: record.lastUsedTime,
      });
    } catch (err) {
      if (conflictField(err) === "secretId") {
        throw new StoreConflictError("secretId", `an access key with SecretId ${record.secretId} already exists`);
      }
      throw err;
    }
  }

  getAccessKey(secretId: string): AccessKeyRecord | undefined {
    const row = this.#s.getAccessKey.get(secretId);
    return row === undefined ? undefined : fromAccessKeyRow(row);
  }

  listAccessKeys(principalId: string): AccessKeyRecord[] {
    return this.#s.listAccessKeys.all(principalId).map(fromAccessKeyRow);
  }

  updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): boolean {
    return this.#s.updateAccessKeyStatus.run(status, secretId).changes === 1;
  }

  deleteAccessKey(secretId: string): boolean {
    return this.#s.deleteAccessKey.run(secretId).changes === 1;
  }

  touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): void {
    this.#s.touchAccessKey.run({ secret_id: secretId, time, before: time - minIntervalSeconds });
  }

  insertPrincipal(record: PrincipalRecord): void {
    try {
      this.#s.insertPrincipal.run({
        principal_id: record.principalId,
        account_uin: record.accountUin,
        kind: record.kind,
        name: record.name,
        remark: record.remark,
        trust_policy: record.trustPolicy,
        max_session_seconds: record.maxSessionSeconds,
        create_time: record.createTime,
      });
    } catch (err) {
      if (conflictField(err) === "principal") {
        throw new StoreConflictError(
          "principal",
          `a principal with id ${record.principalId}, or a ${record.kind} named "${record.name}" in account ${record.accountUin}, already exists`,
        );
      }
      throw err;
    }
  }

  getPrincipal(principalId: string): PrincipalRecord | undefined {
    const row = this.#s.getPrincipal.get(principalId);
    return row === undefined ? undefined : fromPrincipalRow(row);
  }

  getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): PrincipalRecord | undefined {
    const row = this.#s.getPrincipalByName.get(accountUin, kind, name);
    return row === undefined ? undefined : fromPrincipalRow(row);
  }

  listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Page<PrincipalRecord> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    // One read transaction, so the page and the count come from the same snapshot.
    return this.#read(() => {
      const items = this.#s.listPrincipals.all({ account_uin: accountUin, kind, limit, offset }).map(fromPrincipalRow);
      const totalCount = this.#s.countPrincipals.get(accountUin, kind)?.n ?? 0;
      return { items, totalCount };
    }) as Page<PrincipalRecord>;
  }

  deletePrincipal(principalId: string): boolean {
    return this.#write(() => {
      if (this.#s.getPrincipal.get(principalId) === undefined) return false;
      this.#s.deleteAccessKeysOfPrincipal.run(principalId);
      this.#s.deleteAttachmentsOfPrincipal.run(principalId);
      this.#s.deleteRoleSessionsOfRole.run(principalId);
      return this.#s.deletePrincipal.run(principalId).changes === 1;
    }) as boolean;
  }

  insertPolicy(record: PolicyRecord): void {
    try {
      this.#s.insertPolicy.run({
        policy_id: record.policyId,
        account_uin: record.accountUin,
        name: record.name,
        description: record.description,
        document: record.document,
        create_time: record.createTime,
        update_time: record.updateTime,
      });
    } catch (err) {
      if (conflictField(err) === "policy") {
        throw new StoreConflictError("policy", `a policy with id ${record.policyId}, or named "${record.name}" in account ${record.accountUin}, already exists`);
      }
      throw err;
    }
  }

  getPolicy(policyId: number): PolicyRecord | undefined {
    const row = this.#s.getPolicy.get(policyId);
    return row === undefined ? undefined : fromPolicyRow(row);
  }

  getPolicyByName(accountUin: string, name: string): PolicyRecord | undefined {
    const row = this.#s.getPolicyByName.get(accountUin, name);
    return row === undefined ? undefined : fromPolicyRow(row);
  }

  listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Page<PolicyRecord> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    const params = { account_uin: accountUin, pattern: keyword === undefined ? null : `%${escapeLike(keyword)}%` };
    return this.#read(() => {
      const items = this.#s.listPolicies.all({ ...params, limit, offset }).map(fromPolicyRow);
      const totalCount = this.#s.countPolicies.get(params)?.n ?? 0;
      return { items, totalCount };
    }) as Page<PolicyRecord>;
  }

  deletePolicy(policyId: number): boolean {
    return this.#write(() => {
      // Attachments of a preset policy (never in policies) are left alone.
      if (this.#s.deletePolicy.run(policyId).changes !== 1) return false;
      this.#s.deleteAttachmentsOfPolicy.run(policyId);
      return true;
    }) as boolean;
  }

  attachPolicy(record: PolicyAttachmentRecord): boolean {
    try {
      return (
        this.#s.attachPolicy.run({
          principal_id: record.principalId,
          policy_id: record.policyId,
          account_uin: record.accountUin,
          create_time: record.createTime,
        }).changes === 1
      );
    } catch (err) {
      // policy_attachments.principal_id is its only foreign key.
      if (err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`attachPolicy: no principal with id ${record.principalId}`);
      }
      throw err;
    }
  }

  detachPolicy(principalId: string, policyId: number): boolean {
    return this.#s.detachPolicy.run(principalId, policyId).changes === 1;
  }

  listAttachedPolicies(principalId: string): PolicyAttachmentRecord[] {
    return this.#s.listAttachedPolicies.all(principalId).map((row) => ({
      principalId: row.principal_id,
      policyId: row.policy_id,
      accountUin: row.account_uin,
      createTime: row.create_time,
    }));
  }

  countPolicyAttachments(policyId: number): number {
    return this.#s.countPolicyAttachments.get(policyId)?.n ?? 0;
  }

  insertRoleSession(record: RoleSessionRecord): void {
    try {
      this.#s.insertRoleSession.run({
        tmp_secret_id: record.tmpSecretId,
        role_id: record.roleId,
        account_uin: record.accountUin,
        session_name: record.sessionName,
        assumed_by: record.assumedBy,
        create_time: record.createTime,
        expires_at: record.expiresAt,
      });
    } catch (err) {
      // role_sessions.role_id is its only foreign key.
      if (err instanceof Database.SqliteError && err.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`insertRoleSession: no principal with id ${record.roleId}`);
      }
      throw err;
    }
  }

  getRoleSession(tmpSecretId: string): RoleSessionRecord | undefined {
    const row = this.#s.getRoleSession.get(tmpSecretId);
    if (row === undefined) return undefined;
    return {
      tmpSecretId: row.tmp_secret_id,
      roleId: row.role_id,
      accountUin: row.account_uin,
      sessionName: row.session_name,
      assumedBy: row.assumed_by,
      createTime: row.create_time,
      expiresAt: row.expires_at,
    };
  }

  deleteExpiredRoleSessions(now: number): number {
    return this.#s.deleteExpiredRoleSessions.run(now).changes;
  }

  // ---- audit log ----

  auditHead(): AuditHead | undefined {
    // Inside a transaction (BEGIN IMMEDIATE) the write lock is already held: nobody else appends.
    return this.#s.auditHead.get();
  }

  appendAuditRecords(records: readonly AuditRecord[]): void {
    const { first, last } = checkAuditAppend(records);
    try {
      this.#write(() => {
        const head = this.#s.auditHead.get() ?? { seq: 0, hash: GENESIS_HASH };
        if (head.seq !== first.seq - 1 || head.hash !== first.prevHash) {
          throw new StoreConflictError("auditHead", `the audit records from seq ${first.seq} do not follow the chain head (seq ${head.seq})`);
        }
        // Each account's records are numbered on from its head, under the same write lock as the chain.
        const accountHeads = new Map<string, number>();
        for (const r of records) {
          const accountSeq = (accountHeads.get(r.accountUin) ?? this.#s.accountAuditHead.get(r.accountUin)?.seq ?? 0) + 1;
          accountHeads.set(r.accountUin, accountSeq);
          this.#s.insertAuditRecord.run({ ...toAuditRow(r), account_seq: accountSeq });
        }
        for (const [accountUin, seq] of accountHeads) this.#s.setAccountAuditHead.run(accountUin, seq);
        this.#s.setAuditHead.run(last.seq, last.hash);
      });
    } catch (err) {
      if (err instanceof Database.SqliteError && /PRIMARYKEY|UNIQUE/.test(err.code) && /audit_records\.seq/.test(err.message)) {
        throw new StoreConflictError("auditHead", `an audit record with a seq from ${first.seq} to ${last.seq} exists already`);
      }
      throw err;
    }
  }

  listAuditRecords(query: AuditRecordQuery): AuditRecord[] {
    checkAuditQuery(query);
    const where: string[] = [];
    const params: Record<string, number | string> = { limit: query.limit };
    if (query.fromTime !== undefined) {
      where.push("time >= @fromTime");
      params["fromTime"] = query.fromTime;
    }
    if (query.toTime !== undefined) {
      where.push("time <= @toTime");
      params["toTime"] = query.toTime;
    }
    if (query.afterSeq !== undefined) {
      where.push(query.order === "asc" ? "seq > @afterSeq" : "seq < @afterSeq");
      params["afterSeq"] = query.afterSeq;
    }
    const sql = `SELECT ${AUDIT_COLUMNS} FROM audit_records ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`}
      ORDER BY seq ${query.order === "asc" ? "ASC" : "DESC"} LIMIT @limit`;
    let stmt = this.#auditLists.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare<[Record<string, number | string>], AuditRow>(sql);
      this.#auditLists.set(sql, stmt);
    }
    return stmt.all(params).map(fromAuditRow);
  }

  searchAccountAudit(search: AccountAuditSearch): AccountAuditPage {
    checkAuditSearch(search);
    const { index, column, name } = auditSearchIndex(search.filters);
    const upper = auditSearchUpper(search);
    const params: Record<string, number | string> = {
      account: search.accountUin,
      fromTime: search.fromTime,
      upperTime: upper.time,
      upperSeq: upper.accountSeq,
      skip: search.scanLimit - 1,
      limit: search.limit + 1,
    };
    // The walk: the account's records of the range below `upper`, through one index (INDEXED BY:
    // the planner must not pick another, whose walk the scan limit would not bound).
    const walk = ["account_uin = @account", "(time, account_seq) < (@upperTime, @upperSeq)"];
    if (column !== undefined && name !== undefined) {
      walk.push(`${column} = @drive`);
      params["drive"] = sqliteValue(search.filters[name]!);
    }
    const order = "ORDER BY time DESC, account_seq DESC";
    // The scan limit's last record, if the range reaches that far: found in the index alone.
    const boundary = this.#auditStatement<{ time: number; account_seq: number }>(
      `SELECT time, account_seq FROM audit_records INDEXED BY ${index} WHERE ${walk.join(" AND ")} AND time >= @fromTime ${order} LIMIT 1 OFFSET @skip`,
    ).get(params);
    // The boundary, when there is one, must be the walk's lower end in the index (not a test on
    // each row), or a search with few matches would walk on to the start of the range.
    const where = [...walk];
    if (boundary === undefined) {
      where.push("time >= @fromTime");
    } else {
      where.push("(time, account_seq) >= (@boundaryTime, @boundarySeq)");
      params["boundaryTime"] = boundary.time;
      params["boundarySeq"] = boundary.account_seq;
    }
    const filters = search.filters;
    for (const [filter, filterColumn] of Object.entries(AUDIT_FILTER_COLUMNS)) {
      const value = filters[filter as keyof typeof AUDIT_FILTER_COLUMNS];
      if (value === undefined || filter === name) continue;
      where.push(`${filterColumn} = @${filter}`);
      params[filter] = sqliteValue(value);
    }
    if (filters.resourceName !== undefined) {
      // One whole name of the comma-separated list.
      where.push("instr(',' || resource_name || ',', ',' || @resourceName || ',') > 0");
      params["resourceName"] = filters.resourceName;
    }
    if (filters.flag !== undefined) {
      // The text test first: parsing each row's JSON costs four times as much, and only rows that
      // hold the flag's JSON string (as the writer wrote it) can match.
      where.push("instr(flags, @flagJson) > 0", "EXISTS (SELECT 1 FROM json_each(audit_records.flags) WHERE value = @flag)");
      params["flag"] = filters.flag;
      params["flagJson"] = JSON.stringify(filters.flag);
    }
    const rows = this.#auditStatement<AccountAuditRow>(
      `SELECT ${AUDIT_COLUMNS}, account_seq FROM audit_records INDEXED BY ${index} WHERE ${where.join(" AND ")} ${order} LIMIT @limit`,
    ).all(params);
    const records = rows.slice(0, search.limit).map((row) => ({ ...fromAuditRow(row), accountSeq: row.account_seq }));
    const last = records.at(-1);
    if (rows.length > search.limit && last !== undefined) return { records, next: { time: last.time, accountSeq: last.accountSeq } };
    return boundary === undefined ? { records } : { records, next: { time: boundary.time, accountSeq: boundary.account_seq } };
  }

  accountAuditPosition(accountUin: string, accountSeq: number): AccountAuditPosition | undefined {
    const row = this.#s.accountAuditPosition.get(accountUin, accountSeq);
    return row === undefined ? undefined : { time: row.time, accountSeq: row.account_seq };
  }

  /** The audit search statements, prepared once per text (a few per combination of filters). */
  #auditStatement<R>(sql: string): Database.Statement<[Record<string, number | string>], R> {
    let stmt = this.#auditLists.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare<[Record<string, number | string>], AuditRow>(sql);
      this.#auditLists.set(sql, stmt);
    }
    return stmt as unknown as Database.Statement<[Record<string, number | string>], R>;
  }

  insertAuditCheckpoint(checkpoint: Checkpoint): void {
    try {
      this.#s.insertAuditCheckpoint.run({
        seq: checkpoint.seq,
        pruned_through: checkpoint.prunedThrough,
        time: checkpoint.time,
        head_hash: checkpoint.headHash,
        pruned_head_hash: checkpoint.prunedHeadHash,
        signature: checkpoint.signature,
      });
    } catch (err) {
      if (err instanceof Database.SqliteError && /PRIMARYKEY|UNIQUE/.test(err.code)) {
        throw new StoreConflictError("auditCheckpoint", `an audit checkpoint at seq ${checkpoint.seq} (pruned through ${checkpoint.prunedThrough}) exists already`);
      }
      throw err;
    }
  }

  listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Checkpoint[] {
    const limit = query.limit ?? -1;
    if (query.limit !== undefined) checkCount("limit", query.limit);
    const stmt = query.order === "asc" ? this.#s.listAuditCheckpointsAsc : this.#s.listAuditCheckpointsDesc;
    return stmt.all(limit).map(fromCheckpointRow);
  }

  pruneAuditRecords(throughSeq: number): number {
    checkCount("throughSeq", throughSeq);
    return this.#write(() => {
      this.#s.pruneAuditCheckpoints.run(throughSeq);
      return this.#s.pruneAuditRecords.run(throughSeq).changes;
    }) as number;
  }

  #insertTags(keyId: string, tags: readonly Tag[]): void {
    for (const tag of tags) this.#s.insertTag.run(keyId, tag.key, tag.value);
  }

}

/** A FIFO lock that hands itself straight to the next waiter, so nobody overtakes a queued caller. */
class Lock {
  #held = false;
  readonly #waiters: (() => void)[] = [];

  get held(): boolean {
    return this.#held;
  }

  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next === undefined) this.#held = false;
    else next();
  }
}

/** The `tx` handed to a transaction's function: runs directly on the connection, until the transaction ends. */
class SqliteTransaction implements StoreOperations {
  readonly #ops: Operations;
  #ended = false;

  constructor(ops: Operations) {
    this.#ops = ops;
  }

  end(): void {
    this.#ended = true;
  }

  async getMeta(name: string): Promise<string | undefined> {
    return this.#live().getMeta(name);
  }

  async setMeta(name: string, value: string): Promise<void> {
    this.#live().setMeta(name, value);
  }

  async insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    this.#live().insertKey(key, firstVersion);
  }

  async insertKeyVersion(version: KeyVersionRecord): Promise<void> {
    this.#live().insertKeyVersion(version);
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.#live().getKey(keyId);
  }

  async getKeyByAlias(alias: string): Promise<KeyRecord | undefined> {
    return this.#live().getKeyByAlias(alias);
  }

  async updateKey(key: KeyRecord): Promise<void> {
    this.#live().updateKey(key);
  }

  async listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    return this.#live().listKeys(query);
  }

  async countKeys(accountUin?: string): Promise<number> {
    return this.#live().countKeys(accountUin);
  }

  async getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    return this.#live().getKeyVersion(keyId, version);
  }

  async listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    return this.#live().listKeyVersions(keyId);
  }

  async deleteKeyVersions(keyId: string): Promise<number> {
    return this.#live().deleteKeyVersions(keyId);
  }

  async deleteKey(keyId: string): Promise<boolean> {
    return this.#live().deleteKey(keyId);
  }

  async listDueKeys(now: number, limit: number): Promise<KeyRecord[]> {
    return this.#live().listDueKeys(now, limit);
  }

  async insertImportToken(token: ImportTokenRecord): Promise<void> {
    this.#live().insertImportToken(token);
  }

  async getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined> {
    return this.#live().getImportToken(tokenId);
  }

  async useImportToken(tokenId: string): Promise<boolean> {
    return this.#live().useImportToken(tokenId);
  }

  async deleteExpiredImportTokens(now: number): Promise<number> {
    return this.#live().deleteExpiredImportTokens(now);
  }

  async insertAccessKey(record: AccessKeyRecord): Promise<void> {
    this.#live().insertAccessKey(record);
  }

  async getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined> {
    return this.#live().getAccessKey(secretId);
  }

  async listAccessKeys(principalId: string): Promise<AccessKeyRecord[]> {
    return this.#live().listAccessKeys(principalId);
  }

  async updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): Promise<boolean> {
    return this.#live().updateAccessKeyStatus(secretId, status);
  }

  async deleteAccessKey(secretId: string): Promise<boolean> {
    return this.#live().deleteAccessKey(secretId);
  }

  async touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): Promise<void> {
    this.#live().touchAccessKey(secretId, time, minIntervalSeconds);
  }

  async insertPrincipal(record: PrincipalRecord): Promise<void> {
    this.#live().insertPrincipal(record);
  }

  async getPrincipal(principalId: string): Promise<PrincipalRecord | undefined> {
    return this.#live().getPrincipal(principalId);
  }

  async getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    return this.#live().getPrincipalByName(accountUin, kind, name);
  }

  async listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>> {
    return this.#live().listPrincipals(accountUin, kind, offset, limit);
  }

  async deletePrincipal(principalId: string): Promise<boolean> {
    return this.#live().deletePrincipal(principalId);
  }

  async insertPolicy(record: PolicyRecord): Promise<void> {
    this.#live().insertPolicy(record);
  }

  async getPolicy(policyId: number): Promise<PolicyRecord | undefined> {
    return this.#live().getPolicy(policyId);
  }

  async getPolicyByName(accountUin: string, name: string): Promise<PolicyRecord | undefined> {
    return this.#live().getPolicyByName(accountUin, name);
  }

  async listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>> {
    return this.#live().listPolicies(accountUin, offset, limit, keyword);
  }

  async deletePolicy(policyId: number): Promise<boolean> {
    return this.#live().deletePolicy(policyId);
  }

  async attachPolicy(record: PolicyAttachmentRecord): Promise<boolean> {
    return this.#live().attachPolicy(record);
  }

  async detachPolicy(principalId: string, policyId: number): Promise<boolean> {
    return this.#live().detachPolicy(principalId, policyId);
  }

  async listAttachedPolicies(principalId: string): Promise<PolicyAttachmentRecord[]> {
    return this.#live().listAttachedPolicies(principalId);
  }

  async countPolicyAttachments(policyId: number): Promise<number> {
    return this.#live().countPolicyAttachments(policyId);
  }

  async insertRoleSession(record: RoleSessionRecord): Promise<void> {
    this.#live().insertRoleSession(record);
  }

  async getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined> {
    return this.#live().getRoleSession(tmpSecretId);
  }

  async deleteExpiredRoleSessions(now: number): Promise<number> {
    return this.#live().deleteExpiredRoleSessions(now);
  }

  async auditHead(): Promise<AuditHead | undefined> {
    return this.#live().auditHead();
  }

  async appendAuditRecords(records: readonly AuditRecord[]): Promise<void> {
    this.#live().appendAuditRecords(records);
  }

  async listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]> {
    return this.#live().listAuditRecords(query);
  }

  async searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage> {
    return this.#live().searchAccountAudit(search);
  }

  async accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined> {
    return this.#live().accountAuditPosition(accountUin, accountSeq);
  }

  async insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void> {
    this.#live().insertAuditCheckpoint(checkpoint);
  }

  async listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]> {
    return this.#live().listAuditCheckpoints(query);
  }

  async pruneAuditRecords(throughSeq: number): Promise<number> {
    return this.#live().pruneAuditRecords(throughSeq);
  }

  #live(): Operations {
    if (this.#ended) throw new Error("SqliteStore: this transaction has ended; its tx can no longer be used");
    // Some errors (SQLITE_FULL, I/O errors) make SQLite roll back on its own; without this check
    // the following calls would autocommit one by one.
    if (!this.#ops.db.inTransaction) throw new Error("SqliteStore: the transaction was aborted by SQLite");
    return this.#ops;
  }
}

/**
 * The transaction whose function the current async call chain runs in. Used only to refuse, with a
 * clear error, a call on the store itself from inside its own transaction: it would otherwise wait
 * for that transaction to end, which waits for the call: a deadlock of the whole store.
 * (On Node 20 a live AsyncLocalStorage enables promise hooks process-wide, a small cost per promise.)
 */
const currentTransaction = new AsyncLocalStorage<SqliteTransaction>();

/**
 * One connection shared by every request. better-sqlite3 runs statements synchronously, so a
 * plain operation cannot interleave with another; only a transaction, whose function awaits
 * between its statements, needs a lock. While one is open, every other transaction and every
 * operation on the store itself queue (FIFO) until it has committed or rolled back; operations
 * through its `tx` run directly. With no transaction open (and none queued), an operation runs
 * at once, inside the call, with no extra turn of the event loop. Inside a transaction's function
 * (same async call chain, tracked with AsyncLocalStorage) calling the store itself, `transaction`
 * and `close` included, rejects instead of deadlocking: transactions are not nestable.
 */
export class SqliteStore implements Store {
  readonly path: string;
  readonly #ops: Operations;
  readonly #lock = new Lock();
  #active: SqliteTransaction | undefined;
  #closing: Promise<void> | undefined;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.#ops = new Operations(db);
  }

  /** Opens (creating with mode 0600 if missing) and migrates the database at `path`; ":memory:" for a throwaway one. */
  static open(path: string): SqliteStore {
    if (typeof path !== "string" || path === "") throw new TypeError('"path" must be a non-empty file path');
    const memory = path === ":memory:";
    const fullPath = memory ? path : resolve(path);
    if (!memory) createPrivateFile(fullPath);
    const db = new Database(fullPath, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      const journalMode = db.pragma("journal_mode = WAL", { simple: true });
      if (journalMode !== (memory ? "memory" : "wal")) {
        throw new Error(`${fullPath}: could not switch to WAL journal mode (got ${String(journalMode)})`);
      }
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      applyMigrations(db, MIGRATIONS, fullPath);
      return new SqliteStore(fullPath, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The connection settings that durability depends on, for the startup log and tests. */
  diagnostics(): SqliteDiagnostics {
    this.#open();
    const db = this.#ops.db;
    const pragma = (name: string) => db.pragma(name, { simple: true });
    return {
      journalMode: String(pragma("journal_mode")),
      synchronous: Number(pragma("synchronous")),
      foreignKeys: Number(pragma("foreign_keys")),
      busyTimeout: Number(pragma("busy_timeout")),
      schemaVersion: schemaVersion(db),
    };
  }

  async transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    this.#enter("transaction");
    await this.#lock.acquire();
    const tx = new SqliteTransaction(this.#ops);
    this.#active = tx;
    try {
      this.#ops.begin();
      let result: T;
      try {
        result = await currentTransaction.run(tx, fn, tx);
      } catch (err) {
        this.#ops.rollback(err);
        throw err;
      }
      // Nothing awaits from here on: the commit and the end of tx follow at once.
      this.#ops.commit();
      return result;
    } finally {
      tx.end();
      this.#active = undefined;
      this.#lock.release();
    }
  }

  /** Count and insert in one transaction: SQLite has one writer at a time, so it cannot conflict. */
  insertKeyWithinLimit(key: KeyRecord, firstVersion: KeyVersionRecord | null, maxKeys: number, also?: (tx: StoreOperations) => Promise<void>): Promise<boolean> {
    return this.transaction(async (tx) => {
      if ((await tx.countKeys(key.creatorUin)) >= maxKeys) return false;
      await tx.insertKey(key, firstVersion);
      await also?.(tx);
      return true;
    });
  }

  async getMeta(name: string): Promise<string | undefined> {
    return this.#enter("getMeta") ? this.#ops.getMeta(name) : this.#queued(() => this.#ops.getMeta(name));
  }

  async setMeta(name: string, value: string): Promise<void> {
    return this.#enter("setMeta") ? this.#ops.setMeta(name, value) : this.#queued(() => this.#ops.setMeta(name, value));
  }

  async insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    return this.#enter("insertKey")
      ? this.#ops.insertKey(key, firstVersion)
      : this.#queued(() => this.#ops.insertKey(key, firstVersion));
  }

  async insertKeyVersion(version: KeyVersionRecord): Promise<void> {
    return this.#enter("insertKeyVersion")
      ? this.#ops.insertKeyVersion(version)
      : this.#queued(() => this.#ops.insertKeyVersion(version));
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    return this.#enter("getKey") ? this.#ops.getKey(keyId) : this.#queued(() => this.#ops.getKey(keyId));
  }

  async getKeyByAlias(alias: string): Promise<KeyRecord | undefined> {
    return this.#enter("getKeyByAlias") ? this.#ops.getKeyByAlias(alias) : this.#queued(() => this.#ops.getKeyByAlias(alias));
  }

  async updateKey(key: KeyRecord): Promise<void> {
    return this.#enter("updateKey") ? this.#ops.updateKey(key) : this.#queued(() => this.#ops.updateKey(key));
  }

  async listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    return this.#enter("listKeys") ? this.#ops.listKeys(query) : this.#queued(() => this.#ops.listKeys(query));
  }

  async countKeys(accountUin?: string): Promise<number> {
    return this.#enter("countKeys") ? this.#ops.countKeys(accountUin) : this.#queued(() => this.#ops.countKeys(accountUin));
  }

  async getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    return this.#enter("getKeyVersion")
      ? this.#ops.getKeyVersion(keyId, version)
      : this.#queued(() => this.#ops.getKeyVersion(keyId, version));
  }

  async listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    return this.#enter("listKeyVersions") ? this.#ops.listKeyVersions(keyId) : this.#queued(() => this.#ops.listKeyVersions(keyId));
  }

  async deleteKeyVersions(keyId: string): Promise<number> {
    return this.#enter("deleteKeyVersions") ? this.#ops.deleteKeyVersions(keyId) : this.#queued(() => this.#ops.deleteKeyVersions(keyId));
  }

  async deleteKey(keyId: string): Promise<boolean> {
    return this.#enter("deleteKey") ? this.#ops.deleteKey(keyId) : this.#queued(() => this.#ops.deleteKey(keyId));
  }

  async listDueKeys(now: number, limit: number): Promise<KeyRecord[]> {
    return this.#enter("listDueKeys") ? this.#ops.listDueKeys(now, limit) : this.#queued(() => this.#ops.listDueKeys(now, limit));
  }

  async insertImportToken(token: ImportTokenRecord): Promise<void> {
    return this.#enter("insertImportToken") ? this.#ops.insertImportToken(token) : this.#queued(() => this.#ops.insertImportToken(token));
  }

  async getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined> {
    return this.#enter("getImportToken") ? this.#ops.getImportToken(tokenId) : this.#queued(() => this.#ops.getImportToken(tokenId));
  }

  async useImportToken(tokenId: string): Promise<boolean> {
    return this.#enter("useImportToken") ? this.#ops.useImportToken(tokenId) : this.#queued(() => this.#ops.useImportToken(tokenId));
  }

  async deleteExpiredImportTokens(now: number): Promise<number> {
    return this.#enter("deleteExpiredImportTokens")
      ? this.#ops.deleteExpiredImportTokens(now)
      : this.#queued(() => this.#ops.deleteExpiredImportTokens(now));
  }

  async insertAccessKey(record: AccessKeyRecord): Promise<void> {
    return this.#enter("insertAccessKey") ? this.#ops.insertAccessKey(record) : this.#queued(() => this.#ops.insertAccessKey(record));
  }

  async getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined> {
    return this.#enter("getAccessKey") ? this.#ops.getAccessKey(secretId) : this.#queued(() => this.#ops.getAccessKey(secretId));
  }

  async listAccessKeys(principalId: string): Promise<AccessKeyRecord[]> {
    return this.#enter("listAccessKeys")
      ? this.#ops.listAccessKeys(principalId)
      : this.#queued(() => this.#ops.listAccessKeys(principalId));
  }

  async updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): Promise<boolean> {
    return this.#enter("updateAccessKeyStatus")
      ? this.#ops.updateAccessKeyStatus(secretId, status)
      : this.#queued(() => this.#ops.updateAccessKeyStatus(secretId, status));
  }

  async deleteAccessKey(secretId: string): Promise<boolean> {
    return this.#enter("deleteAccessKey") ? this.#ops.deleteAccessKey(secretId) : this.#queued(() => this.#ops.deleteAccessKey(secretId));
  }

  async touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): Promise<void> {
    return this.#enter("touchAccessKey")
      ? this.#ops.touchAccessKey(secretId, time, minIntervalSeconds)
      : this.#queued(() => this.#ops.touchAccessKey(secretId, time, minIntervalSeconds));
  }

  async insertPrincipal(record: PrincipalRecord): Promise<void> {
    return this.#enter("insertPrincipal") ? this.#ops.insertPrincipal(record) : this.#queued(() => this.#ops.insertPrincipal(record));
  }

  async getPrincipal(principalId: string): Promise<PrincipalRecord | undefined> {
    return this.#enter("getPrincipal") ? this.#ops.getPrincipal(principalId) : this.#queued(() => this.#ops.getPrincipal(principalId));
  }

  async getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    return this.#enter("getPrincipalByName")
      ? this.#ops.getPrincipalByName(accountUin, kind, name)
      : this.#queued(() => this.#ops.getPrincipalByName(accountUin, kind, name));
  }

  async listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>> {
    return this.#enter("listPrincipals")
      ? this.#ops.listPrincipals(accountUin, kind, offset, limit)
      : this.#queued(() => this.#ops.listPrincipals(accountUin, kind, offset, limit));
  }

  async deletePrincipal(principalId: string): Promise<boolean> {
    return this.#enter("deletePrincipal")
      ? this.#ops.deletePrincipal(principalId)
      : this.#queued(() => this.#ops.deletePrincipal(principalId));
  }

  async insertPolicy(record: PolicyRecord): Promise<void> {
    return this.#enter("insertPolicy") ? this.#ops.insertPolicy(record) : this.#queued(() => this.#ops.insertPolicy(record));
  }

  async getPolicy(policyId: number): Promise<PolicyRecord | undefined> {
    return this.#enter("getPolicy") ? this.#ops.getPolicy(policyId) : this.#queued(() => this.#ops.getPolicy(policyId));
  }

  async getPolicyByName(accountUin: string, name: string): Promise<PolicyRecord | undefined> {
    return this.#enter("getPolicyByName")
      ? this.#ops.getPolicyByName(accountUin, name)
      : this.#queued(() => this.#ops.getPolicyByName(accountUin, name));
  }

  async listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>> {
    return this.#enter("listPolicies")
      ? this.#ops.listPolicies(accountUin, offset, limit, keyword)
      : this.#queued(() => this.#ops.listPolicies(accountUin, offset, limit, keyword));
  }

  async deletePolicy(policyId: number): Promise<boolean> {
    return this.#enter("deletePolicy") ? this.#ops.deletePolicy(policyId) : this.#queued(() => this.#ops.deletePolicy(policyId));
  }

  async attachPolicy(record: PolicyAttachmentRecord): Promise<boolean> {
    return this.#enter("attachPolicy") ? this.#ops.attachPolicy(record) : this.#queued(() => this.#ops.attachPolicy(record));
  }

  async detachPolicy(principalId: string, policyId: number): Promise<boolean> {
    return this.#enter("detachPolicy")
      ? this.#ops.detachPolicy(principalId, policyId)
      : this.#queued(() => this.#ops.detachPolicy(principalId, policyId));
  }

  async listAttachedPolicies(principalId: string): Promise<PolicyAttachmentRecord[]> {
    return this.#enter("listAttachedPolicies")
      ? this.#ops.listAttachedPolicies(principalId)
      : this.#queued(() => this.#ops.listAttachedPolicies(principalId));
  }

  async countPolicyAttachments(policyId: number): Promise<number> {
    return this.#enter("countPolicyAttachments")
      ? this.#ops.countPolicyAttachments(policyId)
      : this.#queued(() => this.#ops.countPolicyAttachments(policyId));
  }

  async insertRoleSession(record: RoleSessionRecord): Promise<void> {
    return this.#enter("insertRoleSession") ? this.#ops.insertRoleSession(record) : this.#queued(() => this.#ops.insertRoleSession(record));
  }

  async getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined> {
    return this.#enter("getRoleSession")
      ? this.#ops.getRoleSession(tmpSecretId)
      : this.#queued(() => this.#ops.getRoleSession(tmpSecretId));
  }

  async deleteExpiredRoleSessions(now: number): Promise<number> {
    return this.#enter("deleteExpiredRoleSessions")
      ? this.#ops.deleteExpiredRoleSessions(now)
      : this.#queued(() => this.#ops.deleteExpiredRoleSessions(now));
  }

  async auditHead(): Promise<AuditHead | undefined> {
    return this.#enter("auditHead") ? this.#ops.auditHead() : this.#queued(() => this.#ops.auditHead());
  }

  async appendAuditRecords(records: readonly AuditRecord[]): Promise<void> {
    return this.#enter("appendAuditRecords") ? this.#ops.appendAuditRecords(records) : this.#queued(() => this.#ops.appendAuditRecords(records));
  }

  async listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]> {
    return this.#enter("listAuditRecords") ? this.#ops.listAuditRecords(query) : this.#queued(() => this.#ops.listAuditRecords(query));
  }

  async searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage> {
    return this.#enter("searchAccountAudit") ? this.#ops.searchAccountAudit(search) : this.#queued(() => this.#ops.searchAccountAudit(search));
  }

  async accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined> {
    return this.#enter("accountAuditPosition")
      ? this.#ops.accountAuditPosition(accountUin, accountSeq)
      : this.#queued(() => this.#ops.accountAuditPosition(accountUin, accountSeq));
  }

  async insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void> {
    return this.#enter("insertAuditCheckpoint")
      ? this.#ops.insertAuditCheckpoint(checkpoint)
      : this.#queued(() => this.#ops.insertAuditCheckpoint(checkpoint));
  }

  async listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]> {
    return this.#enter("listAuditCheckpoints") ? this.#ops.listAuditCheckpoints(query) : this.#queued(() => this.#ops.listAuditCheckpoints(query));
  }

  async pruneAuditRecords(throughSeq: number): Promise<number> {
    return this.#enter("pruneAuditRecords") ? this.#ops.pruneAuditRecords(throughSeq) : this.#queued(() => this.#ops.pruneAuditRecords(throughSeq));
  }

  // ---- backup (StoreBackup): snapshot and import ---------------------------------------------

  async snapshot<T>(fn: (snapshot: StoreSnapshot) => Promise<T>): Promise<T> {
    this.#enter("snapshot");
    if (this.path === ":memory:") {
      // No second connection can see this database: hold the lock, so nothing changes meanwhile.
      await this.#lock.acquire();
      try {
        return await fn(new SqliteSnapshot(this.#ops.db));
      } finally {
        this.#lock.release();
      }
    }
    // A second, read-only connection in one read transaction: under WAL the store's own
    // connection (and other processes) keep writing while this one reads the state as of its
    // first statement.
    const db = new Database(this.path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    try {
      db.prepare("BEGIN DEFERRED").run();
      return await fn(new SqliteSnapshot(db));
    } finally {
      if (db.inTransaction) db.prepare("ROLLBACK").run();
      db.close();
    }
  }

  async importInto<T>(fn: (target: StoreImport) => Promise<T>): Promise<T> {
    this.#enter("importInto");
    await this.#lock.acquire();
    try {
      return await importIntoDatabase(this.#ops.db, this.path, fn);
    } finally {
      this.#lock.release();
    }
  }

  /**
   * Creates the database at `path`, which must not exist, migrated only up to `schemaVersion`, and
   * runs `importInto(fn)` on it; `SqliteStore.open` then migrates the rest of the way. This is how a
   * backup made at an older schema is restored: the store's statements fit only the newest schema,
   * so no SqliteStore is opened on the older one.
   */
  static async createForImport<T>(path: string, schemaVersion: number, fn: (target: StoreImport) => Promise<T>): Promise<T> {
    const fullPath = resolve(path);
    const migrations = migrationsUpTo(MIGRATIONS, schemaVersion);
    if (existsSync(fullPath)) throw new Error(`${fullPath} already exists`);
    createPrivateFile(fullPath);
    const db = new Database(fullPath, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      if (db.pragma("journal_mode = WAL", { simple: true }) !== "wal") throw new Error(`${fullPath}: could not switch to WAL journal mode`);
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      applyMigrations(db, migrations, fullPath);
      return await importIntoDatabase(db, fullPath, fn);
    } finally {
      db.close();
    }
  }

  // ---- end of backup ----------------------------------------------------------------------------

  // ---- root key rotation (StoreRewrap): wrapped values in pages, compare-and-set ------------------

  async listWrappedValues(kind: WrappedValueKind, after: WrappedValuePosition | null, limit: number): Promise<WrappedValue[]> {
    const run = () => {
      const { table, id, version, value, where } = SQLITE_WRAPPED[kind];
      const rows = this.#ops.db
        .prepare<{ id: string | null; version: number; limit: number }, { id: string; version: number; wrapped: Buffer }>(
          `SELECT ${id} AS id, ${version} AS version, ${value} AS wrapped FROM ${table}
           WHERE ${where} AND (@id IS NULL OR (${id}, ${version}) > (@id, @version))
           ORDER BY ${id}${version === "0" ? "" : `, ${version}`} LIMIT @limit`,
        )
        .all({ id: after?.id ?? null, version: after?.version ?? 0, limit: checkLimit(limit) });
      return rows.map((r) => ({ id: r.id, version: r.version, wrapped: r.wrapped }));
    };
    return this.#enter("listWrappedValues") ? run() : this.#queued(run);
  }

  async replaceWrappedValue(kind: WrappedValueKind, position: WrappedValuePosition, expected: Buffer, replacement: Buffer): Promise<boolean> {
    const run = () => {
      const { table, id, version, value } = SQLITE_WRAPPED[kind];
      const result = this.#ops.db
        .prepare<{ id: string; version: number; expected: Buffer; replacement: Buffer }>(
          `UPDATE ${table} SET ${value.replace(/^v\./, "")} = @replacement WHERE ${id} = @id AND ${version} = @version AND ${value} = @expected`,
        )
        .run({ id: position.id, version: position.version, expected, replacement });
      return result.changes === 1;
    };
    return this.#enter("replaceWrappedValue") ? run() : this.#queued(run);
  }

  // ---- end of root key rotation -------------------------------------------------------------------

  /**
   * Waits for the open transaction and the calls queued before this one, then closes the
   * database; closing the last connection checkpoints the WAL into the main file. Calls made
   * after close() has begun reject. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      if (this.#insideOwnTransaction()) return Promise.reject(new Error("SqliteStore.close: called from inside a transaction on this store"));
      this.#closing = this.#close();
    }
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#lock.acquire();
    try {
      this.#ops.db.close();
    } finally {
      this.#lock.release();
    }
  }

  /** Checks that `name` may be called now; true when nothing holds the lock, so it can run at once. */
  #enter(name: string): boolean {
    this.#open();
    if (!this.#lock.held) return true;
    if (this.#insideOwnTransaction()) {
      throw new Error(
        `SqliteStore.${name}: called on the store from inside one of its transactions; transactions are not nestable, ` +
          "and inside one every operation goes through its tx",
      );
    }
    return false;
  }

  #open(): void {
    if (this.#closing !== undefined) throw new Error(`SqliteStore ${this.path} is closed`);
  }

  #insideOwnTransaction(): boolean {
    return this.#active !== undefined && currentTransaction.getStore() === this.#active;
  }

  /** Runs `op` once the open transaction, and everyone queued before, are done. */
  async #queued<T>(op: () => T): Promise<T> {
    await this.#lock.acquire();
    try {
      return op();
    } finally {
      this.#lock.release();
    }
  }
}

/**
 * Applies the migrations the database lacks, each in its own transaction, recording each in
 * `schema_migrations`. Refuses a database that is newer than `migrations`, or whose recorded
 * history differs from it. Exported for tests.
 */
export function applyMigrations(db: Database.Database, migrations: readonly Migration[], label: string): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const known = migrations.length;
  const record = db.prepare<[number, string, number]>("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
  const applied = db.prepare<[], { version: number; name: string }>("SELECT version, name FROM schema_migrations ORDER BY version");

  const check = (): number => {
    const rows = applied.all();
    const current = rows.at(-1)?.version ?? 0;
    if (current > known) {
      throw new Error(
        `${label}: the database schema version is ${current}, newer than this Tresor knows (${known}); ` +
          "run a Tresor release that knows it, or restore a backup made by this one",
      );
    }
    rows.forEach((row, i) => {
      const expected = migrations[i];
      if (expected === undefined || row.version !== expected.version || row.name !== expected.name) {
        throw new Error(`${label}: recorded migration ${row.version} "${row.name}" does not match this Tresor's migrations`);
      }
    });
    return current;
  };

  check();
  for (const m of migrations) {
    // Re-check inside the write lock: another process may have migrated meanwhile.
    db.transaction(() => {
      const current = check();
      if (current >= m.version) return;
      db.exec(m.sql);
      record.run(m.version, m.name, Math.floor(Date.now() / 1000));
    }).immediate();
  }
}

function schemaVersion(db: Database.Database): number {
  return db.prepare<[], { v: number }>("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").get()?.v ?? 0;
}

/** Creates the file readable and writable by its owner only, unless it exists; SQLite gives its WAL the same mode. */
function createPrivateFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  closeSync(fd);
  // Make the new directory entry durable too.
  const dir = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`"${name}" must be a non-negative integer, got ${value}`);
}

/** Escapes LIKE's wildcards so the search text matches literally (with ESCAPE '\'). */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * SQLite result codes that say the database cannot be written now: the disk (or a quota) is full,
 * the file or its file system is read-only, or the disk fails (extended codes included).
 */
const UNWRITABLE_CODE = /^SQLITE_(FULL|READONLY|IOERR)(_[A-Z_]+)?$/;

/** Whether `err` is SQLite refusing a write because it cannot write at all (not a constraint or a bug). */
export function isSqliteUnwritable(err: unknown): boolean {
  return err instanceof Database.SqliteError && UNWRITABLE_CODE.test(err.code);
}

function conflictField(err: unknown): StoreConflictError["field"] | undefined {
  if (!(err instanceof Database.SqliteError)) return undefined;
  if (err.code !== "SQLITE_CONSTRAINT_UNIQUE" && err.code !== "SQLITE_CONSTRAINT_PRIMARYKEY") return undefined;
  if (err.message.endsWith(": keys.key_id")) return "keyId";
  if (err.message.endsWith(": keys.alias")) return "alias";
  if (err.message.endsWith(": access_keys.secret_id")) return "secretId";
  if (err.message.endsWith(": key_versions.key_id, key_versions.version")) return "keyVersion";
  if (err.message.endsWith(": import_tokens.token_id")) return "importToken";
  // The primary key or the unique (account, kind, name) / (account, name).
  if (err.message.includes(": principals.")) return "principal";
  if (err.message.includes(": policies.")) return "policy";
  return undefined;
}

function conflictOrSelf(err: unknown, keyId: string, alias: string): unknown {
  switch (conflictField(err)) {
    case "keyId":
      return new StoreConflictError("keyId", `a key with id ${keyId} already exists`);
    case "alias":
      return new StoreConflictError("alias", `a key with alias "${alias}" already exists`);
    default:
      return err;
  }
}

// Root key rotation: where each kind of wrapped value lives. Access keys and import tokens have no
// version; 0 stands in, so every kind pages by (id, version).
const SQLITE_WRAPPED: Readonly<Record<WrappedValueKind, { table: string; id: string; version: string; value: string; where: string }>> = {
  keyVersion: {
    table: "key_versions AS v",
    id: "v.key_id",
    version: "v.version",
    value: "v.wrapped_material",
    where: "(SELECT protection_level FROM keys WHERE key_id = v.key_id) = 'SOFTWARE'",
  },
  accessKey: { table: "access_keys", id: "secret_id", version: "0", value: "wrapped_secret", where: "1" },
  importToken: { table: "import_tokens", id: "token_id", version: "0", value: "wrapped_private_key", where: "1" },
};

function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`"limit" must be a positive integer, got ${limit}`);
  return limit;
}

function toKeyRow(key: KeyRecord): Omit<KeyRow, "tags_json"> {
  return {
    key_id: key.keyId,
    alias: key.alias,
    description: key.description,
    key_usage: key.keyUsage,
    key_spec: key.keySpec,
    origin: key.origin,
    state: key.state,
    creator_uin: key.creatorUin,
    owner: key.owner,
    create_time: key.createTime,
    deletion_date: key.deletionDate,
    current_version: key.currentVersion,
    rotation_enabled: key.rotationEnabled ? 1 : 0,
    rotate_days: key.rotateDays,
    last_rotate_time: key.lastRotateTime,
    next_rotate_time: key.nextRotateTime,
    valid_to: key.validTo,
    material_digest: key.materialDigest,
    protection_level: key.protectionLevel,
  };
}

function fromKeyVersionRow(row: KeyVersionRow): KeyVersionRecord {
  return { keyId: row.key_id, version: row.version, wrappedMaterial: row.wrapped_material, publicKey: row.public_key, createTime: row.create_time };
}

function fromAccessKeyRow(row: AccessKeyRow): AccessKeyRecord {
  return {
    secretId: row.secret_id,
    wrappedSecret: row.wrapped_secret,
    uin: row.uin,
    principalId: row.principal_id,
    status: row.status as AccessKeyRecord["status"],
    createTime: row.create_time,
    lastUsedTime: row.last_used_time,
  };
}

function fromPrincipalRow(row: PrincipalRow): PrincipalRecord {
  return {
    principalId: row.principal_id,
    accountUin: row.account_uin,
    kind: row.kind as PrincipalKind,
    name: row.name,
    remark: row.remark,
    trustPolicy: row.trust_policy,
    maxSessionSeconds: row.max_session_seconds,
    createTime: row.create_time,
  };
}

function fromPolicyRow(row: PolicyRow): PolicyRecord {
  return {
    policyId: row.policy_id,
    accountUin: row.account_uin,
    name: row.name,
    description: row.description,
    document: row.document,
    createTime: row.create_time,
    updateTime: row.update_time,
  };
}

function toKeyVersionRow(v: KeyVersionRecord): KeyVersionRow {
  return { key_id: v.keyId, version: v.version, wrapped_material: v.wrappedMaterial, public_key: v.publicKey, create_time: v.createTime };
}

// The columns hold only what toKeyRow wrote, so the casts restore the types it started from.
function optionalKey(row: KeyRow | undefined): KeyRecord | undefined {
  return row === undefined ? undefined : fromKeyRow(row);
}

function fromKeyRow(row: KeyRow): KeyRecord {
  const tags = (JSON.parse(row.tags_json) as [string, string][]).map(([key, value]) => ({ key, value }));
  return {
    keyId: row.key_id,
    alias: row.alias,
    description: row.description,
    keyUsage: row.key_usage as KeyUsage,
    keySpec: row.key_spec as KeySpec,
    origin: row.origin as KeyOrigin,
    state: row.state as KeyState,
    creatorUin: row.creator_uin,
    owner: row.owner,
    createTime: row.create_time,
    deletionDate: row.deletion_date,
    currentVersion: row.current_version,
    tags,
    rotationEnabled: row.rotation_enabled === 1,
    rotateDays: row.rotate_days,
    lastRotateTime: row.last_rotate_time,
    nextRotateTime: row.next_rotate_time,
    validTo: row.valid_to,
    materialDigest: row.material_digest,
    protectionLevel: row.protection_level as ProtectionLevel,
  };
}

function toAuditRow(r: AuditRecord): AuditRow {
  return {
    seq: r.seq,
    time: r.time,
    request_id: r.requestId,
    trace_id: r.traceId,
    node_id: r.nodeId,
    account_uin: r.accountUin,
    principal_uin: r.principalUin,
    principal_name: r.principalName,
    access_key_id: r.accessKeyId,
    source_ip: r.sourceIp,
    user_agent: r.userAgent,
    region: r.region,
    service: r.service,
    action: r.action,
    resource_type: r.resourceType,
    resource_name: r.resourceName,
    read_only: r.readOnly ? 1 : 0,
    result: r.result,
    latency_ms: r.latencyMs,
    params_digest: r.paramsDigest,
    flags: JSON.stringify(r.flags),
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

function sqliteValue(value: string | number | boolean): string | number {
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}

function fromAuditRow(row: AuditRow): AuditRecord {
  return {
    seq: row.seq,
    time: row.time,
    requestId: row.request_id,
    traceId: row.trace_id,
    nodeId: row.node_id,
    accountUin: row.account_uin,
    principalUin: row.principal_uin,
    principalName: row.principal_name,
    accessKeyId: row.access_key_id,
    sourceIp: row.source_ip,
    userAgent: row.user_agent,
    region: row.region,
    service: row.service as AuditService,
    action: row.action,
    resourceType: row.resource_type,
    resourceName: row.resource_name,
    readOnly: row.read_only === 1,
    result: row.result,
    latencyMs: row.latency_ms,
    paramsDigest: row.params_digest,
    flags: JSON.parse(row.flags) as string[],
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function fromCheckpointRow(row: CheckpointRow): Checkpoint {
  return {
    seq: row.seq,
    time: row.time,
    headHash: row.head_hash,
    prunedThrough: row.pruned_through,
    prunedHeadHash: row.pruned_head_hash,
    signature: row.signature,
  };
}

// ---- backup (StoreBackup): the snapshot and import sides ----------------------------------------

function quoteId(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The first `version` migrations. */
function migrationsUpTo(migrations: readonly Migration[], version: number): readonly Migration[] {
  if (!Number.isSafeInteger(version) || version < 1 || version > migrations.length) {
    throw new RangeError(`"schemaVersion" must be from 1 to ${migrations.length}, got ${version}`);
  }
  return migrations.slice(0, version);
}

/**
 * Every table but the migration history, in foreign-key order. SQLite has no boolean type: an
 * INTEGER column with `CHECK (column IN (0, 1))` is a boolean and travels as one, so a backup
 * reads the same from either store.
 */
function describeSqliteTables(db: Database.Database): TableShape[] {
  const rows = db
    .prepare<[], { name: string; sql: string }>(
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> 'schema_migrations'",
    )
    .all();
  const shapes = new Map<string, TableShape>();
  const parents = new Map<string, string[]>();
  for (const { name, sql } of rows) {
    const info = db.pragma(`table_info(${quoteId(name)})`) as { name: string; type: string; pk: number }[];
    const columns = info.map((c) => ({ name: c.name, type: sqlitePortableType(name, c.name, c.type, sql) }));
    const key = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    if (key.length === 0) throw new Error(`table ${name} has no primary key, so a backup cannot page through it`);
    shapes.set(name, { name, columns, key });
    parents.set(name, (db.pragma(`foreign_key_list(${quoteId(name)})`) as { table: string }[]).map((f) => f.table));
  }
  return orderTables([...shapes.keys()], parents).map((name) => shapes.get(name)!);
}

function sqlitePortableType(table: string, column: string, declared: string, tableSql: string): PortableType {
  switch (declared.toUpperCase()) {
    case "INTEGER": {
      const escaped = column.replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`);
      return new RegExp(`CHECK\\s*\\(\\s*${escaped}\\s+IN\\s*\\(\\s*0\\s*,\\s*1\\s*\\)\\s*\\)`, "i").test(tableSql) ? "boolean" : "integer";
    }
    case "TEXT":
      return "text";
    case "BLOB":
      return "bytes";
    default:
      throw new Error(`column ${table}.${column} has the type ${declared}, which a backup cannot carry`);
  }
}

function fromSqliteValue(table: string, column: { name: string; type: PortableType }, value: unknown): PortableValue {
  if (value === null) return null;
  const ok =
    column.type === "integer" || column.type === "boolean"
      ? typeof value === "number" && Number.isSafeInteger(value) && (column.type === "integer" || value === 0 || value === 1)
      : column.type === "text"
        ? typeof value === "string"
        : Buffer.isBuffer(value);
  if (!ok) throw new Error(`column ${table}.${column.name} holds a value that is not of its type ${column.type}`);
  return column.type === "boolean" ? value === 1 : (value as PortableValue);
}

function toSqliteValue(value: PortableValue): number | string | Buffer | null {
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}

function shapeOf(tables: readonly TableShape[], table: string): TableShape {
  const shape = tables.find((t) => t.name === table);
  if (shape === undefined) throw new Error(`the store has no table ${JSON.stringify(table)}`);
  return shape;
}

/** StoreBackup.importInto on `db`, whose caller holds the store's lock (if any). */
async function importIntoDatabase<T>(db: Database.Database, label: string, fn: (target: StoreImport) => Promise<T>): Promise<T> {
  db.prepare("BEGIN IMMEDIATE").run();
  try {
    const tables = describeSqliteTables(db);
    for (const table of tables) {
      const n = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${quoteId(table.name)}`).get()?.n ?? 0;
      if (n > 0) throw new StoreNotEmptyError(`the target store ${label} is not empty (table ${table.name} holds ${n} rows): restore only into a new, empty store`);
    }
    const result = await fn(new SqliteImport(db, schemaVersion(db), tables));
    db.prepare("COMMIT").run();
    return result;
  } catch (err) {
    if (db.inTransaction) db.prepare("ROLLBACK").run();
    throw err;
  }
}

class SqliteSnapshot implements StoreSnapshot {
  readonly schemaVersion: number;
  readonly tables: readonly TableShape[];
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  /** Its first statement starts the read transaction (if one is open). */
  constructor(db: Database.Database) {
    this.#db = db;
    this.schemaVersion = schemaVersion(db);
    this.tables = describeSqliteTables(db);
  }

  async exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]> {
    const shape = shapeOf(this.tables, table);
    checkCount("limit", limit);
    if (after !== null && after.length !== shape.key.length) throw new RangeError(`"after" must hold the ${shape.key.length} key values of ${table}`);
    const key = shape.key.map(quoteId).join(", ");
    const where = after === null ? "" : `WHERE (${key}) > (${shape.key.map(() => "?").join(", ")})`;
    const sql = `SELECT ${shape.columns.map((c) => quoteId(c.name)).join(", ")} FROM ${quoteId(table)} ${where} ORDER BY ${key} LIMIT ?`;
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql).raw(true);
      this.#statements.set(sql, stmt);
    }
    const rows = stmt.all(...(after ?? []).map(toSqliteValue), limit) as unknown[][];
    return rows.map((row) => shape.columns.map((column, i) => fromSqliteValue(table, column, row[i])));
  }
}

class SqliteImport implements StoreImport {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(
    db: Database.Database,
    readonly schemaVersion: number,
    readonly tables: readonly TableShape[],
  ) {
    this.#db = db;
  }

  async importRows(table: string, columns: readonly string[], rows: readonly (readonly PortableValue[])[]): Promise<void> {
    const shape = shapeOf(this.tables, table);
    for (const c of columns) {
      if (!shape.columns.some((s) => s.name === c)) throw new Error(`the table ${table} has no column ${JSON.stringify(c)}`);
    }
    const sql = `INSERT INTO ${quoteId(table)} (${columns.map(quoteId).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`;
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    for (const row of rows) {
      if (row.length !== columns.length) throw new RangeError(`a row of ${table} has ${row.length} values for ${columns.length} columns`);
      stmt.run(...row.map(toSqliteValue));
    }
  }
}
