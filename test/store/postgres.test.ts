// PostgresStore: the shared Store contract, plus what only a networked, clustered database has:
// migrations from several nodes at once, serialization retries, statement timeouts, connections
// killed mid-transaction and a server that stops or freezes. Needs TRESOR_TEST_PG_URL (see
// .ci/postgres.sh); each store gets a fresh schema of that database through its search_path.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { MIGRATIONS, type Migration } from "../../src/store/migrations/index.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/migrations/postgres/index.js";
import { applyPostgresMigrations, PostgresStore, PostgresStoreError, TRANSACTION_ATTEMPTS, type PostgresStoreOptions } from "../../src/store/postgres.js";
import { StoreConflictError } from "../../src/store/store.js";
import { postgresBinDir, startCluster } from "./postgres-cluster.js";
import { deferred, makeKey, storeContract, v4AuditRow, versionOf } from "./store-contract.js";
import { GENESIS_HASH } from "../../src/audit/record.js";
import { auditChain } from "../helpers/audit-fixtures.js";

const baseUrl = process.env.TRESOR_TEST_PG_URL;
const UNSET = "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh to start a throwaway PostgreSQL)";

if (baseUrl === undefined || baseUrl === "") {
  if (process.env.CI) {
    it("PostgresStore tests need a PostgreSQL server", () => assert.fail(`${UNSET}; CI must provide one`));
  } else {
    it("PostgresStore tests", { skip: UNSET }, () => undefined);
  }
} else {
  suite(baseUrl);
}

/** A connection string to `schema` of the database `base` points at, with extra parameters. */
function urlFor(base: string, schema: string, params: Record<string, string> = {}): string {
  const url = new URL(base);
  url.searchParams.set("options", `-c search_path=${schema}`);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

function suite(base: string): void {
  const admin = new pg.Pool({ connectionString: base, max: 4 });
  admin.on("error", () => undefined);
  const schemas: string[] = [];
  after(async () => {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  async function freshSchema(): Promise<{ schema: string; url: string }> {
    const schema = `tresor_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    schemas.push(schema);
    return { schema, url: urlFor(base, schema) };
  }

  async function dropSchema(schema: string): Promise<void> {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    schemas.splice(schemas.indexOf(schema), 1);
  }

  async function withStore(fn: (store: PostgresStore, schema: string, url: string) => Promise<void>, options?: PostgresStoreOptions): Promise<void> {
    const { schema, url } = await freshSchema();
    const store = await PostgresStore.open(url, options);
    try {
      await fn(store, schema, url);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  }

  storeContract("PostgresStore", async () => {
    const { schema, url } = await freshSchema();
    let store = await PostgresStore.open(url, { poolSize: 4 });
    return {
      store,
      reopen: async () => {
        await store.close();
        store = await PostgresStore.open(url, { poolSize: 4 });
        return store;
      },
      cleanup: async () => {
        await store.close();
        await dropSchema(schema);
      },
    };
  });

  describe("PostgresStore", () => {
    describe("migrations", () => {
      const recorded = async (schema: string) =>
        (await admin.query<{ version: number; name: string; applied_at: string }>(`SELECT version, name, applied_at FROM ${schema}.schema_migrations ORDER BY version`)).rows;

      it("has the same versions and names as SQLite's", () => {
        assert.deepEqual(
          POSTGRES_MIGRATIONS.map(({ version, name }) => ({ version, name })),
          MIGRATIONS.map(({ version, name }) => ({ version, name })),
        );
      });

      it("are recorded once, and reopening applies nothing again", async () => {
        const { schema, url } = await freshSchema();
        const store = await PostgresStore.open(url);
        const key = makeKey();
        await store.insertKey(key, versionOf(key));
        await store.close();
        const first = await recorded(schema);
        assert.deepEqual(first.map(({ version, name }) => ({ version, name })), POSTGRES_MIGRATIONS.map(({ version, name }) => ({ version, name })));
        for (let i = 0; i < 2; i++) {
          const again = await PostgresStore.open(url);
          assert.equal((await again.getKey(key.keyId))?.alias, key.alias);
          await again.close();
        }
        assert.deepEqual(await recorded(schema), first);
        await dropSchema(schema);
      });

      it("run once when several stores open the same empty database at once", async () => {
        const { schema, url } = await freshSchema();
        const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresStore.open(url, { poolSize: 2 })));
        try {
          assert.deepEqual((await recorded(schema)).map((r) => r.version), POSTGRES_MIGRATIONS.map((m) => m.version));
          const key = makeKey();
          await stores[0]!.insertKey(key, versionOf(key));
          for (const store of stores) assert.equal((await store.getKey(key.keyId))?.alias, key.alias);
        } finally {
          await Promise.all(stores.map((s) => s.close()));
          await dropSchema(schema);
        }
      });

      it("apply a slow migration exactly once while other nodes wait for it", async () => {
        const { schema, url } = await freshSchema();
        const slow: Migration = { version: 2, name: "002-slow", sql: "SELECT pg_sleep(0.3); CREATE TABLE t2 (x integer);" };
        const clients = Array.from({ length: 4 }, () => new pg.Client({ connectionString: url }));
        try {
          await Promise.all(clients.map((c) => c.connect()));
          const versions = await Promise.all(clients.map((c) => applyPostgresMigrations(c, [POSTGRES_MIGRATIONS[0]!, slow], "test")));
          assert.deepEqual(versions, [2, 2, 2, 2]);
          assert.deepEqual((await recorded(schema)).map((r) => r.version), [1, 2]);
        } finally {
          await Promise.all(clients.map((c) => c.end()));
          await dropSchema(schema);
        }
      });

      it("refuse a database whose schema is newer than this code, changing nothing", async () => {
        const { schema, url } = await freshSchema();
        await (await PostgresStore.open(url)).close();
        const future = POSTGRES_MIGRATIONS.length + 1;
        await admin.query(`INSERT INTO ${schema}.schema_migrations (version, name, applied_at) VALUES ($1, '999-from-the-future', 0)`, [future]);
        const before = await recorded(schema);
        await assert.rejects(PostgresStore.open(url), (err: Error) => {
          assert.match(err.message, new RegExp(`schema version is ${future}, newer than this Tresor knows \\(${POSTGRES_MIGRATIONS.length}\\)`));
          assert.ok(err.message.includes("127.0.0.1"), err.message);
          return true;
        });
        assert.deepEqual(await recorded(schema), before);
        await dropSchema(schema);
      });

      it("refuse a database whose recorded migrations differ from this code's", async () => {
        const { schema, url } = await freshSchema();
        await (await PostgresStore.open(url)).close();
        await admin.query(`UPDATE ${schema}.schema_migrations SET name = 'something-else' WHERE version = 1`);
        await assert.rejects(PostgresStore.open(url), /does not match/);
        await dropSchema(schema);
      });

      it("005-audit-accounts numbers a version-4 database's audit records within each account, and appends go on from there", async () => {
        const { schema, url } = await freshSchema();
        const accounts = ["100000000001", "200000000002", "100000000001", "100000000001", "200000000002"];
        const records = auditChain(1, GENESIS_HASH, 5, (i) => ({ accountUin: accounts[i]! }));
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          assert.equal(await applyPostgresMigrations(client, POSTGRES_MIGRATIONS.slice(0, 4), "test"), 4);
          for (const r of records) {
            const row = { ...v4AuditRow(r), read_only: r.readOnly };
            const columns = Object.keys(row);
            await client.query(`INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`, Object.values(row));
          }
          await client.query("INSERT INTO audit_head (id, seq, hash) VALUES (1, 5, $1)", [records[4]!.hash]);
        } finally {
          await client.end();
        }
        const store = await PostgresStore.open(url);
        try {
          assert.equal((await store.diagnostics()).schemaVersion, POSTGRES_MIGRATIONS.length);
          await store.appendAuditRecords(auditChain(6, records[4]!.hash, 1, () => ({ accountUin: "200000000002" })));
          const numbering = async (accountUin: string) =>
            (await store.searchAccountAudit({ accountUin, fromTime: 0, toTime: 2e12, filters: {}, limit: 50, scanLimit: 100 })).records.map((r) => [r.seq, r.accountSeq]).reverse();
          assert.deepEqual(await numbering("100000000001"), [[1, 1], [3, 2], [4, 3]]);
          assert.deepEqual(await numbering("200000000002"), [[2, 1], [5, 2], [6, 3]]);
        } finally {
          await store.close();
          await dropSchema(schema);
        }
      });

      it("003-identity gives every access key of a version-2 database to its account's root, recorded as a principal", async () => {
        const { schema, url } = await freshSchema();
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          assert.equal(await applyPostgresMigrations(client, POSTGRES_MIGRATIONS.slice(0, 2), "test"), 2);
          for (const [secretId, uin, createTime] of [["AKIDa2", "100000000001", 200], ["AKIDa1", "100000000001", 100], ["AKIDb1", "200000000002", 300]] as const) {
            await client.query("INSERT INTO access_keys (secret_id, wrapped_secret, uin, status, create_time) VALUES ($1, '\\x00ff', $2, 'Active', $3)", [secretId, uin, createTime]);
          }
        } finally {
          await client.end();
        }
        const store = await PostgresStore.open(url);
        try {
          assert.equal((await store.diagnostics()).schemaVersion, POSTGRES_MIGRATIONS.length);
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
          await dropSchema(schema);
        }
      });

      it("apply each in one transaction: a failing migration leaves no trace and can be retried", async () => {
        const { schema, url } = await freshSchema();
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const broken: Migration = { version: 2, name: "002-broken", sql: "CREATE TABLE t2 (x integer); INSERT INTO no_such_table VALUES (1);" };
          await assert.rejects(applyPostgresMigrations(client, [POSTGRES_MIGRATIONS[0]!, broken], "test"), /002-broken failed: .*no_such_table/);
          assert.deepEqual((await recorded(schema)).map((r) => r.version), [1], "the first migration stays applied");
          const hasT2 = async () => (await admin.query("SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 't2'", [schema])).rowCount === 1;
          assert.equal(await hasT2(), false, "the half-done migration was rolled back");
          const fixed: Migration = { version: 2, name: "002-broken", sql: "CREATE TABLE t2 (x integer);" };
          assert.equal(await applyPostgresMigrations(client, [POSTGRES_MIGRATIONS[0]!, fixed], "test"), 2);
          assert.equal(await hasT2(), true);
          await assert.rejects(applyPostgresMigrations(client, [{ version: 2, name: "002-x", sql: "" }], "test"), /expected 1/);
        } finally {
          await client.end();
          await dropSchema(schema);
        }
      });
    });

    it("stores BIGINT times and BYTEA blobs with PostgreSQL types", () =>
      withStore(async (store, schema) => {
        const key = makeKey({ createTime: 2 ** 40, deletionDate: 2 ** 52 });
        await store.insertKey(key, versionOf(key, 1, Buffer.alloc(300, 0xab)));
        assert.equal((await store.getKey(key.keyId))?.deletionDate, 2 ** 52);
        const types = await admin.query<{ column_name: string; data_type: string }>(
          "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name IN ('keys', 'key_versions') ORDER BY column_name",
          [schema],
        );
        const typeOf = (name: string) => types.rows.filter((r) => r.column_name === name).map((r) => r.data_type);
        assert.deepEqual(typeOf("wrapped_material"), ["bytea"]);
        assert.deepEqual(typeOf("deletion_date"), ["bigint"]);
        assert.deepEqual(typeOf("seq"), ["bigint"]);
      }));

    it("runs every pooled connection serializable, with the configured statement timeout", () =>
      withStore(
        async (store) => {
          const all = await Promise.all(Array.from({ length: 3 }, () => store.diagnostics()));
          for (const d of all) {
            assert.equal(d.defaultIsolation, "serializable");
            assert.equal(d.statementTimeout, "1500ms");
            assert.equal(d.schemaVersion, POSTGRES_MIGRATIONS.length);
          }
        },
        { statementTimeoutMs: 1500, poolSize: 3 },
      ));

    describe("getKey outside transactions", () => {
      it("shares one read among the calls of a turn (one frozen record), and a call after a change sees it", () =>
        withStore(async (store, _schema, url) => {
          const other = await PostgresStore.open(url, { poolSize: 1 });
          try {
            const key = makeKey({ tags: [{ key: "team", value: "a" }] });
            await store.insertKey(key, versionOf(key));
            const [a, b] = await Promise.all([store.getKey(key.keyId), store.getKey(key.keyId)]);
            assert.ok(a !== undefined && a === b, "the calls of one turn get the one record");
            assert.ok(Object.isFrozen(a) && Object.isFrozen(a.tags) && Object.isFrozen(a.tags[0]));
            // A read asked before another node's change may answer the old state; one asked after it may not.
            const before = store.getKey(key.keyId);
            await other.updateKey({ ...key, state: "Disabled" });
            const after = await store.getKey(key.keyId);
            assert.equal(after?.state, "Disabled", "a read asked after the change committed sees it");
            assert.notEqual(await before, after);
            assert.equal(await store.getKey(randomUUID()), undefined);
          } finally {
            await other.close();
          }
        }));

      it("is refused inside the store's own transaction, and a read asked before close() still answers", () =>
        withStore(async (store) => {
          const key = makeKey();
          await store.insertKey(key, versionOf(key));
          await store.transaction(async () => {
            await assert.rejects(store.getKey(key.keyId), /from inside one of its transactions/);
          });
          const asked = store.getKey(key.keyId);
          const closing = store.close();
          assert.equal((await asked)?.keyId, key.keyId);
          await closing;
          await assert.rejects(store.getKey(key.keyId), /is closed/);
        }));
    });

    it("rejects a negative or fractional offset or limit", () =>
      withStore(async (store) => {
        await assert.rejects(store.listKeys({ offset: -1, limit: 1, order: "desc" }), /"offset"/);
        await assert.rejects(store.listKeys({ offset: 0, limit: 1.5, order: "desc" }), /"limit"/);
      }));

    describe("serialization conflicts", () => {
      it("retries the losers of a CmkLimit race: exactly the limit is created", () =>
        withStore(
          async (store) => {
            const limit = 3;
            const contenders = 6;
            let runs = 0;
            let counted = 0;
            const allCounted = deferred();
            const attempt = () =>
              store.transaction(async (tx) => {
                runs++;
                const n = await tx.countKeys();
                // The first runs all count before anyone inserts: a guaranteed conflict.
                if (++counted === contenders) allCounted.resolve();
                if (counted <= contenders) await allCounted.promise;
                if (n >= limit) return false;
                const key = makeKey();
                await tx.insertKey(key, versionOf(key));
                return true;
              });
            const results = await Promise.all(Array.from({ length: contenders }, attempt));
            assert.equal(results.filter(Boolean).length, limit);
            assert.equal(await store.countKeys(), limit);
            assert.ok(runs > contenders, `the losers ran again (${runs} runs)`);
          },
          { poolSize: 6 },
        ));

      it("insertKeyWithinLimit from three nodes at once: 300 concurrent creations, none fails, the limit holds exactly", () =>
        withStore(async (store, _schema, url) => {
          // Each "node" is a store with its own pool, as `tresor serve` opens it.
          const nodes = [store, await PostgresStore.open(url), await PostgresStore.open(url)];
          try {
            const burst = async (count: number, limit: number) => {
              const results = await Promise.allSettled(
                Array.from({ length: count }, (_, i) => {
                  const key = makeKey();
                  return nodes[i % nodes.length]!.insertKeyWithinLimit(key, versionOf(key), limit);
                }),
              );
              const errors = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => String(r.reason));
              return { errors, inserted: results.filter((r) => r.status === "fulfilled" && r.value).length };
            };
            // Before: serializable count-then-insert transactions; about half of such a burst gave up
            // after TRANSACTION_ATTEMPTS runs, each aborted by the others' inserts.
            assert.deepEqual(await burst(300, 10_000), { errors: [], inserted: 300 });
            assert.equal(await store.countKeys(), 300);
            // At the limit: exactly the free slots are taken, the rest refused without an error.
            assert.deepEqual(await burst(300, 350), { errors: [], inserted: 50 });
            assert.equal(await store.countKeys(), 350);
            // While creations queue, the pools stay free for everything else.
            const queued = burst(90, 10_000);
            const t0 = Date.now();
            await Promise.all(Array.from({ length: 30 }, (_, i) => nodes[i % 3]!.getMeta("anything")));
            assert.ok(Date.now() - t0 < 2_000, `reads waited ${Date.now() - t0} ms behind queued creations`);
            assert.deepEqual(await queued, { errors: [], inserted: 90 });
          } finally {
            for (const node of nodes.slice(1)) await node.close();
          }
        }));

      it("retries a lost alias race, so the loser sees the winner's alias", () =>
        withStore(async (store) => {
          const a = makeKey();
          const b = makeKey();
          await store.insertKey(a, versionOf(a));
          await store.insertKey(b, versionOf(b));
          let runs = 0;
          let checked = 0;
          const bothChecked = deferred();
          // The service's UpdateAlias: check that the alias is free, then take it.
          const rename = (keyId: string) =>
            store.transaction(async (tx) => {
              runs++;
              const key = (await tx.getKey(keyId))!;
              const taken = await tx.getKeyByAlias("wanted");
              if (++checked === 2) bothChecked.resolve();
              if (checked <= 2) await bothChecked.promise;
              if (taken !== undefined) throw new Error("alias in use");
              await tx.updateKey({ ...key, alias: "wanted" });
            });
          const results = await Promise.allSettled([rename(a.keyId), rename(b.keyId)]);
          assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
          const lost = results.find((r) => r.status === "rejected");
          assert.ok(lost !== undefined && lost.status === "rejected");
          assert.match(String(lost.reason), /alias in use/, "the loser ran again and saw the alias taken, instead of a raw conflict");
          assert.ok(runs >= 3, `${runs} runs`);
          const winner = await store.getKeyByAlias("wanted");
          assert.ok(winner !== undefined && [a.keyId, b.keyId].includes(winner.keyId));
        }));

      it("loses no update of a read-modify-write counter", () =>
        withStore(
          async (store) => {
            await store.setMeta("counter", "0");
            let runs = 0;
            let read = 0;
            const allRead = deferred();
            const increment = () =>
              store.transaction(async (tx) => {
                runs++;
                const n = Number(await tx.getMeta("counter"));
                if (++read === 8) allRead.resolve();
                if (read <= 8) await allRead.promise;
                await tx.setMeta("counter", String(n + 1));
              });
            await Promise.all(Array.from({ length: 8 }, increment));
            assert.equal(await store.getMeta("counter"), "8");
            assert.ok(runs > 8, `${runs} runs`);
          },
          { poolSize: 8 },
        ));

      it("gives up after a bounded number of runs, and retries even when the function caught the failure", () =>
        withStore(async (store, _schema, url) => {
          const other = await PostgresStore.open(url);
          try {
            await store.setMeta("hot", "0");
            let runs = 0;
            const started = Date.now();
            await assert.rejects(
              store.transaction(async (tx) => {
                runs++;
                await tx.getMeta("hot");
                // Another node changes what this transaction read, every time.
                await other.setMeta("hot", String(runs));
                await tx.setMeta("hot", "mine").catch(() => undefined); // swallowed: must not commit anyway
              }),
              (err) => err instanceof PostgresStoreError && err.code === "40001" && new RegExp(`gave up after ${TRANSACTION_ATTEMPTS} attempts`).test(err.message),
            );
            assert.equal(runs, TRANSACTION_ATTEMPTS);
            assert.equal(await store.getMeta("hot"), String(TRANSACTION_ATTEMPTS));
            assert.ok(Date.now() - started < 10_000);
          } finally {
            await other.close();
          }
        }));
    });

    describe("failures", () => {
      it("cancels a statement after the statement timeout, and keeps working", () =>
        withStore(
          async (store, schema) => {
            const key = makeKey();
            await store.insertKey(key, versionOf(key));
            const locker = await admin.connect();
            try {
              await locker.query("BEGIN");
              await locker.query(`LOCK TABLE ${schema}.keys IN ACCESS EXCLUSIVE MODE`);
              const started = Date.now();
              await assert.rejects(store.getKey(key.keyId), (err) => err instanceof PostgresStoreError && err.code === "57014" && !err.message.includes(key.keyId));
              const other = makeKey();
              await assert.rejects(store.transaction((tx) => tx.insertKey(other, versionOf(other))), (err) => err instanceof PostgresStoreError && err.code === "57014");
              assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
            } finally {
              await locker.query("ROLLBACK");
              locker.release();
            }
            assert.equal((await store.getKey(key.keyId))?.alias, key.alias);
            assert.equal(await store.countKeys(), 1);
          },
          { statementTimeoutMs: 300 },
        ));

      it("a connection killed mid-transaction leaves nothing half-written, and the store keeps working", async () => {
        const { schema } = await freshSchema();
        const app = `tresor-kill-${randomUUID().slice(0, 8)}`;
        const store = await PostgresStore.open(urlFor(base, schema, { application_name: app }), { poolSize: 2 });
        const backends = async (state?: string) =>
          (
            await admin.query<{ pid: number }>(
              "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND ($2::text IS NULL OR state = $2::text)",
              [app, state ?? null],
            )
          ).rows.map((r) => r.pid);
        try {
          const key = makeKey({ tags: [{ key: "t", value: "v" }] });
          const halfway = deferred();
          const killed = deferred();
          const running = store.transaction(async (tx) => {
            await tx.insertKey(key, versionOf(key));
            await tx.setMeta("half", "1");
            halfway.resolve();
            await killed.promise;
            await tx.insertKeyVersion(versionOf(key, 2));
          });
          await halfway.promise;
          const pids = await backends("idle in transaction");
          assert.equal(pids.length, 1);
          await admin.query("SELECT pg_terminate_backend($1)", [pids[0]]);
          await sleep(100); // the client sees the connection go while it is not querying: no crash
          killed.resolve();
          await assert.rejects(running, PostgresStoreError);
          assert.equal(await store.getKey(key.keyId), undefined);
          assert.equal(await store.getMeta("half"), undefined);
          assert.equal(await store.getKeyVersion(key.keyId, 1), undefined);
          await store.transaction((tx) => tx.insertKey(key, versionOf(key)));
          assert.equal((await store.getKey(key.keyId))?.tags.length, 1);

          // Idle pooled connections killed: the next read still answers.
          await Promise.all([store.getKey(key.keyId), store.countKeys()]);
          for (const pid of await backends()) await admin.query("SELECT pg_terminate_backend($1)", [pid]);
          assert.equal((await store.getKey(key.keyId))?.alias, key.alias);
          for (const pid of await backends()) await admin.query("SELECT pg_terminate_backend($1)", [pid]);
          assert.equal(await store.transaction((tx) => tx.countKeys()), 1, "a transaction begun on a killed connection starts again");
          await sleep(100);
          await store.setMeta("after", "1");
          assert.equal(await store.getMeta("after"), "1");
        } finally {
          await store.close();
          await dropSchema(schema);
        }
      });

      it("refuses a store call from inside its own transaction, while other stores may be used", () =>
        withStore(async (store, _schema, url) => {
          const other = await PostgresStore.open(url, { poolSize: 1 });
          try {
            await store.transaction(async (tx) => {
              await tx.setMeta("inside", "1");
              await assert.rejects(store.getMeta("inside"), /from inside one of its transactions/);
              await assert.rejects(store.transaction(async () => 1), /not nestable/);
              await assert.rejects(store.close(), /inside a transaction/);
              assert.equal(await other.getMeta("inside"), undefined, "another store sees the state before the transaction");
            });
            assert.equal(await other.getMeta("inside"), "1");
          } finally {
            await other.close();
          }
        }));

      it("keeps a transaction usable after a conflict caught inside it; another failed statement rolls it all back", () =>
        withStore(async (store) => {
          const a = makeKey();
          await store.insertKey(a, versionOf(a));
          const b = makeKey({ alias: a.alias, tags: [{ key: "t", value: "v" }] });
          const c = makeKey();
          await store.transaction(async (tx) => {
            await assert.rejects(tx.insertKey(b, versionOf(b)), (err) => err instanceof StoreConflictError && err.field === "alias");
            await tx.insertKey(c, versionOf(c));
          });
          assert.equal(await store.getKey(b.keyId), undefined);
          assert.equal((await store.getKey(c.keyId))?.alias, c.alias);

          // A NUL character cannot be stored in text: a plain (non-conflict) failure on a read.
          const d = makeKey();
          await assert.rejects(
            store.transaction(async (tx) => {
              await tx.insertKey(d, versionOf(d));
              await tx.getKey("nul\u0000id").catch(() => undefined);
            }),
            /rolled back/,
          );
          assert.equal(await store.getKey(d.keyId), undefined);
        }));

      it("closes idempotently, waiting for calls in flight, and refuses calls afterwards", () =>
        withStore(async (store) => {
          const key = makeKey();
          const pending = store.insertKey(key, versionOf(key));
          const first = store.close();
          assert.equal(store.close(), first);
          await assert.rejects(store.getKey(key.keyId), /is closed/);
          await assert.rejects(store.transaction(async () => 1), /is closed/);
          await pending;
          await first;
          await store.close();
        }));
    });

    describe("server outages", () => {
      const binDir = postgresBinDir();
      const noServer = binDir === undefined ? "no PostgreSQL server binaries (initdb, pg_ctl) found to run a cluster of this test's own" : undefined;
      const skip = noServer !== undefined && !process.env.CI ? noServer : false;

      it("rejects within the connect timeout while the server is down or frozen, and works again when it is back", { skip, timeout: 120_000 }, async () => {
        assert.ok(binDir !== undefined, noServer);
        const cluster = await startCluster(binDir);
        const options = { connectTimeoutMs: 1_000, statementTimeoutMs: 2_000, poolSize: 3 };
        let store: PostgresStore | undefined;
        try {
          store = await PostgresStore.open(cluster.url, options);
          const key = makeKey();
          await store.insertKey(key, versionOf(key));
          const s = store;
          const timed = async (what: string, call: () => Promise<unknown>, bound: number) => {
            const started = Date.now();
            await assert.rejects(call(), PostgresStoreError, what);
            const took = Date.now() - started;
            assert.ok(took < bound, `${what} took ${took} ms`);
          };

          await cluster.stop();
          for (const [what, call] of [
            ["getKey", () => s.getKey(key.keyId)],
            ["insertKey", () => {
              const fresh = makeKey();
              return s.insertKey(fresh, versionOf(fresh));
            }],
            ["transaction", () => s.transaction((tx) => tx.countKeys())],
          ] as const) {
            await timed(`${what} while stopped`, call, options.connectTimeoutMs + 1_500);
          }
          await cluster.start();
          assert.equal((await s.getKey(key.keyId))?.alias, key.alias);
          const later = makeKey();
          await s.transaction((tx) => tx.insertKey(later, versionOf(later)));

          // Frozen: connections open, nothing answers. A pooled connection gives up after the
          // statement and connect timeouts, a new one after the connect timeout.
          await Promise.all([s.getKey(key.keyId), s.countKeys()]);
          await cluster.freeze();
          await timed("getKey while frozen", () => s.getKey(key.keyId), options.statementTimeoutMs + options.connectTimeoutMs + 1_500);
          await timed("transaction while frozen", () => s.transaction((tx) => tx.countKeys()), options.statementTimeoutMs + options.connectTimeoutMs + 1_500);
          await cluster.thaw();
          assert.equal(await s.countKeys(), 2);
          await s.setMeta("back", "1");
          assert.equal(await s.getMeta("back"), "1");
        } finally {
          await store?.close();
          await cluster.destroy();
        }
      });
    });
  });
}
