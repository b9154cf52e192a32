// The clustered Store: PostgreSQL through a `pg` connection pool, shared by several Tresor nodes.
// Every statement runs as a SERIALIZABLE transaction; serialization failures are retried. The one
// exception is key creation under the CMK limit, which queues on an advisory lock (see
// insertKeyWithinLimit): as serializable transactions, concurrent creations aborted each other.
// The operations themselves are the SQL layer's (sql/) and PostgreSQL's own (postgres/operations.ts).

import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { KeyRecord, KeyVersionRecord } from "../keys/key.js";
import { POSTGRES_MIGRATIONS } from "./migrations/postgres/index.js";
import { StoreNotEmptyError, type Store, type StoreImport, type StoreOperations, type StoreSnapshot } from "./store.js";
import { migrationsUpTo, notEmptyMessage, quoteId } from "./sql/backup.js";
import { firstKey, frozenKey, type Kind, type RowsTo, type ViolationMapper } from "./sql/operations.js";
import type { SqlStatement } from "./sql/statements.js";
import { applyPostgresMigrations, beginOrClean, describePgTables, pgSchemaVersion, PostgresImport, PostgresSnapshot } from "./postgres/backup.js";
import { cleanError, isConnectionLevel, isSerializationFailure, isTimeout, mapError, PostgresOperations, PostgresStoreError, PostgresTransaction, sqlState } from "./postgres/operations.js";

export { applyPostgresMigrations } from "./postgres/backup.js";
export { PostgresStoreError } from "./postgres/operations.js";

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

/**
 * Held (per database) by `insertKeyWithinLimit` from before its count until its commit. That
 * transaction runs READ COMMITTED, so its count, taken after the lock is granted, sees every key
 * committed before; under SERIALIZABLE the snapshot would predate the wait for the lock.
 */
const KEY_CREATION_LOCK = "7234298733106213739";
const BEGIN_SERIALIZABLE = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const BEGIN_KEY_CREATION = `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(${KEY_CREATION_LOCK})`;

export interface PostgresDiagnostics {
  serverVersion: string;
  /** "serializable" on every pooled connection. */
  defaultIsolation: string;
  /** As the server reports it, e.g. "30s". */
  statementTimeout: string;
  schemaVersion: number;
}

// BIGINT columns hold unix seconds and counts, which Tresor writes from JS numbers, so they come
// back as numbers (pg's default is a string). The parser must not throw: it runs inside pg's
// socket handler, where an exception would escape every promise.
const INT8_OID = 20;
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * The transaction (of which store) the current async call chain runs in; see PostgresStore. Enabled
 * only while a transaction's function runs (`openTransactions`): on Node 20 an enabled
 * AsyncLocalStorage makes every promise of the process more costly.
 */
const currentTransaction = new AsyncLocalStorage<{ store: PostgresStore; tx: PostgresTransaction }>();
let openTransactions = 0;

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
export class PostgresStore extends PostgresOperations implements Store {
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
  /** getKey reads not yet sent, by key id: callers until then join them. */
  readonly #keyReads = new Map<string, Promise<KeyRecord | undefined>>();

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
        await applyPostgresMigrations(client, migrationsUpTo(POSTGRES_MIGRATIONS, options.schemaVersion), label);
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
            if (n > 0) throw new StoreNotEmptyError(notEmptyMessage(this.label, table.name, n));
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

  /**
   * Reads of one key outside transactions share a query: the calls made during one turn of the
   * event loop wait for its end and get the one answer. The query is sent after every one of them
   * asked, so each still sees every change committed before it asked, as with a query of its own
   * (the cluster's zero-window guarantee); under load it saves a query per request. The shared
   * record is frozen, as the SQLite store's cached ones are.
   */
  override getKey(keyId: string): Promise<KeyRecord | undefined> {
    try {
      this.#enter("getKey");
    } catch (err) {
      return Promise.reject(err);
    }
    let read = this.#keyReads.get(keyId);
    if (read === undefined) {
      const asked = new Promise<void>((resolve) => setImmediate(resolve));
      read = this.#track(() =>
        asked.then(() => {
          this.#keyReads.delete(keyId);
          return this.#query("getKey", this.sql.getKey, [keyId], "read", firstKey).then(frozenKey);
        }),
      );
      this.#keyReads.set(keyId, read);
    }
    return read;
  }

  protected exec<R, T>(op: string, s: SqlStatement, values: unknown[], kind: Kind, result: RowsTo<R, T>, violations?: ViolationMapper): Promise<T> {
    try {
      this.#enter(op);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#query(op, s, values, kind, result, violations);
  }

  /** `s` on a pooled connection, once `#enter` has let the call in. */
  #query<R, T>(op: string, s: SqlStatement, values: unknown[], kind: Kind, result: RowsTo<R, T>, violations?: ViolationMapper): Promise<T> {
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
          const done = await this.#withClient(op, (client) => client.query({ ...s, values }));
          return result(done.rows as R[], done.rowCount ?? 0);
        } catch (err) {
          if (isSerializationFailure(err) && attempt < TRANSACTION_ATTEMPTS) {
            await sleep(backoffMs(attempt));
            continue;
          }
          if (!(err instanceof PostgresStoreError) && isConnectionLevel(err) && !isTimeout(err) && connectionRetries > 0) {
            connectionRetries--;
            continue;
          }
          throw mapError(op, err, violations);
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
      openTransactions++;
      try {
        result = { ok: true, value: await currentTransaction.run({ store: this, tx }, fn, tx) };
      } catch (error) {
        result = { ok: false, error };
      } finally {
        if (--openTransactions === 0) currentTransaction.disable();
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

function backoffMs(attempt: number): number {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
}

