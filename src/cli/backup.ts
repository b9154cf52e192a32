// `tresor backup create | verify | restore`: online snapshots of a store (embedded SQLite or shared
// PostgreSQL) into a checksummed file, and restores into an empty store of either kind. Works on
// the store directly, like init; see docs/operations.md for the drill.

import { mkdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { DATABASE_FILE, DEFAULT_DATA_DIR, isPostgresUrl, openBackupRootOfTrust, openDataDir, rootCheckValue, verifyRootCheckValue } from "../node/data-dir.js";
import { checkSchemaKnown, createBackup, readBackupHeader, readBackupMeta, restoreBackup, verifyBackup, type BackupSummary } from "../store/backup-file.js";
import { MIGRATIONS } from "../store/migrations/index.js";
import { PostgresStore } from "../store/postgres.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/store.js";
import { pinOption } from "./init.js";
import { printErrorLines, printLines } from "./output.js";

interface TargetFlags {
  dataDir: string;
  store?: string;
  pkcs11PinFile?: string;
  quiet?: boolean;
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command("backup").description("back up a store to a file, verify a backup, restore one into an empty store");
  const target = (c: Command) =>
    c
      .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR); with --store it holds only the root key", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
      .option("--store <url>", "a shared PostgreSQL store, postgres://… (env TRESOR_STORE); default: SQLite in the data directory", process.env.TRESOR_STORE)
      .option("--pkcs11-pin-file <file>", "file holding the HSM token PIN when the root key is in an HSM (otherwise env TRESOR_PKCS11_PIN)")
      .option("--quiet", "no progress lines");

  target(backup.command("create").description("write a consistent snapshot of the store, taken while it serves").requiredOption("--out <file>", "the backup file to write (must not exist)")).action(
    async (flags: TargetFlags & { out: string }) => {
      const dataDir = await openDataDir(flags.dataDir, { ...pinOption(flags.pkcs11PinFile), ...(flags.store === undefined ? {} : { store: flags.store }) });
      try {
        const root = dataDir.rootOfTrust;
        const summary = await createBackup({
          store: dataDir.store,
          storeKind: flags.store === undefined ? "sqlite" : "postgres",
          out: flags.out,
          rootCheck: { fresh: () => rootCheckValue(root), verify: (check) => verifyRootCheckValue(check, root, `the store ${dataDir.storeDescription}`) },
          progress: progressTo(flags.quiet),
        });
        report(`wrote ${resolve(flags.out)}`, summary);
      } finally {
        await dataDir.close();
      }
    },
  );

  backup
    .command("verify")
    .description("check a backup file: checksum, row counts, schema version, every row")
    .argument("<file>", "the backup file")
    .option("--quiet", "no progress lines")
    .action(async (file: string, flags: { quiet?: boolean }) => {
      const summary = await verifyBackup(file, MIGRATIONS.length, progressTo(flags.quiet));
      report(`${resolve(file)} is intact`, summary);
    });

  target(backup.command("restore").description("restore a backup into an empty store (SQLite in --data-dir, or --store postgres://…)").argument("<file>", "the backup file")).action(
    async (file: string, flags: TargetFlags) => {
      const header = await readBackupHeader(file);
      const dir = resolve(flags.dataDir);
      const root = await openBackupRootOfTrust(await readBackupMeta(file), dir, pinOption(flags.pkcs11PinFile).pkcs11Pin);
      let store: Store | undefined;
      let created: string | undefined;
      let restored = false;
      try {
        // The root key first: a wrong one is refused before the target is touched.
        await verifyRootCheckValue(header.rootCheck, root, `the backup ${resolve(file)}`);
        checkSchemaKnown(file, header.schemaVersion, MIGRATIONS.length);
        // A new store is migrated only up to the backup's schema, filled, then migrated the rest of the way.
        const atBackupSchema = { schemaVersion: header.schemaVersion };
        let into: string;
        let target: Pick<Store, "importInto">;
        let reopen: () => Promise<Store>;
        if (flags.store !== undefined) {
          const url = flags.store;
          if (!isPostgresUrl(url)) throw new Error(`"store" must be a postgres:// or postgresql:// connection string`);
          const postgres = await PostgresStore.open(url, atBackupSchema).catch((e: unknown) => {
            if (e instanceof Error && /newer than this Tresor knows/.test(e.message)) {
              throw new Error(`the target database is already at a newer schema than the backup's (${header.schemaVersion}): restore into a new, empty database`);
            }
            throw e;
          });
          store = postgres;
          target = postgres;
          into = postgres.label;
          reopen = () => PostgresStore.open(url);
        } else {
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const path = join(dir, DATABASE_FILE);
          into = path;
          if (await exists(path)) {
            // Opened as it is: the restore refuses it unless it is empty and at the backup's schema.
            store = SqliteStore.open(path);
            target = store;
          } else {
            created = path;
            target = { importInto: (fn) => SqliteStore.createForImport(path, header.schemaVersion, fn) };
          }
          reopen = async () => SqliteStore.open(path);
        }
        const summary = await restoreBackup({
          file,
          store: target,
          verifyRootCheck: (check) => verifyRootCheckValue(check, root, `the backup ${resolve(file)}`),
          progress: progressTo(flags.quiet),
        });
        restored = true;
        // Opening the restored store migrates it the rest of the way (and proves it opens).
        await store?.close();
        store = await reopen();
        if (header.schemaVersion < MIGRATIONS.length) {
          progressTo(flags.quiet)(`upgraded the restored store from schema version ${header.schemaVersion} to ${MIGRATIONS.length}`);
        }
        report(`restored ${resolve(file)} into ${into}`, summary);
      } finally {
        await store?.close();
        await root.close();
        // A database file this restore created and could not fill would pass for a data directory.
        if (!restored && created !== undefined) {
          for (const suffix of ["", "-wal", "-shm"]) await rm(`${created}${suffix}`, { force: true });
        }
      }
    },
  );
}

/** The PIN is read only when one is offered: a file root key needs none. */

function progressTo(quiet: boolean | undefined): (line: string) => void {
  if (quiet) return () => undefined;
  return (line) => printErrorLines(`backup: ${line}`);
}

function report(what: string, summary: BackupSummary): void {
  const total = Object.values(summary.rows).reduce((a, b) => a + b, 0);
  const h = summary.header;
  printLines(
    what,
    `  format version ${h.formatVersion}, schema version ${h.schemaVersion}, from a ${h.storeKind} store, created ${h.createdAt}`,
    `  ${total} rows: ${Object.entries(summary.rows).map(([t, n]) => `${t} ${n}`).join(", ")}`,
    `  sha256 ${summary.sha256}`,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}
