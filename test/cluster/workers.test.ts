// `tresor serve --workers 2`: two processes on one port over one SQLite store (and one PostgreSQL
// store when TRESOR_TEST_PG_URL is set): both serve, the audit chain stays one verifiable chain, a
// worker killed with SIGKILL is replaced and every answered request keeps its record, and when the
// supervisor itself is killed the workers finish and exit on their own, losing no record.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import pg from "pg";
import { request } from "node:http";
import { tc3Authorization } from "../../src/crypto/tc3.js";
import { KmsClient } from "../../src/sdk/index.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { resolveWorkers } from "../../src/node/workers.js";
import { availableParallelism } from "node:os";
import { allAuditRecords } from "../helpers/audit-fixtures.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

const WORKERS = ["--workers", "2"];
// Three processes load every module before the supervisor reports "listening": slow on a loaded machine.
const STARTUP_MS = 60_000;

function clientOf(server: TestServer): KmsClient {
  return new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, maxRetries: 0 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Encrypts `count` times, `concurrency` at a time; the RequestIds of the answered ones (failures are allowed: a worker may die under them). */
async function encryptMany(client: KmsClient, keyId: string, count: number, concurrency = 16): Promise<string[]> {
  const answered: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        try {
          answered.push((await client.encrypt({ KeyId: keyId, Plaintext: "aGk=" })).RequestId);
        } catch {
          // refused by a dying worker: not answered, so nothing is owed
        }
      }
    }),
  );
  return answered;
}

async function recordsOf(dataDir: string): Promise<{ requestIds: Set<string>; nodeIds: Set<string> }> {
  const store = SqliteStore.open(path.join(dataDir, "tresor.db"));
  try {
    const records = await allAuditRecords(store);
    return { requestIds: new Set(records.map((r) => r.requestId)), nodeIds: new Set(records.map((r) => r.nodeId)) };
  } finally {
    await store.close();
  }
}

/**
 * Creates a key, starts 300 Encrypts, calls `kill` once some are recorded, and returns the RequestIds
 * of every answered request, the CreateKey's included, once the load is over.
 */
async function answeredAcross(server: TestServer, client: KmsClient, kill: () => void): Promise<{ keyId: string; answered: string[] }> {
  const created = await client.createKey({ Alias: `load-${randomUUID().slice(0, 8)}` });
  const load = encryptMany(client, created.KeyId!, 300);
  await waitFor("some requests answered", async () => (await recordsOf(server.dataDir)).requestIds.size > 20);
  kill();
  return { keyId: created.KeyId!, answered: [created.RequestId, ...(await load)] };
}

/** Every answered request has its record, and the chain verifies. */
async function assertRecorded(dataDir: string, answered: readonly string[]): Promise<void> {
  const { requestIds } = await recordsOf(dataDir);
  const missing = answered.filter((id) => !requestIds.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered requests have no record`);
  await verifyChain(["--data-dir", dataDir]);
}

async function verifyChain(args: string[]): Promise<void> {
  const verified = await runCli(["audit", "verify", ...args, "--json"]);
  assert.equal(verified.code, 0, `audit verify failed: ${verified.stdout}${verified.stderr}`);
}

describe("--workers", () => {
  it("defaults to one worker per core available; 1 and N are taken as given; anything else is refused, naming the flag", () => {
    assert.equal(resolveWorkers(undefined, {}), availableParallelism());
    assert.equal(resolveWorkers("auto", {}), availableParallelism());
    assert.equal(resolveWorkers(undefined, { TRESOR_WORKERS: "1" }), 1);
    assert.equal(resolveWorkers("3", { TRESOR_WORKERS: "1" }), 3);
    for (const bad of ["0", "257", "two", "1.5", "-1"]) assert.throws(() => resolveWorkers(bad, {}), /--workers must be auto or an integer from 1 to 256/);
  });
});

/** A request signed as the official SDKs sign (content-type and host only: X-TC-Action is not covered). */
function unsignedActionRequest(server: TestServer, body: string): Record<string, string> {
  const timestamp = Math.floor(Date.now() / 1000);
  const host = new URL(server.url).hostname;
  const authorization = tc3Authorization({
    secretId: server.secretId,
    secretKey: server.secretKey,
    service: "kms",
    timestamp,
    request: { method: "POST", path: "/", query: "", headers: { "content-type": "application/json", host }, signedHeaders: ["content-type", "host"], payload: body },
  });
  return { "content-type": "application/json", "x-tc-version": "2019-01-18", "x-tc-timestamp": String(timestamp), "x-tc-region": server.region, authorization };
}

/** Sends the request as `action` on a connection of its own (so that requests go to the workers in turn): the Response. */
function sendAs(server: TestServer, headers: Record<string, string>, body: string, action: string): Promise<{ RequestId: string; Error?: { Code: string } }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: Number(url.port), method: "POST", path: "/", agent: false, headers: { ...headers, "x-tc-action": action } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")).Response));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("tresor serve --workers 2 on SQLite", () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it("serves one port from both workers, sees a state change at once on both, and writes one audit chain that verifies", async () => {
    const server = await startServer({ serveArgs: WORKERS, keepDataDir: true, startTimeoutMs: STARTUP_MS });
    servers.push(server);
    assert.equal(server.workerPids.length, 2);
    const client = clientOf(server);
    try {
      const { KeyId } = await client.createKey({ Alias: "workers" });
      const answered = await encryptMany(client, KeyId!, 200);
      assert.equal(answered.length, 200);
      // Both workers have the key in their caches now; the next request after DisableKey, on either
      // worker (connections are handed out in turn), is refused: no window.
      await client.disableKey({ KeyId: KeyId! });
      for (let i = 0; i < 8; i++) {
        // A client of its own: a new connection, so the requests go to both workers in turn.
        const fresh = clientOf(server);
        const refused = await fresh.encrypt({ KeyId: KeyId!, Plaintext: "aGk=" }).then(
          () => undefined,
          (e: { code?: string }) => e.code,
        );
        fresh.close();
        assert.equal(refused, "ResourceUnavailable.CmkDisabled", `request ${i} after DisableKey`);
      }
    } finally {
      client.close();
    }
    assert.equal(await server.stop(), 0);
    const { nodeIds } = await recordsOf(server.dataDir);
    for (const slot of [0, 1]) assert.ok([...nodeIds].some((n) => n.endsWith(`:w${slot}`)), `worker ${slot} answered no request: ${[...nodeIds].join(", ")}`);
    await verifyChain(["--data-dir", server.dataDir]);
    await rm(path.dirname(server.dataDir), { recursive: true, force: true });
  });

  it("refuses a captured request replayed as another action whichever worker takes it (one table of signature bindings)", async () => {
    const server = await startServer({ serveArgs: WORKERS, keepDataDir: true, startTimeoutMs: STARTUP_MS });
    servers.push(server);
    const body = "{}";
    const headers = unsignedActionRequest(server, body);
    const first = await sendAs(server, headers, body, "GetServiceStatus");
    assert.equal(first.Error, undefined, JSON.stringify(first.Error));
    const refused: string[] = [];
    // Connections go to the workers in turn: consecutive replays reach both.
    for (let i = 0; i < 6; i++) {
      const replayed = await sendAs(server, headers, body, "ListKeys");
      assert.equal(replayed.Error?.Code, "AuthFailure.SignatureFailure", `replay ${i} as ListKeys: ${JSON.stringify(replayed)}`);
      refused.push(replayed.RequestId);
    }
    // The same action again is a retry, served by either worker.
    for (let i = 0; i < 2; i++) {
      const retried = await sendAs(server, headers, body, "GetServiceStatus");
      assert.equal(retried.Error, undefined, `retry ${i}: ${JSON.stringify(retried.Error)}`);
    }
    assert.equal(await server.stop(), 0);
    const store = SqliteStore.open(path.join(server.dataDir, "tresor.db"));
    try {
      const records = (await allAuditRecords(store)).filter((r) => refused.includes(r.requestId));
      assert.equal(records.length, refused.length);
      for (const slot of [0, 1]) assert.ok(records.some((r) => r.nodeId.endsWith(`:w${slot}`)), `worker ${slot} refused no replay: ${records.map((r) => r.nodeId).join(", ")}`);
    } finally {
      await store.close();
    }
    await rm(path.dirname(server.dataDir), { recursive: true, force: true });
  });

  it("replaces a worker killed with SIGKILL, and every answered request keeps its record", async () => {
    const server = await startServer({ serveArgs: WORKERS, keepDataDir: true, startTimeoutMs: STARTUP_MS });
    servers.push(server);
    const client = clientOf(server);
    let answered: string[];
    try {
      const run = await answeredAcross(server, client, () => process.kill(server.workerPids[0]!, "SIGKILL"));
      await waitFor("a replacement worker", () => (server.logs().match(/"msg":"worker listening"/g) ?? []).length >= 3, { timeoutMs: STARTUP_MS });
      // The supervisor's JSON lines are buffered for up to a second (src/cli/serve-output.ts): the
      // replacement may say it listens before the supervisor's line about the death is written.
      await waitFor("the supervisor's line about the death", () => /a worker died: starting another/.test(server.logs()), { timeoutMs: STARTUP_MS });
      answered = [...run.answered, ...(await encryptMany(client, run.keyId, 50))];
      assert.ok(answered.length > 50);
    } finally {
      client.close();
    }
    assert.equal(await server.stop(), 0);
    await assertRecorded(server.dataDir, answered);
    await rm(path.dirname(server.dataDir), { recursive: true, force: true });
  });

  it("when the supervisor is killed with SIGKILL, the workers finish and exit, and every answered request keeps its record", async () => {
    const server = await startServer({ serveArgs: WORKERS, keepDataDir: true, startTimeoutMs: STARTUP_MS });
    servers.push(server);
    const client = clientOf(server);
    let answered: string[];
    try {
      answered = (await answeredAcross(server, client, () => server.kill("SIGKILL"))).answered;
    } finally {
      client.close();
    }
    await waitFor("the workers to exit", () => server.workerPids.every((pid) => !alive(pid)), { timeoutMs: STARTUP_MS });
    await assertRecorded(server.dataDir, answered);
    await rm(path.dirname(server.dataDir), { recursive: true, force: true });
  });
});

const pgUrl = process.env["TRESOR_TEST_PG_URL"];
const UNSET = "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh to start a throwaway PostgreSQL)";

describe("tresor serve --workers 2 on PostgreSQL", () => {
  if (pgUrl === undefined || pgUrl === "") {
    if (process.env["CI"]) it("needs a PostgreSQL server", () => assert.fail(`${UNSET}; CI must provide one`));
    else it("is skipped", { skip: UNSET }, () => undefined);
    return;
  }
  it("serves one port from both workers, writing one audit chain that verifies, and replaces a killed worker", async () => {
    const schema = `workers_${randomUUID().replaceAll("-", "")}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const storeUrl = new URL(pgUrl);
    storeUrl.searchParams.set("options", `-c search_path=${schema}`);
    const base = await mkdtemp(path.join(tmpdir(), "tresor-workers-pg-"));
    const dataDir = path.join(base, "data");
    try {
      const init = await runCli(["init", "--store", storeUrl.href, "--data-dir", dataDir, "--json"]);
      assert.equal(init.code, 0, init.stderr);
      const server = await startServer({ dataDir, serveArgs: ["--store", storeUrl.href, ...WORKERS], startTimeoutMs: STARTUP_MS });
      const client = clientOf(server);
      const answered: string[] = [];
      try {
        const created = await client.createKey({ Alias: "pg-workers" });
        answered.push(created.RequestId);
        const load = encryptMany(client, created.KeyId!, 200);
        await waitFor("some requests answered", async () => Number((await admin.query(`SELECT count(*) AS n FROM ${schema}.audit_records`)).rows[0].n) > 20);
        process.kill(server.workerPids[0]!, "SIGKILL");
        answered.push(...(await load));
        await waitFor("a replacement worker", () => (server.logs().match(/"msg":"worker listening"/g) ?? []).length >= 3, { timeoutMs: STARTUP_MS });
        answered.push(...(await encryptMany(client, created.KeyId!, 50)));
      } finally {
        client.close();
        assert.equal(await server.stop(), 0);
      }
      const rows = await admin.query(`SELECT request_id, node_id FROM ${schema}.audit_records`);
      const requestIds = new Set(rows.rows.map((r: { request_id: string }) => r.request_id));
      const missing = answered.filter((id) => !requestIds.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered requests have no record`);
      const nodeIds = new Set(rows.rows.map((r: { node_id: string }) => r.node_id));
      for (const slot of [0, 1]) assert.ok([...nodeIds].some((n) => n.endsWith(`:w${slot}`)), `worker ${slot} answered no request: ${[...nodeIds].join(", ")}`);
      await verifyChain(["--store", storeUrl.href, "--data-dir", dataDir]);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
      await rm(base, { recursive: true, force: true });
    }
  });
});
