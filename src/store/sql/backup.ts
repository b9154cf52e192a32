// What both SQL stores do alike for backups and migrations: page through a table in key order,
// check the values and columns that travel, and check a database's migration history.

import type { Migration } from "../migrations/index.js";
import type { PortableType, PortableValue, TableShape } from "../store.js";

export function quoteId(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function shapeOf<S extends TableShape>(tables: readonly S[], table: string): S {
  const shape = tables.find((t) => t.name === table);
  if (shape === undefined) throw new Error(`the store has no table ${JSON.stringify(table)}`);
  return shape;
}

/**
 * The statement of one page of `shape` in key order, after the row whose key values are `after`
 * (null: from the first): $1 the limit, then the key values.
 */
export function exportRowsQuery(shape: TableShape, after: readonly PortableValue[] | null, limit: number): { text: string; values: unknown[] } {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`"limit" must be a non-negative integer, got ${limit}`);
  if (after !== null && after.length !== shape.key.length) throw new RangeError(`"after" must hold the ${shape.key.length} key values of ${shape.name}`);
  const key = shape.key.map(quoteId).join(", ");
  const where = after === null ? "" : `WHERE (${key}) > (${shape.key.map((_, i) => `$${i + 2}`).join(", ")})`;
  const text = `SELECT ${shape.columns.map((c) => quoteId(c.name)).join(", ")} FROM ${quoteId(shape.name)} ${where} ORDER BY ${key} LIMIT $1`;
  return { text, values: [limit, ...(after ?? [])] };
}

/** A value read for a backup, checked against its column's portable type. */
export function portableValue(table: string, column: { name: string; type: PortableType }, value: unknown): PortableValue {
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

export function checkImportColumns(shape: TableShape, columns: readonly string[]): void {
  for (const c of columns) {
    if (!shape.columns.some((s) => s.name === c)) throw new Error(`the table ${shape.name} has no column ${JSON.stringify(c)}`);
  }
}

export function checkImportRow(table: string, row: readonly PortableValue[], columns: readonly string[]): void {
  if (row.length !== columns.length) throw new RangeError(`a row of ${table} has ${row.length} values for ${columns.length} columns`);
}

export function notEmptyMessage(label: string, table: string, rows: number): string {
  return `the target store ${label} is not empty (table ${table} holds ${rows} rows): restore only into a new, empty store`;
}

/** The first `version` migrations (all when undefined). */
export function migrationsUpTo(migrations: readonly Migration[], version: number | undefined): readonly Migration[] {
  if (version === undefined) return migrations;
  if (!Number.isSafeInteger(version) || version < 1 || version > migrations.length) {
    throw new RangeError(`"schemaVersion" must be from 1 to ${migrations.length}, got ${version}`);
  }
  return migrations.slice(0, version);
}

export function checkMigrationOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}

/**
 * The schema version a database's recorded history says; throws (an error made by `fail`) when the
 * database is newer than `migrations`, or its history differs from them.
 */
export function checkMigrationHistory(rows: readonly { version: number; name: string }[], migrations: readonly Migration[], label: string, fail: (message: string) => Error): number {
  const current = rows.at(-1)?.version ?? 0;
  if (current > migrations.length) {
    throw fail(
      `${label}: the database schema version is ${current}, newer than this Tresor knows (${migrations.length}); ` +
        "run a Tresor release that knows it, or restore a backup made by this one",
    );
  }
  rows.forEach((row, i) => {
    const expected = migrations[i];
    if (expected === undefined || row.version !== expected.version || row.name !== expected.name) {
      throw fail(`${label}: recorded migration ${row.version} "${row.name}" does not match this Tresor's migrations`);
    }
  });
  return current;
}
