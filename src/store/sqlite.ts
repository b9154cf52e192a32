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
import { orderTables, StoreNotEmptyError, type PortableType, type PortableValue, type StoreImport, type StoreSnapshot, type TableShape } from "./store.js";
import type { WrappedValue, WrappedValueKind, WrappedValuePosition } from "./store.js";

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
  status: string;
  create_time: number;
}

/** Named parameters of the list statements; null means "no filter". Lists travel as JSON arrays. */
interface ListParams {
  states: string | null;
  pattern: string | null;
  origin: string | null;
  keyUsages: string | null;
  owner: string | null;
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
  AND (@tagFilters IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each(@tagFilters) AS f
    WHERE NOT EXISTS (
      SELECT 1 FROM key_tags AS t
      WHERE t.key_id = k.key_id
        AND t.tag_key = json_extract(f.value, '$.key')
        AND (json_array_length(f.value, '$.values') = 0
             OR t.tag_value IN (SELECT value FROM json_each(f.value, '$.values'))))))`;

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
      `INSERT INTO access_keys (secret_id, wrapped_secret, uin, status, create_time)
       VALUES (@secret_id, @wrapped_secret, @uin, @status, @create_time)`,
    ),
    getAccessKey: db.prepare<[string], AccessKeyRow>(
      "SELECT secret_id, wrapped_secret, uin, status, create_time FROM access_keys WHERE secret_id = ?",
    ),
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

  countKeys(): number {
    return this.#s.countKeys.get()?.n ?? 0;
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
        status: record.status,
        create_time: record.createTime,
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
    if (row === undefined) return undefined;
    return {
      secretId: row.secret_id,
      wrappedSecret: row.wrapped_secret,
      uin: row.uin,
      status: row.status as AccessKeyRecord["status"],
      createTime: row.create_time,
    };
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

  async countKeys(): Promise<number> {
    return this.#live().countKeys();
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
  insertKeyWithinLimit(key: KeyRecord, firstVersion: KeyVersionRecord | null, maxKeys: number): Promise<boolean> {
    return this.transaction(async (tx) => {
      if ((await tx.countKeys()) >= maxKeys) return false;
      await tx.insertKey(key, firstVersion);
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

  async countKeys(): Promise<number> {
    return this.#enter("countKeys") ? this.#ops.countKeys() : this.#queued(() => this.#ops.countKeys());
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

function conflictField(err: unknown): StoreConflictError["field"] | undefined {
  if (!(err instanceof Database.SqliteError)) return undefined;
  if (err.code !== "SQLITE_CONSTRAINT_UNIQUE" && err.code !== "SQLITE_CONSTRAINT_PRIMARYKEY") return undefined;
  if (err.message.endsWith(": keys.key_id")) return "keyId";
  if (err.message.endsWith(": keys.alias")) return "alias";
  if (err.message.endsWith(": access_keys.secret_id")) return "secretId";
  if (err.message.endsWith(": key_versions.key_id, key_versions.version")) return "keyVersion";
  if (err.message.endsWith(": import_tokens.token_id")) return "importToken";
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
