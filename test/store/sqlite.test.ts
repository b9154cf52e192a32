// SqliteStore: the shared Store contract, plus migrations, file mode, pragmas, crash durability and
// how transactions share the one connection (queueing, nesting, close).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { MIGRATIONS, type Migration } from "../../src/store/migrations/index.js";
import { applyMigrations, SqliteStore } from "../../src/store/sqlite.js";
import { StoreConflictError, type StoreOperations } from "../../src/store/store.js";
import { deferred, makeKey, storeContract, ticks, v4AuditRow, versionOf } from "./store-contract.js";
import { GENESIS_HASH } from "../../src/audit/record.js";
import { auditChain } from "../helpers/audit-fixtures.js";
import { waitFor } from "../helpers/wait.js";

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "tresor-sqlite-"));
}

storeContract("SqliteStore (file)", async () => {
  const dir = await tempDir();
  const path = join(dir, "tresor.db");
  let store = SqliteStore.open(path);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = SqliteStore.open(path);
      return store;
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

storeContract("SqliteStore (:memory:)", async () => {
  const store = SqliteStore.open(":memory:");
  return { store, cleanup: () => store.close() };
});

/** A direct connection for looking at what the store wrote; closed by the caller. */
function raw(path: string): Database.Database {
  return new Database(path);
}

function recordedMigrations(path: string): { version: number; name: string; applied_at: number }[] {
  const db = raw(path);
  try {
    return db.prepare<[], { version: number; name: string; applied_at: number }>("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").all();
  } finally {
    db.close();
  }
}

describe("SqliteStore", () => {
  let dir = "";
  let n = 0;
  const freshPath = () => join(dir, `db-${++n}.sqlite`);
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("migrations", () => {
    it("are numbered 1, 2, … and start with 001-initial", () => {
      assert.ok(MIGRATIONS.length >= 1);
      assert.equal(MIGRATIONS[0]?.name, "001-initial");
      MIGRATIONS.forEach((m, i) => {
        assert.equal(m.version, i + 1);
        assert.ok(m.name.startsWith(String(m.version).padStart(3, "0") + "-"), m.name);
      });
    });

    it("are recorded once, and reopening applies nothing again", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path);
      assert.equal(store.diagnostics().schemaVersion, MIGRATIONS.length);
      const key = makeKey();
      await store.insertKey(key, versionOf(key));
      await store.close();
      const first = recordedMigrations(path);
      assert.deepEqual(
        first.map(({ version, name }) => ({ version, name })),
        MIGRATIONS.map(({ version, name }) => ({ version, name })),
      );

      for (let i = 0; i < 2; i++) {
        const again = SqliteStore.open(path);
        assert.equal((await again.getKey(key.keyId))?.alias, key.alias);
        await again.close();
      }
      assert.deepEqual(recordedMigrations(path), first, "no migration was applied or recorded twice");
    });

    it("refuses a database whose schema is newer than this code, changing nothing", async () => {
      const path = freshPath();
      await SqliteStore.open(path).close();
      const db = raw(path);
      const future = MIGRATIONS.length + 1;
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)").run(future, "999-from-the-future");
      db.close();
      const before = recordedMigrations(path);
      assert.throws(
        () => SqliteStore.open(path),
        (err: Error) => {
          assert.match(err.message, new RegExp(`schema version is ${future}, newer than this Tresor knows \\(${MIGRATIONS.length}\\)`));
          assert.ok(err.message.includes(path));
          return true;
        },
      );
      assert.deepEqual(recordedMigrations(path), before);
    });

    it("refuses a database whose recorded migrations differ from this code's", async () => {
      const path = freshPath();
      await SqliteStore.open(path).close();
      const db = raw(path);
      db.prepare("UPDATE schema_migrations SET name = 'something-else' WHERE version = 1").run();
      db.close();
      assert.throws(() => SqliteStore.open(path), /does not match/);
    });

    it("005-audit-accounts numbers a version-4 database's audit records within each account, and appends go on from there", async () => {
      const path = freshPath();
      const db = raw(path);
      const accounts = ["100000000001", "200000000002", "100000000001", "100000000001", "200000000002"];
      const records = auditChain(1, GENESIS_HASH, 5, (i) => ({ accountUin: accounts[i]! }));
      try {
        applyMigrations(db, MIGRATIONS.slice(0, 4), path);
        const columns = Object.keys(v4AuditRow(records[0]!));
        const insert = db.prepare(`INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`);
        for (const r of records) insert.run(v4AuditRow(r));
        db.prepare("INSERT INTO audit_head (id, seq, hash) VALUES (1, 5, ?)").run(records[4]!.hash);
      } finally {
        db.close();
      }
      const store = SqliteStore.open(path);
      try {
        assert.equal(store.diagnostics().schemaVersion, MIGRATIONS.length);
        await store.appendAuditRecords(auditChain(6, records[4]!.hash, 1, () => ({ accountUin: "200000000002" })));
        const numbering = async (accountUin: string) =>
          (await store.searchAccountAudit({ accountUin, fromTime: 0, toTime: 2e12, filters: {}, limit: 50, scanLimit: 100 })).records.map((r) => [r.seq, r.accountSeq]).reverse();
        assert.deepEqual(await numbering("100000000001"), [[1, 1], [3, 2], [4, 3]]);
        assert.deepEqual(await numbering("200000000002"), [[2, 1], [5, 2], [6, 3]]);
      } finally {
        await store.close();
      }
    });

    it("003-identity gives every access key of a version-2 database to its account's root, recorded as a principal", async () => {
      const path = freshPath();
      const db = raw(path);
      try {
        applyMigrations(db, MIGRATIONS.slice(0, 2), path);
        const insert = db.prepare<[string, string, number]>(
          "INSERT INTO access_keys (secret_id, wrapped_secret, uin, status, create_time) VALUES (?, x'00ff', ?, 'Active', ?)",
        );
        insert.run("AKIDa2", "100000000001", 200);
        insert.run("AKIDa1", "100000000001", 100);
        insert.run("AKIDb1", "200000000002", 300);
      } finally {
        db.close();
      }
      const store = SqliteStore.open(path);
      try {
        assert.equal(store.diagnostics().schemaVersion, MIGRATIONS.length);
        assert.deepEqual(await store.getAccessKey("AKIDa1"), {
          secretId: "AKIDa1",
          wrappedSecret: Buffer.from([0, 255]),
          uin: "100000000001",
          principalId: "100000000001",
          status: "Active",
          createTime: 100,
          lastUsedTime: 0,
        });
        assert.deepEqual((await store.listAccessKeys("100000000001")).map((k) => k.secretId), ["AKIDa1", "AKIDa2"]);
        assert.deepEqual((await store.listAccessKeys("200000000002")).map((k) => k.secretId), ["AKIDb1"]);
        for (const [uin, createTime] of [["100000000001", 100], ["200000000002", 300]] as const) {
          const root = { principalId: uin, accountUin: uin, kind: "root", name: "root", remark: "", trustPolicy: null, maxSessionSeconds: 0, createTime };
          assert.deepEqual(await store.getPrincipal(uin), root, "one root per account, created when its first key was");
          assert.deepEqual(await store.listPrincipals(uin, "root", 0, 10), { items: [root], totalCount: 1 });
        }
        await store.touchAccessKey("AKIDa1", 1_000, 60);
        assert.equal((await store.getAccessKey("AKIDa1"))?.lastUsedTime, 1_000);
      } finally {
        await store.close();
      }
    });

    it("apply each in one transaction: a failing migration leaves no trace and can be retried", () => {
      const db = raw(":memory:");
      try {
        const broken: Migration = { version: 2, name: "002-broken", sql: "CREATE TABLE t2 (x); INSERT INTO no_such_table VALUES (1);" };
        assert.throws(() => applyMigrations(db, [MIGRATIONS[0]!, broken], "test"), /no_such_table/);
        const versions = () => db.prepare<[], { version: number }>("SELECT version FROM schema_migrations").all().map((r) => r.version);
        assert.deepEqual(versions(), [1], "the first migration stays applied");
        const hasT2 = () => db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 't2'").get() !== undefined;
        assert.equal(hasT2(), false, "the half-done migration was rolled back");

        const fixed: Migration = { version: 2, name: "002-broken", sql: "CREATE TABLE t2 (x);" };
        applyMigrations(db, [MIGRATIONS[0]!, fixed], "test");
        assert.deepEqual(versions(), [1, 2]);
        assert.equal(hasT2(), true);
      } finally {
        db.close();
      }
    });

    it("refuses a list of migrations that is out of order", () => {
      const db = raw(":memory:");
      try {
        assert.throws(() => applyMigrations(db, [{ version: 2, name: "002-x", sql: "" }], "test"), /expected 1/);
      } finally {
        db.close();
      }
    });
  });

  it("creates the database (and its WAL) with mode 0600, even under a permissive umask", async () => {
    const path = freshPath();
    const previous = process.umask(0);
    let store: SqliteStore;
    try {
      store = SqliteStore.open(path);
      const key = makeKey();
      await store.insertKey(key, versionOf(key));
    } finally {
      process.umask(previous);
    }
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(`${path}-wal`)).mode & 0o777, 0o600);
    await store.close();
  });

  it("runs with WAL, its own fdatasync of the WAL instead of an fsync inside COMMIT, foreign keys, and waits 5 s for a lock outside SQLite's busy handler", async () => {
    const store = SqliteStore.open(freshPath());
    assert.deepEqual(store.diagnostics(), {
      journalMode: "wal",
      synchronous: 1,
      durability: "wal-fdatasync",
      foreignKeys: 1,
      busyTimeout: 0,
      lockWaitMs: 5000,
      schemaVersion: MIGRATIONS.length,
    });
    await store.close();
  });

  it("moves WAL checkpoints to a thread of their own once it has written enough, which copies the WAL into the database file", async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    try {
      assert.equal(store.checkpointsOffThread, false, "a store that wrote little checkpoints as SQLite does");
      const sizeBefore = (await stat(path)).size;
      await store.transaction(async (tx) => {
        for (let i = 0; i < 2500; i++) await tx.setMeta(`m${i}`, "x".repeat(200));
      });
      assert.equal(store.checkpointsOffThread, true);
      // About 130 pages of WAL: far below SQLite's own automatic checkpoint (1000 pages), so the
      // database file can only grow by the thread's checkpoints.
      await waitFor("the checkpoint thread to copy the WAL into the database file", async () => (await stat(path)).size > sizeBefore + 400_000, { timeoutMs: 10_000 });
      assert.equal((await store.getMeta("m2499"))?.length, 200);
    } finally {
      await store.close();
    }
  });

  it("bounds the WAL under steady writes: the checkpoint thread has it start over once it holds 16 MiB", async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    try {
      // Waves of concurrent writes: no pause is long enough for a PASSIVE checkpoint to catch up
      // with the end of the WAL, after which SQLite would start it over. With PASSIVE alone the WAL
      // did not start over once while the writes went on, and grew by every frame written.
      const value = "v".repeat(3500);
      const wave = (n: number) => Promise.all(Array.from({ length: 100 }, (_, i) => store.setMeta(`k${(n * 100 + i) % 5000}`, `${n}${value}`)));
      // The thread starts after the store's first 2,000 writes and checkpoints every 250 ms.
      let n = 0;
      while (!store.checkpointsOffThread) await wave(n++);
      for (const end = n + 50; n < end; ) await wave(n++);
      // The WAL header's checkpoint sequence number (bytes 12-15) counts the times it started over.
      const startsOver = async (): Promise<number> => {
        const wal = await open(`${path}-wal`, "r");
        try {
          return (await wal.read(Buffer.alloc(16), 0, 16, 0)).buffer.readUInt32BE(12);
        } finally {
          await wal.close();
        }
      };
      const before = await startsOver();
      // At least 100 pages a wave: some 60 MiB of frames in all.
      for (const end = n + 150; n < end; ) await wave(n++);
      assert.ok((await startsOver()) - before >= 2, "the WAL started over at least twice while the writes went on");
      assert.equal((await store.getMeta(`k${((n - 1) * 100 + 99) % 5000}`))?.slice(0, String(n - 1).length), String(n - 1));
    } finally {
      await store.close();
    }
  });

  it("resolves a write only after an fdatasync of the WAL that began after it, grouping the writes of a moment into few syncs", async () => {
    const store = SqliteStore.open(freshPath());
    const before = store.walSyncs;
    await store.setMeta("a", "1");
    assert.equal(store.walSyncs, before + 1, "a plain write waited for one sync");
    await store.getMeta("a");
    assert.equal(store.walSyncs, before + 1, "a read waits for none");
    await store.transaction(async (tx) => tx.setMeta("b", "2"));
    assert.equal(store.walSyncs, before + 2, "a transaction's commit waited for one sync");
    // Fifty writes issued together: the first starts a sync, the other 49 share the next one.
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.setMeta(`k${i}`, String(i))));
    assert.equal(store.walSyncs, before + 4);
    await store.close();
  });

  it("says when a commit would start the next sync at once: idle now, after the running sync, or at once when a commit already waits for the next", async () => {
    const store = SqliteStore.open(freshPath());
    try {
      await store.syncIdle();
      const syncs = store.walSyncs;
      const first = store.setMeta("a", "1");
      const syncsWhenIdle = await store.syncIdle().then(() => store.walSyncs);
      assert.equal(syncsWhenIdle, syncs + 1, "idle only once the running sync has ended");
      await first;
      const running = store.setMeta("b", "2");
      const next = store.setMeta("c", "3");
      let atOnce = false;
      await Promise.race([store.syncIdle().then(() => (atOnce = true)), ticks(2)]);
      assert.equal(atOnce, true, "at once when a commit already waits for the next sync: committing now joins it");
      await Promise.all([running, next]);
    } finally {
      await store.close();
    }
  });

  it("prepares its statements once, when opened", async () => {
    const store = SqliteStore.open(freshPath());
    const prepare = Database.prototype.prepare;
    let prepared = 0;
    Database.prototype.prepare = function (this: Database.Database, source: string) {
      prepared++;
      return prepare.call(this, source);
    } as typeof prepare;
    try {
      const key = makeKey({ tags: [{ key: "t", value: "v" }] });
      await store.transaction(async (tx) => {
        await tx.insertKey(key, versionOf(key));
        await tx.insertKeyVersion(versionOf(key, 2));
      });
      await assert.rejects(store.transaction(async () => Promise.reject(new Error("roll back"))));
      await store.updateKey({ ...key, description: "changed" });
      await store.insertKeyVersion(versionOf(key, 3));
      await store.getKey(key.keyId);
      await store.getKeyByAlias(key.alias);
      await store.getKeyVersion(key.keyId, 1);
      await store.listKeys({ offset: 0, limit: 5, order: "asc", states: ["Enabled"], search: "a", tagFilters: [{ key: "t", values: ["v"] }] });
      await store.listKeys({ offset: 0, limit: 5, order: "desc" });
      await store.countKeys();
      await store.setMeta("a", "b");
      await store.getMeta("a");
      await store.insertAccessKey({ secretId: "AKID", wrappedSecret: Buffer.from("s"), uin: "1", principalId: "1", status: "Active", createTime: 1, lastUsedTime: 0 });
      await store.getAccessKey("AKID");
      await store.listAccessKeys("1");
      await store.updateAccessKeyStatus("AKID", "Inactive");
      await store.touchAccessKey("AKID", 100, 60);
      await store.insertPrincipal({ principalId: "r", accountUin: "1", kind: "role", name: "r", remark: "", trustPolicy: "{}", maxSessionSeconds: 60, createTime: 1 });
      await store.getPrincipal("r");
      await store.getPrincipalByName("1", "role", "r");
      await store.listPrincipals("1", "role", 0, 10);
      await store.insertPolicy({ policyId: 5000, accountUin: "1", name: "p", description: "", document: "{}", createTime: 1, updateTime: 1 });
      await store.getPolicy(5000);
      await store.getPolicyByName("1", "p");
      await store.listPolicies("1", 0, 10, "p");
      await store.attachPolicy({ principalId: "r", policyId: 5000, accountUin: "1", createTime: 1 });
      await store.listAttachedPolicies("r");
      await store.countPolicyAttachments(5000);
      await store.detachPolicy("r", 5000);
      await store.insertRoleSession({ tmpSecretId: "t", roleId: "r", accountUin: "1", sessionName: "s", assumedBy: "1", createTime: 1, expiresAt: 2 });
      await store.getRoleSession("t");
      await store.deleteExpiredRoleSessions(2);
      await store.deletePolicy(5000);
      await store.deletePrincipal("r");
      await store.deleteAccessKey("AKID");
      await store.countKeys("1");
    } finally {
      Database.prototype.prepare = prepare;
    }
    assert.equal(prepared, 0);
    await store.close();
  });

  it("shares one file between two connections, conflicts included", async () => {
    const path = freshPath();
    const a = SqliteStore.open(path);
    const b = SqliteStore.open(path);
    try {
      const key = makeKey();
      await a.insertKey(key, versionOf(key));
      assert.equal((await b.getKey(key.keyId))?.alias, key.alias);
      const clash = makeKey({ alias: key.alias });
      await assert.rejects(b.insertKey(clash, versionOf(clash)), (err) => err instanceof StoreConflictError && err.field === "alias");
      await b.transaction((tx) => tx.setMeta("from-b", "1"));
      assert.equal(await a.getMeta("from-b"), "1");
    } finally {
      await a.close();
      await b.close();
    }
  });

  describe("transactions on the one connection", () => {
    it("run a call on the store at once, inside the call, when no transaction is open", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path);
      const key = makeKey();
      const pending = store.insertKey(key, versionOf(key));
      // Not awaited yet: another connection already sees the committed row.
      const db = raw(path);
      assert.equal(db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM keys WHERE key_id = ?").get(key.keyId)?.n, 1);
      db.close();
      await pending;
      await store.close();
    });

    it("queue calls on the store behind an open transaction, in order, and run them after it commits", async () => {
      const store = SqliteStore.open(":memory:");
      const inside = makeKey({ description: "draft" });
      const outside = makeKey();
      const halfway = deferred();
      const proceed = deferred();
      const order: string[] = [];
      const running = store.transaction(async (tx) => {
        await tx.insertKey(inside, versionOf(inside));
        halfway.resolve();
        await proceed.promise;
        // The write queued meanwhile has not landed inside this transaction.
        assert.equal(await tx.countKeys(), 1);
        assert.equal(await tx.getKey(outside.keyId), undefined);
        await tx.updateKey({ ...inside, description: "final" });
        order.push("transaction");
      });
      await halfway.promise;
      // Settling order would say little (each .then adds turns); what each call saw shows the order they ran in.
      const settled: string[] = [];
      const read = store.getKey(inside.keyId);
      const write = store.insertKey(outside, versionOf(outside));
      const update = store.updateKey({ ...inside, description: "after" });
      const second = store.transaction(async (tx) => ({ count: await tx.countKeys(), description: (await tx.getKey(inside.keyId))?.description }));
      for (const [name, p] of [["read", read], ["write", write], ["update", update], ["second", second]] as const) {
        void p.then(() => settled.push(name));
      }
      await ticks(5);
      assert.deepEqual(order, [], "the transaction is still open");
      assert.deepEqual(settled, [], "nothing queued ran while the transaction was open");
      proceed.resolve();
      await running;
      assert.equal((await read)?.description, "final", "the queued read sees the committed state, and ran before the update queued after it");
      await write;
      await update;
      assert.deepEqual(await second, { count: 2, description: "after" }, "the second transaction ran after everything queued before it");
      assert.deepEqual(order, ["transaction"]);
      await store.close();
    });

    it("let the queue go on after a transaction rolls back", async () => {
      const store = SqliteStore.open(":memory:");
      const key = makeKey();
      const halfway = deferred();
      const running = store.transaction(async (tx) => {
        await tx.insertKey(key, versionOf(key));
        halfway.resolve();
        await ticks(2);
        throw new Error("give up");
      });
      await halfway.promise;
      const read = store.getKey(key.keyId);
      await assert.rejects(running, /give up/);
      assert.equal(await read, undefined);
      await store.insertKey(key, versionOf(key));
      assert.equal(await store.countKeys(), 1);
      await store.close();
    });

    it("reject a call on the store itself from inside its own transaction instead of deadlocking", async () => {
      const store = SqliteStore.open(":memory:");
      const key = makeKey();
      await store.transaction(async (tx) => {
        await tx.insertKey(key, versionOf(key));
        await assert.rejects(store.getKey(key.keyId), /from inside one of its transactions/);
        await assert.rejects(store.setMeta("x", "y"), /through its tx/);
        await assert.rejects(store.transaction(async () => 1), /not nestable/);
        await assert.rejects(store.close(), /inside a transaction/);
        // Also from work the function starts without awaiting it directly.
        await Promise.all([Promise.resolve().then(() => assert.rejects(store.countKeys(), /not nestable/))]);
      });
      assert.equal((await store.getKey(key.keyId))?.alias, key.alias);
      assert.equal(await store.getMeta("x"), undefined);
      await store.close();
    });

    it("keep a transaction usable after a conflict caught inside it, with nothing of the failed insert", async () => {
      const store = SqliteStore.open(":memory:");
      const a = makeKey();
      await store.insertKey(a, versionOf(a));
      const b = makeKey({ alias: a.alias, tags: [{ key: "t", value: "v" }] });
      const c = makeKey();
      await store.transaction(async (tx) => {
        await assert.rejects(tx.insertKey(b, versionOf(b)), (err) => err instanceof StoreConflictError && err.field === "alias");
        await tx.insertKey(c, versionOf(c));
      });
      assert.equal(await store.getKey(b.keyId), undefined);
      assert.equal(await store.getKeyVersion(b.keyId, 1), undefined);
      assert.equal((await store.listKeys({ offset: 0, limit: 10, order: "desc", tagFilters: [{ key: "t", values: ["v"] }] })).totalCount, 0);
      assert.equal((await store.getKey(c.keyId))?.alias, c.alias);
      await store.close();
    });

    it("roll back when the function throws synchronously or returns a non-promise", async () => {
      const store = SqliteStore.open(":memory:");
      const key = makeKey();
      await assert.rejects(
        store.transaction(((tx: StoreOperations) => {
          void tx.insertKey(key, versionOf(key));
          throw new Error("sync throw");
        }) as unknown as (tx: StoreOperations) => Promise<void>),
        /sync throw/,
      );
      assert.equal(await store.getKey(key.keyId), undefined);
      assert.equal(await store.transaction((() => 7) as unknown as () => Promise<number>), 7);
      await store.close();
    });
  });

  describe("close", () => {
    it("checkpoints the WAL, is idempotent, and refuses every call afterwards", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path);
      const key = makeKey();
      await store.insertKey(key, versionOf(key));
      assert.ok(existsSync(`${path}-wal`));
      const first = store.close();
      assert.equal(store.close(), first, "a second close returns the same promise");
      await first;
      await store.close();
      assert.equal(existsSync(`${path}-wal`), false, "the WAL was checkpointed into the database and removed");
      const db = raw(path);
      assert.equal(db.prepare<[], { n: number }>("SELECT count(*) AS n FROM keys").get()?.n, 1);
      db.close();

      const calls: [string, () => Promise<unknown>][] = [
        ["transaction", () => store.transaction(async () => 1)],
        ["getMeta", () => store.getMeta("x")],
        ["setMeta", () => store.setMeta("x", "y")],
        ["insertKey", () => store.insertKey(makeKey(), versionOf(key))],
        ["insertKeyVersion", () => store.insertKeyVersion(versionOf(key, 2))],
        ["getKey", () => store.getKey(key.keyId)],
        ["getKeyByAlias", () => store.getKeyByAlias(key.alias)],
        ["updateKey", () => store.updateKey(key)],
        ["listKeys", () => store.listKeys({ offset: 0, limit: 1, order: "desc" })],
        ["countKeys", () => store.countKeys()],
        ["getKeyVersion", () => store.getKeyVersion(key.keyId, 1)],
        ["insertAccessKey", () => store.insertAccessKey({ secretId: "s", wrappedSecret: Buffer.alloc(1), uin: "1", principalId: "1", status: "Active", createTime: 1, lastUsedTime: 0 })],
        ["getAccessKey", () => store.getAccessKey("s")],
      ];
      for (const [name, call] of calls) await assert.rejects(call(), /is closed/, name);
      assert.throws(() => store.diagnostics(), /is closed/);
    });

    it("lets calls queued before it finish, and refuses calls made after it began", async () => {
      const path = freshPath();
      const store = SqliteStore.open(path);
      const key = makeKey();
      const later = makeKey();
      const halfway = deferred();
      const proceed = deferred();
      const running = store.transaction(async (tx) => {
        halfway.resolve();
        await proceed.promise;
        await tx.insertKey(key, versionOf(key));
      });
      await halfway.promise;
      const queued = store.setMeta("queued", "1");
      const closing = store.close();
      await assert.rejects(store.insertKey(later, versionOf(later)), /is closed/);
      await assert.rejects(store.transaction(async () => 1), /is closed/);
      proceed.resolve();
      await running;
      await queued;
      await closing;
      const again = SqliteStore.open(path);
      assert.equal((await again.getKey(key.keyId))?.alias, key.alias);
      assert.equal(await again.getMeta("queued"), "1");
      assert.equal(await again.getKey(later.keyId), undefined);
      await again.close();
    });
  });

  it("rejects a negative or fractional offset or limit", async () => {
    const store = SqliteStore.open(":memory:");
    await assert.rejects(store.listKeys({ offset: -1, limit: 1, order: "desc" }), /"offset"/);
    await assert.rejects(store.listKeys({ offset: 0, limit: -1, order: "desc" }), /"limit"/);
    await assert.rejects(store.listKeys({ offset: 0, limit: 1.5, order: "desc" }), /"limit"/);
    await store.close();
  });

  it("keeps every acknowledged key when its process is killed with SIGKILL", async () => {
    // kill -9 loses nothing the OS already has; power loss additionally needs the fdatasync of the
    // WAL before each write resolves, which the checks above cover.
    const path = freshPath();
    const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), "durability-child.js"), path], {
      env: { ...process.env, TRESOR_DURABILITY_CHILD: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const target = 200;
    let stdout = "";
    let stderr = "";
    let sent = false;
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (!sent && stdout.split("\n").length - 1 >= target) {
        sent = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve({ code, signal }));
    });
    clearTimeout(timer);
    assert.ok(sent, `the child stopped before ${target} acknowledgements: ${JSON.stringify(exit)} ${stderr}`);
    assert.equal(exit.signal, "SIGKILL");

    // Only complete lines were acknowledged; a line cut short by the kill does not count.
    const acknowledged = stdout.slice(0, stdout.lastIndexOf("\n")).split("\n");
    assert.ok(acknowledged.length >= target);
    assert.ok(existsSync(`${path}-wal`), "the WAL was left behind, so reopening has to recover from it");

    const store = SqliteStore.open(path);
    try {
      const missing: string[] = [];
      for (const keyId of acknowledged) {
        if ((await store.getKey(keyId)) === undefined || (await store.getKeyVersion(keyId, 1)) === undefined) missing.push(keyId);
      }
      assert.deepEqual(missing, [], `${missing.length} of ${acknowledged.length} acknowledged keys are missing`);
      const count = await store.countKeys();
      assert.ok(count === acknowledged.length || count === acknowledged.length + 1, `${count} keys for ${acknowledged.length} acknowledgements`);
    } finally {
      await store.close();
    }
    const db = raw(path);
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    db.close();
  });
});

describe("SqliteStore's key cache", () => {
  let dir = "";
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tresor-key-cache-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const freshPath = () => join(dir, `db-${++n}.sqlite`);

  it("sees a change by its own connection and by another connection (another process's) at the next read", async () => {
    const path = freshPath();
    const mine = SqliteStore.open(path);
    const other = SqliteStore.open(path);
    try {
      const key = makeKey();
      await mine.insertKey(key, versionOf(key));
      assert.equal((await mine.getKey(key.keyId))?.state, "Enabled");
      assert.equal((await mine.getKey(key.keyId))?.state, "Enabled", "a second read (from the cache) agrees");
      await other.updateKey({ ...key, state: "Disabled" });
      assert.equal((await mine.getKey(key.keyId))?.state, "Disabled", "another connection's commit is seen at once");
      await mine.updateKey({ ...key, state: "Enabled", description: "back" });
      assert.equal((await mine.getKey(key.keyId))?.description, "back", "its own write is seen at once");
      await mine.transaction(async (tx) => tx.updateKey({ ...key, state: "PendingDelete", deletionDate: 1 }));
      assert.equal((await mine.getKey(key.keyId))?.state, "PendingDelete", "a transaction's write is seen at once");
      await other.deleteKey(key.keyId);
      assert.equal(await mine.getKey(key.keyId), undefined);
    } finally {
      await mine.close();
      await other.close();
    }
  });

  it("waits for another connection's write lock without holding the event loop (workers share one file)", async () => {
    const path = freshPath();
    const a = SqliteStore.open(path);
    const b = SqliteStore.open(path);
    try {
      let releaseA!: () => void;
      const aHolds = new Promise<void>((resolve) => {
        releaseA = resolve;
      });
      const first = a.transaction(async (tx) => {
        await tx.setMeta("a", "1");
        await aHolds; // holds SQLite's write lock across turns of the event loop
      });
      await ticks(2);
      const started = Date.now();
      const second = b.transaction(async (tx) => tx.setMeta("b", "2"));
      // With a busy handler that slept inside BEGIN, this timer (and a's commit) could not run: both
      // would wait out the 5 s busy timeout, and b would fail.
      setTimeout(releaseA, 20);
      await Promise.all([first, second]);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal(await a.getMeta("b"), "2");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("waits for another connection's write lock in a plain write (outside a transaction) without holding the event loop", async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    // Another connection in the write lock, as the checkpoint thread's RESTART checkpoint or another worker's commit.
    const other = raw(path);
    try {
      other.exec("BEGIN IMMEDIATE");
      const key = makeKey();
      let done = false;
      const insert = store.insertKey(key, versionOf(key)).finally(() => void (done = true));
      // SQLite's busy handler would have slept inside insertKey for 5 s and then failed: no turn would run.
      await ticks(50);
      assert.equal(done, false, "the write waits while the lock is held");
      other.exec("COMMIT");
      await insert;
      assert.equal((await store.getKey(key.keyId))?.keyId, key.keyId);
      // A plain write refused for a moment is tried again, not failed: the same for a single statement.
      other.exec("BEGIN IMMEDIATE");
      const meta = store.setMeta("plain", "1");
      await ticks(5);
      other.exec("COMMIT");
      await meta;
      assert.equal(await store.getMeta("plain"), "1");
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
      await store.close();
    }
  });

  it("keeps its keys across its own audit appends, and drops them when a transaction with an append also changes a key", async () => {
    const store = SqliteStore.open(freshPath());
    try {
      const key = makeKey();
      await store.insertKey(key, versionOf(key));
      const read = await store.getKey(key.keyId);
      const records = auditChain(1, GENESIS_HASH, 3);
      await store.appendAuditRecords(records.slice(0, 1));
      await store.transaction(async (tx) => tx.appendAuditRecords(records.slice(1, 2)));
      // Every request appends a record: were these writes to empty the cache, it would never hit.
      assert.equal(await store.getKey(key.keyId), read, "the same cached record after two audit appends");
      await store.transaction(async (tx) => {
        await tx.appendAuditRecords(records.slice(2, 3));
        await tx.updateKey({ ...key, state: "Disabled" });
      });
      const after = await store.getKey(key.keyId);
      assert.notEqual(after, read);
      assert.equal(after?.state, "Disabled", "the change committed beside an audit append is seen at once");
    } finally {
      await store.close();
    }
  });

  it("hands out frozen records, so no reader can change what the others read", async () => {
    const store = SqliteStore.open(freshPath());
    try {
      const key = makeKey();
      await store.insertKey({ ...key, tags: [{ key: "team", value: "a" }] }, versionOf(key));
      await store.getKey(key.keyId);
      const cached = (await store.getKey(key.keyId))!;
      assert.throws(() => {
        (cached as { state: string }).state = "Disabled";
      }, TypeError);
      assert.throws(() => cached.tags.push({ key: "x", value: "y" }), TypeError);
      assert.equal((await store.getKey(key.keyId))?.state, "Enabled");
    } finally {
      await store.close();
    }
  });
});
