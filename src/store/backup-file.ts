// Backup files: one consistent snapshot of every table of a store, as gzip'd JSON lines (a header,
// a line per table, a line per row, a trailer with row counts and a SHA-256 over everything before
// it). Specified in docs/formats.md, "Backup file". Secrets are in the store only wrapped by the
// root of trust, so they are in the file only wrapped too; nothing here unwraps anything.

import { createHash, randomBytes } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { link, open, stat, unlink } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { finished } from "node:stream/promises";
import { once } from "node:events";
import { createGunzip, createGzip } from "node:zlib";
import type { PortableType, PortableValue, Store, StoreImport, TableShape } from "./store.js";

export const BACKUP_FORMAT = "tresor-backup";
/** The newest format version this Tresor writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
const DEFAULT_BATCH = 1000;
const PROGRESS_EVERY_ROWS = 10_000;

export type StoreKind = "sqlite" | "postgres";

export interface BackupHeader {
  type: "header";
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  /** ISO 8601, UTC. */
  createdAt: string;
  storeKind: StoreKind;
  schemaVersion: number;
  /** The root key check value (base64): whoever restores must have a root of trust that unwraps it. */
  rootCheck: string;
  /** The meta value "root_of_trust" (JSON naming a file or an HSM key, never a secret), or null. */
  rootOfTrust: string | null;
}

export interface BackupSummary {
  header: BackupHeader;
  /** Rows per table, in the file's table order. */
  rows: Record<string, number>;
  sha256: string;
}

/** A backup file that is damaged, altered, truncated or not one this Tresor can read. */
export class BackupFileError extends Error {
  override readonly name = "BackupFileError";
}

type Progress = (line: string) => void;

// ---- writing -------------------------------------------------------------------------------------

export interface CreateBackupOptions {
  store: Store;
  storeKind: StoreKind;
  out: string;
  /**
   * The root key check value to record when the store's meta has none (a data directory made
   * before check values existed); and the check of the one it has.
   */
  rootCheck: { fresh(): Promise<string>; verify(check: string): Promise<void> };
  batchSize?: number;
  progress?: Progress;
  now?: () => Date;
}

/**
 * Writes a backup of `store` to `out` (which must not exist) from one snapshot, while the store
 * goes on serving. The file appears under its name only once complete (written aside, fsynced,
 * then linked into place), mode 0600.
 */
export async function createBackup(options: CreateBackupOptions): Promise<BackupSummary> {
  const out = resolve(options.out);
  const batch = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batch) || batch <= 0) throw new RangeError(`"batchSize" must be a positive integer, got ${batch}`);
  const progress = options.progress ?? (() => undefined);
  if (await exists(out)) throw new Error(`${out} already exists: refusing to overwrite it`);
  const partial = `${out}.partial-${randomBytes(6).toString("hex")}`;
  const gzip = createGzip();
  // "wx": created here, never an existing file; 0600 because the file holds wrapped material.
  const sink = createWriteStream(partial, { flags: "wx", mode: 0o600 });
  const sinkFailed = new Promise<never>((_, reject) => sink.once("error", reject));
  sinkFailed.catch(() => undefined);
  gzip.pipe(sink);
  const hash = createHash("sha256");
  const write = async (line: unknown, hashed: boolean) => {
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`, "utf8");
    if (hashed) hash.update(bytes);
    if (!gzip.write(bytes)) await Promise.race([once(gzip, "drain"), sinkFailed]);
  };
  try {
    const summary = await options.store.snapshot(async (snapshot) => {
      const meta = snapshot.tables.find((t) => t.name === "meta");
      const metaValues = new Map<string, string>();
      if (meta !== undefined) {
        const name = meta.columns.findIndex((c) => c.name === "name");
        const value = meta.columns.findIndex((c) => c.name === "value");
        for await (const row of pageRows(snapshot, meta, batch)) metaValues.set(String(row[name]), String(row[value]));
      }
      const existing = metaValues.get("root_check");
      if (existing !== undefined) await options.rootCheck.verify(existing);
      const header: BackupHeader = {
        type: "header",
        format: BACKUP_FORMAT,
        formatVersion: BACKUP_FORMAT_VERSION,
        createdAt: (options.now?.() ?? new Date()).toISOString(),
        storeKind: options.storeKind,
        schemaVersion: snapshot.schemaVersion,
        rootCheck: existing ?? (await options.rootCheck.fresh()),
        rootOfTrust: metaValues.get("root_of_trust") ?? null,
      };
      await write(header, true);
      const rows: Record<string, number> = {};
      for (const table of snapshot.tables) {
        await write({ type: "table", name: table.name, columns: table.columns, key: table.key }, true);
        let n = 0;
        for await (const row of pageRows(snapshot, table, batch)) {
          await write({ type: "row", table: table.name, values: row.map(toJson) }, true);
          if (++n % PROGRESS_EVERY_ROWS === 0) progress(`${table.name}: ${n} rows`);
        }
        rows[table.name] = n;
        progress(`${table.name}: ${n} rows, done`);
      }
      const sha256 = hash.digest("hex");
      await write({ type: "trailer", rows, sha256 }, false);
      return { header, rows, sha256 };
    });
    gzip.end();
    await finished(sink);
    const file = await open(partial, constants.O_RDONLY);
    try {
      await file.sync();
    } finally {
      await file.close();
    }
    await link(partial, out).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`${out} appeared while the backup was written: refusing to overwrite it`);
      throw e;
    });
    await unlink(partial);
    await syncDirectory(dirname(out));
    return summary;
  } catch (e) {
    gzip.destroy();
    sink.destroy();
    await unlink(partial).catch(() => undefined);
    throw e;
  }
}

async function* pageRows(
  snapshot: { exportRows(table: string, after: readonly PortableValue[] | null, limit: number): Promise<PortableValue[][]> },
  table: TableShape,
  batch: number,
): AsyncGenerator<PortableValue[]> {
  const keyIndexes = table.key.map((k) => table.columns.findIndex((c) => c.name === k));
  let after: PortableValue[] | null = null;
  for (;;) {
    const rows = await snapshot.exportRows(table.name, after, batch);
    yield* rows;
    const last = rows.at(-1);
    if (rows.length < batch || last === undefined) return;
    after = keyIndexes.map((i) => last[i] ?? null);
  }
}

function toJson(value: PortableValue): string | number | boolean | null {
  return Buffer.isBuffer(value) ? value.toString("base64") : value;
}

// ---- reading -------------------------------------------------------------------------------------

export type BackupEvent =
  | { kind: "header"; header: BackupHeader }
  | { kind: "table"; table: TableShape }
  | { kind: "row"; table: TableShape; values: PortableValue[] };

/**
 * Reads and checks a backup file as it streams: the header first, every table declared before its
 * rows, every value of its column's type. Only after the trailer has matched (row counts and the
 * SHA-256 of everything before it) and the file has ended does the iteration complete; any fault
 * throws `BackupFileError`, so a consumer that commits only on completion never keeps bad data.
 */
export async function* readBackup(file: string): AsyncGenerator<BackupEvent, BackupSummary> {
  const path = resolve(file);
  const input = createReadStream(path);
  const gunzip = createGunzip();
  input.on("error", (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  const hash = createHash("sha256");
  const tables = new Map<string, TableShape>();
  const counts = new Map<string, number>();
  let header: BackupHeader | undefined;
  let trailer: { rows: Record<string, number>; sha256: string } | undefined;
  let lineNumber = 0;
  let pending: Buffer = Buffer.alloc(0);

  const fail = (message: string): never => {
    throw new BackupFileError(`backup ${path}: ${message}`);
  };

  function* handle(line: Buffer): Generator<BackupEvent> {
    lineNumber++;
    if (trailer !== undefined) fail(`line ${lineNumber} follows the trailer: the file was altered`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString("utf8"));
    } catch {
      fail(`line ${lineNumber} is not JSON: the file is damaged`);
    }
    const record = (parsed ?? {}) as Record<string, unknown>;
    if (record.type !== "trailer") hash.update(line).update("\n");
    if (header === undefined) {
      header = parseHeader(record, fail);
      yield { kind: "header", header };
      return;
    }
    switch (record.type) {
      case "table": {
        const table = parseTable(record, lineNumber, fail);
        if (tables.has(table.name)) fail(`line ${lineNumber} declares the table ${table.name} a second time`);
        tables.set(table.name, table);
        counts.set(table.name, 0);
        yield { kind: "table", table };
        return;
      }
      case "row": {
        const table = typeof record.table === "string" ? tables.get(record.table) : undefined;
        if (table === undefined) return fail(`line ${lineNumber} is a row of an undeclared table ${JSON.stringify(record.table)}`);
        const values = record.values;
        if (!Array.isArray(values) || values.length !== table.columns.length) {
          return fail(`line ${lineNumber}: a row of ${table.name} must hold ${table.columns.length} values`);
        }
        const decoded = table.columns.map((c, i) => fromJson(values[i], c.type, () => fail(`line ${lineNumber}: ${table.name}.${c.name} is not a valid ${c.type}`)));
        counts.set(table.name, (counts.get(table.name) ?? 0) + 1);
        yield { kind: "row", table, values: decoded };
        return;
      }
      case "trailer": {
        const rows = record.rows;
        if (typeof record.sha256 !== "string" || rows === null || typeof rows !== "object" || Array.isArray(rows)) fail(`line ${lineNumber}: a malformed trailer`);
        trailer = { rows: rows as Record<string, number>, sha256: record.sha256 as string };
        return;
      }
      default:
        fail(`line ${lineNumber} has an unknown type ${JSON.stringify(record.type)}`);
    }
  }

  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let nl: number;
      while ((nl = pending.indexOf(0x0a)) >= 0) {
        const line = pending.subarray(0, nl);
        pending = pending.subarray(nl + 1);
        yield* handle(line);
      }
    }
  } catch (e) {
    if (e instanceof BackupFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") fail("no such file");
    if (typeof code === "string" && code.startsWith("Z_")) {
      fail(`the compressed data is damaged or cut short (${(e as Error).message}): the file is corrupt or truncated`);
    }
    throw e;
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  if (pending.length > 0) fail("the last line is incomplete: the file is truncated");
  if (header === undefined) fail("the file is empty");
  if (trailer === undefined) fail("the file ends before its trailer: it is truncated");
  const sha256 = hash.digest("hex");
  if (trailer!.sha256 !== sha256) fail("the SHA-256 of its contents does not match the trailer's: the file was altered or damaged");
  const declared = Object.entries(trailer!.rows);
  if (declared.length !== counts.size || declared.some(([name, n]) => counts.get(name) !== n)) {
    fail(`the row counts do not match the trailer's (${JSON.stringify(Object.fromEntries(counts))} read, ${JSON.stringify(trailer!.rows)} declared)`);
  }
  return { header: header!, rows: Object.fromEntries(counts), sha256 };
}

/** The header alone (the first line), without reading the rest. */
export async function readBackupHeader(file: string): Promise<BackupHeader> {
  const reader = readBackup(file);
  try {
    const first = await reader.next();
    if (first.done || first.value.kind !== "header") throw new BackupFileError(`backup ${resolve(file)}: no header`);
    return first.value.header;
  } finally {
    await reader.return(undefined as never);
  }
}

/** The meta table's values, read from the start of the file (meta is small and comes early). */
export async function readBackupMeta(file: string): Promise<Map<string, string>> {
  const meta = new Map<string, string>();
  const reader = readBackup(file);
  try {
    let inMeta = false;
    for (;;) {
      const next = await reader.next();
      if (next.done) return meta;
      const event = next.value;
      if (event.kind === "table") {
        if (inMeta) return meta;
        inMeta = event.table.name === "meta";
      } else if (event.kind === "row" && inMeta) {
        const name = event.values[event.table.columns.findIndex((c) => c.name === "name")];
        const value = event.values[event.table.columns.findIndex((c) => c.name === "value")];
        if (typeof name === "string" && typeof value === "string") meta.set(name, value);
      }
    }
  } finally {
    await reader.return(undefined as never);
  }
}

function parseHeader(record: Record<string, unknown>, fail: (message: string) => never): BackupHeader {
  if (record.type !== "header" || record.format !== BACKUP_FORMAT) fail(`the first line is not a ${BACKUP_FORMAT} header: this is not a Tresor backup`);
  const version = record.formatVersion;
  if (!Number.isSafeInteger(version) || (version as number) < 1) fail("the header has no valid formatVersion");
  if ((version as number) > BACKUP_FORMAT_VERSION) {
    fail(`it has format version ${String(version)}, newer than this Tresor reads (${BACKUP_FORMAT_VERSION}): use the Tresor release that made it, or a newer one`);
  }
  if (!Number.isSafeInteger(record.schemaVersion) || (record.schemaVersion as number) < 1) fail("the header has no valid schemaVersion");
  if (record.storeKind !== "sqlite" && record.storeKind !== "postgres") fail("the header has no valid storeKind");
  if (typeof record.createdAt !== "string" || typeof record.rootCheck !== "string" || record.rootCheck === "") fail("the header lacks createdAt or rootCheck");
  if (record.rootOfTrust !== null && typeof record.rootOfTrust !== "string") fail("the header's rootOfTrust is neither null nor a string");
  return {
    type: "header",
    format: BACKUP_FORMAT,
    formatVersion: version as number,
    createdAt: record.createdAt as string,
    storeKind: record.storeKind as StoreKind,
    schemaVersion: record.schemaVersion as number,
    rootCheck: record.rootCheck as string,
    rootOfTrust: record.rootOfTrust as string | null,
  };
}

const TYPES: readonly PortableType[] = ["integer", "text", "boolean", "bytes"];

function parseTable(record: Record<string, unknown>, line: number, fail: (message: string) => never): TableShape {
  const { name, columns, key } = record;
  if (typeof name !== "string" || name === "") fail(`line ${line}: a table line without a name`);
  if (!Array.isArray(columns) || columns.length === 0) fail(`line ${line}: the table ${String(name)} has no columns`);
  const parsed = (columns as unknown[]).map((c) => {
    const column = (c ?? {}) as Record<string, unknown>;
    if (typeof column.name !== "string" || !TYPES.includes(column.type as PortableType)) fail(`line ${line}: a column of ${String(name)} is malformed`);
    return { name: column.name as string, type: column.type as PortableType };
  });
  if (!Array.isArray(key) || key.length === 0 || key.some((k) => !parsed.some((c) => c.name === k))) fail(`line ${line}: the key of ${String(name)} is malformed`);
  return { name: name as string, columns: parsed, key: key as string[] };
}

function fromJson(value: unknown, type: PortableType, bad: () => never): PortableValue {
  if (value === null) return null;
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isSafeInteger(value) ? value : bad();
    case "text":
      return typeof value === "string" ? value : bad();
    case "boolean":
      return typeof value === "boolean" ? value : bad();
    case "bytes": {
      if (typeof value !== "string") return bad();
      const bytes = Buffer.from(value, "base64");
      return bytes.toString("base64") === value ? bytes : bad();
    }
  }
}

// ---- verifying and restoring ---------------------------------------------------------------------

/** Reads the whole file and checks everything `readBackup` checks, and that `knownSchema` covers its schema. */
export async function verifyBackup(file: string, knownSchema: number, progress?: Progress): Promise<BackupSummary> {
  const reader = readBackup(file);
  let rows = 0;
  for (;;) {
    const next = await reader.next();
    if (next.done) return next.value;
    const event = next.value;
    if (event.kind === "header") checkSchemaKnown(file, event.header.schemaVersion, knownSchema);
    if (event.kind === "row" && ++rows % PROGRESS_EVERY_ROWS === 0) progress?.(`${rows} rows checked`);
  }
}

/** Refuses a backup whose schema is newer than `known` (this Tresor's last migration). */
export function checkSchemaKnown(file: string, schema: number, known: number): void {
  if (schema > known) {
    throw new BackupFileError(
      `backup ${resolve(file)}: its schema version is ${schema}, newer than this Tresor knows (${known}): restore it with the release that made it, or a newer one`,
    );
  }
}

export interface RestoreBackupOptions {
  file: string;
  /** An empty store (importInto refuses any other), or just its importInto (see SqliteStore.createForImport). */
  store: Pick<Store, "importInto">;
  /** Throws unless the restoring root of trust unwraps the backup's check value. */
  verifyRootCheck(check: string): Promise<void>;
  batchSize?: number;
  progress?: Progress;
}

/**
 * Restores a backup into an empty store in one transaction: the root key check first (before the
 * store is touched), then every row; the transaction commits only once the whole file has been
 * read and its trailer matched, so a damaged file leaves the store as empty as it was.
 */
export async function restoreBackup(options: RestoreBackupOptions): Promise<BackupSummary> {
  const batch = options.batchSize ?? DEFAULT_BATCH;
  const progress = options.progress ?? (() => undefined);
  const reader = readBackup(options.file);
  try {
    const first = await reader.next();
    if (first.done || first.value.kind !== "header") throw new BackupFileError(`backup ${resolve(options.file)}: no header`);
    const header = first.value.header;
    await options.verifyRootCheck(header.rootCheck);
    return await options.store.importInto(async (target) => {
      checkSchemaKnown(options.file, header.schemaVersion, target.schemaVersion);
      if (header.schemaVersion !== target.schemaVersion) {
        throw new Error(
          `the backup has schema version ${header.schemaVersion} and the target store ${target.schemaVersion}: ` +
            "restore into a new store, which is created at the backup's schema version and then upgraded",
        );
      }
      let current: TableShape | undefined;
      let rows: PortableValue[][] = [];
      let done = 0;
      let rootCheckSeen = false;
      const flush = async () => {
        if (current === undefined || rows.length === 0) return;
        await target.importRows(current.name, current.columns.map((c) => c.name), rows);
        const before = done;
        done += rows.length;
        rows = [];
        if (Math.floor(done / PROGRESS_EVERY_ROWS) > Math.floor(before / PROGRESS_EVERY_ROWS)) progress(`${done} rows restored`);
      };
      for (;;) {
        const next = await reader.next();
        if (next.done) {
          await flush();
          // A backup of a data directory made before check values existed carries one in its header only.
          if (!rootCheckSeen && target.tables.some((t) => t.name === "meta")) await target.importRows("meta", ["name", "value"], [["root_check", header.rootCheck]]);
          progress(`${done} rows restored, committing`);
          return next.value;
        }
        const event = next.value;
        if (event.kind === "table") {
          await flush();
          current = event.table;
          checkSameShape(event.table, target);
        } else if (event.kind === "row") {
          if (event.table.name === "meta" && event.values[event.table.columns.findIndex((c) => c.name === "name")] === "root_check") rootCheckSeen = true;
          rows.push(event.values);
          if (rows.length >= batch) await flush();
        }
      }
    });
  } finally {
    await reader.return(undefined as never);
  }
}

function checkSameShape(table: TableShape, target: StoreImport): void {
  const mine = target.tables.find((t) => t.name === table.name);
  const describe = (t: TableShape) => t.columns.map((c) => `${c.name} ${c.type}`).sort().join(", ");
  if (mine === undefined) throw new Error(`the backup has a table ${table.name} that the target store lacks`);
  if (describe(mine) !== describe(table)) {
    throw new Error(`the table ${table.name} differs between the backup (${describe(table)}) and the target store (${describe(mine)})`);
  }
}

// ---- helpers -------------------------------------------------------------------------------------

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
