// The embedded deployment's data directory: root key file, SQLite store, and the first
// administrator's credentials. `tresor init` creates one; `tresor serve` opens it.

import { constants } from "node:fs";
import { mkdir, open, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { randomInt } from "node:crypto";
import { FileRootOfTrust } from "./rootkey/file.js";
import type { RootOfTrust } from "./rootkey/root-of-trust.js";
import { systemClock, type Clock } from "./service/clock.js";
import { KmsService } from "./service/kms-service.js";
import { SqliteStore } from "./store/sqlite.js";
import type { Store } from "./store/store.js";

export const ROOT_KEY_FILE = "root.key";
export const DATABASE_FILE = "tresor.db";
export const ADMIN_CREDENTIALS_FILE = "admin-credentials.json";
export const DEFAULT_DATA_DIR = "./tresor-data";
export const DEFAULT_REGION = "local";

const META_REGION = "region";
const META_ACCOUNT_UIN = "account_uin";

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

/** Creates a data directory. Refuses one that already holds anything. */
export async function initDataDir(dir: string, region: string, clock: Clock = systemClock): Promise<AdminCredentials & { credentialsPath: string }> {
  checkRegion(region);
  const path = resolve(dir);
  await mkdir(path, { recursive: true, mode: 0o700 });
  const existing = await readdir(path);
  if (existing.length > 0) throw new Error(`the data directory ${path} is not empty: refusing to overwrite it`);

  const rootOfTrust = await FileRootOfTrust.create(join(path, ROOT_KEY_FILE));
  const store = SqliteStore.open(join(path, DATABASE_FILE));
  try {
    const accountUin = String(100_000_000_000 + randomInt(0, 900_000_000_000));
    await store.setMeta(META_REGION, region);
    await store.setMeta(META_ACCOUNT_UIN, accountUin);
    const service = new KmsService({ store, rootOfTrust, clock, region, defaultKeySpec: "SM4", cmkLimit: 0 });
    const { secretId, secretKey } = await service.createAccessKey(accountUin);
    const credentials: AdminCredentials = { secretId, secretKey, region };
    const credentialsPath = join(path, ADMIN_CREDENTIALS_FILE);
    const file = await open(credentialsPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await file.writeFile(`${JSON.stringify(credentials, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    return { ...credentials, credentialsPath };
  } finally {
    await store.close();
    await rootOfTrust.close();
  }
}

export async function openDataDir(dir: string): Promise<DataDir> {
  const path = resolve(dir);
  if (!(await dataDirExists(path))) throw new Error(`no Tresor data directory at ${path}: run "tresor init --data-dir ${dir}" first`);
  const rootOfTrust = await FileRootOfTrust.open(join(path, ROOT_KEY_FILE));
  let store: Store;
  try {
    store = SqliteStore.open(join(path, DATABASE_FILE));
  } catch (e) {
    await rootOfTrust.close();
    throw e;
  }
  const region = (await store.getMeta(META_REGION)) ?? DEFAULT_REGION;
  const accountUin = await store.getMeta(META_ACCOUNT_UIN);
  if (!accountUin) {
    await store.close();
    await rootOfTrust.close();
    throw new Error(`the data directory ${path} has no account: it was not created by "tresor init"`);
  }
  return {
    path,
    store,
    rootOfTrust,
    region,
    accountUin,
    async close() {
      await store.close();
      await rootOfTrust.close();
    },
  };
}
