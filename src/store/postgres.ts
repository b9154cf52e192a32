// The clustered Store: PostgreSQL through a `pg` connection pool, shared by several Tresor nodes.
// Every statement runs as a SERIALIZABLE transaction; serialization failures are retried. The one
// exception is key creation under the CMK limit, which queues on an advisory lock (see
// insertKeyWithinLimit): as serializable transactions, concurrent creations aborted each other.

import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { ImportTokenRecord, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, KeyVersionRecord, ProtectionLevel } from "../keys/key.js";
import type { Migration } from "./migrations/index.js";
import { POSTGRES_MIGRATIONS } from "./migrations/postgres/index.js";
import { StoreConflictError, type AccessKeyRecord, type KeyListQuery, type Store, type StoreOperations } from "./store.js";
import type { Page, PolicyAttachmentRecord, PolicyRecord, PrincipalKind, PrincipalRecord, RoleSessionRecord } from "./store.js";
import { orderTables, StoreNotEmptyError, type PortableType, type PortableValue, type StoreImport, type StoreSnapshot, type TableShape } from "./store.js";
import type { WrappedValue, WrappedValueKind, WrappedValuePosition } from "./store.js";
import { AUDIT_FILTER_COLUMNS, auditSearchIndex, auditSearchUpper, checkAuditAppend, checkAuditQuery, checkAuditSearch, type AuditHead, type AuditRecordQuery } from "./store.js";
import type { AccountAuditPage, AccountAuditPosition, AccountAuditSearch } from "./store.js";
import type { Checkpoint } from "../audit/checkpoint.js";
import { GENESIS_HASH, type AuditRecord, type AuditService } from "../audit/record.js";

export interface PostgresStoreOptions {
  /** Connections in the pool (default 10). A transaction holds one for its whole length. */
  poolSize?: number;
  /** The server cancels any one statement that runs longer (default 30 000 ms). */
  statementTimeoutMs?: number;
  /** Longest wait for a connection, new or from the pool (default 5 000 ms). */
  connectTimeoutMs?: number;
  /** Migrate only up to this version (a restore of a backup made at an older schema); default: all. */
  schemaVersion?: number;
}

const DEFAULTS = { poolSize: 10, statementTimeoutMs: 30_000, connectTimeoutMs: 5_000 } as const;

/**
 * How many times `transaction` (and a plain operation) runs before giving up on serialization
 * failures, and the backoff between runs: a random wait up to BASE·2^(n-1) ms, at most CAP
 * ("full jitter"), so contenders that failed together do not collide again in lockstep.
 */
export const TRANSACTION_ATTEMPTS = 10;
const BACKOFF_BASE_MS = 4;
const BACKOFF_CAP_MS = 250;

/** Held (per database) while migrations run, so that nodes starting together migrate one at a time. */
const MIGRATION_LOCK = "7234298733106213737"; // "dtresor!" read as a big-endian int64; any fixed number works

/**
 * Held (per database) by `insertKeyWithinLimit` from before its count until its commit. That
 * transaction runs READ COMMITTED, so its count, taken after the lock is granted, sees every key
 * committed before; under SERIALIZABLE the snapshot would predate the wait for the lock.
 */
const KEY_CREATION_LOCK = "7234298733106213739";
const BEGIN_SERIALIZABLE = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const BEGIN_KEY_CREATION = `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(${KEY_CREATION_LOCK})`;

/** PostgreSQL 12 is the oldest with `WITH … AS NOT MATERIALIZED`; identity columns need 10. */
const MIN_SERVER_VERSION = 120000;

export interface PostgresDiagnostics {
  serverVersion: string;
  /** "serializable" on every pooled connection. */
  defaultIsolation: string;
  /** As the server reports it, e.g. "30s". */
  statementTimeout: string;
  schemaVersion: number;
}

/** An error from the database, or from talking to it, with its SQLSTATE when the server sent one. */
export class PostgresStoreError extends Error {
  override readonly name = "PostgresStoreError";
  constructor(
    message: string,
    /** The SQLSTATE, e.g. "57014" for a statement cancelled by statement_timeout. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

// ---- statements --------------------------------------------------------------------------------

interface Statement {
  readonly name: string;
  readonly text: string;
}

/** Named, so each connection parses and plans it once. */
function statement(name: string, text: string): Statement {
  return { name: `tresor_${name}`, text };
}

// Tags travel with the key as one JSON column, so reading a key is a single statement.
const KEY_COLUMNS = `k.key_id, k.alias, k.description, k.key_usage, k.key_spec, k.origin, k.state,
  k.creator_uin, k.owner, k.create_time, k.deletion_date, k.current_version,
  k.rotation_enabled, k.rotate_days, k.last_rotate_time, k.next_rotate_time, k.valid_to, k.material_digest,
  k.protection_level,
  (SELECT coalesce(json_agg(json_build_array(t.tag_key, t.tag_value) ORDER BY t.tag_key COLLATE "C"), '[]'::json)
     FROM key_tags AS t WHERE t.key_id = k.key_id) AS tags`;

// Every filter of KeyListQuery in one statement: a null parameter disables its filter. An empty
// list matches nothing (no state is "one of no states"), as in SQLite. Tag filters arrive as JSON.
const LIST_WHERE = `
  ($1::text[] IS NULL OR k.state = ANY ($1::text[]))
  AND ($2::text IS NULL OR k.key_id ILIKE $2::text ESCAPE E'\\\\' OR k.alias ILIKE $2::text ESCAPE E'\\\\')
  AND ($3::text IS NULL OR k.origin = $3::text)
  AND ($4::text[] IS NULL OR k.key_usage = ANY ($4::text[]))
  AND ($5::text IS NULL OR k.owner = $5::text)
  AND ($9::text IS NULL OR k.creator_uin = $9::text)
  AND ($6::jsonb IS NULL OR NOT EXISTS (
    SELECT 1 FROM jsonb_array_elements($6::jsonb) AS f (filter)
    WHERE NOT EXISTS (
      SELECT 1 FROM key_tags AS t
      WHERE t.key_id = k.key_id
        AND t.tag_key = f.filter ->> 'key'
        AND (jsonb_array_length(f.filter -> 'values') = 0
             OR t.tag_value IN (SELECT jsonb_array_elements_text(f.filter -> 'values'))))))`;

// The page and the count of all matches in one statement, hence from one snapshot. The left join
// keeps the count when the page is empty (offset past the end, or limit 0).
function listStatement(order: "ASC" | "DESC"): Statement {
  return statement(
    `listKeys${order === "ASC" ? "Asc" : "Desc"}`,
    `WITH m AS NOT MATERIALIZED (SELECT k.* FROM keys AS k WHERE ${LIST_WHERE})
     SELECT c.total, p.* FROM (SELECT count(*) AS total FROM m) AS c
     LEFT JOIN LATERAL (
       SELECT ${KEY_COLUMNS}, k.seq FROM m AS k
       ORDER BY k.create_time ${order}, k.seq ${order} LIMIT $7 OFFSET $8
     ) AS p ON true
     ORDER BY p.create_time ${order}, p.seq ${order}`,
  );
}

const ACCESS_KEY_COLUMNS = "secret_id, wrapped_secret, uin, principal_id, status, create_time, last_used_time";
const PRINCIPAL_COLUMNS = "principal_id, account_uin, kind, name, remark, trust_policy, max_session_seconds, create_time";
const POLICY_COLUMNS = "policy_id, account_uin, name, description, document, create_time, update_time";
const ROLE_SESSION_COLUMNS = "tmp_secret_id, role_id, account_uin, session_name, assumed_by, create_time, expires_at";

const S = {
  getMeta: statement("getMeta", "SELECT value FROM meta WHERE name = $1"),
  setMeta: statement(
    "setMeta",
    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  ),
  // One statement writes the key, its first version and its tags: atomic without a transaction.
  // The foreign keys of the version and the tags are checked at the end of the statement, when
  // the key row exists.
  insertKey: statement(
    "insertKey",
    `WITH k AS (
       INSERT INTO keys (key_id, alias, description, key_usage, key_spec, origin, state, creator_uin, owner,
         create_time, deletion_date, current_version, rotation_enabled, rotate_days, last_rotate_time,
         next_rotate_time, valid_to, material_digest, protection_level)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $19, $20, $21, $22, $23, $24, $25)
       RETURNING key_id
     ), v AS (
       INSERT INTO key_versions (key_id, version, wrapped_material, public_key, create_time)
       SELECT k.key_id, $13, $14, $15, $16 FROM k WHERE $13::integer IS NOT NULL
     ), t AS (
       INSERT INTO key_tags (key_id, tag_key, tag_value)
       SELECT k.key_id, n.tag_key, n.tag_value FROM k, unnest($17::text[], $18::text[]) AS n (tag_key, tag_value)
     )
     SELECT count(*) AS inserted FROM k`,
  ),
  // Tags: the ones no longer present are deleted and the others upserted, so the two touch
  // disjoint rows (one statement must not delete and re-insert the same primary key).
  updateKey: statement(
    "updateKey",
    `WITH u AS (
       UPDATE keys SET alias = $2, description = $3, state = $4, deletion_date = $5, current_version = $6,
         rotation_enabled = $9, rotate_days = $10, last_rotate_time = $11, next_rotate_time = $12, valid_to = $13,
         material_digest = $14
       WHERE key_id = $1
       RETURNING key_id
     ), d AS (
       DELETE FROM key_tags AS t USING u WHERE t.key_id = u.key_id AND NOT (t.tag_key = ANY ($7::text[]))
     ), i AS (
       INSERT INTO key_tags (key_id, tag_key, tag_value)
       SELECT u.key_id, n.tag_key, n.tag_value FROM u, unnest($7::text[], $8::text[]) AS n (tag_key, tag_value)
       ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value
         WHERE key_tags.tag_value IS DISTINCT FROM excluded.tag_value
     )
     SELECT count(*) AS updated FROM u`,
  ),
  getKey: statement("getKey", `SELECT ${KEY_COLUMNS} FROM keys AS k WHERE k.key_id = $1`),
  getKeyByAlias: statement("getKeyByAlias", `SELECT ${KEY_COLUMNS} FROM keys AS k WHERE k.alias = $1`),
  countKeys: statement("countKeys", "SELECT count(*) AS n FROM keys"),
  countKeysOf: statement("countKeysOf", "SELECT count(*) AS n FROM keys WHERE creator_uin = $1"),
  listKeysAsc: listStatement("ASC"),
  listKeysDesc: listStatement("DESC"),
  insertKeyVersion: statement(
    "insertKeyVersion",
    "INSERT INTO key_versions (key_id, version, wrapped_material, public_key, create_time) VALUES ($1, $2, $3, $4, $5)",
  ),
  getKeyVersion: statement(
    "getKeyVersion",
    "SELECT key_id, version, wrapped_material, public_key, create_time FROM key_versions WHERE key_id = $1 AND version = $2",
  ),
  listKeyVersions: statement(
    "listKeyVersions",
    "SELECT key_id, version, wrapped_material, public_key, create_time FROM key_versions WHERE key_id = $1 ORDER BY version",
  ),
  deleteKeyVersions: statement("deleteKeyVersions", "WITH d AS (DELETE FROM key_versions WHERE key_id = $1 RETURNING 1) SELECT count(*) AS n FROM d"),
  // One statement, so a key is never left half-deleted; the foreign keys are checked at its end.
  deleteKey: statement(
    "deleteKey",
    `WITH v AS (DELETE FROM key_versions WHERE key_id = $1),
          t AS (DELETE FROM key_tags WHERE key_id = $1),
          i AS (DELETE FROM import_tokens WHERE key_id = $1),
          k AS (DELETE FROM keys WHERE key_id = $1 RETURNING 1)
     SELECT count(*) AS n FROM k`,
  ),
  listDueKeys: statement(
    "listDueKeys",
    `SELECT ${KEY_COLUMNS} FROM keys AS k
     WHERE (k.rotation_enabled AND k.state = 'Enabled' AND k.next_rotate_time <= $1)
        OR (k.state = 'PendingDelete' AND k.deletion_date <= $1)
        OR (k.valid_to > 0 AND k.valid_to <= $1 AND k.state <> 'PendingImport')
     ORDER BY least(
       CASE WHEN k.rotation_enabled AND k.state = 'Enabled' THEN k.next_rotate_time ELSE $1 END,
       CASE WHEN k.state = 'PendingDelete' THEN k.deletion_date ELSE $1 END,
       CASE WHEN k.valid_to > 0 THEN k.valid_to ELSE $1 END), k.seq
     LIMIT $2`,
  ),
  insertImportToken: statement(
    "insertImportToken",
    `INSERT INTO import_tokens (token_id, key_id, wrapping_key_spec, wrapping_algorithm, wrapped_private_key, expires_at, used)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  ),
  getImportToken: statement(
    "getImportToken",
    `SELECT token_id, key_id, wrapping_key_spec, wrapping_algorithm, wrapped_private_key, expires_at, used
     FROM import_tokens WHERE token_id = $1`,
  ),
  useImportToken: statement(
    "useImportToken",
    "WITH u AS (UPDATE import_tokens SET used = true WHERE token_id = $1 AND NOT used RETURNING 1) SELECT count(*) AS n FROM u",
  ),
  deleteExpiredImportTokens: statement(
    "deleteExpiredImportTokens",
    "WITH d AS (DELETE FROM import_tokens WHERE expires_at <= $1 RETURNING 1) SELECT count(*) AS n FROM d",
  ),
  insertAccessKey: statement(
    "insertAccessKey",
    `INSERT INTO access_keys (secret_id, wrapped_secret, uin, principal_id, status, create_time, last_used_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  ),
  getAccessKey: statement("getAccessKey", `SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE secret_id = $1`),
  listAccessKeys: statement(
    "listAccessKeys",
    `SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE principal_id = $1 ORDER BY create_time, secret_id COLLATE "C"`,
  ),
  updateAccessKeyStatus: statement("updateAccessKeyStatus", "UPDATE access_keys SET status = $2 WHERE secret_id = $1 RETURNING secret_id"),
  deleteAccessKey: statement("deleteAccessKey", "DELETE FROM access_keys WHERE secret_id = $1 RETURNING secret_id"),
  // $3 = time - minIntervalSeconds: the key is touched only if last used before that.
  touchAccessKey: statement("touchAccessKey", "UPDATE access_keys SET last_used_time = $2 WHERE secret_id = $1 AND last_used_time < $3"),

  insertPrincipal: statement("insertPrincipal", `INSERT INTO principals (${PRINCIPAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
  getPrincipal: statement("getPrincipal", `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE principal_id = $1`),
  getPrincipalByName: statement(
    "getPrincipalByName",
    `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = $1 AND kind = $2 AND name = $3`,
  ),
  // Names and ids in byte order (COLLATE "C"), as SQLite compares them. The page and the count of
  // all matches come from one statement, as for listKeys.
  listPrincipals: statement(
    "listPrincipals",
    `WITH m AS NOT MATERIALIZED (SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = $1 AND kind = $2)
     SELECT c.total, p.* FROM (SELECT count(*) AS total FROM m) AS c
     LEFT JOIN LATERAL (
       SELECT * FROM m ORDER BY m.name COLLATE "C", m.principal_id COLLATE "C" LIMIT $3 OFFSET $4
     ) AS p ON true
     ORDER BY p.name COLLATE "C", p.principal_id COLLATE "C"`,
  ),
  // One statement, so a principal is never left half-deleted; the foreign keys of its attachments
  // and sessions are checked at its end. Nothing is deleted when there is no such principal.
  deletePrincipal: statement(
    "deletePrincipal",
    `WITH p AS (DELETE FROM principals WHERE principal_id = $1 RETURNING principal_id),
          k AS (DELETE FROM access_keys AS a USING p WHERE a.principal_id = p.principal_id),
          t AS (DELETE FROM policy_attachments AS a USING p WHERE a.principal_id = p.principal_id),
          s AS (DELETE FROM role_sessions AS r USING p WHERE r.role_id = p.principal_id)
     SELECT count(*) AS n FROM p`,
  ),

  insertPolicy: statement("insertPolicy", `INSERT INTO policies (${POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
  getPolicy: statement("getPolicy", `SELECT ${POLICY_COLUMNS} FROM policies WHERE policy_id = $1`),
  getPolicyByName: statement("getPolicyByName", `SELECT ${POLICY_COLUMNS} FROM policies WHERE account_uin = $1 AND name = $2`),
  listPolicies: statement(
    "listPolicies",
    `WITH m AS NOT MATERIALIZED (
       SELECT ${POLICY_COLUMNS} FROM policies
       WHERE account_uin = $1 AND ($2::text IS NULL OR name ILIKE $2::text ESCAPE E'\\\\')
     )
     SELECT c.total, p.* FROM (SELECT count(*) AS total FROM m) AS c
     LEFT JOIN LATERAL (
       SELECT * FROM m ORDER BY m.name COLLATE "C", m.policy_id LIMIT $3 OFFSET $4
     ) AS p ON true
     ORDER BY p.name COLLATE "C", p.policy_id`,
  ),
  // Attachments of a preset policy (never in policies) are left alone.
  deletePolicy: statement(
    "deletePolicy",
    `WITH p AS (DELETE FROM policies WHERE policy_id = $1 RETURNING policy_id),
          t AS (DELETE FROM policy_attachments AS a USING p WHERE a.policy_id = p.policy_id)
     SELECT count(*) AS n FROM p`,
  ),

  attachPolicy: statement(
    "attachPolicy",
    `INSERT INTO policy_attachments (principal_id, policy_id, account_uin, create_time) VALUES ($1, $2, $3, $4)
     ON CONFLICT (principal_id, policy_id) DO NOTHING RETURNING principal_id`,
  ),
  detachPolicy: statement(
    "detachPolicy",
    "DELETE FROM policy_attachments WHERE principal_id = $1 AND policy_id = $2 RETURNING principal_id",
  ),
  listAttachedPolicies: statement(
    "listAttachedPolicies",
    "SELECT principal_id, policy_id, account_uin, create_time FROM policy_attachments WHERE principal_id = $1 ORDER BY create_time, policy_id",
  ),
  countPolicyAttachments: statement("countPolicyAttachments", "SELECT count(*) AS n FROM policy_attachments WHERE policy_id = $1"),

  insertRoleSession: statement("insertRoleSession", `INSERT INTO role_sessions (${ROLE_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
  getRoleSession: statement("getRoleSession", `SELECT ${ROLE_SESSION_COLUMNS} FROM role_sessions WHERE tmp_secret_id = $1`),
  deleteExpiredRoleSessions: statement(
    "deleteExpiredRoleSessions",
    "WITH d AS (DELETE FROM role_sessions WHERE expires_at <= $1 RETURNING 1) SELECT count(*) AS n FROM d",
  ),
} as const;

// ---- audit log statements ----

const AUDIT_COLUMNS = `seq, time, request_id, trace_id, node_id, account_uin, principal_uin, principal_name, access_key_id,
  source_ip, user_agent, region, service, action, resource_type, resource_name, read_only, result, latency_ms,
  params_digest, flags, prev_hash, hash`.replace(/\s+/g, " ");
/** The array type of each audit column, in AUDIT_COLUMNS order, for unnest. */
const AUDIT_ARRAY_TYPES = ["bigint", "bigint", ...Array<string>(14).fill("text"), "boolean", "text", "bigint", "text", "text", "text", "text"];
const CHECKPOINT_COLUMNS = "seq, pruned_through, time, head_hash, pruned_head_hash, signature";

const A = {
  // The first statement of a transaction: a table lock is granted before the snapshot is taken,
  // so the head read next is the latest. EXCLUSIVE lets plain reads of the head go on.
  lockAuditHead: statement("lockAuditHead", "LOCK TABLE audit_head IN EXCLUSIVE MODE"),
  auditHead: statement("auditHead", "SELECT seq, hash FROM audit_head WHERE id = 1"),
  // One statement: the head check, the records, each account's numbering on from its head and the
  // new head, so it is atomic on its own.
  appendAuditRecords: statement(
    "appendAuditRecords",
    `WITH h AS (
       SELECT coalesce((SELECT seq FROM audit_head WHERE id = 1), 0) AS seq,
              coalesce((SELECT hash FROM audit_head WHERE id = 1), '${GENESIS_HASH}') AS hash
     ), ok AS (
       SELECT 1 AS one FROM h WHERE h.seq = $1::bigint - 1 AND h.hash = $2::text
     ), r AS (
       SELECT u.* FROM ok, unnest(${AUDIT_ARRAY_TYPES.map((t, i) => `$${i + 5}::${t}[]`).join(", ")}) AS u (${AUDIT_COLUMNS})
     ), counts AS (
       SELECT account_uin, count(*) AS n FROM r GROUP BY account_uin
     ), heads AS (
       INSERT INTO audit_account_heads (account_uin, seq) SELECT account_uin, n FROM counts
       ON CONFLICT (account_uin) DO UPDATE SET seq = audit_account_heads.seq + excluded.seq
       RETURNING account_uin, seq
     ), ins AS (
       INSERT INTO audit_records (${AUDIT_COLUMNS}, account_seq)
       SELECT r.*, heads.seq - counts.n + row_number() OVER (PARTITION BY r.account_uin ORDER BY r.seq)
       FROM r JOIN counts ON counts.account_uin = r.account_uin JOIN heads ON heads.account_uin = r.account_uin
     ), hd AS (
       INSERT INTO audit_head (id, seq, hash) SELECT 1, $3::bigint, $4::text FROM ok
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
     )
     SELECT count(*)::integer AS n FROM ok`,
  ),
  insertAuditCheckpoint: statement(
    "insertAuditCheckpoint",
    `INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`,
  ),
  listAuditCheckpointsAsc: statement(
    "listAuditCheckpointsAsc",
    `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq, pruned_through LIMIT $1`,
  ),
  listAuditCheckpointsDesc: statement(
    "listAuditCheckpointsDesc",
    `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, pruned_through DESC LIMIT $1`,
  ),
  accountAuditPosition: statement(
    "accountAuditPosition",
    "SELECT time, account_seq FROM audit_records WHERE account_uin = $1::text AND account_seq = $2::bigint",
  ),
  pruneAuditRecords: statement(
    "pruneAuditRecords",
    `WITH c AS (DELETE FROM audit_checkpoints WHERE seq <= $1),
          d AS (DELETE FROM audit_records WHERE seq <= $1 RETURNING 1)
     SELECT count(*)::integer AS n FROM d`,
  ),
} as const;

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
  read_only: boolean;
  result: string;
  latency_ms: number;
  params_digest: string;
  flags: string;
  prev_hash: string;
  hash: string;
}

interface CheckpointRow {
  seq: number;
  pruned_through: number;
  time: number;
  head_hash: string;
  pruned_head_hash: string;
  signature: string;
}

/** An audit listing or search statement (named after its text, so each is planned once per connection). */
function listAuditStatement(text: string): Statement {
  return statement(`listAudit_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, text);
}

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
  rotation_enabled: boolean;
  rotate_days: number;
  last_rotate_time: number;
  next_rotate_time: number;
  valid_to: number;
  material_digest: Buffer | null;
  protection_level: string;
  tags: [string, string][];
}

interface ImportTokenRow {
  token_id: string;
  key_id: string;
  wrapping_key_spec: string;
  wrapping_algorithm: string;
  wrapped_private_key: Buffer;
  expires_at: number;
  used: boolean;
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

// BIGINT columns hold unix seconds and counts, which Tresor writes from JS numbers, so they come
// back as numbers (pg's default is a string). The parser must not throw: it runs inside pg's
// socket handler, where an exception would escape every promise.
const INT8_OID = 20;
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

// ---- errors ------------------------------------------------------------------------------------

function sqlState(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError ? err.code : undefined;
}

/** Serialization failure or deadlock: the transaction was rolled back and may simply run again. */
function isSerializationFailure(err: unknown): boolean {
  const code = sqlState(err);
  return code === "40001" || code === "40P01";
}

/**
 * Whether the connection itself is in doubt (lost, killed, timed out on our side, the server
 * shutting down), so it must not go back to the pool. A plain SQL error leaves it usable.
 */
function isConnectionLevel(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return true;
  return /^(08|53|57P|58|XX)/.test(err.code ?? "");
}

/** pg gave up waiting for the server's answer (query_timeout). */
function isTimeout(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError) && err instanceof Error && /timeout/i.test(err.message);
}

/**
 * The error a caller sees: the server's message and SQLSTATE, never its `detail` (which quotes
 * row values) nor the statement's parameters. Errors of our own pass through.
 */
function cleanError(op: string, err: unknown): Error {
  if (err instanceof StoreConflictError || err instanceof PostgresStoreError) return err;
  if (err instanceof pg.DatabaseError) return new PostgresStoreError(`PostgresStore.${op}: ${err.message} (SQLSTATE ${err.code ?? "?"})`, err.code);
  if (err instanceof Error) return new PostgresStoreError(`PostgresStore.${op}: ${err.message}`, undefined);
  return new PostgresStoreError(`PostgresStore.${op}: ${String(err)}`, undefined);
}

/** Maps a unique or foreign-key violation to what the port promises; undefined leaves the error as it is. */
type ConstraintMapper = (err: pg.DatabaseError) => Error | undefined;

function constraintOf(err: pg.DatabaseError, code: string): string | undefined {
  return err.code === code ? err.constraint : undefined;
}

const UNIQUE_VIOLATION = "23505";
const FOREIGN_KEY_VIOLATION = "23503";

function keyConflict(keyId: string, alias: string): ConstraintMapper {
  return (err) => {
    switch (constraintOf(err, UNIQUE_VIOLATION)) {
      case "keys_pkey":
        return new StoreConflictError("keyId", `a key with id ${keyId} already exists`);
      case "keys_alias_key":
        return new StoreConflictError("alias", `a key with alias "${alias}" already exists`);
      default:
        return undefined;
    }
  };
}

function backoffMs(attempt: number): number {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
}

// ---- operations --------------------------------------------------------------------------------

/** A write may fail with an expected error (a conflict): inside a transaction it runs under a savepoint. */
type Kind = "read" | "write";

/**
 * The operations, written once over `exec`: the store runs each statement on any pooled
 * connection, a transaction on its own connection.
 */
abstract class Operations implements StoreOperations {
  /** Runs one statement; rejects with a clean error (see cleanError), mapped by `constraints` first. */
  protected abstract exec<R extends pg.QueryResultRow>(
    op: string,
    s: Statement,
    values: unknown[],
    kind: Kind,
    constraints?: ConstraintMapper,
  ): Promise<R[]>;

  async getMeta(name: string): Promise<string | undefined> {
    const rows = await this.exec<{ value: string }>("getMeta", S.getMeta, [name], "read");
    return rows[0]?.value;
  }

  async setMeta(name: string, value: string): Promise<void> {
    await this.exec("setMeta", S.setMeta, [name, value], "write");
  }

  async insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    if (firstVersion !== null && firstVersion.keyId !== key.keyId) {
      throw new Error(`insertKey: the first version belongs to key ${firstVersion.keyId}, not ${key.keyId}`);
    }
    await this.exec(
      "insertKey",
      S.insertKey,
      [
        key.keyId,
        key.alias,
        key.description,
        key.keyUsage,
        key.keySpec,
        key.origin,
        key.state,
        key.creatorUin,
        key.owner,
        key.createTime,
        key.deletionDate,
        key.currentVersion,
        firstVersion?.version ?? null,
        firstVersion?.wrappedMaterial ?? null,
        firstVersion?.publicKey ?? null,
        firstVersion?.createTime ?? null,
        key.tags.map((t) => t.key),
        key.tags.map((t) => t.value),
        ...lifecycleValues(key),
        key.protectionLevel,
      ],
      "write",
      keyConflict(key.keyId, key.alias),
    );
  }

  async insertKeyVersion(version: KeyVersionRecord): Promise<void> {
    await this.exec(
      "insertKeyVersion",
      S.insertKeyVersion,
      [version.keyId, version.version, version.wrappedMaterial, version.publicKey, version.createTime],
      "write",
      (err) => {
        if (constraintOf(err, FOREIGN_KEY_VIOLATION) === "key_versions_key_id_fkey") {
          return new Error(`insertKeyVersion: no key with id ${version.keyId}`);
        }
        if (constraintOf(err, UNIQUE_VIOLATION) === "key_versions_pkey") {
          return new StoreConflictError("keyVersion", `key ${version.keyId} already has a version ${version.version}`);
        }
        return undefined;
      },
    );
  }

  async getKey(keyId: string): Promise<KeyRecord | undefined> {
    const rows = await this.exec<KeyRow>("getKey", S.getKey, [keyId], "read");
    return rows[0] === undefined ? undefined : fromKeyRow(rows[0]);
  }

  async getKeyByAlias(alias: string): Promise<KeyRecord | undefined> {
    const rows = await this.exec<KeyRow>("getKeyByAlias", S.getKeyByAlias, [alias], "read");
    return rows[0] === undefined ? undefined : fromKeyRow(rows[0]);
  }

  async updateKey(key: KeyRecord): Promise<void> {
    const rows = await this.exec<{ updated: number }>(
      "updateKey",
      S.updateKey,
      [
        key.keyId,
        key.alias,
        key.description,
        key.state,
        key.deletionDate,
        key.currentVersion,
        key.tags.map((t) => t.key),
        key.tags.map((t) => t.value),
        ...lifecycleValues(key),
      ],
      "write",
      keyConflict(key.keyId, key.alias),
    );
    if (rows[0]?.updated !== 1) throw new Error(`updateKey: no key with id ${key.keyId}`);
  }

  async listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    checkCount("offset", query.offset);
    checkCount("limit", query.limit);
    const values = [
      query.states === undefined ? null : [...query.states],
      query.search === undefined ? null : `%${escapeLike(query.search)}%`,
      query.origin ?? null,
      query.keyUsages === undefined ? null : [...query.keyUsages],
      query.owner ?? null,
      // A string, not an array: pg would send a JS array as a PostgreSQL array.
      query.tagFilters === undefined ? null : JSON.stringify(query.tagFilters.map((f) => ({ key: f.key, values: f.values }))),
      query.limit,
      query.offset,
      query.accountUin ?? null,
    ];
    const rows = await this.exec<{ total: number } & ({ [K in keyof KeyRow]: KeyRow[K] | null })>(
      "listKeys",
      query.order === "asc" ? S.listKeysAsc : S.listKeysDesc,
      values,
      "read",
    );
    const totalCount = rows[0]?.total ?? 0;
    const keys = rows.filter((row): row is { total: number } & KeyRow => row.key_id !== null).map(fromKeyRow);
    return { keys, totalCount };
  }

  async countKeys(accountUin?: string): Promise<number> {
    const rows =
      accountUin === undefined
        ? await this.exec<{ n: number }>("countKeys", S.countKeys, [], "read")
        : await this.exec<{ n: number }>("countKeys", S.countKeysOf, [accountUin], "read");
    return rows[0]?.n ?? 0;
  }

  async getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined> {
    // An int4 parameter out of range would be an error; no such version exists either way.
    if (!Number.isSafeInteger(version) || version < -2_147_483_648 || version > 2_147_483_647) return undefined;
    const rows = await this.exec<KeyVersionRow>("getKeyVersion", S.getKeyVersion, [keyId, version], "read");
    return rows[0] === undefined ? undefined : fromKeyVersionRow(rows[0]);
  }

  async listKeyVersions(keyId: string): Promise<KeyVersionRecord[]> {
    const rows = await this.exec<KeyVersionRow>("listKeyVersions", S.listKeyVersions, [keyId], "read");
    return rows.map(fromKeyVersionRow);
  }

  async deleteKeyVersions(keyId: string): Promise<number> {
    const rows = await this.exec<{ n: number }>("deleteKeyVersions", S.deleteKeyVersions, [keyId], "write");
    return rows[0]?.n ?? 0;
  }

  async deleteKey(keyId: string): Promise<boolean> {
    const rows = await this.exec<{ n: number }>("deleteKey", S.deleteKey, [keyId], "write");
    return rows[0]?.n === 1;
  }

  async listDueKeys(now: number, limit: number): Promise<KeyRecord[]> {
    checkCount("limit", limit);
    const rows = await this.exec<KeyRow>("listDueKeys", S.listDueKeys, [now, limit], "read");
    return rows.map(fromKeyRow);
  }

  async insertImportToken(token: ImportTokenRecord): Promise<void> {
    await this.exec(
      "insertImportToken",
      S.insertImportToken,
      [token.tokenId, token.keyId, token.wrappingKeySpec, token.wrappingAlgorithm, token.wrappedPrivateKey, token.expiresAt, token.used],
      "write",
      (err) => {
        if (constraintOf(err, FOREIGN_KEY_VIOLATION) === "import_tokens_key_id_fkey") return new Error(`insertImportToken: no key with id ${token.keyId}`);
        if (constraintOf(err, UNIQUE_VIOLATION) === "import_tokens_pkey") {
          return new StoreConflictError("importToken", `an import token ${token.tokenId} already exists`);
        }
        return undefined;
      },
    );
  }

  async getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined> {
    const rows = await this.exec<ImportTokenRow>("getImportToken", S.getImportToken, [tokenId], "read");
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      tokenId: row.token_id,
      keyId: row.key_id,
      wrappingKeySpec: row.wrapping_key_spec as ImportTokenRecord["wrappingKeySpec"],
      wrappingAlgorithm: row.wrapping_algorithm as ImportTokenRecord["wrappingAlgorithm"],
      wrappedPrivateKey: row.wrapped_private_key,
      expiresAt: row.expires_at,
      used: row.used,
    };
  }

  async useImportToken(tokenId: string): Promise<boolean> {
    const rows = await this.exec<{ n: number }>("useImportToken", S.useImportToken, [tokenId], "write");
    return rows[0]?.n === 1;
  }

  async deleteExpiredImportTokens(now: number): Promise<number> {
    const rows = await this.exec<{ n: number }>("deleteExpiredImportTokens", S.deleteExpiredImportTokens, [now], "write");
    return rows[0]?.n ?? 0;
  }

  async insertAccessKey(record: AccessKeyRecord): Promise<void> {
    await this.exec(
      "insertAccessKey",
      S.insertAccessKey,
      [record.secretId, record.wrappedSecret, record.uin, record.principalId, record.status, record.createTime, record.lastUsedTime],
      "write",
      (err) =>
        constraintOf(err, UNIQUE_VIOLATION) === "access_keys_pkey"
          ? new StoreConflictError("secretId", `an access key with SecretId ${record.secretId} already exists`)
          : undefined,
    );
  }

  async getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined> {
    const rows = await this.exec<AccessKeyRow>("getAccessKey", S.getAccessKey, [secretId], "read");
    return rows[0] === undefined ? undefined : fromAccessKeyRow(rows[0]);
  }

  async listAccessKeys(principalId: string): Promise<AccessKeyRecord[]> {
    const rows = await this.exec<AccessKeyRow>("listAccessKeys", S.listAccessKeys, [principalId], "read");
    return rows.map(fromAccessKeyRow);
  }

  async updateAccessKeyStatus(secretId: string, status: AccessKeyRecord["status"]): Promise<boolean> {
    const rows = await this.exec("updateAccessKeyStatus", S.updateAccessKeyStatus, [secretId, status], "write");
    return rows.length === 1;
  }

  async deleteAccessKey(secretId: string): Promise<boolean> {
    const rows = await this.exec("deleteAccessKey", S.deleteAccessKey, [secretId], "write");
    return rows.length === 1;
  }

  async touchAccessKey(secretId: string, time: number, minIntervalSeconds: number): Promise<void> {
    await this.exec("touchAccessKey", S.touchAccessKey, [secretId, time, time - minIntervalSeconds], "write");
  }

  async insertPrincipal(record: PrincipalRecord): Promise<void> {
    await this.exec(
      "insertPrincipal",
      S.insertPrincipal,
      [record.principalId, record.accountUin, record.kind, record.name, record.remark, record.trustPolicy, record.maxSessionSeconds, record.createTime],
      "write",
      (err) => {
        switch (constraintOf(err, UNIQUE_VIOLATION)) {
          case "principals_pkey":
            return new StoreConflictError("principal", `a principal with id ${record.principalId} already exists`);
          case "principals_name_key":
            return new StoreConflictError("principal", `a ${record.kind} named "${record.name}" already exists in account ${record.accountUin}`);
          default:
            return undefined;
        }
      },
    );
  }

  async getPrincipal(principalId: string): Promise<PrincipalRecord | undefined> {
    const rows = await this.exec<PrincipalRow>("getPrincipal", S.getPrincipal, [principalId], "read");
    return rows[0] === undefined ? undefined : fromPrincipalRow(rows[0]);
  }

  async getPrincipalByName(accountUin: string, kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    const rows = await this.exec<PrincipalRow>("getPrincipalByName", S.getPrincipalByName, [accountUin, kind, name], "read");
    return rows[0] === undefined ? undefined : fromPrincipalRow(rows[0]);
  }

  async listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    const rows = await this.exec<{ total: number } & Nullable<PrincipalRow>>("listPrincipals", S.listPrincipals, [accountUin, kind, limit, offset], "read");
    return {
      items: rows.filter((row): row is { total: number } & PrincipalRow => row.principal_id !== null).map(fromPrincipalRow),
      totalCount: rows[0]?.total ?? 0,
    };
  }

  async deletePrincipal(principalId: string): Promise<boolean> {
    const rows = await this.exec<{ n: number }>("deletePrincipal", S.deletePrincipal, [principalId], "write");
    return rows[0]?.n === 1;
  }

  async insertPolicy(record: PolicyRecord): Promise<void> {
    await this.exec(
      "insertPolicy",
      S.insertPolicy,
      [record.policyId, record.accountUin, record.name, record.description, record.document, record.createTime, record.updateTime],
      "write",
      (err) => {
        switch (constraintOf(err, UNIQUE_VIOLATION)) {
          case "policies_pkey":
            return new StoreConflictError("policy", `a policy with id ${record.policyId} already exists`);
          case "policies_name_key":
            return new StoreConflictError("policy", `a policy named "${record.name}" already exists in account ${record.accountUin}`);
          default:
            return undefined;
        }
      },
    );
  }

  async getPolicy(policyId: number): Promise<PolicyRecord | undefined> {
    if (!isPolicyId(policyId)) return undefined;
    const rows = await this.exec<PolicyRow>("getPolicy", S.getPolicy, [policyId], "read");
    return rows[0] === undefined ? undefined : fromPolicyRow(rows[0]);
  }

  async getPolicyByName(accountUin: string, name: string): Promise<PolicyRecord | undefined> {
    const rows = await this.exec<PolicyRow>("getPolicyByName", S.getPolicyByName, [accountUin, name], "read");
    return rows[0] === undefined ? undefined : fromPolicyRow(rows[0]);
  }

  async listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    const pattern = keyword === undefined ? null : `%${escapeLike(keyword)}%`;
    const rows = await this.exec<{ total: number } & Nullable<PolicyRow>>("listPolicies", S.listPolicies, [accountUin, pattern, limit, offset], "read");
    return {
      items: rows.filter((row): row is { total: number } & PolicyRow => row.policy_id !== null).map(fromPolicyRow),
      totalCount: rows[0]?.total ?? 0,
    };
  }

  async deletePolicy(policyId: number): Promise<boolean> {
    if (!isPolicyId(policyId)) return false;
    const rows = await this.exec<{ n: number }>("deletePolicy", S.deletePolicy, [policyId], "write");
    return rows[0]?.n === 1;
  }

  async attachPolicy(record: PolicyAttachmentRecord): Promise<boolean> {
    const rows = await this.exec(
      "attachPolicy",
      S.attachPolicy,
      [record.principalId, record.policyId, record.accountUin, record.createTime],
      "write",
      (err) =>
        constraintOf(err, FOREIGN_KEY_VIOLATION) === "policy_attachments_principal_id_fkey"
          ? new Error(`attachPolicy: no principal with id ${record.principalId}`)
          : undefined,
    );
    return rows.length === 1;
  }

  async detachPolicy(principalId: string, policyId: number): Promise<boolean> {
    if (!isPolicyId(policyId)) return false;
    const rows = await this.exec("detachPolicy", S.detachPolicy, [principalId, policyId], "write");
    return rows.length === 1;
  }

  async listAttachedPolicies(principalId: string): Promise<PolicyAttachmentRecord[]> {
    const rows = await this.exec<PolicyAttachmentRow>("listAttachedPolicies", S.listAttachedPolicies, [principalId], "read");
    return rows.map((row) => ({ principalId: row.principal_id, policyId: row.policy_id, accountUin: row.account_uin, createTime: row.create_time }));
  }

  async countPolicyAttachments(policyId: number): Promise<number> {
    if (!isPolicyId(policyId)) return 0;
    const rows = await this.exec<{ n: number }>("countPolicyAttachments", S.countPolicyAttachments, [policyId], "read");
    return rows[0]?.n ?? 0;
  }

  async insertRoleSession(record: RoleSessionRecord): Promise<void> {
    await this.exec(
      "insertRoleSession",
      S.insertRoleSession,
      [record.tmpSecretId, record.roleId, record.accountUin, record.sessionName, record.assumedBy, record.createTime, record.expiresAt],
      "write",
      (err) =>
        constraintOf(err, FOREIGN_KEY_VIOLATION) === "role_sessions_role_id_fkey" ? new Error(`insertRoleSession: no principal with id ${record.roleId}`) : undefined,
    );
  }

  async getRoleSession(tmpSecretId: string): Promise<RoleSessionRecord | undefined> {
    const rows = await this.exec<RoleSessionRow>("getRoleSession", S.getRoleSession, [tmpSecretId], "read");
    const row = rows[0];
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

  async deleteExpiredRoleSessions(now: number): Promise<number> {
    const rows = await this.exec<{ n: number }>("deleteExpiredRoleSessions", S.deleteExpiredRoleSessions, [now], "write");
    return rows[0]?.n ?? 0;
  }

  // ---- audit log ----

  async auditHead(): Promise<AuditHead | undefined> {
    const rows = await this.exec<AuditHead>("auditHead", A.auditHead, [], "read");
    return rows[0];
  }

  async appendAuditRecords(records: readonly AuditRecord[]): Promise<void> {
    const { first, last } = checkAuditAppend(records);
    const columns: unknown[][] = AUDIT_ARRAY_TYPES.map(() => []);
    for (const r of records) {
      const values = [
        r.seq, r.time, r.requestId, r.traceId, r.nodeId, r.accountUin, r.principalUin, r.principalName, r.accessKeyId,
        r.sourceIp, r.userAgent, r.region, r.service, r.action, r.resourceType, r.resourceName, r.readOnly, r.result,
        r.latencyMs, r.paramsDigest, JSON.stringify(r.flags), r.prevHash, r.hash,
      ];
      values.forEach((v, i) => columns[i]!.push(v));
    }
    const conflict = () => new StoreConflictError("auditHead", `the audit records from seq ${first.seq} do not follow the chain head`);
    const rows = await this.exec<{ n: number }>(
      "appendAuditRecords",
      A.appendAuditRecords,
      [first.seq, first.prevHash, last.seq, last.hash, ...columns],
      "write",
      (err) => {
        const c = constraintOf(err, UNIQUE_VIOLATION);
        return c === "audit_records_pkey" || c === "audit_head_pkey" ? conflict() : undefined;
      },
    );
    if (rows[0]?.n !== 1) throw conflict();
  }

  async listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]> {
    checkAuditQuery(query);
    const where: string[] = [];
    const values: unknown[] = [query.limit];
    const param = (v: unknown, type: string): string => {
      values.push(v);
      return `$${values.length}::${type}`;
    };
    if (query.fromTime !== undefined) where.push(`time >= ${param(query.fromTime, "bigint")}`);
    if (query.toTime !== undefined) where.push(`time <= ${param(query.toTime, "bigint")}`);
    if (query.afterSeq !== undefined) where.push(`seq ${query.order === "asc" ? ">" : "<"} ${param(query.afterSeq, "bigint")}`);
    const text = `SELECT ${AUDIT_COLUMNS} FROM audit_records ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`}
      ORDER BY seq ${query.order === "asc" ? "ASC" : "DESC"} LIMIT $1`;
    const rows = await this.exec<AuditRow>("listAuditRecords", listAuditStatement(text), values, "read");
    return rows.map(fromAuditRow);
  }

  async searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage> {
    checkAuditSearch(search);
    const { column, name } = auditSearchIndex(search.filters);
    const upper = auditSearchUpper(search);
    const values: unknown[] = [];
    const param = (v: unknown, type: string): string => {
      values.push(v);
      return `$${values.length}::${type}`;
    };
    const typeOf = (v: unknown) => (typeof v === "boolean" ? "boolean" : typeof v === "number" ? "bigint" : "text");
    // The walk: the account's records of the range below `upper`, in the order of the index that
    // starts with the account and the driving filter's column (see the 005 migration).
    const walk = [
      `account_uin = ${param(search.accountUin, "text")}`,
      `(time, account_seq) < (${param(upper.time, "bigint")}, ${param(upper.accountSeq, "bigint")})`,
    ];
    if (column !== undefined && name !== undefined) walk.push(`${column} = ${param(search.filters[name], typeOf(search.filters[name]))}`);
    const order = "ORDER BY time DESC, account_seq DESC";
    const walkValues = [...values];
    const fromTime = () => `time >= ${param(search.fromTime, "bigint")}`;
    const boundaryText = `SELECT time, account_seq FROM audit_records WHERE ${walk.join(" AND ")} AND ${fromTime()} ${order} LIMIT 1 OFFSET ${param(search.scanLimit - 1, "bigint")}`;
    const [boundary] = await this.exec<{ time: number; account_seq: number }>("searchAccountAudit", listAuditStatement(boundaryText), values, "read");
    values.length = 0;
    values.push(...walkValues);
    // The boundary, when there is one, is the walk's lower end in the index (see sqlite.ts).
    const where = [...walk];
    where.push(boundary === undefined ? fromTime() : `(time, account_seq) >= (${param(boundary.time, "bigint")}, ${param(boundary.account_seq, "bigint")})`);
    const filters = search.filters;
    for (const [filter, filterColumn] of Object.entries(AUDIT_FILTER_COLUMNS)) {
      const value = filters[filter as keyof typeof AUDIT_FILTER_COLUMNS];
      if (value !== undefined && filter !== name) where.push(`${filterColumn} = ${param(value, typeOf(value))}`);
    }
    // One whole name of the comma-separated list.
    if (filters.resourceName !== undefined) where.push(`strpos(',' || resource_name || ',', ',' || ${param(filters.resourceName, "text")} || ',') > 0`);
    // The text test first, as in sqlite.ts: only rows holding the flag's JSON string can match.
    if (filters.flag !== undefined) where.push(`strpos(flags, ${param(JSON.stringify(filters.flag), "text")}) > 0`, `flags::jsonb ? ${param(filters.flag, "text")}`);
    const text = `SELECT ${AUDIT_COLUMNS}, account_seq FROM audit_records WHERE ${where.join(" AND ")} ${order} LIMIT ${param(search.limit + 1, "bigint")}`;
    const rows = await this.exec<AuditRow & { account_seq: number }>("searchAccountAudit", listAuditStatement(text), values, "read");
    const records = rows.slice(0, search.limit).map((row) => ({ ...fromAuditRow(row), accountSeq: Number(row.account_seq) }));
    const last = records.at(-1);
    if (rows.length > search.limit && last !== undefined) return { records, next: { time: last.time, accountSeq: last.accountSeq } };
    return boundary === undefined ? { records } : { records, next: { time: Number(boundary.time), accountSeq: Number(boundary.account_seq) } };
  }

  async accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined> {
    const [row] = await this.exec<{ time: number; account_seq: number }>("accountAuditPosition", A.accountAuditPosition, [accountUin, accountSeq], "read");
    return row === undefined ? undefined : { time: Number(row.time), accountSeq: Number(row.account_seq) };
  }

  async insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.exec(
      "insertAuditCheckpoint",
      A.insertAuditCheckpoint,
      [checkpoint.seq, checkpoint.prunedThrough, checkpoint.time, checkpoint.headHash, checkpoint.prunedHeadHash, checkpoint.signature],
      "write",
      (err) =>
        constraintOf(err, UNIQUE_VIOLATION) === "audit_checkpoints_pkey"
          ? new StoreConflictError("auditCheckpoint", `an audit checkpoint at seq ${checkpoint.seq} (pruned through ${checkpoint.prunedThrough}) exists already`)
          : undefined,
    );
  }

  async listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]> {
    if (query.limit !== undefined) checkCount("limit", query.limit);
    const rows = await this.exec<CheckpointRow>(
      "listAuditCheckpoints",
      query.order === "asc" ? A.listAuditCheckpointsAsc : A.listAuditCheckpointsDesc,
      [query.limit ?? null],
      "read",
    );
    return rows.map((row) => ({
      seq: row.seq,
      time: row.time,
      headHash: row.head_hash,
      prunedThrough: row.pruned_through,
      prunedHeadHash: row.pruned_head_hash,
      signature: row.signature,
    }));
  }

  async pruneAuditRecords(throughSeq: number): Promise<number> {
    checkCount("throughSeq", throughSeq);
    const rows = await this.exec<{ n: number }>("pruneAuditRecords", A.pruneAuditRecords, [throughSeq], "write");
    return rows[0]?.n ?? 0;
  }
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
    readOnly: row.read_only,
    result: row.result,
    latencyMs: row.latency_ms,
    paramsDigest: row.params_digest,
    flags: JSON.parse(row.flags) as string[],
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function mapError(op: string, err: unknown, constraints: ConstraintMapper | undefined): Error {
  if (constraints !== undefined && err instanceof pg.DatabaseError) {
    const mapped = constraints(err);
    if (mapped !== undefined) return mapped;
  }
  return cleanError(op, err);
}

// ---- transactions ------------------------------------------------------------------------------

/**
 * The `tx` of one run of a transaction's function, on the connection that run holds. Its
 * statements run one after another in call order (a savepoint around each write must not
 * interleave with another), and only while the function has not settled.
 */
class PostgresTransaction extends Operations {
  readonly #client: pg.PoolClient;
  #open = true;
  #queue: Promise<unknown> = Promise.resolve();
  /** A serialization failure or deadlock hit a statement: this run must roll back and start again. */
  #mustRetry = false;
  /** A statement failed outside a savepoint: PostgreSQL has aborted the transaction. */
  #aborted: Error | undefined;
  #connectionLost = false;

  constructor(client: pg.PoolClient) {
    super();
    this.#client = client;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Locks the chain head for the rest of the transaction, then reads it (see AuditStore.auditHead). */
  override async auditHead(): Promise<AuditHead | undefined> {
    await this.exec("auditHead", A.lockAuditHead, [], "read");
    return super.auditHead();
  }

  get mustRetry(): boolean {
    return this.#mustRetry;
  }

  get aborted(): Error | undefined {
    return this.#aborted;
  }

  get connectionLost(): boolean {
    return this.#connectionLost;
  }

  /** Refuses further calls, then waits for the ones already made. */
  async finish(): Promise<void> {
    this.#open = false;
    await this.#queue;
  }

  protected override exec<R extends pg.QueryResultRow>(
    op: string,
    s: Statement,
    values: unknown[],
    kind: Kind,
    constraints?: ConstraintMapper,
  ): Promise<R[]> {
    if (!this.#open) return Promise.reject(new Error(`PostgresStore.${op}: this transaction has ended; its tx can no longer be used`));
    const run = this.#queue.then(() => this.#run<R>(op, s, values, kind, constraints));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #run<R extends pg.QueryResultRow>(op: string, s: Statement, values: unknown[], kind: Kind, constraints?: ConstraintMapper): Promise<R[]> {
    if (this.#mustRetry) {
      throw new PostgresStoreError(`PostgresStore.${op}: the transaction lost a serialization conflict and will run again`, "40001");
    }
    if (this.#aborted !== undefined) {
      throw new PostgresStoreError(`PostgresStore.${op}: an earlier statement of this transaction failed, so it can only roll back`, "25P02");
    }
    const client = this.#client;
    if (kind === "read") {
      try {
        return (await client.query<R>({ ...s, values })).rows;
      } catch (err) {
        throw this.#failed(op, err, constraints);
      }
    }
    // A write that fails (a conflict the caller may catch) leaves the transaction usable, as in SQLite.
    try {
      await client.query("SAVEPOINT tresor_write");
    } catch (err) {
      throw this.#failed(op, err, constraints);
    }
    let rows: R[];
    try {
      rows = (await client.query<R>({ ...s, values })).rows;
    } catch (err) {
      if (isSerializationFailure(err) || isConnectionLevel(err)) throw this.#failed(op, err, constraints);
      try {
        await client.query("ROLLBACK TO SAVEPOINT tresor_write");
        await client.query("RELEASE SAVEPOINT tresor_write");
      } catch (rollbackError) {
        // Now the transaction is beyond repair: record it, but report the original failure.
        this.#failed(op, rollbackError, undefined);
      }
      throw mapError(op, err, constraints);
    }
    try {
      await client.query("RELEASE SAVEPOINT tresor_write");
    } catch (err) {
      throw this.#failed(op, err, undefined);
    }
    return rows;
  }

  /** Records what a failed statement did to the transaction and returns the error for the caller. */
  #failed(op: string, err: unknown, constraints: ConstraintMapper | undefined): Error {
    const clean = mapError(op, err, constraints);
    if (isSerializationFailure(err)) this.#mustRetry = true;
    else this.#aborted ??= clean;
    if (isConnectionLevel(err)) this.#connectionLost = true;
    return clean;
  }
}

/** The transaction (of which store) the current async call chain runs in; see PostgresStore. */
const currentTransaction = new AsyncLocalStorage<{ store: PostgresStore; tx: PostgresTransaction }>();

type Attempt<T> = { retry: true } | { retry: "stale connection"; error: unknown } | { retry: false; ok: true; value: T } | { retry: false; ok: false; error: unknown };

// ---- the store ---------------------------------------------------------------------------------

/**
 * A pool of connections to one PostgreSQL database (and schema: the connection's search_path).
 *
 * Isolation: every statement runs SERIALIZABLE (the session default, set on each new connection,
 * and `BEGIN ISOLATION LEVEL SERIALIZABLE` for `transaction`). PostgreSQL's serializable snapshot
 * isolation lets transactions run side by side and aborts one of any set whose outcome no serial
 * order could produce (SQLSTATE 40001; deadlocks are 40P01). Explicit row locks would not do:
 * "count the keys, then insert under a limit" reads a set with no row to lock, short of locking
 * the whole table for every key creation; `insertKeyWithinLimit` takes an advisory lock instead.
 *
 * Retries: an aborted run rolls back and runs again, after a jittered backoff, up to
 * TRANSACTION_ATTEMPTS times. So **the function given to `transaction` may run more than once**:
 * it must do nothing outside `tx` that cannot be repeated (no audit writes, no sends, no counters),
 * and only the value of its last run is returned. A run is retried when any of its statements, or
 * its COMMIT, hit a serialization failure, even if the function caught the error. A plain
 * operation on the store is one statement in its own transaction, retried the same way.
 *
 * A failed write inside a transaction (a conflict the function catches) is undone by a savepoint
 * and leaves the transaction usable, as in SQLite. Any other failed statement aborts it: further
 * calls on `tx` reject, and the transaction rolls back even if the function then resolves.
 *
 * Nesting: transactions are not nestable. Calling the store itself (any operation, `transaction`
 * or `close`) from inside one of its transactions' functions rejects, as SqliteStore does: it
 * would run outside the transaction, could wait for the transaction's own row locks, and with
 * every pooled connection held by such transactions would wait forever for a connection.
 *
 * Connections: a statement the server does not answer is abandoned after statement timeout plus
 * connect timeout; getting a connection fails after the connect timeout; a connection that
 * failed is dropped from the pool, so the store keeps working when the server is back. A lost
 * connection during COMMIT leaves the outcome unknown: that call rejects saying so and is not
 * retried. Session state (the isolation default, named prepared statements) means the pool needs
 * direct connections or session pooling, not a transaction-pooling proxy.
 */
export class PostgresStore extends Operations implements Store {
  /** Where the store points, without any password; used in messages. */
  readonly label: string;
  readonly #pool: pg.Pool;
  get #poolSize(): number {
    return this.#pool.options.max ?? 1;
  }
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;
  /** This node's insertKeyWithinLimit calls, one after another. */
  #keyCreations: Promise<unknown> = Promise.resolve();

  private constructor(pool: pg.Pool, label: string) {
    super();
    this.#pool = pool;
    this.label = label;
  }

  /** Connects, and brings the schema up to date (several nodes may do so at once). */
  static async open(connectionString: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    if (typeof connectionString !== "string" || connectionString === "") throw new TypeError('"connectionString" must be a non-empty string');
    const poolSize = positiveInteger("poolSize", options.poolSize ?? DEFAULTS.poolSize);
    const statementTimeoutMs = positiveInteger("statementTimeoutMs", options.statementTimeoutMs ?? DEFAULTS.statementTimeoutMs);
    const connectTimeoutMs = positiveInteger("connectTimeoutMs", options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    const label = describeTarget(connectionString);
    const pool = new pg.Pool({
      connectionString,
      max: poolSize,
      connectionTimeoutMillis: connectTimeoutMs,
      // Server side: a runaway statement, or a transaction left idle by a stuck caller, is ended.
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: Math.max(60_000, 2 * statementTimeoutMs),
      // Client side: a server that stopped answering (frozen, or cut off) cannot hang a call.
      query_timeout: statementTimeoutMs + connectTimeoutMs,
      keepAlive: true,
      application_name: "tresor",
      types: TYPES,
    });
    // An idle connection that breaks (server restart, failover) emits 'error' on the pool, which
    // has already dropped it; without a listener the process would die.
    pool.on("error", () => undefined);
    const store = new PostgresStore(pool, label);
    try {
      await store.#withClient("open", async (client) => {
        await applyPostgresMigrations(client, pgMigrationsUpTo(options.schemaVersion), label);
      });
      return store;
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err instanceof PostgresStoreError ? err : cleanError("open", err);
    }
  }

  /** The session settings that correctness depends on, for the startup log and tests. */
  async diagnostics(): Promise<PostgresDiagnostics> {
    this.#enter("diagnostics");
    return this.#track(() =>
      this.#withClient("diagnostics", async (client) => {
        const { rows } = await client.query<{ server: string; isolation: string; timeout: string; schema: number | null }>(
          `SELECT current_setting('server_version') AS server, current_setting('default_transaction_isolation') AS isolation,
             current_setting('statement_timeout') AS timeout, (SELECT max(version) FROM schema_migrations) AS schema`,
        );
        const row = rows[0];
        if (row === undefined) throw new PostgresStoreError("PostgresStore.diagnostics: no answer", undefined);
        return { serverVersion: row.server, defaultIsolation: row.isolation, statementTimeout: row.timeout, schemaVersion: row.schema ?? 0 };
      }),
    );
  }

  async transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    this.#enter("transaction");
    return this.#track(() => this.#retried(BEGIN_SERIALIZABLE, fn));
  }

  /**
   * Count and insert as one transaction that first takes KEY_CREATION_LOCK, so creations queue
   * instead of aborting each other: as serializable transactions, every count read the whole
   * table that the others were inserting into, and under a burst most runs failed again and again.
   * The insert itself is the same as `insertKey`'s; the alias and key id stay unique by constraint.
   * Calls from this node go one at a time, so at most one pooled connection per node waits for
   * the lock and the others remain free for the rest of the traffic.
   */
  async insertKeyWithinLimit(key: KeyRecord, firstVersion: KeyVersionRecord | null, maxKeys: number, also?: (tx: StoreOperations) => Promise<void>): Promise<boolean> {
    this.#enter("insertKeyWithinLimit");
    const run = this.#keyCreations.then(() =>
      this.#retried(BEGIN_KEY_CREATION, async (tx) => {
        if ((await tx.countKeys(key.creatorUin)) >= maxKeys) return false;
        await tx.insertKey(key, firstVersion);
        await also?.(tx);
        return true;
      }),
    );
    this.#keyCreations = run.catch(() => undefined);
    return this.#track(() => run);
  }

  /** Runs `fn` in a transaction opened by `begin`, again after each serialization failure (see the class comment). */
  async #retried<T>(begin: string, fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    // A pooled connection found broken at BEGIN (killed while idle) ran nothing: try the next,
    // through the whole pool at most.
    let staleRetries = this.#poolSize;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) await sleep(backoffMs(attempt - 1));
      const outcome = await this.#attempt(fn, begin);
      if (outcome.retry === "stale connection") {
        if (staleRetries-- > 0) {
          attempt--;
          continue;
        }
        throw outcome.error;
      }
      if (!outcome.retry) {
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }
      if (attempt >= TRANSACTION_ATTEMPTS) {
        throw new PostgresStoreError(
          `PostgresStore.transaction: gave up after ${TRANSACTION_ATTEMPTS} attempts, each aborted by a serialization conflict with concurrent transactions`,
          "40001",
        );
      }
    }
  }

  // ---- backup (StoreBackup): snapshot and import ---------------------------------------------

  /** One REPEATABLE READ, READ ONLY transaction on one connection: one snapshot of every table. */
  async snapshot<T>(fn: (snapshot: StoreSnapshot) => Promise<T>): Promise<T> {
    this.#enter("snapshot");
    return this.#track(() =>
      this.#withClient("snapshot", async (client) => {
        await beginOrClean(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "snapshot");
        try {
          const snapshot = new PostgresSnapshot(client, await pgSchemaVersion(client), await describePgTables(client));
          const result = await fn(snapshot);
          await client.query("COMMIT");
          return result;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err instanceof pg.DatabaseError ? cleanError("snapshot", err) : err;
        }
      }),
    );
  }

  /**
   * One transaction on one connection, not retried (`fn` runs once). The tables are locked
   * EXCLUSIVE first, so no node writes until the import has committed or rolled back.
   */
  async importInto<T>(fn: (target: StoreImport) => Promise<T>): Promise<T> {
    this.#enter("importInto");
    return this.#track(() =>
      this.#withClient("importInto", async (client) => {
        await beginOrClean(client, "BEGIN ISOLATION LEVEL SERIALIZABLE", "importInto");
        try {
          const tables = await describePgTables(client);
          if (tables.length > 0) await client.query(`LOCK TABLE ${tables.map((t) => quoteId(t.name)).join(", ")} IN EXCLUSIVE MODE`);
          for (const table of tables) {
            const { rows } = await client.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${quoteId(table.name)}`);
            const n = rows[0]?.n ?? 0;
            if (n > 0) {
              throw new StoreNotEmptyError(`the target store ${this.label} is not empty (table ${table.name} holds ${n} rows): restore only into a new, empty store`);
            }
          }
          const result = await fn(new PostgresImport(client, await pgSchemaVersion(client), tables));
          // Identity columns: the next generated value follows the highest one imported.
          for (const table of tables) {
            for (const column of table.identity) {
              await client.query(
                `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(${quoteId(column)}), 1), max(${quoteId(column)}) IS NOT NULL) FROM ${quoteId(table.name)}`,
                [quoteId(table.name), column],
              );
            }
          }
          await client.query("COMMIT");
          return result;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err instanceof pg.DatabaseError ? cleanError("importInto", err) : err;
        }
      }),
    );
  }

  // ---- end of backup ----------------------------------------------------------------------------

  // ---- root key rotation (StoreRewrap): wrapped values in pages, compare-and-set ------------------

  async listWrappedValues(kind: WrappedValueKind, after: WrappedValuePosition | null, limit: number): Promise<WrappedValue[]> {
    positiveInteger("limit", limit);
    const rows = await this.exec<{ id: string; version: number; wrapped: Buffer }>(
      "listWrappedValues",
      PG_WRAPPED[kind].list,
      [after?.id ?? null, after?.version ?? 0, limit],
      "read",
    );
    return rows.map((r) => ({ id: r.id, version: r.version, wrapped: r.wrapped }));
  }

  async replaceWrappedValue(kind: WrappedValueKind, position: WrappedValuePosition, expected: Buffer, replacement: Buffer): Promise<boolean> {
    const rows = await this.exec<{ id: string }>("replaceWrappedValue", PG_WRAPPED[kind].replace, [position.id, position.version, expected, replacement], "write");
    return rows.length === 1;
  }

  // ---- end of root key rotation -------------------------------------------------------------------

  /**
   * Waits for the open transactions and the calls made before it, then closes every connection.
   * Calls made after close() has begun reject. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      if (this.#insideOwnTransaction()) return Promise.reject(new Error("PostgresStore.close: called from inside a transaction on this store"));
      this.#closing = (async () => {
        while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
        await this.#pool.end();
      })();
    }
    return this.#closing;
  }

  protected override exec<R extends pg.QueryResultRow>(
    op: string,
    s: Statement,
    values: unknown[],
    kind: Kind,
    constraints?: ConstraintMapper,
  ): Promise<R[]> {
    try {
      this.#enter(op);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#track(async () => {
      // A read may also run again once when its connection turned out to be broken (say, killed
      // while idle in the pool): it changes nothing. A write may have committed before the
      // connection failed, so it is not repeated. Neither failing to get a connection nor a
      // server that stopped answering is retried: that already waited for its timeout.
      // Every idle connection may be dead after a server restart or failover (each is discarded
      // as it fails), so a read may go through the whole pool once.
      let connectionRetries = kind === "read" ? this.#poolSize : 0;
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#withClient(op, async (client) => (await client.query<R>({ ...s, values })).rows);
        } catch (err) {
          if (isSerializationFailure(err) && attempt < TRANSACTION_ATTEMPTS) {
            await sleep(backoffMs(attempt));
            continue;
          }
          if (!(err instanceof PostgresStoreError) && isConnectionLevel(err) && !isTimeout(err) && connectionRetries > 0) {
            connectionRetries--;
            continue;
          }
          throw mapError(op, err, constraints);
        }
      }
    });
  }

  /** One run of a transaction's function on one connection. */
  async #attempt<T>(fn: (tx: StoreOperations) => Promise<T>, begin: string): Promise<Attempt<T>> {
    const client = await this.#acquire("transaction");
    const tx = new PostgresTransaction(client);
    let broken = false;
    const rollback = async (): Promise<void> => {
      try {
        await client.query("ROLLBACK");
      } catch {
        // The server rolls back what it has when the connection goes; just do not reuse it.
        broken = true;
      }
    };
    try {
      try {
        await client.query(begin);
      } catch (err) {
        broken = isConnectionLevel(err);
        if (broken && !isTimeout(err)) return { retry: "stale connection", error: cleanError("transaction", err) };
        // BEGIN may have run before a later statement of `begin` failed (a lock wait cancelled).
        if (!broken) await rollback();
        throw cleanError("transaction", err);
      }
      let result: { ok: true; value: T } | { ok: false; error: unknown };
      try {
        result = { ok: true, value: await currentTransaction.run({ store: this, tx }, fn, tx) };
      } catch (error) {
        result = { ok: false, error };
      }
      await tx.finish();
      if (tx.connectionLost) broken = true;
      if (tx.mustRetry) {
        await rollback();
        return { retry: true };
      }
      if (!result.ok) {
        await rollback();
        return { retry: false, ...result };
      }
      if (tx.aborted !== undefined) {
        await rollback();
        return {
          retry: false,
          ok: false,
          error: new PostgresStoreError(
            `PostgresStore.transaction: a statement inside the transaction failed and the function went on; rolled back (${tx.aborted.message})`,
            "25P02",
          ),
        };
      }
      try {
        const done = await client.query("COMMIT");
        // COMMIT of a transaction the server had already aborted answers ROLLBACK, not an error.
        if (done.command !== "COMMIT") throw new PostgresStoreError("PostgresStore.transaction: the server rolled the transaction back instead of committing it", "25P02");
      } catch (err) {
        if (isSerializationFailure(err)) return { retry: true };
        if (isConnectionLevel(err) && !(err instanceof PostgresStoreError)) {
          broken = true;
          return {
            retry: false,
            ok: false,
            error: new PostgresStoreError(
              `PostgresStore.transaction: the connection failed during COMMIT, so the transaction may or may not have been committed (${cleanError("commit", err).message})`,
              sqlState(err),
            ),
          };
        }
        return { retry: false, ok: false, error: cleanError("transaction", err) };
      }
      return { retry: false, ok: true, value: result.value };
    } finally {
      await tx.finish();
      this.#release(client, broken);
    }
  }

  /** Runs `use` on a pooled connection, which goes back to the pool unless it failed. */
  async #withClient<T>(op: string, use: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#acquire(op);
    let broken = false;
    try {
      return await use(client);
    } catch (err) {
      broken = isConnectionLevel(err);
      throw err;
    } finally {
      this.#release(client, broken);
    }
  }

  /** A pooled connection, set up on first use, with an error listener while it is checked out. */
  async #acquire(op: string): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw new PostgresStoreError(`PostgresStore.${op}: no connection to ${this.label}: ${err instanceof Error ? err.message : String(err)}`, sqlState(err));
    }
    // Between statements (a transaction awaiting its caller) the connection can break; pg then
    // emits 'error' on the client, which must be listened to while the pool is not.
    client.on("error", ignoreError);
    if (!sessionReady.has(client)) {
      try {
        await client.query("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE");
      } catch (err) {
        this.#release(client, true);
        throw cleanError(op, err);
      }
      sessionReady.add(client);
    }
    return client;
  }

  #release(client: pg.PoolClient, broken: boolean): void {
    client.off("error", ignoreError);
    client.release(broken ? true : undefined);
  }

  #track<T>(run: () => Promise<T>): Promise<T> {
    const promise = run();
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /** Throws unless `op` may be called on the store now. */
  #enter(op: string): void {
    if (this.#closing !== undefined) throw new Error(`PostgresStore ${this.label} is closed`);
    if (this.#insideOwnTransaction()) {
      throw new Error(
        `PostgresStore.${op}: called on the store from inside one of its transactions; transactions are not nestable, ` +
          "and inside one every operation goes through its tx",
      );
    }
  }

  #insideOwnTransaction(): boolean {
    const current = currentTransaction.getStore();
    return current !== undefined && current.store === this && current.tx.open;
  }
}

function ignoreError(): void {}

/** Connections whose session defaults have been set. */
const sessionReady = new WeakSet<pg.PoolClient>();

// ---- migrations --------------------------------------------------------------------------------

/**
 * Applies the migrations the database lacks, each in its own transaction, recording each in
 * `schema_migrations`. Every step holds a transaction-scoped advisory lock, so nodes starting at
 * once apply each migration exactly once; the others wait, then find it recorded. Refuses a
 * database newer than `migrations`, or whose recorded history differs. Returns the schema version.
 * Exported for tests.
 */
export async function applyPostgresMigrations(client: pg.ClientBase, migrations: readonly Migration[], label: string): Promise<number> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
  const version = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  const serverVersion = Number(version.rows[0]?.v);
  if (!(serverVersion >= MIN_SERVER_VERSION)) {
    throw new PostgresStoreError(`${label}: PostgreSQL ${version.rows[0]?.v ?? "?"} is too old; Tresor needs 12 or later`, undefined);
  }
  for (;;) {
    // READ COMMITTED, not the serializable default: under a snapshot taken before the lock was
    // granted, this node would not see the migration another node just committed.
    await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
    try {
      await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER NOT NULL PRIMARY KEY,
        name       TEXT    NOT NULL,
        applied_at BIGINT  NOT NULL
      )`);
      const applied = await client.query<{ version: number; name: string }>("SELECT version, name FROM schema_migrations ORDER BY version");
      const current = checkHistory(applied.rows, migrations, label);
      const next = migrations[current];
      if (next === undefined) {
        await client.query("COMMIT");
        return current;
      }
      try {
        await client.query(next.sql);
      } catch (err) {
        throw new PostgresStoreError(`${label}: migration ${next.name} failed: ${cleanError("migrate", err).message}`, sqlState(err));
      }
      await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        next.version,
        next.name,
        Math.floor(Date.now() / 1000),
      ]);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }
}

function checkHistory(rows: readonly { version: number; name: string }[], migrations: readonly Migration[], label: string): number {
  const current = rows.at(-1)?.version ?? 0;
  if (current > migrations.length) {
    throw new PostgresStoreError(
      `${label}: the database schema version is ${current}, newer than this Tresor knows (${migrations.length}); ` +
        "run a Tresor release that knows it, or restore a backup made by this one",
      undefined,
    );
  }
  rows.forEach((row, i) => {
    const expected = migrations[i];
    if (expected === undefined || row.version !== expected.version || row.name !== expected.name) {
      throw new PostgresStoreError(`${label}: recorded migration ${row.version} "${row.name}" does not match this Tresor's migrations`, undefined);
    }
  });
  return current;
}

// ---- helpers -----------------------------------------------------------------------------------

/** The connection target for messages: user, host, port and database, never a password. */
function describeTarget(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    const user = url.username === "" ? "" : `${decodeURIComponent(url.username)}@`;
    return `postgres://${user}${url.host}${url.pathname}`;
  } catch {
    return "the PostgreSQL database";
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`"${name}" must be a positive integer, got ${value}`);
  return value;
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`"${name}" must be a non-negative integer, got ${value}`);
}

/** Escapes LIKE's wildcards so the search text matches literally (with ESCAPE '\'). */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

// Root key rotation: the page and compare-and-set statements of each kind of wrapped value. Ids are
// compared as bytes (COLLATE "C"), as in SQLite; access keys and import tokens page with version 0.
function wrappedStatements(kind: string, table: string, id: string, version: string, value: string, where: string): { list: Statement; replace: Statement } {
  return {
    list: statement(
      `listWrapped_${kind}`,
      `SELECT ${id} AS id, ${version} AS version, ${value} AS wrapped FROM ${table}
       WHERE ${where} AND ($1::text IS NULL OR (${id} COLLATE "C", ${version}) > ($1::text COLLATE "C", $2::integer))
       ORDER BY ${id} COLLATE "C"${version === "0" ? "" : `, ${version}`} LIMIT $3`,
    ),
    replace: statement(
      `replaceWrapped_${kind}`,
      `UPDATE ${table} SET ${value.replace(/^v\./, "")} = $4 WHERE ${id} = $1 AND ${version} = $2::integer AND ${value} = $3 RETURNING ${id} AS id`,
    ),
  };
}

const PG_WRAPPED: Readonly<Record<WrappedValueKind, { list: Statement; replace: Statement }>> = {
  keyVersion: wrappedStatements(
    "keyVersion",
    "key_versions AS v",
    "v.key_id",
    "v.version",
    "v.wrapped_material",
    "(SELECT protection_level FROM keys WHERE key_id = v.key_id) = 'SOFTWARE'",
  ),
  accessKey: wrappedStatements("accessKey", "access_keys", "secret_id", "0", "wrapped_secret", "TRUE"),
  importToken: wrappedStatements("importToken", "import_tokens", "token_id", "0", "wrapped_private_key", "TRUE"),
};

/** $19.. of insertKey, $9.. of updateKey: the lifecycle columns, in that order. */
function lifecycleValues(key: KeyRecord): unknown[] {
  return [key.rotationEnabled, key.rotateDays, key.lastRotateTime, key.nextRotateTime, key.validTo, key.materialDigest];
}

/** A row of a LEFT JOIN that may have matched nothing. */
type Nullable<R> = { [K in keyof R]: R[K] | null };

/** Policy ids are BIGINT: any other number names no policy (and would be an error as a parameter). */
function isPolicyId(policyId: number): boolean {
  return Number.isSafeInteger(policyId);
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

function fromKeyVersionRow(row: KeyVersionRow): KeyVersionRecord {
  return { keyId: row.key_id, version: row.version, wrappedMaterial: row.wrapped_material, publicKey: row.public_key, createTime: row.create_time };
}

// The columns hold only what Operations wrote, so the casts restore the types it started from.
function fromKeyRow(row: KeyRow): KeyRecord {
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
    tags: row.tags.map(([key, value]) => ({ key, value })),
    rotationEnabled: row.rotation_enabled,
    rotateDays: row.rotate_days,
    lastRotateTime: row.last_rotate_time,
    nextRotateTime: row.next_rotate_time,
    validTo: row.valid_to,
    materialDigest: row.material_digest,
    protectionLevel: row.protection_level as ProtectionLevel,
  };
}

// ---- backup (StoreBackup): the snapshot and import sides ----------------------------------------

function quoteId(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The first `version` migrations (all when undefined). */
function pgMigrationsUpTo(version: number | undefined): readonly Migration[] {
  if (version === undefined) return POSTGRES_MIGRATIONS;
  if (!Number.isSafeInteger(version) || version < 1 || version > POSTGRES_MIGRATIONS.length) {
    throw new RangeError(`"schemaVersion" must be from 1 to ${POSTGRES_MIGRATIONS.length}, got ${version}`);
  }
  return POSTGRES_MIGRATIONS.slice(0, version);
}

async function beginOrClean(client: pg.PoolClient, begin: string, op: string): Promise<void> {
  try {
    await client.query(begin);
  } catch (err) {
    throw cleanError(op, err);
  }
}

async function pgSchemaVersion(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  return rows[0]?.v ?? 0;
}

type PgTableShape = TableShape & { readonly identity: readonly string[] };

const PG_PORTABLE_TYPES: Readonly<Record<string, PortableType>> = {
  smallint: "integer",
  integer: "integer",
  bigint: "integer",
  text: "text",
  "character varying": "text",
  boolean: "boolean",
  bytea: "bytes",
};

/** Every table of the connection's schema but the migration history, in foreign-key order. */
async function describePgTables(client: pg.PoolClient): Promise<PgTableShape[]> {
  const columns = await client.query<{ table_name: string; column_name: string; data_type: string; is_identity: string }>(
    `SELECT c.table_name, c.column_name, c.data_type, c.is_identity
     FROM information_schema.columns AS c
     JOIN information_schema.tables AS t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'schema_migrations'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  const keys = await client.query<{ table_name: string; column_name: string }>(
    `SELECT tc.table_name, kcu.column_name
     FROM information_schema.table_constraints AS tc
     JOIN information_schema.key_column_usage AS kcu
       ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
     WHERE tc.table_schema = current_schema() AND tc.constraint_type = 'PRIMARY KEY'
     ORDER BY tc.table_name, kcu.ordinal_position`,
  );
  const references = await client.query<{ child: string; parent: string }>(
    `SELECT src.relname AS child, dst.relname AS parent
     FROM pg_constraint AS con
     JOIN pg_class AS src ON src.oid = con.conrelid
     JOIN pg_class AS dst ON dst.oid = con.confrelid
     JOIN pg_namespace AS n ON n.oid = src.relnamespace
     WHERE con.contype = 'f' AND n.nspname = current_schema()`,
  );
  const shapes = new Map<string, { name: string; columns: { name: string; type: PortableType }[]; key: string[]; identity: string[] }>();
  for (const row of columns.rows) {
    const type = PG_PORTABLE_TYPES[row.data_type];
    if (type === undefined) throw new Error(`column ${row.table_name}.${row.column_name} has the type ${row.data_type}, which a backup cannot carry`);
    let shape = shapes.get(row.table_name);
    if (shape === undefined) {
      shape = { name: row.table_name, columns: [], key: [], identity: [] };
      shapes.set(row.table_name, shape);
    }
    shape.columns.push({ name: row.column_name, type });
    if (row.is_identity === "YES") shape.identity.push(row.column_name);
  }
  for (const row of keys.rows) shapes.get(row.table_name)?.key.push(row.column_name);
  const parents = new Map<string, string[]>();
  for (const row of references.rows) parents.set(row.child, [...(parents.get(row.child) ?? []), row.parent]);
  for (const shape of shapes.values()) {
    if (shape.key.length === 0) throw new Error(`table ${shape.name} has no primary key, so a backup cannot page through it`);
  }
  return orderTables([...shapes.keys()], parents).map((name) => shapes.get(name)!);
}

function pgShapeOf(tables: readonly PgTableShape[], table: string): PgTableShape {
  const shape = tables.find((t) => t.name === table);
  if (shape === undefined) throw new Error(`the store has no table ${JSON.stringify(table)}`);
  return shape;
}

function fromPgValue(table: string, column: { name: string; type: PortableType }, value: unknown): PortableValue {
  if (value === null) return null;
  const ok =
    column.type === "integer"
      ? typeof value === "number" && Number.isSafeInteger(value)
      : column.type === "boolean"
        ? typeof value === "boolean"
        : column.type === "text"
          ? typeof value === "string"
          : Buffer.isBuffer(value);
  if (!ok) throw new Error(`column ${table}.${column.name} holds a value that is not of its type ${column.type}`);
  return value as PortableValue;
}

class PostgresSnapshot implements StoreSnapshot {
  readonly #client: pg.PoolClient;

  constructor(
    client: pg.PoolClient,
    readonly schemaVersion: number,
    readonly tables: readonly PgTableShape[],
  ) {
    this.#client = client;
  }

  async exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]> {
    const shape = pgShapeOf(this.tables, table);
    checkCount("limit", limit);
    if (after !== null && after.length !== shape.key.length) throw new RangeError(`"after" must hold the ${shape.key.length} key values of ${table}`);
    const key = shape.key.map(quoteId).join(", ");
    const where = after === null ? "" : `WHERE (${key}) > (${shape.key.map((_, i) => `$${i + 2}`).join(", ")})`;
    const text = `SELECT ${shape.columns.map((c) => quoteId(c.name)).join(", ")} FROM ${quoteId(table)} ${where} ORDER BY ${key} LIMIT $1`;
    const { rows } = await this.#client.query<unknown[]>({ text, values: [limit, ...(after ?? [])], rowMode: "array" });
    return rows.map((row) => shape.columns.map((column, i) => fromPgValue(table, column, row[i])));
  }
}

/** Rows per INSERT statement are bounded by PostgreSQL's 65 535 parameters. */
const MAX_PARAMETERS = 60_000;

class PostgresImport implements StoreImport {
  readonly #client: pg.PoolClient;

  constructor(
    client: pg.PoolClient,
    readonly schemaVersion: number,
    readonly tables: readonly PgTableShape[],
  ) {
    this.#client = client;
  }

  async importRows(table: string, columns: readonly string[], rows: readonly (readonly PortableValue[])[]): Promise<void> {
    const shape = pgShapeOf(this.tables, table);
    for (const c of columns) {
      if (!shape.columns.some((s) => s.name === c)) throw new Error(`the table ${table} has no column ${JSON.stringify(c)}`);
    }
    if (columns.length === 0) throw new RangeError(`an import into ${table} needs at least one column`);
    const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / columns.length));
    // Identity columns take the imported value, so references and the key order survive.
    const overriding = shape.identity.length > 0 ? " OVERRIDING SYSTEM VALUE" : "";
    for (let start = 0; start < rows.length; start += perStatement) {
      const batch = rows.slice(start, start + perStatement);
      const values: PortableValue[] = [];
      const tuples = batch.map((row) => {
        if (row.length !== columns.length) throw new RangeError(`a row of ${table} has ${row.length} values for ${columns.length} columns`);
        const first = values.length;
        values.push(...row);
        return `(${row.map((_, i) => `$${first + i + 1}`).join(", ")})`;
      });
      await this.#client.query(`INSERT INTO ${quoteId(table)} (${columns.map(quoteId).join(", ")})${overriding} VALUES ${tuples.join(", ")}`, values);
    }
  }
}
