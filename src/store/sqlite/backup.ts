// SQLite's migrations and its side of backups: the tables as a backup carries them, a snapshot
// that pages through them, and an import into an empty database.

import { closeSync, constants, fsyncSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import type { Migration } from "../migrations/index.js";
import { orderTables, StoreNotEmptyError, type PortableType, type PortableValue, type StoreImport, type StoreSnapshot, type TableShape } from "../store.js";
import { checkImportColumns, checkImportRow, checkMigrationHistory, checkMigrationOrder, exportRowsQuery, notEmptyMessage, portableValue, quoteId, shapeOf } from "../sql/backup.js";
import type { SqliteConnection } from "./operations.js";

/**
 * Applies the migrations the database lacks, each in its own transaction, recording each in
 * `schema_migrations`. Refuses a database that is newer than `migrations`, or whose recorded
 * history differs from it. Exported for tests.
 */
export function applyMigrations(db: Database.Database, migrations: readonly Migration[], label: string): void {
  checkMigrationOrder(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const record = db.prepare<[number, string, number]>("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
  const applied = db.prepare<[], { version: number; name: string }>("SELECT version, name FROM schema_migrations ORDER BY version");
  const check = () => checkMigrationHistory(applied.all(), migrations, label, (message) => new Error(message));
  check();
  for (const m of migrations) {
    // Re-check inside the write lock: another process may have migrated meanwhile.
    db.transaction(() => {
      if (check() >= m.version) return;
      db.exec(m.sql);
      record.run(m.version, m.name, Math.floor(Date.now() / 1000));
    }).immediate();
  }
}

export function schemaVersion(db: Database.Database): number {
  return db.prepare<[], { v: number }>("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").get()?.v ?? 0;
}

/** Creates the file readable and writable by its owner only, unless it exists; SQLite gives its WAL the same mode. */
export function createPrivateFile(path: string): void {
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

/** A boolean column's 0 or 1 as a boolean (any other value stays, and fails the type check). */
function fromSqliteValue(table: string, column: { name: string; type: PortableType }, value: unknown): PortableValue {
  return portableValue(table, column, column.type === "boolean" && (value === 0 || value === 1) ? value === 1 : value);
}

/** StoreBackup.importInto on `conn`, whose caller holds the store's lock (if any). */
export async function importIntoDatabase<T>(
  conn: SqliteConnection,
  label: string,
  fn: (target: StoreImport) => Promise<T>,
  begin: () => void | Promise<void> = () => conn.begin(),
): Promise<T> {
  await begin();
  try {
    const tables = describeSqliteTables(conn.db);
    for (const table of tables) {
      const n = conn.db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${quoteId(table.name)}`).get()?.n ?? 0;
      if (n > 0) throw new StoreNotEmptyError(notEmptyMessage(label, table.name, n));
    }
    const result = await fn(new SqliteImport(conn, schemaVersion(conn.db), tables));
    conn.commit();
    return result;
  } catch (err) {
    conn.rollback(err);
    throw err;
  }
}

export class SqliteSnapshot implements StoreSnapshot {
  readonly schemaVersion: number;
  readonly tables: readonly TableShape[];
  readonly #conn: SqliteConnection;

  /** Its first statement starts the read transaction (if one is open). */
  constructor(conn: SqliteConnection) {
    this.#conn = conn;
    this.schemaVersion = schemaVersion(conn.db);
    this.tables = describeSqliteTables(conn.db);
  }

  async exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]> {
    const shape = shapeOf(this.tables, table);
    const { text, values } = exportRowsQuery(shape, after, limit);
    const rows = this.#conn.exec({ name: "", text }, values, (r: Record<string, unknown>[]) => r);
    return rows.map((row) => shape.columns.map((column) => fromSqliteValue(table, column, row[column.name])));
  }
}

class SqliteImport implements StoreImport {
  readonly #conn: SqliteConnection;

  constructor(
    conn: SqliteConnection,
    readonly schemaVersion: number,
    readonly tables: readonly TableShape[],
  ) {
    this.#conn = conn;
  }

  async importRows(table: string, columns: readonly string[], rows: readonly (readonly PortableValue[])[]): Promise<void> {
    const shape = shapeOf(this.tables, table);
    checkImportColumns(shape, columns);
    const text = `INSERT INTO ${quoteId(table)} (${columns.map(quoteId).join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`;
    for (const row of rows) {
      checkImportRow(table, row, columns);
      this.#conn.run({ name: "", text }, [...row]);
    }
  }
}
