// What an operator and a load balancer see: GET /readyz follows the store's and the root of
// trust's health, a dependency that cannot be reached answers ServiceUnavailable (never an
// internal error, never a hang), and GET /metrics counts requests, latency, cache and dependency
// errors. In process, over a real SQLite store and root key file whose reachability the test switches.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { buildServer, listen } from "../../src/api/server.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { RootOfTrustUnavailableError, type RootOfTrust } from "../../src/rootkey/root-of-trust.js";
import { KmsClient, KmsClientError } from "../../src/sdk/index.js";
import { KmsService } from "../../src/service/kms-service.js";
import { PostgresStoreError } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import type { Store } from "../../src/store/store.js";
import { ManualClock } from "./helpers-inprocess.js";

/** What the switchable store throws: as PostgresStore does when the server is gone or too busy. */
let storeFailure: PostgresStoreError | undefined;
let rootDown = false;

/** Every call of `target`'s methods fails with storeFailure while it is set. */
function switchableStore(target: SqliteStore): Store {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (storeFailure !== undefined && prop !== "close") return Promise.reject(storeFailure);
        return (value as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  }) as unknown as Store;
}

function switchableRoot(target: RootOfTrust): RootOfTrust {
  const unavailable = () => Promise.reject(new RootOfTrustUnavailableError("root of trust pkcs11:test is unavailable (token removed)"));
  return {
    description: target.description,
    wrap: (p, a) => (rootDown ? unavailable() : target.wrap(p, a)),
    unwrap: (w, a) => (rootDown ? unavailable() : target.unwrap(w, a)),
    close: () => target.close(),
  };
}

describe("readiness, ServiceUnavailable and metrics", () => {
  let dir: string;
  let app: FastifyInstance;
  let url: string;
  let client: KmsClient;
  let service: KmsService;
  let sqlite: SqliteStore;
  let root: FileRootOfTrust;
  const clock = new ManualClock();
  const logLines: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tresor-ops-"));
    root = await FileRootOfTrust.create(path.join(dir, "root.key"));
    sqlite = await SqliteStore.open(path.join(dir, "tresor.db"));
    await sqlite.setMeta("region", "local");
    service = new KmsService({
      store: switchableStore(sqlite),
      rootOfTrust: switchableRoot(root),
      clock,
      region: "local",
      defaultKeySpec: "SM4",
      cmkLimit: 100,
      accessKeyCacheMs: 0,
    });
    const { secretId, secretKey } = await service.access.createRootAccessKey("100000000001");
    const logger = pino({ level: "info" }, { write: (line: string) => void logLines.push(line) });
    app = buildServer({ service, clock, logger, region: "local", nodeId: "ops-test:1" });
    url = await listen(app, "127.0.0.1", 0, false);
    client = new KmsClient({ endpoint: url, secretId, secretKey, maxRetries: 0 });
  });
  after(async () => {
    client.close();
    await app.close();
    service.close();
    await sqlite.close();
    await root.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Past the readiness check's one-second memory. */
  const nextSecond = () => clock.advance(1_001);

  async function readyz(): Promise<{ status: number; body: Record<string, string> }> {
    const res = await fetch(`${url}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  async function rejection(promise: Promise<unknown>): Promise<KmsClientError> {
    try {
      await promise;
    } catch (err) {
      assert.ok(err instanceof KmsClientError, String(err));
      return err;
    }
    assert.fail("expected a rejection");
  }

  it("is ready, without authentication, when both dependencies answer", async () => {
    assert.deepEqual(await readyz(), { status: 200, body: { status: "ready", store: "ok", rootOfTrust: "ok" } });
  });

  it("answers ServiceUnavailable and reports not ready while the store is down, then recovers", async () => {
    const keyId = (await client.createKey({ Alias: "ops-store" })).KeyId!;
    storeFailure = new PostgresStoreError("PostgresStore.getKey: no connection to postgres://tresor@db/kms: connect ECONNREFUSED", undefined);
    try {
      const err = await rejection(client.encryptBytes(keyId, Buffer.from("x")));
      assert.equal(err.code, "ServiceUnavailable");
      assert.match(err.message, /cannot reach its key store/);
      assert.doesNotMatch(err.message, /postgres:|ECONNREFUSED/, "no connection details on the wire");
      nextSecond();
      assert.deepEqual(await readyz(), { status: 503, body: { status: "unavailable", store: "unavailable", rootOfTrust: "ok" } });
      // A statement cancelled by its timeout, or the server shutting down, is unavailability too.
      for (const code of ["57014", "57P01", "08006"]) {
        storeFailure = new PostgresStoreError(`PostgresStore.getKey: failed (SQLSTATE ${code})`, code);
        assert.equal((await rejection(client.encryptBytes(keyId, Buffer.from("x")))).code, "ServiceUnavailable");
      }
      // Contention that outlasted the store's retries: nothing was done; retrying is right.
      storeFailure = new PostgresStoreError("PostgresStore.transaction: gave up after 10 attempts", "40001");
      const busy = await rejection(client.createKey({ Alias: "ops-busy" }));
      assert.equal(busy.code, "ServiceUnavailable");
      assert.match(busy.message, /busy/);
      // Any other database error stays an internal error.
      storeFailure = new PostgresStoreError("PostgresStore.getKey: relation does not exist (SQLSTATE 42P01)", "42P01");
      assert.equal((await rejection(client.encryptBytes(keyId, Buffer.from("x")))).code, "InternalError");
    } finally {
      storeFailure = undefined;
    }
    nextSecond();
    assert.equal((await readyz()).status, 200);
    assert.match(await client.encryptBytes(keyId, Buffer.from("after")), /^[A-Za-z0-9+/]+=*$/);
  });

  it("answers ServiceUnavailable and reports not ready while the root of trust is down", async () => {
    const keyId = (await client.createKey({ Alias: "ops-root" })).KeyId!;
    await client.encryptBytes(keyId, Buffer.from("warm the cache"));
    rootDown = true;
    try {
      // A fresh key needs the root of trust to create it.
      const err = await rejection(client.createKey({ Alias: "ops-root-2" }));
      assert.equal(err.code, "ServiceUnavailable");
      assert.match(err.message, /root of trust/);
      nextSecond();
      assert.deepEqual(await readyz(), { status: 503, body: { status: "unavailable", store: "ok", rootOfTrust: "unavailable" } });
      // A key whose material is cached still works: the cache bridges a short HSM outage.
      assert.match(await client.encryptBytes(keyId, Buffer.from("cached")), /^[A-Za-z0-9+/]+=*$/);
    } finally {
      rootDown = false;
    }
    nextSecond();
    assert.equal((await readyz()).status, 200);
  });

  it("remembers the readiness answer for a second", async () => {
    nextSecond();
    assert.equal((await readyz()).status, 200);
    storeFailure = new PostgresStoreError("down", "08006");
    try {
      assert.equal((await readyz()).status, 200, "the cached answer");
      nextSecond();
      assert.equal((await readyz()).status, 503);
    } finally {
      storeFailure = undefined;
    }
    nextSecond();
  });

  it("exposes Prometheus text: requests by action and code, latency, cache and dependency errors", async () => {
    const keyId = (await client.createKey({ Alias: "ops-metrics" })).KeyId!;
    for (let i = 0; i < 3; i++) await client.encryptBytes(keyId, Buffer.from(`m${i}`));
    await rejection(client.encryptBytes("00000000-0000-4000-8000-000000000000", Buffer.from("x")));
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const value = (series: string): number => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      assert.ok(line, `no series ${series} in:\n${text}`);
      return Number(line.slice(series.length + 1));
    };
    const node = 'node="ops-test:1"';
    assert.ok(value(`tresor_requests_total{${node},action="Encrypt",code="Success"}`) >= 5);
    assert.equal(value(`tresor_requests_total{${node},action="Encrypt",code="ResourceUnavailable.CmkNotFound"}`), 1);
    assert.ok(value(`tresor_requests_total{${node},action="Encrypt",code="ServiceUnavailable"}`) >= 4);
    const count = value(`tresor_request_duration_seconds_count{${node},action="Encrypt"}`);
    assert.equal(value(`tresor_request_duration_seconds_bucket{${node},action="Encrypt",le="+Inf"}`), count);
    assert.ok(value(`tresor_request_duration_seconds_bucket{${node},action="Encrypt",le="10"}`) <= count);
    assert.ok(value(`tresor_request_duration_seconds_sum{${node},action="Encrypt"}`) > 0);
    assert.ok(value(`tresor_material_cache_lookups_total{${node},result="hit"}`) >= 3);
    assert.ok(value(`tresor_material_cache_lookups_total{${node},result="miss"}`) >= 1);
    assert.ok(value(`tresor_dependency_errors_total{${node},dependency="store"}`) >= 5);
    assert.ok(value(`tresor_dependency_errors_total{${node},dependency="root_of_trust"}`) >= 1);
    assert.ok(value(`tresor_readiness_check_failures_total{${node},dependency="store"}`) >= 2);
    assert.ok(value(`tresor_readiness_check_failures_total{${node},dependency="root_of_trust"}`) >= 1);
    // Every sample line is `name{labels} number`; probes and scrapes are not counted as requests.
    for (const line of text.trimEnd().split("\n")) {
      if (!line.startsWith("#")) assert.match(line, /^[a-z_]+\{[^}]*\} [0-9.e+-]+$/, line);
    }
    assert.doesNotMatch(text, /action="none"/, "GET /readyz and /metrics are not counted as requests");
    assert.ok(!logLines.some((l) => l.includes("/readyz") || l.includes("/metrics")));
    assert.ok(logLines.some((l) => l.includes('"msg":"dependency unavailable"')));
  });
});
