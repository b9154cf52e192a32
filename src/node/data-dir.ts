// The embedded deployment's data directory: root key file, SQLite store, and the first
// administrator's credentials. `tresor init` creates one; `tresor serve` opens it.
//
// A cluster keeps its state in PostgreSQL instead (`--store postgres://…`): `tresor init --store`
// records the account, region, root-of-trust setting, a check value of the root key and the first
// access key there, and writes the root key file (or creates the HSM key) and the credentials into
// the data directory, which then holds no database. Every node gets a copy of that root key (or
// the same HSM key) and the connection string; a node whose root key does not unwrap the store's
// check value refuses to start.

import { constants } from "node:fs";
import { chmod, mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { randomInt } from "node:crypto";
import { FileRootOfTrust } from "../rootkey/file.js";
import { Pkcs11RootOfTrust, type Pkcs11Config } from "../rootkey/pkcs11.js";
import { RootOfTrustError, type RootOfTrust } from "../rootkey/root-of-trust.js";
import { openRing, rotateRootKey, type RotateResult } from "../service/root-rotation.js";
import { RootKeyRing } from "../rootkey/ring.js";
import { systemClock, type Clock } from "../service/clock.js";
import { AccessControl } from "../service/access-control.js";
import { SERVICE_SECRET_NAMES } from "../service/kms-service.js";
import { PostgresStore } from "../store/postgres.js";
import { SqliteStore } from "../store/sqlite.js";
import type { Store } from "../store/store.js";

export const ROOT_KEY_FILE = "root.key";
export const DATABASE_FILE = "tresor.db";
export const ADMIN_CREDENTIALS_FILE = "admin-credentials.json";
export const DEFAULT_DATA_DIR = "./tresor-data";
export const DEFAULT_REGION = "local";

const META_REGION = "region";
const META_ACCOUNT_UIN = "account_uin";
const META_ROOT_OF_TRUST = "root_of_trust";
const META_ROOT_CHECK = "root_check";

/** The root key's check value: this constant wrapped with ROOT_CHECK_AAD, stored in a shared store. */
const ROOT_CHECK_PLAINTEXT = Buffer.from("tresor root key check value", "utf8");
export const ROOT_CHECK_AAD = Buffer.from("tresor/root-check/v1", "utf8");

/** A shared store's timeouts: a KMS statement is tiny, so a slow answer means trouble; fail over early. */
const SHARED_STORE_OPTIONS = { statementTimeoutMs: 5_000, connectTimeoutMs: 3_000 } as const;

/** Whether `store` names a PostgreSQL database (the only shared store). */
export function isPostgresUrl(store: string): boolean {
  return /^postgres(ql)?:\/\//i.test(store);
}

/** Where the root key lives. The PIN is never stored: it is supplied each time the token is opened. */
export type RootOfTrustSetting =
  | { kind: "file" }
  | { kind: "pkcs11"; module: string; tokenLabel: string; keyLabel: string; /** use an existing key instead of creating one */ adopt?: boolean };

export const DEFAULT_PKCS11_KEY_LABEL = "tresor-root";

export interface AdminCredentials {
  secretId: string;
  secretKey: string;
  region: string;
}

export interface DataDir {
  path: string;
  store: Store;
  rootOfTrust: RootOfTrust;
  region: string;
  accountUin: string;
  /** Where the state lives, for logs: "sqlite:<path>" or a PostgreSQL target without password. */
  storeDescription: string;
  close(): Promise<void>;
}

const REGION_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;

export function checkRegion(region: string): void {
  if (!REGION_PATTERN.test(region)) throw new Error(`"region" must be 1-40 lower-case letters, digits and -, got ${JSON.stringify(region)}`);
}

export async function dataDirExists(dir: string): Promise<boolean> {
  try {
    await stat(join(dir, DATABASE_FILE));
    return true;
  } catch {
    return false;
  }
}

export interface InitOptions {
  clock?: Clock;
  rootOfTrust?: RootOfTrustSetting;
  /** The token PIN, for a pkcs11 root of trust. */
  pkcs11Pin?: string;
  /** A PostgreSQL connection string: the state goes there, not into a SQLite file in the directory. */
  store?: string;
}

/** Creates a data directory. Refuses one that already holds anything. */
export async function initDataDir(dir: string, region: string, options: InitOptions = {}): Promise<AdminCredentials & { credentialsPath: string }> {
  checkRegion(region);
  const clock = options.clock ?? systemClock;
  const setting = options.rootOfTrust ?? { kind: "file" };
  const path = resolve(dir);
  await mkdir(path, { recursive: true, mode: 0o700 });
  const existing = await readdir(path);
  if (existing.length > 0) throw new Error(`the data directory ${path} is not empty: refusing to overwrite it`);
  // An empty directory made beforehand (by hand, a volume mount) keeps its mode through mkdir.
  await chmod(path, 0o700);

  if (options.store !== undefined) return initSharedStore(path, options.store, region, clock, setting, options.pkcs11Pin);

  const rootOfTrust =
    setting.kind === "file"
      ? await FileRootOfTrust.create(join(path, ROOT_KEY_FILE))
      : await (setting.adopt ? Pkcs11RootOfTrust.open : Pkcs11RootOfTrust.create)(pkcs11Config(setting, options.pkcs11Pin));
  const store = SqliteStore.open(join(path, DATABASE_FILE));
  try {
    const accountUin = String(100_000_000_000 + randomInt(0, 900_000_000_000));
    await store.setMeta(META_REGION, region);
    await store.setMeta(META_ACCOUNT_UIN, accountUin);
    const recorded: RootOfTrustSetting =
      setting.kind === "pkcs11" ? { kind: "pkcs11", module: setting.module, tokenLabel: setting.tokenLabel, keyLabel: setting.keyLabel } : setting;
    await store.setMeta(META_ROOT_OF_TRUST, JSON.stringify(recorded));
    // The check value lets a restore (and a later open) prove which root key the data needs.
    await store.setMeta(META_ROOT_CHECK, await rootCheckValue(rootOfTrust));
    const { secretId, secretKey } = await createRootAccessKey(store, rootOfTrust, clock, region, accountUin);
    return await writeCredentials(path, { secretId, secretKey, region });
  } finally {
    await store.close();
    await rootOfTrust.close();
  }
}

async function writeCredentials(path: string, credentials: AdminCredentials): Promise<AdminCredentials & { credentialsPath: string }> {
  const credentialsPath = join(path, ADMIN_CREDENTIALS_FILE);
  const file = await open(credentialsPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await file.writeFile(`${JSON.stringify(credentials, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  return { ...credentials, credentialsPath };
}

/**
 * `init --store postgres://…`: the shared state into PostgreSQL (once for the whole cluster), the
 * root key and the credentials into the (empty) data directory `path`. Refuses a database that
 * already holds an account; then it leaves the data directory empty again.
 */
async function initSharedStore(
  path: string,
  url: string,
  region: string,
  clock: Clock,
  setting: RootOfTrustSetting,
  pin: string | undefined,
): Promise<AdminCredentials & { credentialsPath: string }> {
  if (!isPostgresUrl(url)) throw new Error(`"store" must be a postgres:// or postgresql:// connection string`);
  const store = await PostgresStore.open(url, SHARED_STORE_OPTIONS);
  let rootOfTrust: RootOfTrust | undefined;
  let committed = false;
  const refuseInitialised = async (get: (name: string) => Promise<string | undefined>) => {
    if ((await get(META_ACCOUNT_UIN)) !== undefined) {
      throw new Error(`the store ${store.label} already holds a Tresor account: initialise it once, then give every node a copy of that root key`);
    }
  };
  try {
    await refuseInitialised((name) => store.getMeta(name));
    rootOfTrust =
      setting.kind === "file"
        ? await FileRootOfTrust.create(join(path, ROOT_KEY_FILE))
        : await (setting.adopt ? Pkcs11RootOfTrust.open : Pkcs11RootOfTrust.create)(pkcs11Config(setting, pin));
    const check = await rootCheckValue(rootOfTrust);
    const accountUin = String(100_000_000_000 + randomInt(0, 900_000_000_000));
    const recorded: RootOfTrustSetting =
      setting.kind === "pkcs11" ? { kind: "pkcs11", module: setting.module, tokenLabel: setting.tokenLabel, keyLabel: setting.keyLabel } : setting;
    // One serializable transaction: of two inits racing on one database, only one records an account.
    await store.transaction(async (tx) => {
      await refuseInitialised((name) => tx.getMeta(name));
      await tx.setMeta(META_REGION, region);
      await tx.setMeta(META_ROOT_OF_TRUST, JSON.stringify(recorded));
      await tx.setMeta(META_ROOT_CHECK, check);
      await tx.setMeta(META_ACCOUNT_UIN, accountUin);
    });
    committed = true;
    const { secretId, secretKey } = await createRootAccessKey(store, rootOfTrust, clock, region, accountUin);
    return await writeCredentials(path, { secretId, secretKey, region });
  } catch (e) {
    if (!committed && setting.kind === "file") await unlink(join(path, ROOT_KEY_FILE)).catch(() => undefined);
    throw e;
  } finally {
    await store.close();
    await rootOfTrust?.close();
  }
}

/**
 * Adds an account to an installation: a fresh uin and its root's first access key (the only copy
 * of its secret). The account shares the store and root of trust with every other, and sees only
 * its own keys, principals and policies.
 */
export async function createAccount(dataDir: DataDir, clock: Clock = systemClock): Promise<AdminCredentials & { accountUin: string }> {
  for (;;) {
    const accountUin = String(100_000_000_000 + randomInt(0, 900_000_000_000));
    if (await dataDir.store.getPrincipal(accountUin)) continue;
    const { secretId, secretKey } = await createRootAccessKey(dataDir.store, dataDir.rootOfTrust, clock, dataDir.region, accountUin);
    return { accountUin, secretId, secretKey, region: dataDir.region };
  }
}

/** The account's root principal (made if missing) and a fresh access key of it: the identity part of the service, nothing else. */
async function createRootAccessKey(store: Store, rootOfTrust: RootOfTrust, clock: Clock, region: string, accountUin: string): Promise<{ secretId: string; secretKey: string }> {
  const access = new AccessControl({ store, rootOfTrust, clock, region });
  try {
    return await access.createRootAccessKey(accountUin);
  } finally {
    access.close();
  }
}

/** A fresh check value of `rootOfTrust`: a constant wrapped by it, base64. */
export async function rootCheckValue(rootOfTrust: RootOfTrust): Promise<string> {
  return (await rootOfTrust.wrap(ROOT_CHECK_PLAINTEXT, ROOT_CHECK_AAD)).toString("base64");
}

/** Refuses a root key that cannot unwrap `check` (a value made by rootCheckValue), naming `what` the check value belongs to. */
export async function verifyRootCheckValue(check: string, rootOfTrust: RootOfTrust, what: string): Promise<void> {
  let plaintext: Buffer;
  try {
    plaintext = await rootOfTrust.unwrap(Buffer.from(check, "base64"), ROOT_CHECK_AAD);
  } catch (e) {
    if (e instanceof RootOfTrustError) {
      throw new Error(`the root key ${rootOfTrust.description} is not the one ${what} was made with: its keys could not be unwrapped`);
    }
    throw e;
  }
  const same = plaintext.equals(ROOT_CHECK_PLAINTEXT);
  plaintext.fill(0);
  if (!same) throw new Error(`${what} holds a root key check value of an unknown kind`);
}

/** Refuses to serve with a root key that is not the one the shared store's keys are wrapped with. */
async function checkRootKey(store: { getMeta(name: string): Promise<string | undefined> }, rootOfTrust: RootOfTrust, storeLabel: string): Promise<void> {
  const check = await store.getMeta(META_ROOT_CHECK);
  if (check === undefined) throw new Error(`the store ${storeLabel} has no root key check value: it was not initialised by "tresor init --store"`);
  let plaintext: Buffer;
  try {
    plaintext = await rootOfTrust.unwrap(Buffer.from(check, "base64"), ROOT_CHECK_AAD);
  } catch (e) {
    if (e instanceof RootOfTrustError) {
      throw new Error(
        `the root key ${rootOfTrust.description} is not the one the store ${storeLabel} was initialised with: ` +
          "give this node a copy of the root key that \"tresor init --store\" created (or the same HSM key)",
      );
    }
    throw e;
  }
  const same = plaintext.equals(ROOT_CHECK_PLAINTEXT);
  plaintext.fill(0);
  if (!same) throw new Error(`the store ${storeLabel} holds a root key check value of an unknown kind`);
}

/**
 * The data directory and the files in it that hold state or secrets, with the mode each must not
 * exceed; root.key is checked when it is opened (FileRootOfTrust.open). SQLite's -wal and -shm
 * files take the database's mode.
 */
const PRIVATE_ENTRIES: readonly { name: string; mode: number }[] = [
  { name: "", mode: 0o700 },
  { name: DATABASE_FILE, mode: 0o600 },
  { name: `${DATABASE_FILE}-wal`, mode: 0o600 },
  { name: `${DATABASE_FILE}-shm`, mode: 0o600 },
  { name: ADMIN_CREDENTIALS_FILE, mode: 0o600 },
];

/**
 * What in the data directory grants access to group or others: one sentence per entry, naming it,
 * its mode and the chmod that fixes it. Missing entries are fine (no database with --store, the
 * credentials file deleted after the secret was stored elsewhere).
 */
export async function insecurePermissions(dir: string): Promise<string[]> {
  const path = resolve(dir);
  const problems: string[] = [];
  for (const entry of PRIVATE_ENTRIES) {
    const full = entry.name === "" ? path : join(path, entry.name);
    let mode: number;
    try {
      mode = (await stat(full)).mode & 0o777;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    if ((mode & 0o077) === 0) continue;
    const what = entry.name === "" ? `the data directory ${full}` : full;
    problems.push(`${what} has mode ${mode.toString(8).padStart(4, "0")}, which grants access to group or others: run "chmod ${entry.mode.toString(8)} ${full}"`);
  }
  return problems;
}

export async function openDataDir(dir: string, options: { pkcs11Pin?: string; store?: string } = {}): Promise<DataDir> {
  const path = resolve(dir);
  if (options.store !== undefined) return openSharedStore(path, options.store, options.pkcs11Pin);
  if (!(await dataDirExists(path))) throw new Error(`no Tresor data directory at ${path}: run "tresor init --data-dir ${dir}" first`);
  const store = SqliteStore.open(join(path, DATABASE_FILE));
  let rootOfTrust: RootOfTrust;
  let region: string;
  let accountUin: string | undefined;
  try {
    region = (await store.getMeta(META_REGION)) ?? DEFAULT_REGION;
    accountUin = await store.getMeta(META_ACCOUNT_UIN);
    if (!accountUin) throw new Error(`the data directory ${path} has no account: it was not created by "tresor init"`);
    const setting = parseRootOfTrustSetting(await store.getMeta(META_ROOT_OF_TRUST));
    if (setting.kind === "pkcs11") pkcs11Config(setting, options.pkcs11Pin); // refuses a missing PIN, naming where to give it
    // The root keys by generation (see service/root-rotation.ts), so that `tresor rootkey rotate` can run while this node serves.
    rootOfTrust = await openRing(store, { dir: path, pin: options.pkcs11Pin, initialSetting: setting });
    // Directories made before the check value existed have none; a restored one has one.
    const check = await store.getMeta(META_ROOT_CHECK);
    if (check !== undefined) {
      await verifyRootCheckValue(check, rootOfTrust, `the data directory ${path}`).catch(async (e: unknown) => {
        await rootOfTrust.close();
        throw e;
      });
    }
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    path,
    store,
    rootOfTrust,
    region,
    accountUin,
    storeDescription: `sqlite:${join(path, DATABASE_FILE)}`,
    async close() {
      await store.close();
      await rootOfTrust.close();
    },
  };
}

/** A node of a cluster: the state in PostgreSQL, the root key from the data directory (or the HSM it names). */
async function openSharedStore(path: string, url: string, pin: string | undefined): Promise<DataDir> {
  if (!isPostgresUrl(url)) throw new Error(`"store" must be a postgres:// or postgresql:// connection string`);
  const store = await PostgresStore.open(url, SHARED_STORE_OPTIONS);
  let rootOfTrust: RootOfTrust | undefined;
  let region: string;
  let accountUin: string | undefined;
  try {
    accountUin = await store.getMeta(META_ACCOUNT_UIN);
    if (!accountUin) throw new Error(`the store ${store.label} holds no Tresor account: run "tresor init --store <url> --data-dir <dir>" once for the cluster`);
    region = (await store.getMeta(META_REGION)) ?? DEFAULT_REGION;
    const setting = parseRootOfTrustSetting(await store.getMeta(META_ROOT_OF_TRUST));
    if (setting.kind === "pkcs11") pkcs11Config(setting, pin); // refuses a missing PIN, naming where to give it
    rootOfTrust = await openRing(store, { dir: path, pin, initialSetting: setting }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      throw new Error(`no root key file at ${join(path, ROOT_KEY_FILE)}: copy the cluster's root key (made by "tresor init --store") there, mode 0600`);
    });
    await checkRootKey(store, rootOfTrust, store.label);
  } catch (e) {
    await rootOfTrust?.close().catch(() => undefined);
    await store.close();
    throw e;
  }
  const root = rootOfTrust;
  return {
    path,
    store,
    rootOfTrust: root,
    region,
    accountUin,
    storeDescription: store.label,
    async close() {
      await store.close();
      await root.close();
    },
  };
}

function pkcs11Config(setting: Extract<RootOfTrustSetting, { kind: "pkcs11" }>, pin: string | undefined): Pkcs11Config {
  if (pin === undefined) {
    throw new Error(`the root key is in the PKCS#11 token "${setting.tokenLabel}": give its PIN in TRESOR_PKCS11_PIN or with --pkcs11-pin-file`);
  }
  return { module: setting.module, tokenLabel: setting.tokenLabel, keyLabel: setting.keyLabel, pin };
}

/** Data directories made before the setting existed hold a root key file. */
function parseRootOfTrustSetting(text: string | undefined): RootOfTrustSetting {
  if (text === undefined) return { kind: "file" };
  const value = JSON.parse(text) as Record<string, unknown>;
  if (value.kind === "file") return { kind: "file" };
  if (value.kind === "pkcs11" && typeof value.module === "string" && typeof value.tokenLabel === "string" && typeof value.keyLabel === "string") {
    return { kind: "pkcs11", module: value.module, tokenLabel: value.tokenLabel, keyLabel: value.keyLabel };
  }
  throw new Error(`the data directory's root-of-trust setting is not understood: ${text}`);
}

// ---- backup and restore: the root of trust a backup's data needs ---------------------------------

export { META_ROOT_CHECK, META_ROOT_OF_TRUST };

/**
 * Opens the root of trust a backup's data needs, from the backup's meta values (the root-of-trust
 * setting and, after a root key rotation, the ring of generations), file keys in `dir`; before
 * any target store exists.
 */
export async function openBackupRootOfTrust(meta: ReadonlyMap<string, string>, dir: string, pin: string | undefined): Promise<RootOfTrust> {
  const path = resolve(dir);
  const setting = parseRootOfTrustSetting(meta.get(META_ROOT_OF_TRUST));
  if (setting.kind === "pkcs11") pkcs11Config(setting, pin); // refuses a missing PIN, naming where to give it
  // openRing reads only meta values (readRing): the backup's stand in for a store's.
  const backupMeta = { getMeta: async (name: string) => meta.get(name) } as Pick<Store, "getMeta"> as Store;
  return openRing(backupMeta, { dir: path, pin, initialSetting: setting }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    throw new Error(`no root key file in ${path}: copy the root key the backed-up data was made with there (root.key, mode 0600)`);
  });
}

// ---- root key rotation: `tresor rootkey rotate` --------------------------------------------------

export interface RotateDataDirOptions {
  pkcs11Pin?: string;
  store?: string;
  graceMs?: number;
  pageSize?: number;
  progress?: (line: string) => void;
  /** Tests: stop (as a crash would) after rewrapping this many values. */
  failAfterRewraps?: number;
}

/** Rotates the root key of a data directory (or of a shared store, pkcs11 only), or resumes a rotation that stopped. */
export async function rotateDataDirRootKey(dir: string, options: RotateDataDirOptions = {}): Promise<RotateResult> {
  const dataDir = await openDataDir(dir, { ...(options.pkcs11Pin === undefined ? {} : { pkcs11Pin: options.pkcs11Pin }), ...(options.store === undefined ? {} : { store: options.store }) });
  try {
    const setting = parseRootOfTrustSetting(await dataDir.store.getMeta(META_ROOT_OF_TRUST));
    if (options.store !== undefined && setting.kind === "file") {
      // Every node holds its own copy of a file root key: a new one made here would be missing on the others.
      throw new Error("rotating a file root key of a shared store is not supported: the new key would exist on this node only (use a pkcs11 root of trust for clusters)");
    }
    const ring = dataDir.rootOfTrust;
    if (!(ring instanceof RootKeyRing)) throw new Error("the data directory's root of trust was not opened as a ring of generations");
    return await rotateRootKey({
      store: dataDir.store,
      ring,
      context: { dir: dataDir.path, pin: options.pkcs11Pin, initialSetting: setting },
      rootCheck: { name: META_ROOT_CHECK, aad: ROOT_CHECK_AAD },
      serviceSecretNames: SERVICE_SECRET_NAMES,
      recordSetting: (tx, next) => tx.setMeta(META_ROOT_OF_TRUST, JSON.stringify(next)),
      ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
      ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
      ...(options.progress === undefined ? {} : { progress: options.progress }),
      ...(options.failAfterRewraps === undefined ? {} : { failAfterRewraps: options.failAfterRewraps }),
    });
  } finally {
    await dataDir.close();
  }
}
