// The embedded deployment's data directory: root key file, SQLite store, and the first
// administrator's credentials. `tresor init` creates one; `tresor serve` opens it.

import { constants } from "node:fs";
import { mkdir, open, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { randomInt } from "node:crypto";
import { FileRootOfTrust } from "./rootkey/file.js";
import { Pkcs11RootOfTrust, type Pkcs11Config } from "./rootkey/pkcs11.js";
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
const META_ROOT_OF_TRUST = "root_of_trust";

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

export async function openDataDir(dir: string, options: { pkcs11Pin?: string } = {}): Promise<DataDir> {
  const path = resolve(dir);
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
    rootOfTrust =
      setting.kind === "file"
        ? await FileRootOfTrust.open(join(path, ROOT_KEY_FILE))
        : await Pkcs11RootOfTrust.open(pkcs11Config(setting, options.pkcs11Pin));
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
    async close() {
      await store.close();
      await rootOfTrust.close();
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
