// The production shape end to end: three `tresor serve` processes sharing one PostgreSQL store
// and one SoftHSM2 token as their root of trust (pkcs11), each node with its own data directory
// holding only the credentials, no root key. Keys made on one node work on the others, SOFTWARE
// keys (material wrapped by the token's root key) and HSM keys (objects in the token) alike; a
// node killed under load and restarted opens the token again and serves everything. Needs
// TRESOR_TEST_PG_URL (.ci/postgres.sh) and SoftHSM2; under CI a missing one fails instead of skipping.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { KmsClient, KmsClientError } from "tresor/sdk";
import { freePort, runCli, startServer, type TestServer } from "../helpers/server.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";
import { seededRandom, waitFor } from "../helpers/wait.js";

const baseUrl = process.env.TRESOR_TEST_PG_URL;
const UNSET = "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh to start a throwaway PostgreSQL)";

if (baseUrl === undefined || baseUrl === "") {
  if (process.env.CI) it("the pkcs11 cluster tests need a PostgreSQL server", () => assert.fail(`${UNSET}; CI must provide one`));
  else it("three nodes on one PostgreSQL store and one SoftHSM2 token", { skip: UNSET }, () => undefined);
} else {
  suite(baseUrl);
}

interface Node {
  id: string;
  dir: string;
  port: number;
  /** How the node gets the token PIN: the environment, or a 0600 file. */
  pin: "env" | "file";
  server: TestServer;
}

interface Made {
  blob: string;
  plaintext: Buffer;
  context: Record<string, string>;
}

function suite(base: string): void {
  describe("three nodes on one PostgreSQL store and one SoftHSM2 token (pkcs11 root of trust)", { skip: softhsmSkip }, () => {
    let hsm: SoftHsm;
    let token: TestToken;
    let tmp: string;
    let admin: pg.Client;
    let schema: string;
    let storeUrl: string;
    let credentials: { secretId: string; secretKey: string; region: string };
    let pinFile: string;
    const nodes: Node[] = [];

    async function startNode(node: Omit<Node, "server">): Promise<Node> {
      const env: Record<string, string> = { SOFTHSM2_CONF: hsm.conf, ...(node.pin === "env" ? { TRESOR_PKCS11_PIN: token.pin } : {}) };
      const serveArgs = ["--store", storeUrl, "--port", String(node.port), "--node-id", node.id, ...(node.pin === "file" ? ["--pkcs11-pin-file", pinFile] : [])];
      const server = await startServer({ dataDir: node.dir, env, keepDataDir: true, serveArgs, startTimeoutMs: 30_000 });
      return { ...node, server };
    }

    const client = (urls: string[], options: { maxRetries?: number } = {}) =>
      new KmsClient({ ...(urls.length === 1 ? { endpoint: urls[0]! } : { endpoints: urls }), ...credentials, timeoutMs: 10_000, ...options });

    before(async () => {
      hsm = await SoftHsm.create();
      token = await hsm.initToken("tresor-pg-cluster");
      tmp = await mkdtemp(join(tmpdir(), "tresor-pkcs11-cluster-"));
      pinFile = join(tmp, "pin");
      await writeFile(pinFile, `${token.pin}\n`, { mode: 0o600 });
      admin = new pg.Client({ connectionString: base });
      await admin.connect();
      schema = `tresor_hsmcl_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      const url = new URL(base);
      url.searchParams.set("options", `-c search_path=${schema}`);
      storeUrl = url.toString();

      // `tresor init` once for the cluster: the root key is made in the token, the setting (module,
      // token and key label, never the PIN) and the root key check value go into PostgreSQL.
      const first = join(tmp, "node-0");
      const init = await runCli(
        ["init", "--store", storeUrl, "--data-dir", first, "--json", "--root-of-trust", "pkcs11", "--pkcs11-module", hsm.module, "--pkcs11-token", token.label],
        { env: { SOFTHSM2_CONF: hsm.conf, TRESOR_PKCS11_PIN: token.pin } },
      );
      assert.equal(init.code, 0, init.stderr);
      credentials = JSON.parse(init.stdout) as typeof credentials;
      assert.deepEqual((await readdir(first)).sort(), ["admin-credentials.json"], "no root key leaves the token");
      assert.equal((await hsm.inspectKey(token, "tresor-root")).extractable, false);
      const dirs = [first];
      for (let i = 1; i < 3; i++) {
        const dir = join(tmp, `node-${i}`);
        await mkdir(dir, { mode: 0o700 });
        await copyFile(join(first, "admin-credentials.json"), join(dir, "admin-credentials.json"));
        dirs.push(dir);
      }
      const ports = [await freePort(), await freePort(), await freePort()];
      // Started one after another: each opens the token and checks the stored root key check value.
      for (const [i, dir] of dirs.entries()) {
        nodes.push(await startNode({ id: `hsm-node-${i}`, dir, port: ports[i]!, pin: i === 2 ? "file" : "env" }));
      }
    });
    after(async () => {
      for (const n of nodes) await n.server.stop();
      if (schema !== undefined) await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin?.end();
      if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
      await hsm?.remove();
    });

    const urls = () => nodes.map((n) => n.server.url);

    it("every node opens the one token and reports both dependencies ready", async () => {
      for (const n of nodes) {
        assert.match(n.server.logs(), new RegExp(`"node":"${n.id}".*"rootOfTrust":"pkcs11:[^"]*tresor-pg-cluster[^"]*".*"msg":"listening"`));
        assert.doesNotMatch(n.server.logs(), new RegExp(token.pin), "the PIN never reaches a log");
        const ready = await fetch(`${n.server.url}/readyz`);
        assert.equal(ready.status, 200);
        assert.deepEqual(await ready.json(), { status: "ready", store: "ok", rootOfTrust: "ok" });
      }
    });

    it("uses keys made on one node from every other: SOFTWARE keys under the token's root key, and HSM keys in the token", async () => {
      const clients = urls().map((u) => client([u]));
      try {
        const [c0, c1, c2] = clients as [KmsClient, KmsClient, KmsClient];
        const soft = (await c0.createKey({ Alias: "cluster-soft", KeySpec: "AES_256" })).KeyId!;
        const hsmKey = (await c1.createKey({ Alias: "cluster-hsm", KeySpec: "AES_256", ProtectionLevel: "HSM" })).KeyId!;
        const sm4 = (await c2.createKey({ Alias: "cluster-sm4" })).KeyId!;
        assert.equal((await c2.describeKey({ KeyId: hsmKey })).KeyMetadata!.ProtectionLevel, "HSM");
        assert.equal((await c0.describeKey({ KeyId: soft })).KeyMetadata!.ProtectionLevel, "SOFTWARE");
        for (const keyId of [soft, hsmKey, sm4]) {
          for (const [i, from] of clients.entries()) {
            const plaintext = randomBytes(48);
            const context = { from: String(i) };
            const blob = await from.encryptBytes(keyId, plaintext, context);
            for (const to of clients) assert.deepEqual(await to.decryptBytes(blob, context), plaintext);
          }
          const dataKey = await c2.generateDataKeyBytes(keyId, 32);
          assert.deepEqual(await c0.decryptBytes(dataKey.ciphertextBlob), dataKey.plaintext);
        }
        // A state change on one node holds on the others at once, HSM key or not.
        await c0.disableKey({ KeyId: hsmKey });
        for (const c of [c1, c2]) {
          await assert.rejects(c.encryptBytes(hsmKey, Buffer.from("disabled")), (e: unknown) => e instanceof KmsClientError && e.code === "ResourceUnavailable.CmkDisabled");
        }
        await c2.enableKey({ KeyId: hsmKey });
        assert.match(await c1.encryptBytes(hsmKey, Buffer.from("enabled again")), /^[A-Za-z0-9+/=]+$/);
      } finally {
        for (const c of clients) c.close();
      }
    });

    it("keeps serving while a node is killed under load and restarted; the restarted node opens the token again", { timeout: 120_000 }, async () => {
      const setup = client(urls());
      const keys = {
        soft: (await setup.createKey({ Alias: "restart-soft", KeySpec: "AES_256" })).KeyId!,
        hsm: (await setup.createKey({ Alias: "restart-hsm", KeySpec: "AES_256", ProtectionLevel: "HSM" })).KeyId!,
      };
      setup.close();
      const made: Made[] = [];
      const failures: { code: string; message: string }[] = [];
      let ok = 0;
      let stop = false;
      const random = seededRandom("pkcs11 cluster load").next;
      // Four workers, each preferring another node, through tresor/sdk with all three endpoints.
      const load = Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          const mine = [...urls().slice(w % 3), ...urls().slice(0, w % 3)];
          const c = client(mine);
          try {
            for (let n = 0; !stop; n++) {
              const keyId = n % 2 === 0 ? keys.soft : keys.hsm;
              try {
                const sample = made[Math.floor(random() * made.length)];
                if (n % 3 === 2 && sample !== undefined) {
                  assert.deepEqual(await c.decryptBytes(sample.blob, sample.context), sample.plaintext);
                } else {
                  const plaintext = randomBytes(1 + (n % 100));
                  const context = { worker: String(w), n: String(n) };
                  made.push({ blob: await c.encryptBytes(keyId, plaintext, context), plaintext, context });
                }
                ok++;
              } catch (err) {
                if (!(err instanceof KmsClientError)) throw err;
                failures.push({ code: err.code, message: err.message });
              }
            }
          } finally {
            c.close();
          }
        }),
      );
      const victim = nodes[1]!;
      let okAtKill = 0;
      try {
        await waitFor("20 requests before the kill", () => ok >= 20);
        victim.server.kill("SIGKILL");
        assert.equal(await victim.server.stop(), null, "killed by the signal");
        okAtKill = ok;
        await waitFor("20 requests with node 1 down", () => ok >= okAtKill + 20);
        nodes[1] = await startNode(victim);
        assert.equal(nodes[1].server.url, victim.server.url, "restarted on the same address");
        const okAtRestart = ok;
        await waitFor("20 requests after the restart", () => ok >= okAtRestart + 20);
      } finally {
        stop = true;
        await load;
      }

      assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${ok + failures.length} requests failed`);
      assert.ok(okAtKill >= 20 && ok - okAtKill >= 20, `too little load: ${okAtKill} before the kill, ${ok} in all`);
      // The restarted node, its caches empty, unwraps SOFTWARE material through the token again and
      // finds the HSM key objects: it decrypts everything the load made, on every node.
      const restarted = client([nodes[1].server.url]);
      try {
        for (const m of made) assert.deepEqual(await restarted.decryptBytes(m.blob, m.context), m.plaintext);
        const fresh = (await restarted.createKey({ Alias: "after-restart-hsm", KeySpec: "AES_256", ProtectionLevel: "HSM" })).KeyId!;
        const blob = await restarted.encryptBytes(fresh, Buffer.from("made after the restart"));
        for (const url of urls()) {
          const c = client([url]);
          try {
            assert.equal((await c.decryptBytes(blob)).toString(), "made after the restart");
          } finally {
            c.close();
          }
        }
      } finally {
        restarted.close();
      }
      assert.equal((await fetch(`${nodes[1].server.url}/readyz`)).status, 200);
      for (const n of [nodes[0]!, nodes[2]!]) assert.doesNotMatch(n.server.logs(), /"msg":"internal error"/);
      process.stdout.write(`# pkcs11 cluster load: ${ok} requests succeeded, ${failures.length} failed, ${made.length} ciphertexts verified on the restarted node\n`);
    });
  });
}
