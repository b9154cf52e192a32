// SQLite's side of the SQL layer: the dialect, the connection with its prepared statements, and
// the operations SQLite writes as several statements in one (nested) transaction.

import Database from "better-sqlite3";
import { checkAuditAppend, continuesChain } from "../../audit/port.js";
import type { AuditRecord } from "../../audit/record.js";
import type { KeyRecord, KeyVersionRecord, Tag } from "../../keys/key.js";
import { StoreConflictError, type KeyListQuery, type Page, type PolicyRecord, type PrincipalKind, type PrincipalRecord } from "../store.js";
import { checkCount, checkFirstVersion, containsPattern, keyConflict, SqlOperations, type Kind, type RowsTo, type ViolationMapper } from "../sql/operations.js";
import * as rows from "../sql/rows.js";
import { AUDIT_COLUMNS, KEY_INSERT_COLUMNS, KEY_INSERT_VALUES, KEY_UPDATE_SET, keyColumns, placeholders, POLICY_COLUMNS, PRINCIPAL_COLUMNS } from "../sql/statements.js";
import { lookup, sharedStatements, statement, type Dialect, type SqlStatement } from "../sql/statements.js";

export const SQLITE: Dialect = {
  // Tags come along as one JSON column, so reading a key is a single statement.
  tagsColumn: `(SELECT json_group_array(json_array(tag_key, tag_value))
     FROM (SELECT tag_key, tag_value FROM key_tags WHERE key_id = k.key_id ORDER BY tag_key)) AS tags`,
  bytes: "",
  least: "min",
  noLimit: -1,
  cast: (param) => param,
  indexHint: (index) => `INDEXED BY ${index}`,
  contains: (haystack, needle) => `instr(${haystack}, ${needle}) > 0`,
  hasFlag: (flag) => `EXISTS (SELECT 1 FROM json_each(audit_records.flags) WHERE value = ${flag})`,
  dynamic: (text) => ({ name: "", text }),
};

const SHARED = sharedStatements(SQLITE);

// Every filter of KeyListQuery in one statement, so the statements are prepared once: a null
// parameter disables its filter, lists arrive as JSON and are expanded with json_each.
// An empty list matches nothing (no state is "one of no states").
const LIST_WHERE = `
  ($1 IS NULL OR k.state IN (SELECT value FROM json_each($1)))
  AND ($2 IS NULL OR k.key_id LIKE $2 ESCAPE '\\' OR k.alias LIKE $2 ESCAPE '\\')
  AND ($3 IS NULL OR k.origin = $3)
  AND ($4 IS NULL OR k.key_usage IN (SELECT value FROM json_each($4)))
  AND ($5 IS NULL OR k.owner = $5)
  AND ($6 IS NULL OR k.creator_uin = $6)
  AND ($7 IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each($7) AS f
    WHERE NOT EXISTS (
      SELECT 1 FROM key_tags AS t
      WHERE t.key_id = k.key_id
        AND t.tag_key = json_extract(f.value, '$.key')
        AND (json_array_length(f.value, '$.values') = 0
             OR t.tag_value IN (SELECT value FROM json_each(f.value, '$.values'))))))`;

const POLICY_WHERE = "account_uin = $1 AND ($2 IS NULL OR name LIKE $2 ESCAPE '\\')";

const S = {
  insertKey: statement("insertKey", `INSERT INTO keys (${KEY_INSERT_COLUMNS}) VALUES (${KEY_INSERT_VALUES})`),
  updateKey: statement("updateKey", `UPDATE keys SET ${KEY_UPDATE_SET} WHERE key_id = $1`),
  deleteTags: statement("deleteTags", "DELETE FROM key_tags WHERE key_id = $1"),
  insertTag: statement("insertTag", "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES ($1, $2, $3)"),
  deleteImportTokensOfKey: statement("deleteImportTokensOfKey", "DELETE FROM import_tokens WHERE key_id = $1"),
  deleteKey: statement("deleteKey", "DELETE FROM keys WHERE key_id = $1"),
  listKeysDesc: statement("listKeysDesc", `SELECT ${keyColumns(SQLITE)} FROM keys AS k WHERE ${LIST_WHERE} ORDER BY k.create_time DESC, k.seq DESC LIMIT $8 OFFSET $9`),
  listKeysAsc: statement("listKeysAsc", `SELECT ${keyColumns(SQLITE)} FROM keys AS k WHERE ${LIST_WHERE} ORDER BY k.create_time ASC, k.seq ASC LIMIT $8 OFFSET $9`),
  countMatches: lookup("countMatches", `SELECT count(*) AS n FROM keys AS k WHERE ${LIST_WHERE}`),

  listPrincipals: statement(
    "listPrincipals",
    `SELECT ${PRINCIPAL_COLUMNS} FROM principals WHERE account_uin = $1 AND kind = $2 ORDER BY name, principal_id LIMIT $3 OFFSET $4`,
  ),
  countPrincipals: lookup("countPrincipals", "SELECT count(*) AS n FROM principals WHERE account_uin = $1 AND kind = $2"),
  deleteAccessKeysOfPrincipal: statement("deleteAccessKeysOfPrincipal", "DELETE FROM access_keys WHERE principal_id = $1"),
  deleteAttachmentsOfPrincipal: statement("deleteAttachmentsOfPrincipal", "DELETE FROM policy_attachments WHERE principal_id = $1"),
  deleteRoleSessionsOfRole: statement("deleteRoleSessionsOfRole", "DELETE FROM role_sessions WHERE role_id = $1"),
  deleteKmipClientsOfPrincipal: statement("deleteKmipClientsOfPrincipal", "DELETE FROM kmip_clients WHERE principal_id = $1"),
  deletePrincipal: statement("deletePrincipal", "DELETE FROM principals WHERE principal_id = $1"),
  listPolicies: statement("listPolicies", `SELECT ${POLICY_COLUMNS} FROM policies WHERE ${POLICY_WHERE} ORDER BY name, policy_id LIMIT $3 OFFSET $4`),
  countPolicies: lookup("countPolicies", `SELECT count(*) AS n FROM policies WHERE ${POLICY_WHERE}`),
  deletePolicy: statement("deletePolicy", "DELETE FROM policies WHERE policy_id = $1"),
  deleteAttachmentsOfPolicy: statement("deleteAttachmentsOfPolicy", "DELETE FROM policy_attachments WHERE policy_id = $1"),

  setAuditHead: statement(
    "setAuditHead",
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
  ),
  insertAuditRecord: statement("insertAuditRecord", `INSERT INTO audit_records (${AUDIT_COLUMNS}, account_seq) VALUES (${placeholders(1, 24)})`),
  accountAuditHead: lookup("accountAuditHead", "SELECT seq AS n FROM audit_account_heads WHERE account_uin = $1"),
  setAccountAuditHead: statement(
    "setAccountAuditHead",
    "INSERT INTO audit_account_heads (account_uin, seq) VALUES ($1, $2) ON CONFLICT (account_uin) DO UPDATE SET seq = excluded.seq",
  ),
  pruneAuditRecords: statement("pruneAuditRecords", "DELETE FROM audit_records WHERE seq <= $1"),
  pruneAuditCheckpoints: statement("pruneAuditCheckpoints", "DELETE FROM audit_checkpoints WHERE seq <= $1"),
  begin: statement("begin", "BEGIN IMMEDIATE"),
  commit: statement("commit", "COMMIT"),
  rollback: statement("rollback", "ROLLBACK"),
} as const;

/** Every statement the store runs that is not built per call: prepared when it opens. */
export const SQLITE_STATEMENTS: readonly SqlStatement[] = [
  ...Object.values(S),
  ...Object.values(SHARED).flatMap((s) => ("text" in s ? [s] : Object.values(s).flatMap((w) => [w.list, w.replace]))),
];

/** A statement prepared once: `order` maps its `?`s to the values of the $n placeholders (undefined: in order). */
interface Prepared {
  readonly stmt: Database.Statement<unknown[], unknown>;
  readonly order: readonly number[] | undefined;
  /** A write that cannot change a key: the audit log's own writes and transaction boundaries. */
  readonly keysUntouched: boolean;
}

const KEYS_UNTOUCHED = /^\s*(?:(?:BEGIN|COMMIT|ROLLBACK)\b|(?:INSERT INTO|UPDATE|DELETE FROM) audit_)/i;

const NO_ROWS: never[] = [];
const firstRow = <R>(r: R[]): R | undefined => r[0];

/** The one connection, its prepared statements (each text prepared once), and its transactions. */
export class SqliteConnection {
  readonly db: Database.Database;
  readonly #prepared = new Map<string, Prepared>();
  // BEGIN IMMEDIATE takes the write lock up front, so a writer waits on busy_timeout instead of
  // failing when a read transaction would have to be upgraded. Inside an open transaction
  // better-sqlite3 makes these savepoints, so a failed write leaves the transaction usable.
  readonly write: <T>(fn: () => T) => T;
  readonly read: <T>(fn: () => T) => T;
  /** Statements run that may have written (anything but a reader), so a caller can tell whether it must wait for durability. */
  writes = 0;
  /** Of those, the ones that may have changed a key (not an audit append): the key cache's test. */
  keyWrites = 0;

  constructor(db: Database.Database) {
    this.db = db;
    const run = db.transaction((fn: () => unknown) => fn());
    this.write = run.immediate as <T>(fn: () => T) => T;
    this.read = run.deferred as <T>(fn: () => T) => T;
  }

  /** Runs `s` with `values` (booleans become 0 and 1, in place) and maps the result. */
  exec<R, T>(s: SqlStatement, values: unknown[], result: RowsTo<R, T>): T {
    const { stmt, order, keysUntouched } = this.#prepare(s.text);
    const args = order === undefined ? values : order.map((i) => values[i]);
    for (let i = 0; i < args.length; i++) if (typeof args[i] === "boolean") args[i] = args[i] ? 1 : 0;
    if (s.one === true) {
      const row = stmt.get(...args) as R | undefined;
      return result(row === undefined ? NO_ROWS : [row], 0);
    }
    if (stmt.reader) return result(stmt.all(...args) as R[], 0);
    this.writes++;
    if (!keysUntouched) this.keyWrites++;
    return result(NO_ROWS, stmt.run(...args).changes);
  }

  /** Prepares statements ahead, so that the first call of each costs no more than the others (and a bad one fails at once). */
  prepareAll(statements: readonly SqlStatement[]): void {
    for (const s of statements) this.#prepare(s.text);
  }

  /** The first row of `s`, undefined when there is none. */
  get<R>(s: SqlStatement, values: unknown[]): R | undefined {
    return this.exec(s, values, firstRow<R>);
  }

  run(s: SqlStatement, values: unknown[]): number {
    return this.exec(s, values, (_r, changes) => changes);
  }

  /** `text` with PostgreSQL's $n placeholders, prepared as SQLite's positional `?`s. */
  #prepare(text: string): Prepared {
    let prepared = this.#prepared.get(text);
    if (prepared === undefined) {
      const order: number[] = [];
      const stmt = this.db.prepare<unknown[], unknown>(
        text.replace(/\$(\d+)/g, (_, n: string) => {
          order.push(Number(n) - 1);
          return "?";
        }),
      );
      prepared = { stmt, order: order.every((v, i) => v === i) ? undefined : order, keysUntouched: KEYS_UNTOUCHED.test(text) };
      this.#prepared.set(text, prepared);
    }
    return prepared;
  }

  begin(): void {
    this.run(S.begin, []);
  }

  commit(): void {
    if (!this.db.inTransaction) throw new Error("SqliteStore: the transaction was aborted by SQLite before it could commit");
    try {
      this.run(S.commit, []);
    } catch (err) {
      this.rollback(err);
      throw err;
    }
  }

  /** Rolls back the open transaction, if SQLite has not already; `cause` is why. */
  rollback(cause: unknown): void {
    if (!this.db.inTransaction) return;
    try {
      this.run(S.rollback, []);
    } catch (err) {
      throw new AggregateError([cause, err], "SqliteStore: a failed transaction could not be rolled back");
    }
  }
}

/**
 * The operations on the one connection. Each runs synchronously, when `run` lets it (the store
 * queues behind an open transaction; a transaction's tx runs at once while it is open).
 */
export abstract class SqliteOperations extends SqlOperations {
  protected readonly conn: SqliteConnection;

  constructor(conn: SqliteConnection) {
    super(SQLITE, SHARED);
    this.conn = conn;
  }

  /** Whether operation `op` may run at once (else it queues); throws when it may not run at all. */
  protected abstract ready(op: string): boolean;
  /** Runs `fn` once the operations before it are done. */
  protected abstract queued<T>(fn: () => T): Promise<T>;
  /** `value` of an operation that wrote, once what it wrote is durable (a transaction's tx: at once; its commit waits). */
  protected abstract durable<T>(value: T): Promise<T>;

  /** Runs `fn` as operation `op` once it may run; its value or exception as a promise. */
  protected run<T>(op: string, fn: () => T): Promise<T> {
    try {
      if (this.ready(op)) return this.settled(this.conn.writes, fn());
    } catch (err) {
      return isSqliteBusy(err) ? this.retryBusy(fn, err) : Promise.reject(err);
    }
    return this.queued(fn);
  }

  /** `fn` was refused with SQLITE_BUSY, `err`: the store tries it again later; a transaction's tx, which holds the write lock, fails. */
  protected retryBusy<T>(_fn: () => T, err: unknown): Promise<T> {
    return Promise.reject(err);
  }

  /** `value`, once durable when a statement ran since `writesBefore` may have written. */
  protected settled<T>(writesBefore: number, value: T): Promise<T> {
    return this.conn.writes === writesBefore ? Promise.resolve(value) : this.durable(value);
  }

  // The hot path (a key or an access key per request): no closure unless the call must queue.
  protected exec<R, T>(op: string, s: SqlStatement, values: unknown[], _kind: Kind, result: RowsTo<R, T>, violations?: ViolationMapper): Promise<T> {
    try {
      if (this.ready(op)) return this.settled(this.conn.writes, this.conn.exec(s, values, result));
    } catch (err) {
      if (isSqliteBusy(err)) return this.retryBusy(() => this.#execMapped(s, values, result, violations), err);
      return Promise.reject(mapSqliteError(err, violations));
    }
    return this.queued(() => this.#execMapped(s, values, result, violations));
  }

  #execMapped<R, T>(s: SqlStatement, values: unknown[], result: RowsTo<R, T>, violations: ViolationMapper | undefined): T {
    try {
      return this.conn.exec(s, values, result);
    } catch (err) {
      throw mapSqliteError(err, violations);
    }
  }

  insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    return this.run("insertKey", () => {
      checkFirstVersion(key, firstVersion);
      this.#writing(keyConflict(key.keyId, key.alias), () => {
        this.conn.run(S.insertKey, rows.keyValues(key));
        if (firstVersion !== null) this.conn.run(this.sql.insertKeyVersion, rows.keyVersionValues(firstVersion));
        this.#insertTags(key.keyId, key.tags);
      });
    });
  }

  updateKey(key: KeyRecord): Promise<void> {
    return this.run("updateKey", () =>
      this.#writing(keyConflict(key.keyId, key.alias), () => {
        if (this.conn.run(S.updateKey, rows.keyUpdateValues(key)) !== 1) throw new Error(`updateKey: no key with id ${key.keyId}`);
        this.conn.run(S.deleteTags, [key.keyId]);
        this.#insertTags(key.keyId, key.tags);
      }),
    );
  }

  listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    return this.run("listKeys", () => {
      checkCount("offset", query.offset);
      checkCount("limit", query.limit);
      const filters = () => [
        query.states === undefined ? null : JSON.stringify(query.states),
        query.search === undefined ? null : containsPattern(query.search),
        query.origin ?? null,
        query.keyUsages === undefined ? null : JSON.stringify(query.keyUsages),
        query.owner ?? null,
        query.accountUin ?? null,
        query.tagFilters === undefined ? null : JSON.stringify(query.tagFilters.map((f) => ({ key: f.key, values: f.values }))),
      ];
      const list = query.order === "asc" ? S.listKeysAsc : S.listKeysDesc;
      // One read transaction, so the page and the count come from the same snapshot.
      return this.conn.read(() => ({
        keys: this.conn.exec(list, [...filters(), query.limit, query.offset], (r: rows.KeyRow[]) => r.map(rows.fromKeyRow)),
        totalCount: this.conn.get<rows.CountRow>(S.countMatches, filters())?.n ?? 0,
      }));
    });
  }

  deleteKey(keyId: string): Promise<boolean> {
    return this.run("deleteKey", () =>
      this.conn.write(() => {
        this.conn.run(this.sql.deleteKeyVersions, [keyId]);
        this.conn.run(S.deleteTags, [keyId]);
        this.conn.run(S.deleteImportTokensOfKey, [keyId]);
        return this.conn.run(S.deleteKey, [keyId]) === 1;
      }),
    );
  }

  listPrincipals(accountUin: string, kind: PrincipalKind, offset: number, limit: number): Promise<Page<PrincipalRecord>> {
    return this.run("listPrincipals", () => {
      checkCount("offset", offset);
      checkCount("limit", limit);
      return this.conn.read(() => ({
        items: this.conn.exec(S.listPrincipals, [accountUin, kind, limit, offset], (r: rows.PrincipalRow[]) => r.map(rows.fromPrincipalRow)),
        totalCount: this.conn.get<rows.CountRow>(S.countPrincipals, [accountUin, kind])?.n ?? 0,
      }));
    });
  }

  deletePrincipal(principalId: string): Promise<boolean> {
    return this.run("deletePrincipal", () =>
      this.conn.write(() => {
        if (this.conn.get(this.sql.getPrincipal, [principalId]) === undefined) return false;
        this.conn.run(S.deleteAccessKeysOfPrincipal, [principalId]);
        this.conn.run(S.deleteAttachmentsOfPrincipal, [principalId]);
        this.conn.run(S.deleteRoleSessionsOfRole, [principalId]);
        this.conn.run(S.deleteKmipClientsOfPrincipal, [principalId]);
        return this.conn.run(S.deletePrincipal, [principalId]) === 1;
      }),
    );
  }

  listPolicies(accountUin: string, offset: number, limit: number, keyword?: string): Promise<Page<PolicyRecord>> {
    return this.run("listPolicies", () => {
      checkCount("offset", offset);
      checkCount("limit", limit);
      const pattern = keyword === undefined ? null : containsPattern(keyword);
      return this.conn.read(() => ({
        items: this.conn.exec(S.listPolicies, [accountUin, pattern, limit, offset], (r: rows.PolicyRow[]) => r.map(rows.fromPolicyRow)),
        totalCount: this.conn.get<rows.CountRow>(S.countPolicies, [accountUin, pattern])?.n ?? 0,
      }));
    });
  }

  deletePolicy(policyId: number): Promise<boolean> {
    return this.run("deletePolicy", () =>
      this.conn.write(() => {
        // Attachments of a preset policy (never in policies) are left alone.
        if (this.conn.run(S.deletePolicy, [policyId]) !== 1) return false;
        this.conn.run(S.deleteAttachmentsOfPolicy, [policyId]);
        return true;
      }),
    );
  }

  appendAuditRecords(records: readonly AuditRecord[]): Promise<void> {
    return this.run("appendAuditRecords", () => {
      const { first, last } = checkAuditAppend(records);
      const taken: ViolationMapper = (v) =>
        v.kind === "unique" && v.on === "audit_records.seq"
          ? new StoreConflictError("auditHead", `an audit record with a seq from ${first.seq} to ${last.seq} exists already`)
          : undefined;
      this.#writing(taken, () => {
        // Inside a transaction (BEGIN IMMEDIATE) the write lock is already held: nobody else appends.
        if (!continuesChain(this.conn.get(this.sql.auditHead, []), first)) {
          throw new StoreConflictError("auditHead", `the audit records from seq ${first.seq} do not follow the chain head`);
        }
        // Each account's records are numbered on from its head, under the same write lock as the chain.
        const accountHeads = new Map<string, number>();
        for (const r of records) {
          const accountSeq = (accountHeads.get(r.accountUin) ?? this.conn.get<rows.CountRow>(S.accountAuditHead, [r.accountUin])?.n ?? 0) + 1;
          accountHeads.set(r.accountUin, accountSeq);
          this.conn.run(S.insertAuditRecord, [...rows.auditValues(r), accountSeq]);
        }
        for (const [accountUin, seq] of accountHeads) this.conn.run(S.setAccountAuditHead, [accountUin, seq]);
        this.conn.run(S.setAuditHead, [last.seq, last.hash]);
      });
    });
  }

  pruneAuditRecords(throughSeq: number): Promise<number> {
    return this.run("pruneAuditRecords", () => {
      checkCount("throughSeq", throughSeq);
      return this.conn.write(() => {
        this.conn.run(S.pruneAuditCheckpoints, [throughSeq]);
        return this.conn.run(S.pruneAuditRecords, [throughSeq]);
      });
    });
  }

  /** `fn` as one write (a savepoint inside a transaction); its violations mapped. */
  #writing<T>(violations: ViolationMapper, fn: () => T): T {
    try {
      return this.conn.write(fn);
    } catch (err) {
      throw mapSqliteError(err, violations);
    }
  }

  #insertTags(keyId: string, tags: readonly Tag[]): void {
    for (const tag of tags) this.conn.run(S.insertTag, [keyId, tag.key, tag.value]);
  }
}

/** A unique or foreign-key violation as a Violation (SQLite names the unique columns in its message), then mapped. */
function mapSqliteError(err: unknown, violations: ViolationMapper | undefined): unknown {
  if (violations === undefined || !(err instanceof Database.SqliteError)) return err;
  const unique = /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(err.code) ? /constraint failed: (.*)$/.exec(err.message)?.[1] : undefined;
  if (unique !== undefined) return violations({ kind: "unique", on: unique }) ?? err;
  if (err.code === "SQLITE_CONSTRAINT_FOREIGNKEY") return violations({ kind: "foreignKey" }) ?? err;
  return err;
}

/**
 * SQLite result codes that say the database cannot be written now: the disk (or a quota) is full,
 * the file or its file system is read-only, or the disk fails (extended codes included).
 */
const UNWRITABLE_CODE = /^SQLITE_(FULL|READONLY|IOERR)(_[A-Z_]+)?$/;

/** Whether `err` is SQLite refusing because another connection holds a lock it needs (extended codes included). */
export function isSqliteBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && (err.code === "SQLITE_BUSY" || err.code.startsWith("SQLITE_BUSY_"));
}

/** Whether `err` is SQLite refusing a write because it cannot write at all (not a constraint or a bug). */
export function isSqliteUnwritable(err: unknown): boolean {
  return err instanceof Database.SqliteError && UNWRITABLE_CODE.test(err.code);
}
