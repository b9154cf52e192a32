// The statements SQLite and PostgreSQL share, written once with PostgreSQL's numbered
// placeholders ($1, $2, …; SQLite's statements are rewritten to `?` when prepared). Where the two
// spell a piece differently, the Dialect says how; whole statements that differ stay with their store.

import type { WrappedValueKind } from "../store.js";

/** A statement: its text, and the name under which PostgreSQL keeps it planned per connection. */
export interface SqlStatement {
  readonly name: string;
  readonly text: string;
  /** It returns one row at most (a lookup by key, a count): SQLite then stops at the first. */
  readonly one?: true;
}

export function statement(name: string, text: string): SqlStatement {
  return { name: `tresor_${name}`, text };
}

/** A statement that returns one row at most. */
export function lookup(name: string, text: string): SqlStatement {
  return { name: `tresor_${name}`, text, one: true };
}

/** The pieces of SQL that SQLite and PostgreSQL spell differently. */
export interface Dialect {
  /** A key's tags as one column `tags`, [key, value] pairs ordered by key (see KeyRow.tags). */
  readonly tagsColumn: string;
  /** Compare text as bytes: SQLite's default, PostgreSQL's `COLLATE "C"`. */
  readonly bytes: string;
  /** The function giving the smallest of its arguments. */
  readonly least: string;
  /** LIMIT's value that means no limit. */
  readonly noLimit: number | null;
  /** A parameter with its type, where PostgreSQL could not infer it. */
  cast(param: string, type: "text" | "bigint" | "integer" | "boolean"): string;
  /** Makes a query walk `index` (SQLite: INDEXED BY; PostgreSQL's planner picks it itself). */
  indexHint(index: string): string;
  /** Whether the text `haystack` contains `needle`. */
  contains(haystack: string, needle: string): string;
  /** Whether the audit record's JSON array `flags` holds the text `flag`. */
  hasFlag(flag: string): string;
  /** A statement built for one call (PostgreSQL names it after its text, so each text is planned once per connection). */
  dynamic(text: string): SqlStatement;
}

export const KEY_INSERT_COLUMNS = `key_id, alias, description, key_usage, key_spec, origin, state, creator_uin, owner,
  create_time, deletion_date, current_version, rotation_enabled, rotate_days, last_rotate_time,
  next_rotate_time, valid_to, material_digest, protection_level, key_class, kmip`;
export const KEY_INSERT_VALUES = placeholders(1, 21);

/** The mutable columns of a key, set from keyUpdateValues ($1 is the key id). */
export const KEY_UPDATE_SET = `alias = $2, description = $3, state = $4, deletion_date = $5, current_version = $6,
  rotation_enabled = $7, rotate_days = $8, last_rotate_time = $9, next_rotate_time = $10, valid_to = $11,
  material_digest = $12, kmip = $13`;

export const KEY_VERSION_COLUMNS = "key_id, version, wrapped_material, public_key, create_time";
const ACCESS_KEY_COLUMNS = "secret_id, wrapped_secret, uin, principal_id, status, create_time, last_used_time";
export const PRINCIPAL_COLUMNS = "principal_id, account_uin, kind, name, remark, trust_policy, max_session_seconds, create_time";
export const POLICY_COLUMNS = "policy_id, account_uin, name, description, document, create_time, update_time";
const KMIP_CLIENT_COLUMNS = "fingerprint, account_uin, principal_id, subject, create_time";
const ROLE_SESSION_COLUMNS = "tmp_secret_id, role_id, account_uin, session_name, assumed_by, create_time, expires_at";
const IMPORT_TOKEN_COLUMNS = "token_id, key_id, wrapping_key_spec, wrapping_algorithm, wrapped_private_key, expires_at, used";
export const AUDIT_COLUMNS = `seq, time, request_id, trace_id, node_id, account_uin, principal_uin, principal_name, access_key_id,
  source_ip, user_agent, region, service, action, resource_type, resource_name, read_only, result, latency_ms,
  params_digest, flags, prev_hash, hash`.replace(/\s+/g, " ");
const CHECKPOINT_COLUMNS = "seq, pruned_through, time, head_hash, pruned_head_hash, signature";

/** "$from, …, $to". */
export function placeholders(from: number, to: number): string {
  return Array.from({ length: to - from + 1 }, (_, i) => `$${from + i}`).join(", ");
}

/** A key's columns, tags included, from `keys AS k`: reading a key is a single statement (no read transaction on the hot path). */
export function keyColumns(d: Dialect): string {
  return `k.key_id, k.alias, k.description, k.key_usage, k.key_spec, k.origin, k.state,
  k.creator_uin, k.owner, k.create_time, k.deletion_date, k.current_version,
  k.rotation_enabled, k.rotate_days, k.last_rotate_time, k.next_rotate_time, k.valid_to, k.material_digest,
  k.protection_level, k.key_class, k.kmip, ${d.tagsColumn}`;
}

export type SharedStatements = ReturnType<typeof sharedStatements>;

/** Every statement both stores run as it is, in the dialect `d`. */
export function sharedStatements(d: Dialect) {
  const keyCols = keyColumns(d);
  return {
    getMeta: lookup("getMeta", "SELECT value FROM meta WHERE name = $1"),
    setMeta: statement("setMeta", "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value"),

    getKey: lookup("getKey", `SELECT ${keyCols} FROM keys AS k WHERE k.key_id = $1`),
    getKeyByAlias: lookup("getKeyByAlias", `SELECT ${keyCols} FROM keys AS k WHERE k.alias = $1`),
    countKeys: lookup("countKeys", "SELECT count(*) AS n FROM keys"),
    countKeysOf: lookup("countKeysOf", "SELECT count(*) AS n FROM keys WHERE creator_uin = $1"),
    insertKeyVersion: statement("insertKeyVersion", `INSERT INTO key_versions (${KEY_VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)`),
    getKeyVersion: lookup("getKeyVersion", `SELECT ${KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = $1 AND version = $2`),
    listKeyVersions: statement("listKeyVersions", `SELECT ${KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = $1 ORDER BY version`),
    deleteKeyVersions: statement("deleteKeyVersions", "DELETE FROM key_versions WHERE key_id = $1"),
    listDueKeys: statement(
      "listDueKeys",
      `SELECT ${keyCols} FROM keys AS k
       WHERE (k.rotation_enabled AND k.state = 'Enabled' AND k.next_rotate_time <= $1)
          OR (k.state = 'PendingDelete' AND k.deletion_date <= $1)
          OR (k.valid_to > 0 AND k.valid_to <= $1 AND k.state <> 'PendingImport')
       ORDER BY ${d.least}(
         CASE WHEN k.rotation_enabled AND k.state = 'Enabled' THEN k.next_rotate_time ELSE $1 END,
         CASE WHEN k.state = 'PendingDelete' THEN k.deletion_date ELSE $1 END,
         CASE WHEN k.valid_to > 0 THEN k.valid_to ELSE $1 END), k.seq
       LIMIT $2`,
    ),

    insertImportToken: statement("insertImportToken", `INSERT INTO import_tokens (${IMPORT_TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
    getImportToken: lookup("getImportToken", `SELECT ${IMPORT_TOKEN_COLUMNS} FROM import_tokens WHERE token_id = $1`),
    useImportToken: statement("useImportToken", "UPDATE import_tokens SET used = TRUE WHERE token_id = $1 AND NOT used"),
    deleteExpiredImportTokens: statement("deleteExpiredImportTokens", "DELETE FROM import_tokens WHERE expires_at <= $1"),

    insertAccessKey: statement("insertAccessKey", `INSERT INTO access_keys (${ACCESS_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
    getAccessKey: lookup("getAccessKey", `SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE secret_id = $1`),
    listAccessKeys: statement(
      "listAccessKeys",
      `SELECT ${ACCESS_KEY_COLUMNS} FROM access_keys WHERE principal_id = $1 ORDER BY create_time, secret_id${d.bytes}`,
    ),
    updateAccessKeyStatus: statement("updateAccessKeyStatus", "UPDATE access_keys SET status = $2 WHERE secret_id = $1"),
    deleteAccessKey: statement("deleteAccessKey", "DELETE FROM access_keys WHERE secret_id = $1"),
    // $3 = time - minIntervalSeconds: the key is touched only if last used before that.
    touchAccessKey: statement("touchAccessKey", "UPDATE access_keys SET last_used_time = $2 WHERE secret_id = $1 AND last_used_time < $3"),

    insertKmipClient: statement("insertKmipClient", `INSERT INTO kmip_clients (${KMIP_CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)`),
    getKmipClient: lookup("getKmipClient", `SELECT ${KMIP_CLIENT_COLUMNS} FROM kmip_clients WHERE fingerprint = $1`),
    listKmipClients: statement("listKmipClients", `SELECT ${KMIP_CLIENT_COLUMNS} FROM kmip_clients WHERE account_uin = $1 ORDER BY create_time, fingerprint${d.bytes}`),
    deleteKmipClient: statement("deleteKmipClient", "DELETE FROM kmip_clients WHERE fingerprint = $1"),

    insertPrincipal: statement("insertPrincipal", `INSERT INTO principals (${PRINCIPAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
    getPrincipal: lookup("getPrincipal", `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE principal_id = $1`),
    getPrincipalByName: lookup("getPrincipalByName", `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = $1 AND kind = $2 AND name = $3`),
    // Each account has one root principal, whose id is the account's uin.
    listAccountRoots: statement("listAccountRoots", `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE kind = 'root' ORDER BY create_time, principal_id${d.bytes}`),

    insertPolicy: statement("insertPolicy", `INSERT INTO policies (${POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
    getPolicy: lookup("getPolicy", `SELECT ${POLICY_COLUMNS} FROM policies WHERE policy_id = $1`),
    getPolicyByName: lookup("getPolicyByName", `SELECT ${POLICY_COLUMNS} FROM policies WHERE account_uin = $1 AND name = $2`),
    attachPolicy: statement(
      "attachPolicy",
      `INSERT INTO policy_attachments (principal_id, policy_id, account_uin, create_time) VALUES ($1, $2, $3, $4)
       ON CONFLICT (principal_id, policy_id) DO NOTHING`,
    ),
    detachPolicy: statement("detachPolicy", "DELETE FROM policy_attachments WHERE principal_id = $1 AND policy_id = $2"),
    listAttachedPolicies: statement(
      "listAttachedPolicies",
      "SELECT principal_id, policy_id, account_uin, create_time FROM policy_attachments WHERE principal_id = $1 ORDER BY create_time, policy_id",
    ),
    countPolicyAttachments: lookup("countPolicyAttachments", "SELECT count(*) AS n FROM policy_attachments WHERE policy_id = $1"),

    insertRoleSession: statement("insertRoleSession", `INSERT INTO role_sessions (${ROLE_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
    getRoleSession: lookup("getRoleSession", `SELECT ${ROLE_SESSION_COLUMNS} FROM role_sessions WHERE tmp_secret_id = $1`),
    deleteExpiredRoleSessions: statement("deleteExpiredRoleSessions", "DELETE FROM role_sessions WHERE expires_at <= $1"),

    auditHead: lookup("auditHead", "SELECT seq, hash FROM audit_head WHERE id = 1"),
    accountAuditPosition: lookup("accountAuditPosition", "SELECT time, account_seq FROM audit_records WHERE account_uin = $1 AND account_seq = $2"),
    insertAuditCheckpoint: statement("insertAuditCheckpoint", `INSERT INTO audit_checkpoints (${CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`),
    listAuditCheckpointsAsc: statement("listAuditCheckpointsAsc", `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq, pruned_through LIMIT $1`),
    listAuditCheckpointsDesc: statement(
      "listAuditCheckpointsDesc",
      `SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC, pruned_through DESC LIMIT $1`,
    ),

    wrapped: wrappedStatements(d),
  };
}

// Root key rotation: where each kind of wrapped value lives. Access keys and import tokens have no
// version; 0 stands in, so every kind pages by (id, version), ids compared as bytes.
const WRAPPED: Readonly<Record<WrappedValueKind, { table: string; id: string; version: string; value: string; where: string }>> = {
  keyVersion: {
    table: "key_versions AS v",
    id: "v.key_id",
    version: "v.version",
    value: "v.wrapped_material",
    where: "(SELECT protection_level FROM keys WHERE key_id = v.key_id) = 'SOFTWARE'",
  },
  accessKey: { table: "access_keys", id: "secret_id", version: "0", value: "wrapped_secret", where: "TRUE" },
  importToken: { table: "import_tokens", id: "token_id", version: "0", value: "wrapped_private_key", where: "TRUE" },
};

function wrappedStatements(d: Dialect): Readonly<Record<WrappedValueKind, { list: SqlStatement; replace: SqlStatement }>> {
  const of = (kind: WrappedValueKind) => {
    const { table, id, version, value, where } = WRAPPED[kind];
    const after = d.cast("$1", "text");
    return {
      list: statement(
        `listWrapped_${kind}`,
        `SELECT ${id} AS id, ${version} AS version, ${value} AS wrapped FROM ${table}
         WHERE ${where} AND (${after} IS NULL OR (${id}${d.bytes}, ${version}) > (${after}${d.bytes}, ${d.cast("$2", "integer")}))
         ORDER BY ${id}${d.bytes}${version === "0" ? "" : `, ${version}`} LIMIT $3`,
      ),
      replace: statement(
        `replaceWrapped_${kind}`,
        `UPDATE ${table} SET ${value.replace(/^v\./, "")} = $4 WHERE ${id} = $1 AND ${version} = ${d.cast("$2", "integer")} AND ${value} = $3`,
      ),
    };
  };
  return { keyVersion: of("keyVersion"), accessKey: of("accessKey"), importToken: of("importToken") };
}
