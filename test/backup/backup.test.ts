// `tresor backup create | verify | restore` end to end: a backup of a serving store restores into an
// empty store of either kind, where a server decrypts every ciphertext of the original; damaged
// files, a wrong root key and a non-empty target are refused; no plaintext or secret is in a file.
// The PostgreSQL cases need TRESOR_TEST_PG_URL (see .ci/postgres.sh): skipped without it, failing
// under CI.

import assert from "node:assert/strict";
import { constants as cryptoConstants, createHash, createPublicKey, publicEncrypt, randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { KmsClient } from "tresor/sdk";
import { MIGRATIONS } from "../../src/store/migrations/index.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { PolicyAttachmentRecord, PolicyRecord, PrincipalRecord, RoleSessionRecord, Store } from "../../src/store/store.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

const pgBase = process.env.TRESOR_TEST_PG_URL;
const PG_UNSET = "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh to start a throwaway PostgreSQL)";
/** Options for a PostgreSQL case: skipped with the reason locally, run (and so failing) under CI. */
const pgCase = pgBase === undefined || pgBase === "" ? (process.env.CI ? {} : { skip: PG_UNSET }) : {};

interface Credentials {
  secretId: string;
  secretKey: string;
  region: string;
}

interface Session {
  credentials: Credentials;
  /** Every ciphertext made, with the plaintext it must decrypt to. */
  ciphertexts: { keyId: string; blob: string; plaintext: Buffer }[];
  /** Everything that must never appear in a backup: plaintexts, data keys, imported material. */
  secrets: Buffer[];
  versions: Map<string, number>;
}

function client(url: string, credentials: Credentials): KmsClient {
  return new KmsClient({ endpoint: url, secretId: credentials.secretId, secretKey: credentials.secretKey, region: credentials.region });
}

/**
 * A session that leaves a row in every table: keys of two specs with tags, a key rotated (once:
 * RotateKey is allowed once a day) with ciphertexts under each version, an imported (BYOK) key, a disabled key, data keys.
 */
async function runSession(url: string, credentials: Credentials): Promise<Session> {
  const kms = client(url, credentials);
  const session: Session = { credentials, ciphertexts: [], secrets: [Buffer.from(credentials.secretKey, "utf8")], versions: new Map() };
  const encrypt = async (keyId: string) => {
    const plaintext = Buffer.from(`backup plaintext ${randomUUID()}`, "utf8");
    session.ciphertexts.push({ keyId, blob: await kms.encryptBytes(keyId, plaintext), plaintext });
    session.secrets.push(plaintext);
  };
  const tag = `t${randomBytes(4).toString("hex")}`;
  const sm4 = await kms.createKey({ Alias: `${tag}-sm4`, Tags: [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "payments" }] });
  const aes = await kms.createKey({ Alias: `${tag}-aes`, KeySpec: "AES_256" });
  for (const key of [sm4.KeyId!, aes.KeyId!]) {
    await encrypt(key);
    session.versions.set(key, 1);
  }
  await kms.enableKeyRotation({ KeyId: aes.KeyId! });
  await kms.rotateKey({ KeyId: aes.KeyId! });
  await encrypt(aes.KeyId!);
  session.versions.set(aes.KeyId!, 2);
  const dataKey = await kms.generateDataKeyBytes(sm4.KeyId!, "AES_256");
  session.secrets.push(dataKey.plaintext);
  session.ciphertexts.push({ keyId: sm4.KeyId!, blob: dataKey.ciphertextBlob, plaintext: dataKey.plaintext });

  const byok = await kms.createKey({ Alias: `${tag}-byok`, Type: 2 });
  const material = randomBytes(16);
  const params = await kms.getParametersForImport({ KeyId: byok.KeyId!, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" });
  const spki = createPublicKey({ key: Buffer.from(params.PublicKey!, "base64"), format: "der", type: "spki" });
  const encrypted = publicEncrypt({ key: spki, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, material);
  await kms.importKeyMaterial({ KeyId: byok.KeyId!, ImportToken: params.ImportToken!, EncryptedKeyMaterial: encrypted.toString("base64") });
  session.secrets.push(material);
  session.versions.set(byok.KeyId!, 1);
  await encrypt(byok.KeyId!);
  // A second token, left unused: an import_tokens row.
  await kms.getParametersForImport({ KeyId: byok.KeyId!, WrappingAlgorithm: "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" });

  const disabled = await kms.createKey({ Alias: `${tag}-off` });
  await encrypt(disabled.KeyId!);
  session.versions.set(disabled.KeyId!, 1);
  await kms.disableKey({ KeyId: disabled.KeyId! });
  await kms.enableKey({ KeyId: disabled.KeyId! });
  return session;
}

/** Every ciphertext decrypts, every key has its versions, through a server on the restored store. */
async function checkSession(url: string, session: Session): Promise<void> {
  const kms = client(url, session.credentials);
  for (const c of session.ciphertexts) assert.deepEqual(await kms.decryptBytes(c.blob), c.plaintext, `a ciphertext of ${c.keyId} decrypts`);
  for (const [keyId, current] of session.versions) {
    const versions = await kms.listKeyVersions({ KeyId: keyId });
    assert.equal(versions.CurrentVersion, current, `${keyId} is at version ${current}`);
    assert.deepEqual(versions.Versions?.map((v) => v.Version), Array.from({ length: current }, (_, i) => i + 1));
  }
  // And the restored keys still encrypt.
  const [first] = session.ciphertexts;
  assert.ok(first !== undefined);
  const again = await kms.encryptBytes(first.keyId, Buffer.from("after restore"));
  assert.deepEqual(await kms.decryptBytes(again), Buffer.from("after restore"));
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { timeoutMs: 60_000 });
}

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `tresor ${args.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A directory holding a copy of `from`'s root key (and admin credentials, so startServer skips init). */
async function targetDir(base: string, name: string, from: string, withCredentials = true): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir, { mode: 0o700 });
  for (const file of withCredentials ? ["root.key", "admin-credentials.json"] : ["root.key"]) {
    await copyFile(join(from, file), join(dir, file));
    await chmod(join(dir, file), 0o600);
  }
  return dir;
}

/** Lines of the decompressed backup. */
async function lines(file: string): Promise<string[]> {
  return gunzipSync(await readFile(file)).toString("utf8").split("\n").filter((l) => l !== "");
}

async function rewrite(file: string, out: string, edit: (lines: string[]) => string[]): Promise<void> {
  await writeFile(out, gzipSync(`${edit(await lines(file)).join("\n")}\n`));
}

// Identity rows (003-identity) written straight into a store, since the API to make them comes later:
// a sub-user, a role with a trust policy, a custom policy attached to both (and a preset one), and a
// role session. A backup must carry them across store kinds.
const IDENTITY_ACCOUNT = "100000000001";
const IDENTITY = {
  principals: [
    { principalId: "200000000077", accountUin: IDENTITY_ACCOUNT, kind: "user", name: "alice", remark: "sub-user ✓", trustPolicy: null, maxSessionSeconds: 0, createTime: 1_700_000_001 },
    {
      principalId: "4611686018427387999",
      accountUin: IDENTITY_ACCOUNT,
      kind: "role",
      name: "deployer",
      remark: "",
      trustPolicy: '{"version":"2.0","statement":[{"effect":"allow","action":["name/sts:AssumeRole"]}]}',
      maxSessionSeconds: 43_200,
      createTime: 1_700_000_002,
    },
  ] satisfies PrincipalRecord[],
  policy: {
    policyId: 5_000_001,
    accountUin: IDENTITY_ACCOUNT,
    name: "kms-decrypt-only",
    description: "decrypt ' only",
    document: '{"version":"2.0","statement":[{"effect":"allow","action":["kms:Decrypt"],"resource":["*"]}]}',
    createTime: 1_700_000_003,
    updateTime: 1_700_000_004,
  } satisfies PolicyRecord,
  attachments: [
    { principalId: "200000000077", policyId: 1, accountUin: IDENTITY_ACCOUNT, createTime: 1_700_000_005 },
    { principalId: "200000000077", policyId: 5_000_001, accountUin: IDENTITY_ACCOUNT, createTime: 1_700_000_006 },
    { principalId: "4611686018427387999", policyId: 5_000_001, accountUin: IDENTITY_ACCOUNT, createTime: 1_700_000_007 },
  ] satisfies PolicyAttachmentRecord[],
  session: {
    tmpSecretId: "AKIDtmp-backup-session",
    roleId: "4611686018427387999",
    accountUin: IDENTITY_ACCOUNT,
    sessionName: "ci",
    assumedBy: "200000000077",
    createTime: 1_700_000_008,
    expiresAt: 4_102_444_800,
  } satisfies RoleSessionRecord,
};

async function addIdentity(store: Store): Promise<void> {
  for (const p of IDENTITY.principals) await store.insertPrincipal(p);
  await store.insertPolicy(IDENTITY.policy);
  for (const a of IDENTITY.attachments) await store.attachPolicy(a);
  await store.insertRoleSession(IDENTITY.session);
}

async function checkIdentity(store: Store): Promise<void> {
  for (const p of IDENTITY.principals) assert.deepEqual(await store.getPrincipal(p.principalId), p, `principal ${p.name} restored`);
  assert.deepEqual(await store.getPolicy(IDENTITY.policy.policyId), IDENTITY.policy, "policy restored");
  for (const principalId of new Set(IDENTITY.attachments.map((a) => a.principalId))) {
    assert.deepEqual(await store.listAttachedPolicies(principalId), IDENTITY.attachments.filter((a) => a.principalId === principalId), "attachments restored");
  }
  assert.deepEqual(await store.getRoleSession(IDENTITY.session.tmpSecretId), IDENTITY.session, "role session restored");
}

async function withSqliteStore<T>(dataDir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = SqliteStore.open(join(dataDir, "tresor.db"));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function withPostgresStore<T>(url: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await PostgresStore.open(url, { poolSize: 2 });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** What schema 1 lacks of the current schema: tables, and columns of older tables. */
const NOT_IN_SCHEMA_1 = {
  tables: new Set(["principals", "policies", "policy_attachments", "role_sessions", "audit_records", "audit_head", "audit_checkpoints"]),
  columns: new Map([
    ["keys", ["protection_level"]],
    ["access_keys", ["principal_id", "last_used_time"]],
  ]),
};

/**
 * A backup of schema 1 made from one of the current schema: the same file without what
 * 002-protection-level (keys.protection_level), 003-identity (the identity tables,
 * access_keys.principal_id and last_used_time) and 004-audit (the audit tables) added.
 */
async function makeSchema1Backup(from: string, to: string): Promise<void> {
  await rewrite(from, to, (ls) => {
    const header = JSON.parse(ls[0]!) as Record<string, unknown>;
    header.schemaVersion = 1;
    const dropAt = new Map<string, number[]>();
    const body: string[] = [];
    for (const l of ls.slice(1, -1)) {
      const line = JSON.parse(l) as { type: string; name?: string; table?: string; columns?: { name: string }[]; values?: unknown[] };
      const table = line.type === "table" ? line.name! : line.table!;
      if (NOT_IN_SCHEMA_1.tables.has(table)) continue;
      if (line.type === "table") {
        const drop = (NOT_IN_SCHEMA_1.columns.get(table) ?? []).map((c) => line.columns!.findIndex((x) => x.name === c));
        assert.ok(drop.every((i) => i >= 0), `${table} has the columns schema 1 lacks`);
        dropAt.set(table, drop.sort((a, b) => b - a));
        for (const i of dropAt.get(table)!) line.columns!.splice(i, 1);
      }
      if (line.type === "row") for (const i of dropAt.get(table) ?? []) line.values!.splice(i, 1);
      body.push(JSON.stringify(line));
    }
    assert.equal(dropAt.size, 6, "the six tables of schema 1");
    const all = [JSON.stringify(header), ...body];
    const trailer = JSON.parse(ls.at(-1)!) as { rows: Record<string, number>; sha256: string };
    for (const table of NOT_IN_SCHEMA_1.tables) delete trailer.rows[table];
    trailer.sha256 = createHash("sha256").update(all.map((l) => `${l}\n`).join("")).digest("hex");
    return [...all, JSON.stringify(trailer)];
  });
}

/** Whether makeSchema1Backup applies to this release's migrations. */
const SCHEMA_1_FROM_CURRENT = MIGRATIONS.map((m) => m.name).join(" ") === "001-initial 002-protection-level 003-identity 004-audit";

describe("tresor backup (SQLite)", () => {
  let base = "";
  let source: TestServer;
  let session: Session;
  let backupFile = "";

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "tresor-backup-"));
    source = await startServer({ dataDir: join(base, "source") });
    session = await runSession(source.url, source);
    // A second connection to the serving store's file (WAL lets both write).
    await withSqliteStore(source.dataDir, addIdentity);
    backupFile = join(base, "source.tresor-backup.gz");
    // Taken while the server serves.
    await ok(["backup", "create", "--data-dir", source.dataDir, "--out", backupFile]);
  });

  after(async () => {
    await source?.stop();
    await rm(base, { recursive: true, force: true });
  });

  it("restores into an empty data directory, where a server decrypts every ciphertext of the original", async () => {
    const verified = await ok(["backup", "verify", backupFile]);
    assert.match(verified, /is intact/);
    assert.match(verified, /key_versions 5\b/, "every version is in the backup");
    assert.match(verified, /principals 3\b/, "the account's root, a user and a role");
    assert.match(verified, /policy_attachments 3\b/);
    const dir = await targetDir(base, "restored", source.dataDir);
    const restored = await cli(["backup", "restore", backupFile, "--data-dir", dir]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, /rows restored/, "progress lines go to stderr");
    const server = await startServer({ dataDir: dir });
    try {
      await checkSession(server.url, session);
    } finally {
      await server.stop();
    }
    await withSqliteStore(dir, checkIdentity);
  });

  it("holds no plaintext, data key, imported material or SecretKey, in any encoding", async () => {
    const text = gunzipSync(await readFile(backupFile)).toString("utf8");
    const raw = await readFile(backupFile);
    assert.ok(text.includes(session.credentials.secretId), "the SecretId is there (it is not secret), so the search reads the right text");
    for (const secret of session.secrets) {
      for (const form of [secret.toString("utf8"), secret.toString("base64"), secret.toString("hex"), secret.toString("base64url")]) {
        assert.ok(!text.includes(form), `the backup contains a secret (${form.slice(0, 8)}…)`);
      }
      assert.equal(raw.indexOf(secret), -1, "nor do the compressed bytes");
    }
  });

  it("refuses a restore under a different root key, before touching the target", async () => {
    const other = await startServer();
    const otherDir = other.dataDir;
    try {
      const dir = await targetDir(base, "wrong-root", otherDir, false);
      const r = await cli(["backup", "restore", backupFile, "--data-dir", dir]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /root key .* is not the one the backup .* was made with/);
      assert.equal(existsSync(join(dir, "tresor.db")), false, "no database was created");
    } finally {
      await other.stop();
    }
  });

  it("refuses a non-empty target and changes nothing in it", async () => {
    const r = await cli(["backup", "restore", backupFile, "--data-dir", source.dataDir]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /is not empty .* restore only into a new, empty store/);
    await checkSession(source.url, session);
  });

  it("refuses to overwrite an existing file", async () => {
    const r = await cli(["backup", "create", "--data-dir", source.dataDir, "--out", backupFile]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already exists: refusing to overwrite it/);
  });

  it("a data directory made before root check values existed: the backup carries a fresh one, the restore records it", async () => {
    const old = await startServer({ keepDataDir: true });
    const oldDir = old.dataDir;
    const oldSession = await runSession(old.url, old);
    await old.stop();
    const db = new Database(join(oldDir, "tresor.db"));
    assert.equal(db.prepare("DELETE FROM meta WHERE name = 'root_check'").run().changes, 1);
    db.close();
    const file = join(base, "old-style.gz");
    await ok(["backup", "create", "--data-dir", oldDir, "--out", file]);
    const header = JSON.parse((await lines(file))[0]!) as { rootCheck: string };
    assert.ok(header.rootCheck.length > 0);
    // Still refused under another root key.
    const wrong = await targetDir(base, "old-style-wrong", source.dataDir, false);
    const refused = await cli(["backup", "restore", file, "--data-dir", wrong]);
    assert.match(refused.stderr, /is not the one the backup .* was made with/);
    const dir = await targetDir(base, "old-style-restored", oldDir);
    await ok(["backup", "restore", file, "--data-dir", dir]);
    const check = new Database(join(dir, "tresor.db"), { readonly: true });
    assert.equal(check.prepare<[], { value: string }>("SELECT value FROM meta WHERE name = 'root_check'").get()?.value, header.rootCheck);
    check.close();
    const server = await startServer({ dataDir: dir });
    try {
      await checkSession(server.url, oldSession);
    } finally {
      await server.stop();
      await rm(join(oldDir, ".."), { recursive: true, force: true });
    }
  });

  it("restores a backup made at an older schema into a new store, then upgrades it", async (t) => {
    if (!SCHEMA_1_FROM_CURRENT) {
      t.skip("this test knows how to make a backup of schema 1 only from schema 4");
      return;
    }
    const file = join(base, "schema-1.gz");
    await makeSchema1Backup(backupFile, file);
    assert.match(await ok(["backup", "verify", file]), /schema version 1\b/);
    const dir = await targetDir(base, "schema-1-restored", source.dataDir);
    const restored = await cli(["backup", "restore", file, "--data-dir", dir]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, new RegExp(`upgraded the restored store from schema version 1 to ${MIGRATIONS.length}`));
    const store = SqliteStore.open(join(dir, "tresor.db"));
    try {
      assert.equal(store.diagnostics().schemaVersion, MIGRATIONS.length);
      for (const keyId of session.versions.keys()) assert.equal((await store.getKey(keyId))?.protectionLevel, "SOFTWARE");
      // 003-identity gave the access key to its account's root.
      const accessKey = await store.getAccessKey(session.credentials.secretId);
      assert.ok(accessKey !== undefined);
      assert.equal(accessKey.principalId, accessKey.uin);
      assert.equal(accessKey.lastUsedTime, 0);
      assert.equal((await store.getPrincipal(accessKey.uin))?.kind, "root");
      assert.equal(await store.getPrincipal(IDENTITY.principals[0]!.principalId), undefined, "schema 1 had no principals to restore");
    } finally {
      await store.close();
    }
    const server = await startServer({ dataDir: dir });
    try {
      await checkSession(server.url, session);
    } finally {
      await server.stop();
    }
  });

  it("after a root key rotation: a new backup restores with the new root key, an older one with the old", async () => {
    const server = await startServer({ keepDataDir: true });
    const dir = server.dataDir;
    try {
      const rotated = await runSession(server.url, server);
      const before = join(base, "before-rotation.gz");
      await ok(["backup", "create", "--data-dir", dir, "--out", before, "--quiet"]);
      await ok(["rootkey", "rotate", "--data-dir", dir]);
      const afterRotation = join(base, "after-rotation.gz");
      await ok(["backup", "create", "--data-dir", dir, "--out", afterRotation, "--quiet"]);

      const fresh = await targetDir(base, "rotated-restore", dir);
      await ok(["backup", "restore", afterRotation, "--data-dir", fresh, "--quiet"]);
      // The old key is what the older backup needs: in its place as root.key.
      const old = join(base, "rotated-restore-old");
      await mkdir(old, { mode: 0o700 });
      await copyFile(join(dir, "root.key.old"), join(old, "root.key"));
      await copyFile(join(dir, "admin-credentials.json"), join(old, "admin-credentials.json"));
      const withNewKey = await targetDir(base, "rotated-restore-new-key", dir, false);
      const refused = await cli(["backup", "restore", before, "--data-dir", withNewKey]);
      assert.notEqual(refused.code, 0, "a backup from before the rotation needs the old key");
      assert.match(refused.stderr, /is not the one the backup .* was made with/);
      await ok(["backup", "restore", before, "--data-dir", old, "--quiet"]);
      for (const restoredDir of [fresh, old]) {
        const restored = await startServer({ dataDir: restoredDir });
        try {
          await checkSession(restored.url, rotated);
        } finally {
          await restored.stop();
        }
      }
    } finally {
      await server.stop();
      await rm(join(dir, ".."), { recursive: true, force: true });
    }
  });

  describe("a damaged or altered file is refused by verify and restore, and nothing is restored", () => {
    // Which message a flip inside the deflate stream gives depends on what it decompresses into (the
    // backup's content differs from run to run): a damaged stream, a line that no longer parses,
    // or a checksum mismatch. So a flip known to break one check, and one anywhere that must only be refused.
    const cases: { name: string; make: (from: string, to: string) => Promise<void>; message: RegExp }[] = [
      {
        name: "a flipped byte in the gzip trailer's CRC-32",
        make: async (from, to) => {
          const bytes = await readFile(from);
          // A gzip member ends with CRC-32 (4 bytes) and ISIZE (4 bytes), both little-endian.
          bytes[bytes.length - 8]! ^= 0x01;
          await writeFile(to, bytes);
        },
        message: /compressed data is damaged or cut short .*: the file is corrupt or truncated/,
      },
      {
        name: "a flipped byte in the middle of the compressed data (whatever it decompresses into)",
        make: async (from, to) => {
          const bytes = await readFile(from);
          bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
          await writeFile(to, bytes);
        },
        // Refused, with a one-line reason; which check catches it first is not the point.
        message: /^error: .+$/m,
      },
      {
        name: "a truncated file",
        make: async (from, to) => {
          const bytes = await readFile(from);
          await writeFile(to, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
        },
        message: /corrupt or truncated|truncated/,
      },
      {
        name: "a dropped row line",
        make: (from, to) => rewrite(from, to, (ls) => ls.filter((l, i) => !(l.includes('"table":"key_versions"') && l.includes('"type":"row"') && i === ls.findIndex((x) => x.includes('"table":"key_versions"') && x.includes('"type":"row"'))))),
        message: /SHA-256 of its contents does not match the trailer's: the file was altered/,
      },
      {
        name: "a dropped trailer",
        make: (from, to) => rewrite(from, to, (ls) => ls.slice(0, -1)),
        message: /ends before its trailer: it is truncated/,
      },
      {
        name: "a changed value with the checksum left as it was",
        make: (from, to) => rewrite(from, to, (ls) => ls.map((l) => l.replace(/"Enabled"/, '"Disabled"'))),
        message: /SHA-256 of its contents does not match/,
      },
      {
        name: "a dropped line with the checksum recomputed (the counts no longer match)",
        make: async (from, to) => {
          await rewrite(from, to, (ls) => {
            const body = ls.slice(0, -1).filter((l) => !(l.includes('"type":"row"') && l.includes('"table":"key_tags"')));
            const trailer = JSON.parse(ls.at(-1)!) as { rows: Record<string, number>; sha256: string };
            trailer.sha256 = createHash("sha256").update(body.map((l) => `${l}\n`).join("")).digest("hex");
            return [...body, JSON.stringify(trailer)];
          });
        },
        message: /row counts do not match the trailer's/,
      },
      {
        name: "a newer schema version",
        make: (from, to) => rewrite(from, to, (ls) => [ls[0]!.replace(/"schemaVersion":\d+/, '"schemaVersion":99'), ...ls.slice(1)]),
        message: /schema version is 99, newer than this Tresor knows/,
      },
      {
        name: "a newer format version",
        make: (from, to) => rewrite(from, to, (ls) => [ls[0]!.replace('"formatVersion":1', '"formatVersion":99'), ...ls.slice(1)]),
        message: /format version 99, newer than this Tresor reads/,
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const file = join(base, `damaged-${randomUUID()}.gz`);
        await c.make(backupFile, file);
        const verify = await cli(["backup", "verify", file]);
        assert.notEqual(verify.code, 0, "verify refuses it");
        assert.match(verify.stderr, c.message);
        const dir = await targetDir(base, `damaged-${randomUUID()}`, source.dataDir);
        const restore = await cli(["backup", "restore", file, "--data-dir", dir]);
        assert.notEqual(restore.code, 0, "restore refuses it");
        assert.match(restore.stderr, c.message);
        assert.equal(existsSync(join(dir, "tresor.db")), false, "the failed restore left no database behind");
      });
    }
  });

  it("a backup taken under concurrent writes restores every key with all its versions and its tags", async () => {
    const kms = client(source.url, source);
    let stop = false;
    let written = 0;
    const writer = (async () => {
      // Each step is one atomic change of the store: a key with its first version and two tags, or a rotation.
      while (!stop) {
        const key = await kms.createKey({ Alias: `busy-${randomUUID().slice(0, 8)}`, Tags: [{ TagKey: "a", TagValue: "1" }, { TagKey: "b", TagValue: "2" }] });
        await kms.enableKeyRotation({ KeyId: key.KeyId! });
        await kms.rotateKey({ KeyId: key.KeyId! });
        written++;
      }
    })();
    const files: string[] = [];
    try {
      await waitFor("the writer to make two keys", () => written >= 2, { intervalMs: 20 });
      for (let i = 0; i < 3; i++) {
        const file = join(base, `busy-${i}.gz`);
        await ok(["backup", "create", "--data-dir", source.dataDir, "--out", file, "--quiet"]);
        files.push(file);
      }
    } finally {
      stop = true;
      await writer;
    }
    assert.ok(written >= 3, "writes went on while the backups were taken");
    for (const file of files) {
      const dir = await targetDir(base, `busy-restore-${randomUUID()}`, source.dataDir);
      await ok(["backup", "restore", file, "--data-dir", dir, "--quiet"]);
      const store = SqliteStore.open(join(dir, "tresor.db"));
      try {
        const { keys } = await store.listKeys({ offset: 0, limit: 10_000, order: "asc" });
        assert.ok(keys.length > session.versions.size, "the busy keys are there");
        for (const key of keys) {
          if (key.state === "PendingImport") continue;
          const versions = (await store.listKeyVersions(key.keyId)).map((v) => v.version);
          assert.deepEqual(versions, Array.from({ length: key.currentVersion }, (_, i) => i + 1), `${key.alias}: all its versions, none ahead of it`);
          if (key.alias.startsWith("busy-")) assert.equal(key.tags.length, 2, `${key.alias}: both tags`);
        }
      } finally {
        await store.close();
      }
    }
  });
});

// ---- across store kinds (PostgreSQL) -----------------------------------------------------------

describe("tresor backup across store kinds (PostgreSQL)", () => {
  let base = "";
  let admin: pg.Pool | undefined;
  const schemas: string[] = [];

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "tresor-backup-pg-"));
    if (pgBase) {
      admin = new pg.Pool({ connectionString: pgBase, max: 2 });
      admin.on("error", () => undefined);
    }
  });

  after(async () => {
    for (const schema of schemas) await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    await rm(base, { recursive: true, force: true });
  });

  function requirePg(): string {
    if (!pgBase) assert.fail(`${PG_UNSET}; CI must provide one`);
    return pgBase;
  }

  async function freshStore(): Promise<string> {
    const schema = `tresor_backup_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    await admin!.query(`CREATE SCHEMA ${schema}`);
    schemas.push(schema);
    const url = new URL(requirePg());
    url.searchParams.set("options", `-c search_path=${schema}`);
    return url.toString();
  }

  it("SQLite → PostgreSQL: a restore is the migration; a node on PostgreSQL decrypts everything", pgCase, async () => {
    requirePg();
    const source = await startServer({ dataDir: join(base, "sqlite-source") });
    let session: Session;
    const file = join(base, "sqlite.gz");
    try {
      session = await runSession(source.url, source);
      await withSqliteStore(source.dataDir, addIdentity);
      await ok(["backup", "create", "--data-dir", source.dataDir, "--out", file]);
    } finally {
      await source.stop();
    }
    const storeUrl = await freshStore();
    const dir = await targetDir(base, "pg-node", join(base, "sqlite-source"));
    await ok(["backup", "restore", file, "--store", storeUrl, "--data-dir", dir]);
    const node = await startServer({ dataDir: dir, serveArgs: ["--store", storeUrl] });
    try {
      await checkSession(node.url, session);
    } finally {
      await node.stop();
    }
    await withPostgresStore(storeUrl, checkIdentity);
    // A second restore into the same, now filled, database is refused.
    const again = await cli(["backup", "restore", file, "--store", storeUrl, "--data-dir", dir]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is not empty/);

    // A backup of an older schema restores into a new database, which is then upgraded.
    if (SCHEMA_1_FROM_CURRENT) {
      const old = join(base, "sqlite-schema-1.gz");
      await makeSchema1Backup(file, old);
      const oldUrl = await freshStore();
      const restored = await cli(["backup", "restore", old, "--store", oldUrl, "--data-dir", dir]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stderr, new RegExp(`upgraded the restored store from schema version 1 to ${MIGRATIONS.length}`));
      const upgraded = await startServer({ dataDir: dir, serveArgs: ["--store", oldUrl] });
      try {
        await checkSession(upgraded.url, session);
      } finally {
        await upgraded.stop();
      }
      // Into a database already at a newer schema: refused.
      const newer = await cli(["backup", "restore", old, "--store", storeUrl, "--data-dir", dir]);
      assert.notEqual(newer.code, 0);
      assert.match(newer.stderr, /already at a newer schema than the backup's/);
    }
  });

  it("PostgreSQL → SQLite and PostgreSQL → PostgreSQL, taken while the cluster serves", pgCase, async () => {
    requirePg();
    const storeUrl = await freshStore();
    const nodeDir = join(base, "pg-source");
    const init = await cli(["init", "--store", storeUrl, "--data-dir", nodeDir, "--json"]);
    assert.equal(init.code, 0, init.stderr);
    const node = await startServer({ dataDir: nodeDir, serveArgs: ["--store", storeUrl] });
    const file = join(base, "pg.gz");
    let session: Session;
    try {
      session = await runSession(node.url, node);
      await withPostgresStore(storeUrl, addIdentity);
      await ok(["backup", "create", "--store", storeUrl, "--data-dir", nodeDir, "--out", file]);
    } finally {
      await node.stop();
    }
    const text = gunzipSync(await readFile(file)).toString("utf8");
    for (const secret of session.secrets) assert.ok(!text.includes(secret.toString("base64")), "no secret in a PostgreSQL backup either");

    const sqliteDir = await targetDir(base, "from-pg-sqlite", nodeDir);
    await ok(["backup", "restore", file, "--data-dir", sqliteDir]);
    const sqliteNode = await startServer({ dataDir: sqliteDir });
    try {
      await checkSession(sqliteNode.url, session);
    } finally {
      await sqliteNode.stop();
    }
    await withSqliteStore(sqliteDir, checkIdentity);

    const otherUrl = await freshStore();
    const pgDir = await targetDir(base, "from-pg-pg", nodeDir);
    await ok(["backup", "restore", file, "--store", otherUrl, "--data-dir", pgDir]);
    const pgNode = await startServer({ dataDir: pgDir, serveArgs: ["--store", otherUrl] });
    try {
      await checkSession(pgNode.url, session);
    } finally {
      await pgNode.stop();
    }
    await withPostgresStore(otherUrl, checkIdentity);
  });
});
