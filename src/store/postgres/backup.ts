// PostgreSQL's migrations and its side of backups: the tables as a backup carries them, a
// snapshot that pages through them, and an import into an empty database.

import pg from "pg";
import type { Migration } from "../migrations/index.js";
import type { PortableType, PortableValue, StoreImport, StoreSnapshot, TableShape } from "../store.js";
import { orderTables } from "../store.js";
import { checkImportColumns, checkImportRow, checkMigrationHistory, checkMigrationOrder, exportRowsQuery, portableValue, quoteId, shapeOf } from "../sql/backup.js";
import { cleanError, PostgresStoreError, sqlState } from "./operations.js";

/** Held (per database) while migrations run, so that nodes starting together migrate one at a time. */
const MIGRATION_LOCK = "7234298733106213737"; // "dtresor!" read as a big-endian int64; any fixed number works

/** PostgreSQL 12 is the oldest with `WITH … AS NOT MATERIALIZED`; identity columns need 10. */
const MIN_SERVER_VERSION = 120000;

// ---- migrations --------------------------------------------------------------------------------

/**
 * Applies the migrations the database lacks, each in its own transaction, recording each in
 * `schema_migrations`. Every step holds a transaction-scoped advisory lock, so nodes starting at
 * once apply each migration exactly once; the others wait, then find it recorded. Refuses a
 * database newer than `migrations`, or whose recorded history differs. Returns the schema version.
 * Exported for tests.
 */
export async function applyPostgresMigrations(client: pg.ClientBase, migrations: readonly Migration[], label: string): Promise<number> {
  checkMigrationOrder(migrations);
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
      const current = checkMigrationHistory(applied.rows, migrations, label, (message) => new PostgresStoreError(message, undefined));
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


export async function beginOrClean(client: pg.PoolClient, begin: string, op: string): Promise<void> {
  try {
    await client.query(begin);
  } catch (err) {
    throw cleanError(op, err);
  }
}

export async function pgSchemaVersion(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  return rows[0]?.v ?? 0;
}

export type PgTableShape = TableShape & { readonly identity: readonly string[] };

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
export async function describePgTables(client: pg.PoolClient): Promise<PgTableShape[]> {
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

export class PostgresSnapshot implements StoreSnapshot {
  readonly #client: pg.PoolClient;

  constructor(
    client: pg.PoolClient,
    readonly schemaVersion: number,
    readonly tables: readonly PgTableShape[],
  ) {
    this.#client = client;
  }

  async exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]> {
    const shape = shapeOf(this.tables, table);
    const { text, values } = exportRowsQuery(shape, after, limit);
    const { rows } = await this.#client.query<unknown[]>({ text, values, rowMode: "array" });
    return rows.map((row) => shape.columns.map((column, i) => portableValue(table, column, row[i])));
  }
}

/** Rows per INSERT statement are bounded by PostgreSQL's 65 535 parameters. */
const MAX_PARAMETERS = 60_000;

export class PostgresImport implements StoreImport {
  readonly #client: pg.PoolClient;

  constructor(
    client: pg.PoolClient,
    readonly schemaVersion: number,
    readonly tables: readonly PgTableShape[],
  ) {
    this.#client = client;
  }

  async importRows(table: string, columns: readonly string[], rows: readonly (readonly PortableValue[])[]): Promise<void> {
    const shape = shapeOf(this.tables, table);
    checkImportColumns(shape, columns);
    if (columns.length === 0) throw new RangeError(`an import into ${table} needs at least one column`);
    const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / columns.length));
    // Identity columns take the imported value, so references and the key order survive.
    const overriding = shape.identity.length > 0 ? " OVERRIDING SYSTEM VALUE" : "";
    for (let start = 0; start < rows.length; start += perStatement) {
      const batch = rows.slice(start, start + perStatement);
      const values: PortableValue[] = [];
      const tuples = batch.map((row) => {
        checkImportRow(table, row, columns);
        const first = values.length;
        values.push(...row);
        return `(${row.map((_, i) => `$${first + i + 1}`).join(", ")})`;
      });
      await this.#client.query(`INSERT INTO ${quoteId(table)} (${columns.map(quoteId).join(", ")})${overriding} VALUES ${tuples.join(", ")}`, values);
    }
  }
}
