// Issue 13, "fail visibly": with the disk full every request (even Decrypt) answered InternalError
// while GET /readyz kept answering 200. Now a store that cannot write (disk full, read-only, failing
// disk) answers ServiceUnavailable, takes the node out of rotation (/readyz 503, "unwritable") and
// puts it back by itself once a write succeeds again. Two ways: a store whose writes fail on demand
// (deterministic, everywhere), and a real ENOSPC on a tiny tmpfs (only where mounting is allowed).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { buildServer, listen } from "../../src/api/server.js";
import { openAuditWriter, type AuditWriter } from "../../src/audit/writer.js";
import { initDataDir, openDataDir, type DataDir } from "../../src/data-dir.js";
import { KmsClient, KmsClientError } from "../../src/sdk/index.js";
import { serviceUnavailable, storeUnwritable } from "../../src/service/availability.js";
import { KmsService } from "../../src/service/kms-service.js";
import { PostgresStoreError } from "../../src/store/postgres.js";
import type { Store, StoreOperations } from "../../src/store/store.js";
import { ManualClock } from "./helpers-inprocess.js";

/** Store (and transaction) methods that only read; every other one writes. */
const READS = /^(get|list|count|auditHead|close$)/;

/** `target`, with every write (in or out of a transaction) failing with `failure()` while it returns an error. */
function failingWrites<T extends object>(target: T, failure: () => Error | undefined): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      if (typeof value !== "function") return value;
      const name = String(prop);
      if (name === "transaction") {
        return <R>(fn: (tx: StoreOperations) => Promise<R>, ...rest: unknown[]) =>
          (value as (fn: (tx: StoreOperations) => Promise<R>, ...rest: unknown[]) => Promise<R>).call(t, (tx) => fn(failingWrites(tx, failure)), ...rest);
      }
      return (...args: unknown[]) => {
        const error = READS.test(name) ? undefined : failure();
        if (error !== undefined) return Promise.reject(error);
        return (value as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

interface Node {
  url: string;
  client: KmsClient;
  clock: ManualClock;
  readyz(): Promise<{ status: number; body: Record<string, string> }>;
  close(): Promise<void>;
}

async function startNode(dir: string, wrap: (store: Store) => Store = (s) => s): Promise<Node> {
  const clock = new ManualClock();
  const credentials = await initDataDir(dir, "local", { clock });
  const dataDir: DataDir = await openDataDir(dir);
  const store = wrap(dataDir.store);
  const logger = pino({ level: "silent" });
  const auditor: AuditWriter<StoreOperations> = await openAuditWriter({ store, root: dataDir.rootOfTrust, nodeId: "unwritable-test", now: () => clock.now(), checkpointIntervalMs: 0 });
  const service = new KmsService({ auditor, logger, store, rootOfTrust: dataDir.rootOfTrust, clock, region: "local", defaultKeySpec: "SM4", cmkLimit: 100 });
  const app: FastifyInstance = buildServer({ service, auditor, clock, logger, region: "local" });
  const url = await listen(app, "127.0.0.1", 0, false);
  const client = new KmsClient({ endpoint: url, secretId: credentials.secretId, secretKey: credentials.secretKey, maxRetries: 0 });
  return {
    url,
    client,
    clock,
    async readyz() {
      const res = await fetch(`${url}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    },
    async close() {
      client.close();
      await app.close();
      await auditor.close().catch(() => undefined);
      service.close();
      await dataDir.close();
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<KmsClientError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof KmsClientError, String(err));
    return err;
  }
  assert.fail("expected the request to be refused");
}

/** Past the readiness check's one-second memory. */
const NEXT_CHECK_MS = 1_001;
const UNWRITABLE = { status: 503, body: { status: "unavailable", store: "unwritable", rootOfTrust: "ok" } };
const READY = { status: 200, body: { status: "ready", store: "ok", rootOfTrust: "ok" } };

describe("a store that cannot write: ServiceUnavailable, /readyz 503, then back by itself", () => {
  let parent: string;
  let node: Node;
  let failure: Error | undefined;

  before(async () => {
    parent = await mkdtemp(path.join(tmpdir(), "tresor-unwritable-"));
    node = await startNode(path.join(parent, "data"), (store) => failingWrites(store, () => failure));
  });
  after(async () => {
    failure = undefined;
    await node.close();
    await rm(parent, { recursive: true, force: true });
  });

  for (const [what, make] of [
    ["disk full (SQLITE_FULL)", () => new Database.SqliteError("database or disk is full", "SQLITE_FULL")],
    ["read-only (SQLITE_READONLY)", () => new Database.SqliteError("attempt to write a readonly database", "SQLITE_READONLY")],
    ["disk failing (SQLITE_IOERR_WRITE)", () => new Database.SqliteError("disk I/O error", "SQLITE_IOERR_WRITE")],
  ] as const) {
    it(`${what}: Decrypt and CreateKey answer ServiceUnavailable (was InternalError), /readyz 503 (was 200); recovers when writes succeed`, async () => {
      const keyId = (await node.client.createKey({ Alias: `unwritable-${what.replace(/\W+/g, "-")}` })).KeyId!;
      const blob = await node.client.encryptBytes(keyId, Buffer.from("kept"));
      const before = (await node.client.listKeys({})).TotalCount;
      node.clock.advance(NEXT_CHECK_MS);
      assert.deepEqual(await node.readyz(), READY);

      failure = make();
      try {
        // Decrypt changes nothing, but its audit record must be written before it answers.
        const decrypt = await refusal(node.client.decryptBytes(blob));
        assert.equal(decrypt.code, "ServiceUnavailable");
        assert.match(decrypt.message, /cannot write to its key store/);
        assert.doesNotMatch(decrypt.message, /SQLITE|readonly|disk I\/O/, "no driver text on the wire");
        assert.equal((await refusal(node.client.createKey({ Alias: "never-made" }))).code, "ServiceUnavailable");
        node.clock.advance(NEXT_CHECK_MS);
        assert.deepEqual(await node.readyz(), UNWRITABLE);
        node.clock.advance(NEXT_CHECK_MS);
        assert.deepEqual(await node.readyz(), UNWRITABLE, "every check writes again while the store cannot");
      } finally {
        failure = undefined;
      }
      node.clock.advance(NEXT_CHECK_MS);
      assert.deepEqual(await node.readyz(), READY, "the first check after space returns puts the node back");
      assert.equal((await node.client.decryptBytes(blob)).toString(), "kept");
      assert.equal((await node.client.listKeys({})).TotalCount, before, "the refused CreateKey made nothing");
    });
  }

  it("with no traffic at all, a store that stops taking writes is noticed within the write-probe interval (5 s)", async () => {
    node.clock.advance(NEXT_CHECK_MS);
    assert.deepEqual(await node.readyz(), READY);
    failure = new Database.SqliteError("database or disk is full", "SQLITE_FULL");
    try {
      node.clock.advance(NEXT_CHECK_MS);
      // Reads still work and no write is due yet: between write probes a check only reads.
      assert.deepEqual(await node.readyz(), READY);
      node.clock.advance(5_000);
      assert.deepEqual(await node.readyz(), UNWRITABLE);
    } finally {
      failure = undefined;
    }
    node.clock.advance(NEXT_CHECK_MS);
    assert.deepEqual(await node.readyz(), READY);
  });
});

describe("PostgreSQL errors that mean the store cannot write", () => {
  it("disk full (53100) and a read-only transaction (25006) are ServiceUnavailable, naming the write; other errors are not", () => {
    for (const code of ["53100", "25006"]) {
      const err = new PostgresStoreError(`PostgresStore.appendAuditRecords: failed (SQLSTATE ${code})`, code);
      assert.equal(storeUnwritable(err), true, code);
      assert.match(serviceUnavailable(err)?.message ?? "", /cannot write to its key store/, code);
    }
    assert.equal(storeUnwritable(new PostgresStoreError("unique violation", "23505")), false);
    assert.equal(serviceUnavailable(new PostgresStoreError("unique violation", "23505")), undefined);
    assert.equal(storeUnwritable(new Database.SqliteError("UNIQUE constraint failed: keys.alias", "SQLITE_CONSTRAINT_UNIQUE")), false);
    assert.equal(storeUnwritable(new Error("disk full")), false, "only the drivers' own errors are classified");
  });
});

/**
 * A real full disk: the data directory on a 4 MiB tmpfs, then a file that takes the rest. Needs
 * root and mount(2) (a container may refuse it); skipped with that reason where it cannot mount.
 */
function tryMount(at: string): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs";
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", at], { stdio: "pipe" });
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}

describe("a real full disk (tmpfs)", () => {
  let mountPoint: string;
  let skip: string | undefined;
  before(async () => {
    mountPoint = await mkdtemp(path.join(tmpdir(), "tresor-enospc-"));
    skip = tryMount(mountPoint);
  });
  after(async () => {
    if (skip === undefined) execFileSync("umount", [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });

  it("ENOSPC: requests answer ServiceUnavailable, /readyz 503; deleting the filler brings the node back", async (t) => {
    if (skip !== undefined) return t.skip(skip);
    const dir = path.join(mountPoint, "data");
    await mkdir(dir, { mode: 0o700 });
    const node = await startNode(dir);
    const filler = path.join(mountPoint, "filler");
    try {
      const keyId = (await node.client.createKey({ Alias: "enospc" })).KeyId!;
      const blob = await node.client.encryptBytes(keyId, Buffer.from("on a full disk"));
      await fillDisk(filler);
      // The WAL has room left in pages already written: requests fail once it must grow.
      let code: string | undefined;
      for (let i = 0; i < 2_000 && code === undefined; i++) {
        code = await node.client.decryptBytes(blob).then(
          () => undefined,
          (e: unknown) => (e instanceof KmsClientError ? e.code : String(e)),
        );
      }
      assert.equal(code, "ServiceUnavailable", "a full disk refuses requests as unavailable, not as an internal error");
      node.clock.advance(NEXT_CHECK_MS);
      assert.deepEqual(await node.readyz(), UNWRITABLE);
      await unlink(filler);
      node.clock.advance(NEXT_CHECK_MS);
      assert.deepEqual(await node.readyz(), READY);
      assert.equal((await node.client.decryptBytes(blob)).toString(), "on a full disk");
    } finally {
      await unlink(filler).catch(() => undefined);
      await node.close();
    }
  });
});

/** Writes `file` until the file system is full (ENOSPC), in 64 KiB then 4 KiB steps. */
async function fillDisk(file: string): Promise<void> {
  const handle = await open(file, "w");
  try {
    for (const size of [64 * 1024, 4 * 1024, 512]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          await handle.write(chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw e;
        }
      }
    }
  } finally {
    await handle.close();
  }
}
