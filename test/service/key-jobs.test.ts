// Every time rule of the key lifecycle, driven by a fake clock through the service and the
// scheduler's jobs: import token expiry, imported material's ValidTo, rotation due, RotateKey's
// rate limit, the end of the deletion window, and catching up after a restart. Each checks the
// key's metadata, what the key can still do, and what happens to ciphertexts made before.

import assert from "node:assert/strict";
import { constants, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { decodeBlob } from "../../src/keys/blob.js";
import type { KeyRecord, KeySpec } from "../../src/keys/key.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { rootCaller } from "../../src/service/access-control.js";
import { DAY_SECONDS, KmsService, type ServiceLogger } from "../../src/service/kms-service.js";
import { Scheduler } from "../../src/service/scheduler.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store, StoreOperations } from "../../src/store/store.js";
import { ManualClock } from "../api/helpers-inprocess.js";
import { kmsError } from "./fixture.js";
import { waitFor } from "../helpers/wait.js";

const caller = rootCaller("100000000001");
const START = Date.UTC(2025, 0, 15, 12, 0, 0);

interface Node {
  service: KmsService;
  store: Store;
  root: FileRootOfTrust;
  warnings: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A service over the data in `dir` (created on first use), with the shared clock. */
async function openNode(dir: string, clock: ManualClock, wrapStore?: (store: Store) => Store, shared?: Store): Promise<Node> {
  const rootPath = path.join(dir, "root.key");
  let root: FileRootOfTrust;
  try {
    root = await FileRootOfTrust.open(rootPath);
  } catch {
    root = await FileRootOfTrust.create(rootPath);
  }
  const store = shared ?? SqliteStore.open(path.join(dir, "tresor.db"));
  const warnings: Record<string, unknown>[] = [];
  const logger: ServiceLogger = {
    warn: (fields, message) => void warnings.push({ ...fields, message }),
    error: (fields, message) => void warnings.push({ ...fields, message, level: "error" }),
  };
  const service = new KmsService({
    store: wrapStore ? wrapStore(store) : store,
    rootOfTrust: root,
    clock,
    region: "local",
    defaultKeySpec: "SM4",
    cmkLimit: 1000,
    logger,
  });
  return {
    service,
    store,
    root,
    warnings,
    async close() {
      service.close();
      if (!shared) await store.close();
      await root.close();
    },
  };
}

let dir: string;
let clock: ManualClock;
let node: Node;
let aliasCounter = 0;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tresor-jobs-"));
  clock = new ManualClock(START);
  node = await openNode(dir, clock);
});

after(async () => {
  await node.close();
  await rm(dir, { recursive: true, force: true });
});

const seconds = () => clock.seconds();
const advance = (s: number) => clock.advance(s * 1000);

async function createKey(options: { external?: boolean; keySpec?: KeySpec; service?: KmsService } = {}): Promise<KeyRecord> {
  const input = { alias: `jobs-${++aliasCounter}`, description: "", keyUsage: "ENCRYPT_DECRYPT" as const, tags: [] };
  return (options.service ?? node.service).createKey(caller, {
    ...input,
    ...(options.keySpec ? { keySpec: options.keySpec } : {}),
    ...(options.external ? { origin: "EXTERNAL" as const } : {}),
  });
}

async function wrapForImport(keyId: string, material: Buffer, service = node.service): Promise<{ importToken: string; encryptedKeyMaterial: Buffer }> {
  const p = await service.getParametersForImport(caller, keyId, "RSA_2048", "RSAES_OAEP_SHA_1");
  const key = createPublicKey({ key: p.publicKey, format: "der", type: "spki" });
  return { importToken: p.importToken, encryptedKeyMaterial: publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, material) };
}

async function importMaterial(keyId: string, material: Buffer, validTo = 0, service = node.service): Promise<void> {
  await service.importKeyMaterial(caller, { keyId, ...(await wrapForImport(keyId, material, service)), validTo });
}

async function key(keyId: string): Promise<KeyRecord> {
  const k = await node.store.getKey(keyId);
  assert.ok(k, `key ${keyId} is gone`);
  return k;
}

/** Runs the due jobs and keeps what they did to `keyId` (other tests' keys may be due too). */
async function jobsOn(keyId: string, service = node.service): Promise<{ rotated: boolean; deleted: boolean; expired: boolean; failed: boolean }> {
  const r = await service.runDueJobs();
  return { rotated: r.rotated.includes(keyId), deleted: r.deleted.includes(keyId), expired: r.expired.includes(keyId), failed: r.failed.includes(keyId) };
}
const NOTHING = { rotated: false, deleted: false, expired: false, failed: false };

const seal = async (keyId: string, text = "secret") => (await node.service.encrypt(caller, keyId, Buffer.from(text), {})).blob;
const open = async (blob: Buffer) => (await node.service.decrypt(caller, blob, {})).plaintext.toString();

describe("import tokens expire after 24 hours and import once", () => {
  it("accepts a token until its 24 hours are over, then refuses it with TokenExpired", async () => {
    const k = await createKey({ external: true });
    const material = randomBytes(16);
    const early = await wrapForImport(k.keyId, material);
    const params = await node.service.getParametersForImport(caller, k.keyId, "RSA_2048", "RSAES_OAEP_SHA_256");
    assert.equal(params.parametersValidTo, seconds() + DAY_SECONDS);
    advance(DAY_SECONDS);
    await assert.rejects(node.service.importKeyMaterial(caller, { keyId: k.keyId, ...early, validTo: 0 }), kmsError("TokenExpired"));
    assert.equal((await key(k.keyId)).state, "PendingImport");
    const fresh = await wrapForImport(k.keyId, material);
    advance(DAY_SECONDS - 1);
    await node.service.importKeyMaterial(caller, { keyId: k.keyId, ...fresh, validTo: 0 });
    assert.equal((await key(k.keyId)).state, "Enabled");
    // A used token does not import again, even the same material.
    await assert.rejects(node.service.importKeyMaterial(caller, { keyId: k.keyId, ...fresh, validTo: 0 }), kmsError("TokenExpired"));
    // Nor is a token good for another key.
    const other = await createKey({ external: true });
    const foreign = await wrapForImport(k.keyId, material);
    await assert.rejects(node.service.importKeyMaterial(caller, { keyId: other.keyId, ...foreign, validTo: 0 }), kmsError("InvalidParameterValue"));
  });

  it("checks the material: unwrappable, wrong length, different from the first import", async () => {
    const k = await createKey({ external: true, keySpec: "AES_256" });
    const p = await wrapForImport(k.keyId, randomBytes(32));
    await assert.rejects(
      node.service.importKeyMaterial(caller, { keyId: k.keyId, importToken: p.importToken, encryptedKeyMaterial: randomBytes(256), validTo: 0 }),
      kmsError("DecryptMaterialError"),
    );
    await assert.rejects(importMaterial(k.keyId, randomBytes(16)), kmsError("InvalidImportKeyMaterial"));
    const material = randomBytes(32);
    await importMaterial(k.keyId, material);
    await assert.rejects(importMaterial(k.keyId, randomBytes(32)), kmsError("MaterialNotMatch"));
    // Re-importing the same material into an Enabled key is allowed and changes nothing but ValidTo.
    await importMaterial(k.keyId, material, seconds() + 3600);
    const after = await key(k.keyId);
    assert.equal(after.state, "Enabled");
    assert.equal(after.validTo, seconds() + 3600);
    assert.equal(after.currentVersion, 1);
    assert.equal((await node.store.listKeyVersions(k.keyId)).length, 1);
    // Generated keys take no material.
    const generated = await createKey();
    await assert.rejects(node.service.getParametersForImport(caller, generated.keyId, "RSA_2048", "RSAES_OAEP_SHA_1"), kmsError("NotExternalCmk"));
  });
});

describe("imported material's ValidTo", () => {
  it("deletes the material when ValidTo passes; the same material brings the key and its ciphertexts back", async () => {
    const k = await createKey({ external: true });
    const material = randomBytes(16);
    const validTo = seconds() + 3 * DAY_SECONDS;
    await importMaterial(k.keyId, material, validTo);
    const blob = await seal(k.keyId, "before expiry");
    advance(3 * DAY_SECONDS - 1);
    assert.equal((await jobsOn(k.keyId)).expired, false);
    assert.equal(await open(blob), "before expiry");

    advance(1);
    assert.deepEqual(await jobsOn(k.keyId), { ...NOTHING, expired: true });
    const expired = await key(k.keyId);
    assert.equal(expired.state, "PendingImport");
    assert.equal(expired.validTo, 0);
    assert.deepEqual(await node.store.listKeyVersions(k.keyId), [], "the wrapped material is gone from the store");
    await assert.rejects(node.service.encrypt(caller, k.keyId, Buffer.from("x"), {}), kmsError("CmkStateNotSupport"));
    await assert.rejects(node.service.decrypt(caller, blob, {}), kmsError("CmkStateNotSupport"));
    assert.deepEqual(await jobsOn(k.keyId), NOTHING, "a second run does nothing");

    await assert.rejects(importMaterial(k.keyId, randomBytes(16)), kmsError("MaterialNotMatch"));
    await importMaterial(k.keyId, material);
    assert.equal((await key(k.keyId)).state, "Enabled");
    assert.equal(await open(blob), "before expiry");
  });

  it("refuses a ValidTo in the past", async () => {
    const k = await createKey({ external: true });
    await assert.rejects(importMaterial(k.keyId, randomBytes(16), seconds()), kmsError("InvalidParameterValue"));
  });

  it("drops this node's cached material at once when material is deleted", async () => {
    const k = await createKey({ external: true });
    await importMaterial(k.keyId, randomBytes(16));
    const blob = await seal(k.keyId, "cached");
    assert.equal(await open(blob), "cached"); // the prepared key is now cached
    await node.service.deleteImportedKeyMaterial(caller, k.keyId);
    assert.equal((await key(k.keyId)).state, "PendingImport");
    // Even if the key were Enabled again without material (say another node's stale view),
    // nothing of the old material is left to use.
    await node.store.updateKey({ ...(await key(k.keyId)), state: "Enabled" });
    await assert.rejects(node.service.decrypt(caller, blob, {}), kmsError("InvalidCiphertext"));
  });
});

describe("automatic rotation", () => {
  it("rotates when NextRotateTime comes: new version for encryption, old ciphertexts still decrypt, ReEncrypt moves them", async () => {
    const k = await createKey();
    const v1Blob = await seal(k.keyId, "version one");
    await node.service.enableKeyRotation(caller, k.keyId, 7);
    const enabled = await key(k.keyId);
    assert.equal(enabled.rotationEnabled, true);
    assert.equal(enabled.rotateDays, 7);
    assert.equal(enabled.nextRotateTime, seconds() + 7 * DAY_SECONDS);

    advance(7 * DAY_SECONDS - 1);
    assert.equal((await jobsOn(k.keyId)).rotated, false);
    advance(1);
    assert.equal((await jobsOn(k.keyId)).rotated, true);
    const rotated = await key(k.keyId);
    assert.equal(rotated.currentVersion, 2);
    assert.equal(rotated.lastRotateTime, seconds());
    assert.equal(rotated.nextRotateTime, seconds() + 7 * DAY_SECONDS);
    assert.deepEqual((await node.service.listKeyVersions(caller, k.keyId)).versions.map((v) => v.version), [1, 2]);

    const v2Blob = await seal(k.keyId, "version two");
    assert.equal(decodeBlob(v2Blob).keyVersion, 2);
    assert.equal(await open(v1Blob), "version one");
    assert.equal(await open(v2Blob), "version two");
    const moved = await node.service.reEncrypt(caller, { blob: v1Blob, sourceContext: {}, destinationContext: {} });
    assert.equal(moved.reEncrypted, true);
    assert.equal(decodeBlob(moved.blob).keyVersion, 2);
    assert.equal(await open(moved.blob), "version one");
    const same = await node.service.reEncrypt(caller, { blob: v2Blob, sourceContext: {}, destinationContext: {} });
    assert.equal(same.reEncrypted, false);

    // The next period.
    advance(7 * DAY_SECONDS);
    assert.equal((await jobsOn(k.keyId)).rotated, true);
    assert.equal((await key(k.keyId)).currentVersion, 3);
    assert.equal(await open(v1Blob), "version one");
  });

  it("waits while the key is disabled and rotates once it is enabled; stops when rotation is disabled", async () => {
    const k = await createKey();
    await node.service.enableKeyRotation(caller, k.keyId, 7);
    await node.service.disableKey(caller, k.keyId);
    advance(30 * DAY_SECONDS);
    assert.equal((await jobsOn(k.keyId)).rotated, false);
    await node.service.enableKey(caller, k.keyId);
    assert.equal((await jobsOn(k.keyId)).rotated, true);
    assert.equal((await key(k.keyId)).currentVersion, 2, "one rotation however many periods were missed");
    await node.service.disableKeyRotation(caller, k.keyId);
    const off = await key(k.keyId);
    assert.equal(off.rotationEnabled, false);
    assert.equal(off.nextRotateTime, 0);
    advance(30 * DAY_SECONDS);
    assert.equal((await jobsOn(k.keyId)).rotated, false);
  });

  it("refuses EXTERNAL and asymmetric keys and periods outside 7 to 365 days", async () => {
    const ext = await createKey({ external: true });
    await importMaterial(ext.keyId, randomBytes(16));
    await assert.rejects(node.service.enableKeyRotation(caller, ext.keyId, 30), kmsError("ExternalCmkCanNotRotate"));
    await assert.rejects(node.service.rotateKey(caller, ext.keyId), kmsError("ExternalCmkCanNotRotate"));
    const pair = await node.service.createKey(caller, { alias: `jobs-${++aliasCounter}`, description: "", keyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC", tags: [] });
    await assert.rejects(node.service.enableKeyRotation(caller, pair.keyId, 30), kmsError("RotateNotSupported"));
    const k = await createKey();
    await assert.rejects(node.service.enableKeyRotation(caller, k.keyId, 6), kmsError("InvalidParameterValue"));
    await assert.rejects(node.service.enableKeyRotation(caller, k.keyId, 366), kmsError("InvalidParameterValue"));
  });
});

describe("RotateKey", () => {
  it("rotates on demand at most once per 24 hours, without moving the schedule", async () => {
    const k = await createKey();
    await assert.rejects(node.service.rotateKey(caller, k.keyId), kmsError("RotateNotSupported"), "rotation must be enabled first (Tencent)");
    await node.service.enableKeyRotation(caller, k.keyId, 365);
    const next = (await key(k.keyId)).nextRotateTime;
    const old = await seal(k.keyId, "old");
    const { taskId } = await node.service.rotateKey(caller, k.keyId);
    assert.match(taskId, /^[0-9a-f-]{36}$/);
    const after = await key(k.keyId);
    assert.equal(after.currentVersion, 2);
    assert.equal(after.lastRotateTime, seconds());
    assert.equal(after.nextRotateTime, next);
    assert.equal(decodeBlob(await seal(k.keyId)).keyVersion, 2);
    assert.equal(await open(old), "old");

    advance(DAY_SECONDS - 1);
    await assert.rejects(node.service.rotateKey(caller, k.keyId), kmsError("RotateRateLimited"));
    assert.equal((await key(k.keyId)).currentVersion, 2);
    advance(1);
    await node.service.rotateKey(caller, k.keyId);
    assert.equal((await key(k.keyId)).currentVersion, 3);
    await node.service.disableKey(caller, k.keyId);
    advance(DAY_SECONDS);
    await assert.rejects(node.service.rotateKey(caller, k.keyId), kmsError("CmkDisabled"));
  });
});

describe("scheduled deletion", () => {
  it("destroys the key when the window ends: CmkNotFound, material gone, ciphertexts dead", async () => {
    const k = await createKey();
    await node.service.enableKeyRotation(caller, k.keyId, 7);
    await node.service.rotateKey(caller, k.keyId);
    const blob = await seal(k.keyId, "doomed");
    await assert.rejects(node.service.scheduleKeyDeletion(caller, k.keyId, 7), kmsError("CmkShouldBeDisabled"));
    await node.service.disableKey(caller, k.keyId);
    await assert.rejects(node.service.scheduleKeyDeletion(caller, k.keyId, 6), kmsError("InvalidPendingWindowInDays"));
    await assert.rejects(node.service.scheduleKeyDeletion(caller, k.keyId, 31), kmsError("InvalidPendingWindowInDays"));
    const { deletionDate } = await node.service.scheduleKeyDeletion(caller, k.keyId, 7);
    assert.equal(deletionDate, seconds() + 7 * DAY_SECONDS);
    const pending = await key(k.keyId);
    assert.equal(pending.state, "PendingDelete");
    assert.equal(pending.deletionDate, deletionDate);

    // Every use is refused, and logged as a warning without parameters.
    node.warnings.length = 0;
    await assert.rejects(node.service.decrypt(caller, blob, {}), kmsError("CmkStateNotSupport"));
    await assert.rejects(node.service.encrypt(caller, k.keyId, Buffer.from("x"), {}), kmsError("CmkStateNotSupport"));
    assert.deepEqual(
      node.warnings.map((w) => [w["keyId"], w["action"], w["message"]]),
      [
        [k.keyId, "Decrypt", "refused a use of a key pending deletion"],
        [k.keyId, "Encrypt", "refused a use of a key pending deletion"],
      ],
    );
    assert.ok(!JSON.stringify(node.warnings).includes(blob.toString("base64")));

    advance(7 * DAY_SECONDS - 1);
    assert.equal((await jobsOn(k.keyId)).deleted, false);
    advance(1);
    assert.equal((await jobsOn(k.keyId)).deleted, true);
    assert.equal(await node.store.getKey(k.keyId), undefined);
    assert.deepEqual(await node.store.listKeyVersions(k.keyId), [], "every version's wrapped material is removed");
    await assert.rejects(node.service.describeKey(caller, k.keyId), kmsError("CmkNotFound"));
    await assert.rejects(node.service.decrypt(caller, blob, {}), kmsError("InvalidCiphertext"));
    assert.equal((await jobsOn(k.keyId)).deleted, false);
  });

  it("CancelKeyDeletion returns the key to Disabled with its ciphertexts intact; an EXTERNAL key without material to PendingImport", async () => {
    const k = await createKey();
    const blob = await seal(k.keyId, "saved");
    await node.service.disableKey(caller, k.keyId);
    await node.service.scheduleKeyDeletion(caller, k.keyId, 30);
    advance(29 * DAY_SECONDS);
    await node.service.cancelKeyDeletion(caller, k.keyId);
    const back = await key(k.keyId);
    assert.equal(back.state, "Disabled");
    assert.equal(back.deletionDate, 0);
    await assert.rejects(node.service.cancelKeyDeletion(caller, k.keyId), kmsError("CmkNotPendingDelete"));
    advance(2 * DAY_SECONDS);
    assert.equal((await jobsOn(k.keyId)).deleted, false);
    await node.service.enableKey(caller, k.keyId);
    assert.equal(await open(blob), "saved");

    const ext = await createKey({ external: true });
    await importMaterial(ext.keyId, randomBytes(16), seconds() + DAY_SECONDS);
    await node.service.disableKey(caller, ext.keyId);
    await node.service.scheduleKeyDeletion(caller, ext.keyId, 7);
    advance(DAY_SECONDS);
    assert.equal((await jobsOn(ext.keyId)).expired, true);
    assert.equal((await key(ext.keyId)).state, "PendingDelete", "expiry leaves a PendingDelete key PendingDelete");
    await node.service.cancelKeyDeletion(caller, ext.keyId);
    assert.equal((await key(ext.keyId)).state, "PendingImport");
  });
});

describe("archiving", () => {
  it("an archived key decrypts but never encrypts", async () => {
    const k = await createKey();
    const blob = await seal(k.keyId, "archived data");
    await node.service.archiveKey(caller, k.keyId);
    assert.equal((await key(k.keyId)).state, "Archived");
    assert.equal(await open(blob), "archived data");
    await assert.rejects(node.service.encrypt(caller, k.keyId, Buffer.from("x"), {}), kmsError("CmkArchived"));
    await assert.rejects(node.service.generateDataKey(caller, k.keyId, 32, {}), kmsError("CmkArchived"));
    await node.service.cancelKeyArchive(caller, k.keyId);
    assert.equal((await key(k.keyId)).state, "Enabled");
    await seal(k.keyId);
  });
});

describe("the scheduler after downtime, across nodes and through failures", () => {
  it("catches up on every job missed while no server ran, once", async () => {
    const d = await mkdtemp(path.join(tmpdir(), "tresor-jobs-restart-"));
    const c = new ManualClock(START);
    try {
      let a = await openNode(d, c);
      const rotating = await createKey({ service: a.service });
      await a.service.enableKeyRotation(caller, rotating.keyId, 30);
      const doomed = await createKey({ service: a.service });
      await a.service.disableKey(caller, doomed.keyId);
      await a.service.scheduleKeyDeletion(caller, doomed.keyId, 7);
      const ext = await createKey({ service: a.service, external: true });
      await importMaterial(ext.keyId, randomBytes(16), c.seconds() + 10 * DAY_SECONDS, a.service);
      const oldBlob = (await a.service.encrypt(caller, rotating.keyId, Buffer.from("from before"), {})).blob;
      await a.close();

      c.advance(400 * DAY_SECONDS * 1000); // the server was down for 400 days
      a = await openNode(d, c);
      const scheduler = new Scheduler(a.service, { intervalMs: 60_000 });
      const report = await scheduler.runOnce();
      assert.deepEqual(report, { rotated: [rotating.keyId], deleted: [doomed.keyId], expired: [ext.keyId], failed: [] });
      assert.equal((await a.store.getKey(rotating.keyId))?.currentVersion, 2, "one rotation, not one per missed period");
      assert.equal((await a.store.getKey(rotating.keyId))?.nextRotateTime, c.seconds() + 30 * DAY_SECONDS);
      assert.equal(await a.store.getKey(doomed.keyId), undefined);
      assert.equal((await a.store.getKey(ext.keyId))?.state, "PendingImport");
      assert.equal((await a.service.decrypt(caller, oldBlob, {})).plaintext.toString(), "from before");
      assert.deepEqual(await scheduler.runOnce(), { rotated: [], deleted: [], expired: [], failed: [] }, "idempotent");
      await scheduler.stop();
      await a.close();
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  /** Two servers (each its own service and caches) on one store run their jobs at the same time. */
  async function twoServers(openStore: () => Promise<{ store: Store; close(): Promise<void> }>): Promise<void> {
    const d = await mkdtemp(path.join(tmpdir(), "tresor-jobs-two-"));
    const c = new ManualClock(START);
    const [sa, sb] = [await openStore(), await openStore()];
    try {
      const a = await openNode(d, c, undefined, sa.store);
      const b = await openNode(d, c, undefined, sb.store);
      const keys: KeyRecord[] = [];
      for (let i = 0; i < 10; i++) {
        const k = await createKey({ service: a.service });
        await a.service.enableKeyRotation(caller, k.keyId, 7);
        keys.push(k);
      }
      const doomed = await createKey({ service: b.service });
      await b.service.disableKey(caller, doomed.keyId);
      await b.service.scheduleKeyDeletion(caller, doomed.keyId, 7);
      c.advance(8 * DAY_SECONDS * 1000);
      const [ra, rb] = await Promise.all([a.service.runDueJobs(), b.service.runDueJobs()]);
      assert.deepEqual([...ra.rotated, ...rb.rotated].sort(), keys.map((k) => k.keyId).sort(), "each key rotated by exactly one server");
      assert.deepEqual([...ra.deleted, ...rb.deleted], [doomed.keyId]);
      assert.deepEqual([...ra.failed, ...rb.failed], []);
      for (const k of keys) assert.deepEqual((await sa.store.listKeyVersions(k.keyId)).map((v) => v.version), [1, 2]);
      await a.close();
      await b.close();
    } finally {
      await sa.close();
      await sb.close();
      await rm(d, { recursive: true, force: true });
    }
  }

  it("runs each job once when two servers share one SQLite store", async () => {
    const dbDir = await mkdtemp(path.join(tmpdir(), "tresor-jobs-db-"));
    const store = SqliteStore.open(path.join(dbDir, "tresor.db"));
    let closed = 0;
    const handle = { store, close: async () => void (++closed === 2 && (await store.close(), await rm(dbDir, { recursive: true, force: true }))) };
    await twoServers(async () => handle);
  });

  const pgUrl = process.env["TRESOR_TEST_PG_URL"];
  it(
    "runs each job once when two servers share one PostgreSQL store (serializable transactions)",
    { skip: pgUrl ? false : "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh)" },
    async () => {
      assert.ok(pgUrl);
      const admin = new pg.Client({ connectionString: pgUrl });
      await admin.connect();
      const schema = `tresor_jobs_${randomBytes(8).toString("hex")}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(pgUrl);
      url.searchParams.set("options", `-c search_path=${schema}`);
      try {
        await twoServers(async () => {
          const store = await PostgresStore.open(url.toString());
          return { store, close: () => store.close() };
        });
      } finally {
        await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        await admin.end();
      }
    },
  );

  it("leaves no half-done job when one fails in the middle, and finishes it on the next run", async () => {
    const d = await mkdtemp(path.join(tmpdir(), "tresor-jobs-crash-"));
    const c = new ManualClock(START);
    let failNextUpdate = false;
    /** A store whose transactions fail at updateKey when told: the crash between a job's writes. */
    const failing = (store: Store): Store =>
      new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === "transaction") {
            return <T>(fn: (tx: StoreOperations) => Promise<T>) =>
              target.transaction((tx) =>
                fn(
                  new Proxy(tx, {
                    get(t, p, r) {
                      if (p === "updateKey" && failNextUpdate) {
                        return async () => {
                          failNextUpdate = false;
                          throw new Error("simulated crash inside the job");
                        };
                      }
                      const v: unknown = Reflect.get(t, p, r);
                      return typeof v === "function" ? v.bind(t) : v;
                    },
                  }),
                ),
              );
          }
          const v: unknown = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    try {
      const a = await openNode(d, c, failing);
      const rotating = await createKey({ service: a.service });
      await a.service.enableKeyRotation(caller, rotating.keyId, 7);
      const doomed = await createKey({ service: a.service, external: true });
      await importMaterial(doomed.keyId, randomBytes(16), c.seconds() + DAY_SECONDS, a.service);
      c.advance(8 * DAY_SECONDS * 1000);

      failNextUpdate = true;
      const first = await a.service.runDueJobs();
      assert.equal(first.failed.length, 1);
      const failedId = first.failed[0]!;
      const failedKey = await a.store.getKey(failedId);
      assert.ok(failedKey);
      if (failedId === rotating.keyId) {
        assert.equal(failedKey.currentVersion, 1);
        assert.deepEqual((await a.store.listKeyVersions(failedId)).map((v) => v.version), [1], "no orphan version 2");
      } else {
        assert.equal(failedKey.state, "Enabled");
        assert.equal((await a.store.listKeyVersions(failedId)).length, 1, "the material was not deleted without the state change");
      }
      assert.ok(a.warnings.some((w) => w["level"] === "error" && w["keyId"] === failedId));
      const second = await a.service.runDueJobs();
      assert.deepEqual([...second.rotated, ...second.expired], [failedId]);
      assert.equal((await a.store.getKey(rotating.keyId))?.currentVersion, 2);
      assert.equal((await a.store.getKey(doomed.keyId))?.state, "PendingImport");
      await a.close();
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it("Scheduler runs at start and on its interval until stopped", async () => {
    const d = await mkdtemp(path.join(tmpdir(), "tresor-jobs-timer-"));
    const c = new ManualClock(START);
    try {
      const a = await openNode(d, c);
      const k = await createKey({ service: a.service });
      await a.service.enableKeyRotation(caller, k.keyId, 7);
      c.advance(7 * DAY_SECONDS * 1000);
      const scheduler = new Scheduler(a.service, { intervalMs: 20 });
      scheduler.start();
      await waitFor("the scheduler to rotate the key to version 2", async () => (await a.store.getKey(k.keyId))?.currentVersion === 2, { timeoutMs: 10_000, intervalMs: 10 }).catch(() => undefined);
      assert.equal((await a.store.getKey(k.keyId))?.currentVersion, 2, "the run at start");
      c.advance(7 * DAY_SECONDS * 1000);
      await waitFor("the scheduler to rotate the key to version 3", async () => (await a.store.getKey(k.keyId))?.currentVersion === 3, { timeoutMs: 10_000, intervalMs: 10 }).catch(() => undefined);
      assert.equal((await a.store.getKey(k.keyId))?.currentVersion, 3, "a run on the interval");
      await scheduler.stop();
      c.advance(7 * DAY_SECONDS * 1000);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await a.store.getKey(k.keyId))?.currentVersion, 3, "no run after stop");
      await a.close();
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
