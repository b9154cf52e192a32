// PostgreSQL's side of the SQL layer: the dialect, its errors, the operations it writes as one
// statement each (where SQLite needs several in a transaction), and the `tx` of a transaction.

import { createHash } from "node:crypto";
import pg from "pg";
import { checkAuditAppend, type AuditHead } from "../../audit/port.js";
import { GENESIS_HASH, type AuditRecord } from "../../audit/record.js";
import type { KeyRecord, KeyVersionRecord } from "../../keys/key.js";
import { StoreConflictError, type KeyListQuery, type Page, type PolicyRecord, type PrincipalKind, type PrincipalRecord } from "../store.js";
import { checkCount, checkFirstVersion, containsPattern, keyConflict, SqlOperations, type Kind, type RowsTo, type Violation, type ViolationMapper } from "../sql/operations.js";
import * as rows from "../sql/rows.js";
import { AUDIT_COLUMNS, KEY_INSERT_COLUMNS, KEY_INSERT_VALUES, KEY_UPDATE_SET, KEY_VERSION_COLUMNS, keyColumns, POLICY_COLUMNS, PRINCIPAL_COLUMNS } from "../sql/statements.js";
import { sharedStatements, statement, type Dialect, type SqlStatement } from "../sql/statements.js";

export const POSTGRES: Dialect = {
  tagsColumn: `(SELECT coalesce(json_agg(json_build_array(t.tag_key, t.tag_value) ORDER BY t.tag_key COLLATE "C"), '[]'::json)
     FROM key_tags AS t WHERE t.key_id = k.key_id) AS tags`,
  // Names and ids in byte order, as SQLite compares them.
  bytes: ' COLLATE "C"',
  least: "least",
  noLimit: null,
  cast: (param, type) => `${param}::${type}`,
  indexHint: () => "",
  contains: (haystack, needle) => `strpos(${haystack}, ${needle}) > 0`,
  hasFlag: (flag) => `flags::jsonb ? ${flag}`,
  dynamic: (text) => ({ name: `listAudit_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, text }),
};

const SHARED = sharedStatements(POSTGRES);

// Every filter of KeyListQuery in one statement: a null parameter disables its filter. An empty
// list matches nothing (no state is "one of no states"), as in SQLite. Tag filters arrive as JSON.
const LIST_WHERE = `
  ($1::text[] IS NULL OR k.state = ANY ($1::text[]))
  AND ($2::text IS NULL OR k.key_id ILIKE $2::text ESCAPE E'\\\\' OR k.alias ILIKE $2::text ESCAPE E'\\\\')
  AND ($3::text IS NULL OR k.origin = $3::text)
  AND ($4::text[] IS NULL OR k.key_usage = ANY ($4::text[]))
  AND ($5::text IS NULL OR k.owner = $5::text)
  AND ($6::text IS NULL OR k.creator_uin = $6::text)
  AND ($7::jsonb IS NULL OR NOT EXISTS (
    SELECT 1 FROM jsonb_array_elements($7::jsonb) AS f (filter)
    WHERE NOT EXISTS (
      SELECT 1 FROM key_tags AS t
      WHERE t.key_id = k.key_id
        AND t.tag_key = f.filter ->> 'key'
        AND (jsonb_array_length(f.filter -> 'values') = 0
             OR t.tag_value IN (SELECT jsonb_array_elements_text(f.filter -> 'values'))))))`;

/**
 * A page and the count of all matches of `matches` in one statement, hence from one snapshot. The
 * left join keeps the count when the page is empty (offset past the end, or limit 0).
 */
function pageStatement(name: string, matches: string, columns: string, order: string, limit: string): SqlStatement {
  return statement(
    name,
    `WITH m AS NOT MATERIALIZED (${matches})
     SELECT c.total, p.* FROM (SELECT count(*) AS total FROM m) AS c
     LEFT JOIN LATERAL (SELECT ${columns} FROM m AS k ORDER BY ${order.replaceAll("@", "k.")} ${limit}) AS p ON true
     ORDER BY ${order.replaceAll("@", "p.")}`,
  );
}

const keyOrder = (o: "ASC" | "DESC") => `@create_time ${o}, @seq ${o}`;
/** The array type of each audit column, in AUDIT_COLUMNS order, for unnest. */
const AUDIT_ARRAY_TYPES = ["bigint", "bigint", ...Array<string>(14).fill("text"), "boolean", "text", "bigint", "text", "text", "text", "text"];

const S = {
  // One statement writes the key, its first version and its tags: atomic without a transaction.
  // The foreign keys of the version and the tags are checked at the end of the statement, when
  // the key row exists.
  insertKey: statement(
    "insertKey",
    `WITH k AS (
       INSERT INTO keys (${KEY_INSERT_COLUMNS}) VALUES (${KEY_INSERT_VALUES}) RETURNING key_id
     ), v AS (
       INSERT INTO key_versions (${KEY_VERSION_COLUMNS}) SELECT k.key_id, $22, $23, $24, $25 FROM k WHERE $22::integer IS NOT NULL
     ), t AS (
       INSERT INTO key_tags (key_id, tag_key, tag_value)
       SELECT k.key_id, n.tag_key, n.tag_value FROM k, unnest($26::text[], $27::text[]) AS n (tag_key, tag_value)
     )
     SELECT count(*) AS inserted FROM k`,
  ),
  // Tags: the ones no longer present are deleted and the others upserted, so the two touch
  // disjoint rows (one statement must not delete and re-insert the same primary key).
  updateKey: statement(
    "updateKey",
    `WITH u AS (
       UPDATE keys SET ${KEY_UPDATE_SET} WHERE key_id = $1 RETURNING key_id
     ), d AS (
       DELETE FROM key_tags AS t USING u WHERE t.key_id = u.key_id AND NOT (t.tag_key = ANY ($14::text[]))
     ), i AS (
       INSERT INTO key_tags (key_id, tag_key, tag_value)
       SELECT u.key_id, n.tag_key, n.tag_value FROM u, unnest($14::text[], $15::text[]) AS n (tag_key, tag_value)
       ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value
         WHERE key_tags.tag_value IS DISTINCT FROM excluded.tag_value
     )
     SELECT count(*) AS updated FROM u`,
  ),
  listKeysAsc: pageStatement("listKeysAsc", `SELECT k.* FROM keys AS k WHERE ${LIST_WHERE}`, `${keyColumns(POSTGRES)}, k.seq`, keyOrder("ASC"), "LIMIT $8 OFFSET $9"),
  listKeysDesc: pageStatement("listKeysDesc", `SELECT k.* FROM keys AS k WHERE ${LIST_WHERE}`, `${keyColumns(POSTGRES)}, k.seq`, keyOrder("DESC"), "LIMIT $8 OFFSET $9"),
  // One statement, so a key is never left half-deleted; the foreign keys are checked at its end.
  deleteKey: statement(
    "deleteKey",
    `WITH v AS (DELETE FROM key_versions WHERE key_id = $1),
          t AS (DELETE FROM key_tags WHERE key_id = $1),
          i AS (DELETE FROM import_tokens WHERE key_id = $1),
          k AS (DELETE FROM keys WHERE key_id = $1 RETURNING 1)
     SELECT count(*) AS n FROM k`,
  ),
  listPrincipals: pageStatement(
    "listPrincipals",
    `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = $1 AND kind = $2`,
    "*",
    '@name COLLATE "C", @principal_id COLLATE "C"',
    "LIMIT $3 OFFSET $4",
  ),
  // One statement, so a principal is never left half-deleted; the foreign keys of its attachments
  // and sessions are checked at its end. Nothing is deleted when there is no such principal.
  deletePrincipal: statement(
    "deletePrincipal",
    `WITH p AS (DELETE FROM principals WHERE principal_id = $1 RETURNING principal_id),
          k AS (DELETE FROM access_keys AS a USING p WHERE a.principal_id = p.principal_id),
          t AS (DELETE FROM policy_attachments AS a USING p WHERE a.principal_id = p.principal_id),
          s AS (DELETE FROM role_sessions AS r USING p WHERE r.role_id = p.principal_id),
          c AS (DELETE FROM kmip_clients AS c USING p WHERE c.principal_id = p.principal_id)
     SELECT count(*) AS n FROM p`,
  ),
  listPolicies: pageStatement(
    "listPolicies",
    `SELECT ${POLICY_COLUMNS} FROM policies WHERE account_uin = $1 AND ($2::text IS NULL OR name ILIKE $2::text ESCAPE E'\\\\')`,
    "*",
    '@name COLLATE "C", @policy_id',
    "LIMIT $3 OFFSET $4",
  ),
  // Attachments of a preset policy (never in policies) are left alone.
  deletePolicy: statement(
    "deletePolicy",
    `WITH p AS (DELETE FROM policies WHERE policy_id = $1 RETURNING policy_id),
          t AS (DELETE FROM policy_attachments AS a USING p WHERE a.policy_id = p.policy_id)
     SELECT count(*) AS n FROM p`,
  ),
  // The first statement of a transaction: a table lock is granted before the snapshot is taken,
  // so the head read next is the latest. EXCLUSIVE lets plain reads of the head go on.
  lockAuditHead: statement("lockAuditHead", "LOCK TABLE audit_head IN EXCLUSIVE MODE"),
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
  pruneAuditRecords: statement(
    "pruneAuditRecords",
    `WITH c AS (DELETE FROM audit_checkpoints WHERE seq <= $1),
          d AS (DELETE FROM audit_records WHERE seq <= $1 RETURNING 1)
     SELECT count(*)::integer AS n FROM d`,
  ),
} as const;

// ---- errors ------------------------------------------------------------------------------------

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

export function sqlState(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError ? err.code : undefined;
}

/** Serialization failure or deadlock: the transaction was rolled back and may simply run again. */
export function isSerializationFailure(err: unknown): boolean {
  const code = sqlState(err);
  return code === "40001" || code === "40P01";
}

/**
 * Whether the connection itself is in doubt (lost, killed, timed out on our side, the server
 * shutting down), so it must not go back to the pool. A plain SQL error leaves it usable.
 */
export function isConnectionLevel(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return true;
  return /^(08|53|57P|58|XX)/.test(err.code ?? "");
}

/** pg gave up waiting for the server's answer (query_timeout). */
export function isTimeout(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError) && err instanceof Error && /timeout/i.test(err.message);
}

/**
 * The error a caller sees: the server's message and SQLSTATE, never its `detail` (which quotes
 * row values) nor the statement's parameters. Errors of our own pass through.
 */
export function cleanError(op: string, err: unknown): Error {
  if (err instanceof StoreConflictError || err instanceof PostgresStoreError) return err;
  if (err instanceof pg.DatabaseError) return new PostgresStoreError(`PostgresStore.${op}: ${err.message} (SQLSTATE ${err.code ?? "?"})`, err.code);
  if (err instanceof Error) return new PostgresStoreError(`PostgresStore.${op}: ${err.message}`, undefined);
  return new PostgresStoreError(`PostgresStore.${op}: ${String(err)}`, undefined);
}

/** The unique constraints, by name, as the columns they cover (how SQLite names them). */
const UNIQUE_CONSTRAINTS: Readonly<Record<string, string>> = {
  keys_pkey: "keys.key_id",
  keys_alias_key: "keys.alias",
  key_versions_pkey: "key_versions.key_id, key_versions.version",
  import_tokens_pkey: "import_tokens.token_id",
  access_keys_pkey: "access_keys.secret_id",
  principals_pkey: "principals.principal_id",
  kmip_clients_pkey: "kmip_clients.fingerprint",
  principals_name_key: "principals.account_uin, principals.kind, principals.name",
  policies_pkey: "policies.policy_id",
  policies_name_key: "policies.account_uin, policies.name",
  audit_records_pkey: "audit_records.seq",
  audit_head_pkey: "audit_head.id",
  audit_checkpoints_pkey: "audit_checkpoints.seq, audit_checkpoints.pruned_through",
};

function violationOf(err: pg.DatabaseError): Violation | undefined {
  if (err.code === "23505") return { kind: "unique", on: UNIQUE_CONSTRAINTS[err.constraint ?? ""] ?? err.constraint ?? "" };
  if (err.code === "23503") return { kind: "foreignKey" };
  return undefined;
}

export function mapError(op: string, err: unknown, violations: ViolationMapper | undefined): Error {
  if (violations !== undefined && err instanceof pg.DatabaseError) {
    const violation = violationOf(err);
    const mapped = violation === undefined ? undefined : violations(violation);
    if (mapped !== undefined) return mapped;
  }
  return cleanError(op, err);
}

// ---- operations --------------------------------------------------------------------------------

/** The operations PostgreSQL writes as one statement each; the store runs them on any pooled connection, a transaction on its own. */
export abstract class PostgresOperations extends SqlOperations {
  constructor() {
    super(POSTGRES, SHARED);
  }

  async insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    checkFirstVersion(key, firstVersion);
    const version = firstVersion === null ? [null, null, null, null] : rows.keyVersionValues(firstVersion).slice(1);
    const values = [...rows.keyValues(key), ...version, key.tags.map((t) => t.key), key.tags.map((t) => t.value)];
    await this.exec("insertKey", S.insertKey, values, "write", nothing, keyConflict(key.keyId, key.alias));
  }

  async updateKey(key: KeyRecord): Promise<void> {
    const values = [...rows.keyUpdateValues(key), key.tags.map((t) => t.key), key.tags.map((t) => t.value)];
    const updated = await this.exec("updateKey", S.updateKey, values, "write", (r: { updated: number }[]) => r[0]?.updated, keyConflict(key.keyId, key.alias));
    if (updated !== 1) throw new Error(`updateKey: no key with id ${key.keyId}`);
  }

  async listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    checkCount("offset", query.offset);
    checkCount("limit", query.limit);
    const values = [
      query.states === undefined ? null : [...query.states],
      query.search === undefined ? null : containsPattern(query.search),
      query.origin ?? null,
      query.keyUsages === undefined ? null : [...query.keyUsages],
      query.owner ?? null,
      query.accountUin ?? null,
      // A string, not an array: pg would send a JS array as a PostgreSQL array.
      query.tagFilters === undefined ? null : JSON.stringify(query.tagFilters.map((f) => ({ key: f.key, values: f.values }))),
      query.limit,
      query.offset,
    ];
    const page = await this.exec("listKeys", query.order === "asc" ? S.listKeysAsc : S.listKeysDesc, values, "read", pageOf<rows.KeyRow>("key_id"));
    return { keys: page.items.map(rows.fromKeyRow), totalCount: page.totalCount };
  }

  async deleteKey(keyId: string): Promise<boolean> {
    return (await this.exec("deleteKey", S.deleteKey, [keyId], "write", countOf)) === 1;
  }

  async listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    const page = await this.exec("listPrincipals", S.listPrincipals, [accountUin, kind, limit, offset], "read", pageOf<rows.PrincipalRow>("principal_id"));
    return { items: page.items.map(rows.fromPrincipalRow), totalCount: page.totalCount };
  }

  async deletePrincipal(principalId: string): Promise<boolean> {
    return (await this.exec("deletePrincipal", S.deletePrincipal, [principalId], "write", countOf)) === 1;
  }

  async listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>> {
    checkCount("offset", offset);
    checkCount("limit", limit);
    const pattern = keyword === undefined ? null : containsPattern(keyword);
    const page = await this.exec("listPolicies", S.listPolicies, [accountUin, pattern, limit, offset], "read", pageOf<rows.PolicyRow>("policy_id"));
    return { items: page.items.map(rows.fromPolicyRow), totalCount: page.totalCount };
  }

  async deletePolicy(policyId: number): Promise<boolean> {
    if (!Number.isSafeInteger(policyId)) return false;
    return (await this.exec("deletePolicy", S.deletePolicy, [policyId], "write", countOf)) === 1;
  }

  async appendAuditRecords(records: readonly AuditRecord[]): Promise<void> {
    const { first, last } = checkAuditAppend(records);
    const columns: unknown[][] = AUDIT_ARRAY_TYPES.map(() => []);
    for (const r of records) rows.auditValues(r).forEach((v, i) => columns[i]!.push(v));
    const conflict = () => new StoreConflictError("auditHead", `the audit records from seq ${first.seq} do not follow the chain head`);
    const appended = await this.exec("appendAuditRecords", S.appendAuditRecords, [first.seq, first.prevHash, last.seq, last.hash, ...columns], "write", countOf, (v) =>
      v.kind === "unique" && (v.on === "audit_records.seq" || v.on === "audit_head.id") ? conflict() : undefined,
    );
    if (appended !== 1) throw conflict();
  }

  async pruneAuditRecords(throughSeq: number): Promise<number> {
    checkCount("throughSeq", throughSeq);
    return this.exec("pruneAuditRecords", S.pruneAuditRecords, [throughSeq], "write", countOf);
  }
}

const nothing = (): void => undefined;
const countOf = (r: rows.CountRow[]): number => r[0]?.n ?? 0;

/** The page of a pageStatement: rows whose `id` is null are the count of an empty page. */
function pageOf<R>(id: keyof R): RowsTo<{ total: number } & rows.Nullable<R>, Page<R>> {
  return (r) => ({ items: r.filter((row) => row[id] !== null) as unknown as R[], totalCount: r[0]?.total ?? 0 });
}

// ---- transactions ------------------------------------------------------------------------------

/**
 * The `tx` of one run of a transaction's function, on the connection that run holds. Its
 * statements run one after another in call order (a savepoint around each write must not
 * interleave with another), and only while the function has not settled.
 */
export class PostgresTransaction extends PostgresOperations {
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
    await this.exec("auditHead", S.lockAuditHead, [], "read", nothing);
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

  protected exec<R, T>(op: string, s: SqlStatement, values: unknown[], kind: Kind, result: RowsTo<R, T>, violations?: ViolationMapper): Promise<T> {
    if (!this.#open) return Promise.reject(new Error(`PostgresStore.${op}: this transaction has ended; its tx can no longer be used`));
    const run = this.#queue.then(() => this.#run(op, s, values, kind, violations)).then((r) => result(r.rows as R[], r.rowCount ?? 0));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #run(op: string, s: SqlStatement, values: unknown[], kind: Kind, violations?: ViolationMapper): Promise<pg.QueryResult> {
    if (this.#mustRetry) {
      throw new PostgresStoreError(`PostgresStore.${op}: the transaction lost a serialization conflict and will run again`, "40001");
    }
    if (this.#aborted !== undefined) {
      throw new PostgresStoreError(`PostgresStore.${op}: an earlier statement of this transaction failed, so it can only roll back`, "25P02");
    }
    const client = this.#client;
    if (kind === "read") {
      try {
        return await client.query({ ...s, values });
      } catch (err) {
        throw this.#failed(op, err, violations);
      }
    }
    // A write that fails (a conflict the caller may catch) leaves the transaction usable, as in SQLite.
    try {
      await client.query("SAVEPOINT tresor_write");
    } catch (err) {
      throw this.#failed(op, err, violations);
    }
    let result: pg.QueryResult;
    try {
      result = await client.query({ ...s, values });
    } catch (err) {
      if (isSerializationFailure(err) || isConnectionLevel(err)) throw this.#failed(op, err, violations);
      try {
        await client.query("ROLLBACK TO SAVEPOINT tresor_write");
        await client.query("RELEASE SAVEPOINT tresor_write");
      } catch (rollbackError) {
        // Now the transaction is beyond repair: record it, but report the original failure.
        this.#failed(op, rollbackError, undefined);
      }
      throw mapError(op, err, violations);
    }
    try {
      await client.query("RELEASE SAVEPOINT tresor_write");
    } catch (err) {
      throw this.#failed(op, err, undefined);
    }
    return result;
  }

  /** Records what a failed statement did to the transaction and returns the error for the caller. */
  #failed(op: string, err: unknown, violations: ViolationMapper | undefined): Error {
    const clean = mapError(op, err, violations);
    if (isSerializationFailure(err)) this.#mustRetry = true;
    else this.#aborted ??= clean;
    if (isConnectionLevel(err)) this.#connectionLost = true;
    return clean;
  }
}
