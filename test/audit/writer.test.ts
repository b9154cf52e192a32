// AuditWriter over each store (SQLite in memory and in a file, PostgreSQL when TRESOR_TEST_PG_URL
// is set): group commit keeps one linear chain in few transactions, a failed flush rejects every
// waiting record and writes nothing, records inside a caller's transaction commit or roll back
// with it, checkpoints and pruning keep the log verifiable, and two writers ("nodes") on one
// store interleave into one chain.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import pg from "pg";
import { AUDIT_HMAC_KEY_SECRET, AUDIT_PUBLIC_KEY_META, AUDIT_SECRET_NAMES, AUDIT_SIGNING_KEY_SECRET, loadAuditKeys } from "../../src/audit/keys.js";
import { GENESIS_HASH, paramsDigest, type AuditRecord } from "../../src/audit/record.js";
import { verifyAudit, type VerifyReport } from "../../src/audit/verify.js";
import { AuditWriter, openAuditWriter, type AuditEvent, type AuditWriterOptions } from "../../src/audit/writer.js";
import { serviceSecretAad } from "../../src/rootkey/root-of-trust.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { SERVICE_SECRET_NAMES } from "../../src/service/kms-service.js";
import { exportAudit, verifyAuditExport } from "../../src/audit/export.js";
import { createBackup, restoreBackup } from "../../src/store/backup-file.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store, StoreOperations } from "../../src/store/store.js";
import { testSigner, allAuditRecords } from "../helpers/audit-fixtures.js";
import { makeKey, versionOf } from "../store/store-contract.js";

interface Opened {
  store: Store;
  /** Another connection (another "node") to the same data, when the backend has one. */
  another?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

const backends: { name: string; open: () => Promise<Opened> }[] = [
  {
    name: "SQLite (:memory:)",
    open: async () => {
      const store = SqliteStore.open(":memory:");
      return { store, cleanup: () => store.close() };
    },
  },
  {
    name: "SQLite (file)",
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), "tresor-audit-"));
      const path = join(dir, "store.db");
      const store = SqliteStore.open(path);
      const others: Store[] = [];
      return {
        store,
        another: async () => {
          const s = SqliteStore.open(path);
          others.push(s);
          return s;
        },
        cleanup: async () => {
          for (const s of others) await s.close();
          await store.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

const pgUrl = process.env.TRESOR_TEST_PG_URL;
if (pgUrl !== undefined && pgUrl !== "") {
  const admin = new pg.Pool({ connectionString: pgUrl, max: 2 });
  admin.on("error", () => undefined);
  after(() => admin.end());
  backends.push({
    name: "PostgreSQL",
    open: async () => {
      const schema = `tresor_audit_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(pgUrl);
      url.searchParams.set("options", `-c search_path=${schema}`);
      const store = await PostgresStore.open(url.toString(), { poolSize: 4 });
      const others: Store[] = [];
      return {
        store,
        another: async () => {
          const s = await PostgresStore.open(url.toString(), { poolSize: 4 });
          others.push(s);
          return s;
        },
        cleanup: async () => {
          for (const s of others) await s.close();
          await store.close();
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        },
      };
    },
  });
} else if (process.env.CI) {
  it("AuditWriter on PostgreSQL needs TRESOR_TEST_PG_URL", () => assert.fail("TRESOR_TEST_PG_URL is not set; CI must provide one"));
}

const signer = testSigner();
const hmacKey = Buffer.alloc(32, 7);

function writerOn(store: Store, options: Partial<AuditWriterOptions<StoreOperations>> = {}): AuditWriter<StoreOperations> {
  return new AuditWriter({ store, signer, hmacKey, nodeId: "node-1", checkpointIntervalMs: 0, ...options });
}

function event(n: number, extra: Partial<AuditEvent> = {}): AuditEvent {
  return { action: "Encrypt", result: "Success", requestId: `req-${n}`, resourceName: "key-1", params: { KeyId: "key-1", n }, ...extra };
}

/** Counts the store's transactions. */
function counting(store: Store): { store: Store; count: () => number } {
  let n = 0;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "transaction") {
        return <T>(fn: (tx: StoreOperations) => Promise<T>) => {
          n++;
          return target.transaction(fn);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: proxy, count: () => n };
}

async function verifyStore(store: Store): Promise<VerifyReport> {
  return verifyAudit(await allAuditRecords(store), await store.listAuditCheckpoints({ order: "asc" }), signer.publicKey);
}

function assertLinear(records: readonly AuditRecord[], firstSeq = 1): void {
  records.forEach((r, i) => {
    assert.equal(r.seq, firstSeq + i);
    if (i > 0) assert.equal(r.prevHash, records[i - 1]!.hash, `seq ${r.seq} links to ${r.seq - 1}`);
  });
}

describe("AuditWriter and the store's WAL sync", () => {
  it("waits while a sync runs before a batch, so the records that arrive meanwhile share one transaction", async () => {
    const store = SqliteStore.open(":memory:");
    const counted = counting(store);
    let release!: () => void;
    let idle = new Promise<void>((resolve) => {
      release = resolve;
    });
    const syncing = new Proxy(counted.store, { get: (target, prop, receiver) => (prop === "syncIdle" ? () => idle : Reflect.get(target, prop, receiver)) });
    const writer = writerOn(syncing);
    try {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 10; i++) {
        pending.push(writer.record(event(i)));
        await nextTurn();
      }
      assert.equal(counted.count(), 0, "no transaction while the sync runs");
      release();
      await Promise.all(pending);
      assert.equal(counted.count(), 1, "the ten records, from ten turns, in one transaction");
      idle = Promise.resolve();
      for (let i = 10; i < 13; i++) {
        await writer.record(event(i));
      }
      assert.equal(counted.count(), 4, "with no sync running, each turn's records are flushed at once");
      const records = await allAuditRecords(store);
      assert.equal(records.length, 13);
      assertLinear(records);
    } finally {
      await writer.close();
      await store.close();
    }
  });
});

describe("AuditWriter and a store whose syncIdle fails", () => {
  it("commits at once instead of leaving the records unsettled", { timeout: 10_000 }, async () => {
    const store = SqliteStore.open(":memory:");
    const failing = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "syncIdle") return () => Promise.reject(new Error("cannot tell"));
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const writer = writerOn(failing);
    try {
      await Promise.all([writer.record(event(1)), writer.record(event(2))]);
      assert.equal((await allAuditRecords(store)).length, 2);
    } finally {
      await writer.close();
      await store.close();
    }
  });
});

describe("AuditWriter's checkpoint lookups", () => {
  it("looks for the newest checkpoint only when one can be due, not in every flush", async () => {
    const store = SqliteStore.open(":memory:");
    let lookups = 0;
    const counted = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop !== "transaction") {
          const value = Reflect.get(target, prop, receiver) as unknown;
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
        return <T>(fn: (tx: StoreOperations) => Promise<T>) =>
          target.transaction((tx) =>
            fn(
              new Proxy(tx, {
                get(t, p, r) {
                  if (p === "listAuditCheckpoints") lookups++;
                  const value = Reflect.get(t, p, r) as unknown;
                  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(t) : value;
                },
              }),
            ),
          );
      },
    });
    const writer = writerOn(counted, { checkpointEvery: 10 });
    try {
      for (let i = 0; i < 25; i++) await writer.record(event(i));
      // At 10 and 20 (due: a checkpoint is written), at 11 and 21 (due as far as known: then seen).
      assert.equal(lookups, 4, `${lookups} lookups for 25 flushes`);
      assert.deepEqual((await store.listAuditCheckpoints({ order: "asc" })).map((c) => c.seq), [10, 20]);
    } finally {
      await writer.close();
      await store.close();
    }
  });
});

for (const backend of backends) {
  describe(`AuditWriter on ${backend.name}`, () => {
    async function withStore(fn: (o: Opened) => Promise<void>): Promise<void> {
      const opened = await backend.open();
      try {
        await fn(opened);
      } finally {
        await opened.cleanup();
      }
    }

    it("group-commits 500 concurrent records into one linear chain in far fewer transactions", () =>
      withStore(async ({ store }) => {
        const counted = counting(store);
        const writer = writerOn(counted.store);
        const pending: Promise<void>[] = [];
        // Ten waves of 50, each in its own turn of the event loop, as requests arrive.
        for (let wave = 0; wave < 10; wave++) {
          for (let i = 0; i < 50; i++) pending.push(writer.record(event(wave * 50 + i)));
          await nextTurn();
        }
        await Promise.all(pending);
        const records = await allAuditRecords(store);
        assert.equal(records.length, 500);
        assertLinear(records);
        assert.deepEqual(new Set(records.map((r) => r.requestId)).size, 500);
        console.log(`${backend.name}: 500 records in ${writer.stats.transactions} transactions`);
        assert.equal(counted.count(), writer.stats.transactions);
        assert.ok(writer.stats.transactions <= 25, `${writer.stats.transactions} transactions for 500 records`);
        assert.equal((await verifyStore(store)).ok, true);
        await writer.close();
      }));

    it("rejects every waiting record when the flush fails, and appends none of them", () =>
      withStore(async ({ store }) => {
        let failing = true;
        const broken = new Proxy(store, {
          get(target, prop, receiver) {
            if (prop === "transaction") {
              return <T>(fn: (tx: StoreOperations) => Promise<T>) =>
                target.transaction((tx) =>
                  fn(
                    new Proxy(tx, {
                      get(t, p, r) {
                        if (p === "appendAuditRecords" && failing) return async () => Promise.reject(new Error("disk full"));
                        const v = Reflect.get(t, p, r) as unknown;
                        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
                      },
                    }),
                  ),
                );
            }
            const value = Reflect.get(target, prop, receiver) as unknown;
            return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        const writer = writerOn(broken);
        const results = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => writer.record(event(i))));
        assert.equal(results.filter((r) => r.status === "rejected").length, 500, "every caller learns its record was not written");
        assert.ok(results.every((r) => r.status === "rejected" && /disk full/.test(String(r.reason))));
        assert.equal(await store.auditHead(), undefined);
        assert.deepEqual(await store.listAuditRecords({ order: "asc", limit: 10 }), []);
        assert.ok(writer.stats.failedFlushes >= 1);
        failing = false;
        await writer.record(event(501));
        assert.deepEqual((await allAuditRecords(store)).map((r) => r.seq), [1], "the chain goes on from where it was");
        await writer.close();
      }));

    it("commits a record with the state change in one transaction, or neither", () =>
      withStore(async ({ store }) => {
        const dir = await mkdtemp(join(tmpdir(), "tresor-audit-sink-"));
        const sinkPath = join(dir, "audit.jsonl");
        const writer = writerOn(store, { sinkPath });
        try {
          await writer.record(event(1));
          const key = makeKey();
          await writer.transaction(async (tx, audit) => {
            await tx.insertKey(key, versionOf(key));
            await audit({ action: "CreateKey", result: "Success", resourceName: key.keyId, readOnly: false });
          });
          const lost = makeKey();
          await assert.rejects(
            writer.transaction(async (tx, audit) => {
              await tx.insertKey(lost, versionOf(lost));
              await audit({ action: "CreateKey", result: "Success", resourceName: lost.keyId });
              throw new Error("the action failed after the record");
            }),
            /failed after the record/,
          );
          assert.equal(await store.getKey(lost.keyId), undefined);
          await writer.record(event(3, { result: "InvalidParameterValue" }));
          const records = await allAuditRecords(store);
          assert.deepEqual(records.map((r) => [r.seq, r.action, r.result]), [
            [1, "Encrypt", "Success"],
            [2, "CreateKey", "Success"],
            [3, "Encrypt", "InvalidParameterValue"],
          ]);
          assert.equal(records[1]!.resourceName, key.keyId);
          assertLinear(records);
          await writer.close();
          // The file sink holds the committed records, in commit order, and nothing else.
          const lines = (await readFile(sinkPath, "utf8")).trimEnd().split("\n");
          assert.deepEqual(lines.map((l) => JSON.parse(l) as AuditRecord), records);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    it("writes a checkpoint every N records and at close; the log verifies, and a cut tail is caught", () =>
      withStore(async ({ store }) => {
        const writer = writerOn(store, { checkpointEvery: 100, maxBatch: 64 });
        for (let wave = 0; wave < 21; wave++) await Promise.all(Array.from({ length: 50 }, (_, i) => writer.record(event(wave * 50 + i))));
        await writer.close();
        const checkpoints = await store.listAuditCheckpoints({ order: "asc" });
        assert.ok(checkpoints.length >= 10, `${checkpoints.length} checkpoints`);
        checkpoints.slice(1).forEach((cp, i) => assert.ok(cp.seq - checkpoints[i]!.seq >= 100 || cp === checkpoints.at(-1)));
        assert.equal(checkpoints.at(-1)!.seq, 1050, "close() signs the final head");
        const records = await allAuditRecords(store);
        assert.deepEqual(await verifyAudit(records, checkpoints, signer.publicKey), { ok: true, records: 1050, checkpoints: checkpoints.length, firstSeq: 1, lastSeq: 1050 });
        const cut = await verifyAudit(records.slice(0, 1000), checkpoints, signer.publicKey);
        assert.deepEqual([cut.firstBad?.seq, cut.firstBad?.reason], [1001, "truncated"]);
        await assert.rejects(writer.record(event(0)), /closed/);
      }));

    it("prunes records past the retention period and leaves a log that still verifies", () =>
      withStore(async ({ store }) => {
        const day = 86_400_000;
        let now = 1_700_000_000_000;
        const writer = writerOn(store, { now: () => now, retentionDays: 90, pruneBatch: 64, checkpointEvery: 50 });
        for (let i = 0; i < 300; i++) await writer.record(event(i));
        now += 50 * day;
        await Promise.all(Array.from({ length: 200 }, (_, i) => writer.record(event(300 + i))));
        now += 50 * day; // the first 300 are now 100 days old, the rest 50
        const { pruned, checkpoint } = await writer.prune();
        assert.equal(pruned, 300);
        assert.ok(checkpoint !== undefined);
        assert.equal(checkpoint.prunedThrough, 300);
        const records = await allAuditRecords(store);
        assert.equal(records[0]!.seq, 301);
        assert.equal(records[0]!.prevHash, checkpoint.prunedHeadHash);
        assertLinear(records, 301);
        assert.deepEqual(await verifyStore(store), { ok: true, records: 200, checkpoints: (await store.listAuditCheckpoints({ order: "asc" })).length, firstSeq: 301, lastSeq: 500 });
        assert.deepEqual(await writer.prune(), { pruned: 0 }, "nothing more is old enough");
        // Records go on after the pruned prefix, and the log still verifies.
        await writer.record(event(501));
        await writer.close();
        assert.equal((await verifyStore(store)).ok, true);
        // Dropping the first remaining record is caught against the signed pruned prefix.
        const bad = await verifyAudit((await allAuditRecords(store)).slice(1), await store.listAuditCheckpoints({ order: "asc" }), signer.publicKey);
        assert.deepEqual([bad.firstBad?.seq, bad.firstBad?.reason], [301, "deleted"]);
      }));

    it("keeps only codes, names and a digest: caller strings are cut, NUL and lone surrogates replaced", () =>
      withStore(async ({ store }) => {
        const writer = writerOn(store, { now: () => 1_700_000_000_123 });
        await writer.record({
          action: "Decrypt",
          result: "ResourceUnavailable.CmkDisabled",
          userAgent: `agent\u0000with nul ${"x".repeat(600)}`,
          principalName: "bad\uD800name",
          latencyMs: 2.6,
          params: { CiphertextBlob: "c2VjcmV0", EncryptionContext: '{"a":"b"}' },
          flags: ["policy-denied"],
        });
        const [r] = await allAuditRecords(store);
        assert.ok(r !== undefined);
        assert.equal(r.time, 1_700_000_000_123);
        assert.equal(r.service, "kms");
        assert.equal(r.nodeId, "node-1");
        assert.equal(r.userAgent.length, 512);
        assert.ok(r.userAgent.startsWith("agent\uFFFDwith nul"));
        assert.equal(r.principalName, "bad\uFFFDname");
        assert.equal(r.latencyMs, 3);
        assert.equal(r.paramsDigest, paramsDigest(hmacKey, { EncryptionContext: '{"a":"b"}', CiphertextBlob: "c2VjcmV0" }));
        assert.ok(!JSON.stringify(r).includes("c2VjcmV0"), "no parameter value is stored");
        assert.equal(r.prevHash, GENESIS_HASH);
        assert.equal((await verifyStore(store)).ok, true);
        await assert.rejects(writer.record({ action: "Encrypt", result: "" }), TypeError);
        await writer.close();
      }));

    if (backend.name !== "SQLite (:memory:)") {
      it("interleaves two nodes' writers on one store into one linear chain", () =>
        withStore(async ({ store, another }) => {
          const second = await another!();
          const a = writerOn(store, { nodeId: "node-a", checkpointEvery: 40 });
          const b = writerOn(second, { nodeId: "node-b", checkpointEvery: 40 });
          const key = makeKey();
          await second.insertKey(key, versionOf(key));
          const work: Promise<unknown>[] = [];
          for (let wave = 0; wave < 8; wave++) {
            for (let i = 0; i < 20; i++) {
              work.push(a.record(event(i, { requestId: `a-${wave}-${i}` })));
              work.push(b.record(event(i, { requestId: `b-${wave}-${i}` })));
            }
            // A state change with its record, in the middle of the traffic.
            work.push(
              b.transaction(async (tx, audit) => {
                const current = await tx.getKey(key.keyId);
                await tx.updateKey({ ...current!, description: `wave ${wave}` });
                await audit({ action: "UpdateKeyDescription", result: "Success", resourceName: key.keyId });
              }),
            );
            await nextTurn();
          }
          await Promise.all(work);
          await a.close();
          await b.close();
          const records = await allAuditRecords(store);
          assert.equal(records.length, 8 * 41);
          assertLinear(records);
          assert.deepEqual(new Set(records.map((r) => r.nodeId)), new Set(["node-a", "node-b"]));
          assert.equal(records.filter((r) => r.action === "UpdateKeyDescription").length, 8);
          assert.equal((await verifyStore(store)).ok, true);
        }));
    }

    it("makes the audit keys once, wrapped by the root of trust, with the public key in the clear", () =>
      withStore(async ({ store }) => {
        const dir = await mkdtemp(join(tmpdir(), "tresor-audit-keys-"));
        const root = await FileRootOfTrust.create(join(dir, "root.key"));
        try {
          const [k1, k2] = await Promise.all([loadAuditKeys(store, root), loadAuditKeys(store, root)]);
          const k3 = await loadAuditKeys(store, root);
          assert.ok(k1.publicKey.equals(k2.publicKey) && k1.publicKey.equals(k3.publicKey), "every node gets the same keys");
          assert.ok(k1.hmacKey.equals(k3.hmacKey));
          assert.equal(k1.publicKey.length, 32);
          assert.equal(await store.getMeta(AUDIT_PUBLIC_KEY_META), k1.publicKey.toString("base64"));
          for (const name of [AUDIT_SIGNING_KEY_SECRET, AUDIT_HMAC_KEY_SECRET]) {
            const stored = Buffer.from((await store.getMeta(name))!, "base64");
            assert.ok(!stored.includes(k1.hmacKey), `${name} is stored wrapped`);
          }
          assert.ok(AUDIT_SECRET_NAMES.every((n) => SERVICE_SECRET_NAMES.includes(n)), "root key rotation rewraps the audit secrets");
          // As root key rotation reads them: base64 in meta, wrapped with serviceSecretAad(name).
          for (const name of AUDIT_SECRET_NAMES) {
            const plain = await root.unwrap(Buffer.from((await store.getMeta(name))!, "base64"), serviceSecretAad(name));
            plain.fill(0);
          }
          // A checkpoint signed with the loaded key verifies under the stored public key.
          const writer = await openAuditWriter({ store, root, nodeId: "n", checkpointIntervalMs: 0 });
          await writer.record(event(1));
          await writer.close();
          const report = await verifyAudit(await allAuditRecords(store), await store.listAuditCheckpoints({ order: "asc" }), Buffer.from((await store.getMeta(AUDIT_PUBLIC_KEY_META))!, "base64"));
          assert.deepEqual([report.ok, report.checkpoints], [true, 1]);
        } finally {
          await root.close();
          await rm(dir, { recursive: true, force: true });
        }
      }));

    it("travels in a backup: the restored store holds the same chain, head and checkpoints, and goes on from them", () =>
      withStore(async ({ store }) => {
        const dir = await mkdtemp(join(tmpdir(), "tresor-audit-backup-"));
        try {
          const writer = writerOn(store, { checkpointEvery: 30 });
          await Promise.all(Array.from({ length: 100 }, (_, i) => writer.record(event(i, { flags: i % 7 === 0 ? ["policy-denied"] : [] }))));
          await writer.close();
          const file = join(dir, "backup.gz");
          await createBackup({
            store,
            storeKind: store instanceof PostgresStore ? "postgres" : "sqlite",
            out: file,
            rootCheck: { fresh: async () => "check", verify: async () => undefined },
          });
          const restored = SqliteStore.open(join(dir, "restored.db"));
          try {
            const summary = await restoreBackup({ file, store: restored, verifyRootCheck: async () => undefined });
            assert.equal(summary.rows["audit_records"], 100);
            assert.equal(summary.rows["audit_head"], 1);
            assert.deepEqual(await allAuditRecords(restored), await allAuditRecords(store));
            assert.deepEqual(await restored.auditHead(), await store.auditHead());
            assert.deepEqual(await restored.listAuditCheckpoints({ order: "asc" }), await store.listAuditCheckpoints({ order: "asc" }));
            const next = writerOn(restored);
            await next.record(event(101));
            await next.close();
            assert.deepEqual(await verifyStore(restored), { ok: true, records: 101, checkpoints: (await restored.listAuditCheckpoints({ order: "asc" })).length, firstSeq: 1, lastSeq: 101 });
          } finally {
            await restored.close();
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    it("exports the log for offline verification; a changed line, a cut tail or another key is caught", () =>
      withStore(async ({ store }) => {
        const dir = await mkdtemp(join(tmpdir(), "tresor-audit-export-"));
        try {
          const writer = writerOn(store, { checkpointEvery: 25 });
          await Promise.all(Array.from({ length: 120 }, (_, i) => writer.record(event(i))));
          await writer.close();
          const file = join(dir, "audit.jsonl");
          assert.deepEqual(await exportAudit(store, file, signer.publicKey), { records: 120, checkpoints: (await store.listAuditCheckpoints({ order: "asc" })).length });
          assert.equal((await stat(file)).mode & 0o777, 0o600);
          await assert.rejects(exportAudit(store, file, signer.publicKey), /EEXIST/, "never overwrites");
          const report = await verifyAuditExport(file, signer.publicKey);
          assert.equal(report.ok, true, report.firstBad?.detail);
          assert.deepEqual([report.records, report.publicKeyMatches], [120, true]);
          assert.equal((await verifyAuditExport(file)).ok, true, "against the key the file names");

          const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
          const at = lines.findIndex((l) => l.includes('"seq":57,') && l.includes('"type":"record"'));
          const changed = [...lines];
          changed[at] = changed[at]!.replace('"action":"Encrypt"', '"action":"Decrypt"');
          await writeFile(join(dir, "changed.jsonl"), `${changed.join("\n")}\n`);
          const c = await verifyAuditExport(join(dir, "changed.jsonl"), signer.publicKey);
          assert.deepEqual([c.firstBad?.seq, c.firstBad?.reason], [57, "changed"]);
          await writeFile(join(dir, "cut.jsonl"), `${lines.slice(0, at).join("\n")}\n`);
          const t = await verifyAuditExport(join(dir, "cut.jsonl"), signer.publicKey);
          assert.deepEqual([t.firstBad?.seq, t.firstBad?.reason], [57, "truncated"]);
          const other = await verifyAuditExport(file, testSigner().publicKey);
          assert.deepEqual([other.ok, other.publicKeyMatches, other.firstBad?.reason], [false, false, "bad-checkpoint-signature"]);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));
  });
}
