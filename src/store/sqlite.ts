// The embedded Store: one SQLite file in WAL mode through better-sqlite3. Every acknowledged write
// is durable (a write resolves only after an fdatasync of the WAL that began after its commit, run
// off the event loop: sqlite/wal-sync.ts), so a key handed to a caller survives kill -9 and power loss. better-sqlite3 is synchronous; the async port is met by running
// each operation synchronously and queueing only behind an open transaction (see SqliteStore).
// The operations themselves are the SQL layer's (sql/) and SQLite's own (sqlite/operations.ts).

import { AsyncLocalStorage } from "node:async_hooks";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import type { KeyRecord, KeyVersionRecord } from "../keys/key.js";
import { MIGRATIONS } from "./migrations/index.js";
import type { Store, StoreImport, StoreOperations, StoreSnapshot } from "./store.js";
import { migrationsUpTo } from "./sql/backup.js";
import { frozenKey } from "./sql/operations.js";
import { applyMigrations, createPrivateFile, importIntoDatabase, schemaVersion, SqliteSnapshot } from "./sqlite/backup.js";
import { isSqliteBusy, SQLITE_STATEMENTS, SqliteConnection, SqliteOperations } from "./sqlite/operations.js";
import { CHECKPOINTER_AFTER_WRITES, Checkpointer, WAL_SIZE_LIMIT } from "./sqlite/checkpointer.js";
import { WalSync } from "./sqlite/wal-sync.js";

export { applyMigrations } from "./sqlite/backup.js";
export { isSqliteUnwritable } from "./sqlite/operations.js";

const BUSY_TIMEOUT_MS = 5000;
/** Attempts to take another connection's write lock at the next turn of the event loop, before waiting a millisecond between them. */
const IMMEDIATE_BEGIN_RETRIES = 20;
/**
 * Runs `attempt` (at once, or first after a turn when `waitFirst`) until it does not fail with
 * SQLITE_BUSY, for up to BUSY_TIMEOUT_MS. Another connection holds the write lock: another process
 * of `tresor serve --workers N` for microseconds, the checkpoint thread's RESTART checkpoint for
 * milliseconds. With busy_timeout 0 SQLite fails at once instead of sleeping inside the call (which
 * would hold every request of this process); the attempt is repeated after the I/O of the turn, then
 * every millisecond once the wait has lasted (the holder may be waiting for a core). Only attempts
 * that change nothing when refused are retried: BEGIN, a statement on its own, a whole db.transaction.
 */
async function whileBusy<T>(attempt: () => T | Promise<T>, waitFirst: boolean): Promise<T> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let tries = waitFirst ? 1 : 0; ; tries++) {
    if (tries > 0) await (tries <= IMMEDIATE_BEGIN_RETRIES ? new Promise((resolve) => setImmediate(resolve)) : sleep(1));
    try {
      return await attempt();
    } catch (err) {
      if (!isSqliteBusy(err) || Date.now() >= deadline) throw err;
    }
  }
}

/** Keys the read cache holds at most (then it starts again empty). */
const KEY_CACHE_ENTRIES = 10_000;

export interface SqliteDiagnostics {
  journalMode: string;
  /** 1 = NORMAL: COMMIT does not fsync; the store waits for its own fdatasync of the WAL before a write resolves. */
  synchronous: number;
  /** How a commit is made durable before the write resolves. */
  durability: "wal-fdatasync" | "none (in memory)";
  foreignKeys: number;
  /** SQLite's own busy timeout: 0, so that it never sleeps on the event loop. */
  busyTimeout: number;
  /** How long an operation waits for another connection's write lock, retrying on later turns of the event loop. */
  lockWaitMs: number;
  schemaVersion: number;
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
class SqliteTransaction extends SqliteOperations {
  #ended = false;

  end(): void {
    this.#ended = true;
  }

  protected ready(): boolean {
    if (this.#ended) throw new Error("SqliteStore: this transaction has ended; its tx can no longer be used");
    // Some errors (SQLITE_FULL, I/O errors) make SQLite roll back on its own; without this check
    // the following calls would autocommit one by one.
    if (!this.conn.db.inTransaction) throw new Error("SqliteStore: the transaction was aborted by SQLite");
    return true;
  }

  protected queued<T>(fn: () => T): Promise<T> {
    return Promise.resolve(fn());
  }

  /** Inside a transaction a write is durable with its commit, which the store waits for. */
  protected durable<T>(value: T): Promise<T> {
    return Promise.resolve(value);
  }
}

/**
 * The transaction whose function the current async call chain runs in. Used only to refuse, with a
 * clear error, a call on the store itself from inside its own transaction: it would otherwise wait
 * for that transaction to end, which waits for the call: a deadlock of the whole store.
 * On Node 20 an enabled AsyncLocalStorage installs promise hooks process-wide, which made every
 * promise of every request two to three times as costly: it is enabled only while a transaction of
 * some SqliteStore is open (`openTransactions`), the only time its answer matters.
 */
const currentTransaction = new AsyncLocalStorage<SqliteTransaction>();
let openTransactions = 0;

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
export class SqliteStore extends SqliteOperations implements Store {
  readonly path: string;
  readonly #lock = new Lock();
  /** Undefined for ":memory:", which has nothing to make durable. */
  readonly #walSync: WalSync | undefined;
  readonly #checkpointer: Checkpointer | undefined;
  /**
   * Keys read outside transactions, kept while the database is unchanged: by this connection (its
   * count of writes that may change a key: its own audit appends do not) and by any other (SQLite's
   * data_version, which moves on every commit of another connection, another process's included,
   * audit appends too). So a state change is seen by the next read, at once, on every worker: the
   * cache has no window.
   */
  readonly #keys = new Map<string, KeyRecord>();
  readonly #dataVersion: Database.Statement<[], number>;
  #keysDataVersion = -1;
  #keysWrites = -1;
  #active: SqliteTransaction | undefined;
  #closing: Promise<void> | undefined;

  private constructor(path: string, db: Database.Database) {
    super(new SqliteConnection(db));
    this.conn.prepareAll(SQLITE_STATEMENTS);
    this.path = path;
    this.#walSync = path === ":memory:" ? undefined : new WalSync(`${path}-wal`);
    this.#checkpointer = path === ":memory:" ? undefined : new Checkpointer(db);
    this.#dataVersion = db.prepare<[], number>("PRAGMA data_version").pluck();
  }

  /** A key, from the cache when the database has not changed since it was read. */
  override getKey(keyId: string): Promise<KeyRecord | undefined> {
    // Inside a transaction's window the call queues behind it, as any other: no cache then.
    if (this.#lock.held || this.#closing !== undefined) return super.getKey(keyId);
    const dataVersion = this.#dataVersion.get()!;
    const writes = this.conn.keyWrites;
    if (dataVersion !== this.#keysDataVersion || writes !== this.#keysWrites) {
      this.#keys.clear();
      this.#keysDataVersion = dataVersion;
      this.#keysWrites = writes;
    }
    const cached = this.#keys.get(keyId);
    if (cached !== undefined) return Promise.resolve(cached);
    return super.getKey(keyId).then((key) => {
      // Kept only if nothing changed while it was read (the read ran at once: nothing could have).
      if (key !== undefined && this.conn.keyWrites === writes && this.#keysDataVersion === dataVersion) {
        if (this.#keys.size >= KEY_CACHE_ENTRIES) this.#keys.clear();
        this.#keys.set(keyId, frozenKey(key));
      }
      return key;
    });
  }


  /** Opens (creating with mode 0600 if missing) and migrates the database at `path`; ":memory:" for a throwaway one. */
  static open(path: string): SqliteStore {
    if (typeof path !== "string" || path === "") throw new TypeError('"path" must be a non-empty file path');
    const memory = path === ":memory:";
    const fullPath = memory ? path : resolve(path);
    if (!memory) createPrivateFile(fullPath);
    const db = openDatabase(fullPath, memory ? "memory" : "wal");
    try {
      applyMigrations(db, MIGRATIONS, fullPath);
      // From here every write waits for WalSync instead of an fsync inside COMMIT.
      db.pragma("synchronous = NORMAL");
      // And SQLite never sleeps for a lock on the event loop: whileBusy waits across its turns instead.
      db.pragma("busy_timeout = 0");
      return new SqliteStore(fullPath, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The connection settings that durability depends on, for the startup log and tests. */
  diagnostics(): SqliteDiagnostics {
    this.#open();
    const db = this.conn.db;
    const pragma = (name: string) => db.pragma(name, { simple: true });
    return {
      journalMode: String(pragma("journal_mode")),
      synchronous: Number(pragma("synchronous")),
      durability: this.#walSync === undefined ? "none (in memory)" : "wal-fdatasync",
      foreignKeys: Number(pragma("foreign_keys")),
      busyTimeout: Number(pragma("busy_timeout")),
      lockWaitMs: BUSY_TIMEOUT_MS,
      schemaVersion: schemaVersion(db),
    };
  }

  async transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    this.#enter("transaction");
    await this.#lock.acquire();
    const tx = new SqliteTransaction(this.conn);
    this.#active = tx;
    let result: T;
    openTransactions++;
    try {
      await this.#begin();
      try {
        result = await currentTransaction.run(tx, fn, tx);
      } catch (err) {
        this.conn.rollback(err);
        throw err;
      }
      // Nothing awaits from here on: the commit and the end of tx follow at once.
      this.conn.commit();
    } finally {
      tx.end();
      this.#active = undefined;
      // A chain that outlives this transaction may read its tx again after a later enable: never the
      // open one, so it counts as outside, as it is.
      if (--openTransactions === 0) currentTransaction.disable();
      this.#lock.release();
    }
    // Outside the lock: other requests run while the WAL is synced.
    return this.durable(result);
  }

  async #begin(): Promise<void> {
    await whileBusy(() => this.conn.begin(), false);
  }

  /** A plain operation refused with SQLITE_BUSY: tried again on later turns of the event loop, queued like any other. */
  protected override retryBusy<T>(fn: () => T): Promise<T> {
    return whileBusy(() => this.queued(fn), true);
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

  /** An operation runs at once when nothing holds the lock, else once the open transaction and everyone queued before are done. */
  protected ready(op: string): boolean {
    return this.#enter(op);
  }

  /** Runs `op` once the open transaction, and everyone queued before, are done. */
  protected async queued<T>(op: () => T): Promise<T> {
    await this.#lock.acquire();
    const writes = this.conn.writes;
    let value: T;
    try {
      value = op();
    } finally {
      this.#lock.release();
    }
    return this.settled(writes, value);
  }

  protected durable<T>(value: T): Promise<T> {
    if (this.#walSync === undefined) return Promise.resolve(value);
    if (this.conn.writes > CHECKPOINTER_AFTER_WRITES) this.#checkpointer?.start();
    return this.#walSync.after().then(() => value);
  }

  /** Whether WAL checkpoints run on the checkpoint thread (./sqlite/checkpointer.ts) rather than inside commits. */
  get checkpointsOffThread(): boolean {
    return this.#checkpointer?.running ?? false;
  }

  /** fdatasync calls of the WAL so far (for tests and metrics). */
  /** See WalSync.idle: the audit writer waits for it before each batch. */
  syncIdle(): Promise<void> {
    return this.#walSync?.idle() ?? Promise.resolve();
  }

  get walSyncs(): number {
    return this.#walSync?.syncs ?? 0;
  }

  // ---- backup (StoreBackup): snapshot and import ---------------------------------------------

  async snapshot<T>(fn: (snapshot: StoreSnapshot) => Promise<T>): Promise<T> {
    this.#enter("snapshot");
    if (this.path === ":memory:") {
      // No second connection can see this database: hold the lock, so nothing changes meanwhile.
      await this.#lock.acquire();
      try {
        return await fn(new SqliteSnapshot(this.conn));
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
      return await fn(new SqliteSnapshot(new SqliteConnection(db)));
    } finally {
      if (db.inTransaction) db.prepare("ROLLBACK").run();
      db.close();
    }
  }

  async importInto<T>(fn: (target: StoreImport) => Promise<T>): Promise<T> {
    this.#enter("importInto");
    await this.#lock.acquire();
    let result: T;
    try {
      result = await importIntoDatabase(this.conn, this.path, fn, () => this.#begin());
    } finally {
      this.#lock.release();
    }
    return this.durable(result);
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
    const db = openDatabase(fullPath, "wal");
    try {
      applyMigrations(db, migrations, fullPath);
      return await importIntoDatabase(new SqliteConnection(db), fullPath, fn);
    } finally {
      db.close();
    }
  }

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
      await this.#walSync?.close();
      await this.#checkpointer?.stop();
      this.conn.db.close();
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
}

/** A connection with the settings durability depends on: WAL (`journal`: "memory" for ":memory:"), FULL sync, foreign keys. */
function openDatabase(path: string, journal: "wal" | "memory"): Database.Database {
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const journalMode = db.pragma("journal_mode = WAL", { simple: true });
    if (journalMode !== journal) throw new Error(`${path}: could not switch to WAL journal mode (got ${String(journalMode)})`);
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    // When the WAL starts over, the first commit cuts a file grown larger back to this (see the checkpointer).
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
