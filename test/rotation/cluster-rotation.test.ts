// `tresor rootkey rotate --store` on a cluster: two `tresor serve --store` nodes on one PostgreSQL
// schema, the root key in one SoftHSM2 token; the rotation runs while both serve, both go on
// without a restart, and the file-root case is refused. Needs TRESOR_TEST_PG_URL (.ci/postgres.sh).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { KmsClient } from "tresor/sdk";
import { runCli, startServer, type TestServer } from "../helpers/server.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";

const baseUrl = process.env.TRESOR_TEST_PG_URL;
const UNSET = "TRESOR_TEST_PG_URL is not set (source .ci/postgres.sh to start a throwaway PostgreSQL)";

if (baseUrl === undefined || baseUrl === "") {
  if (process.env.CI) it("cluster rotation tests need a PostgreSQL server", () => assert.fail(`${UNSET}; CI must provide one`));
  else it("cluster root key rotation", { skip: UNSET }, () => undefined);
} else {
  describe("root key rotation on a PostgreSQL cluster with a pkcs11 root", { skip: softhsmSkip }, () => {
    let hsm: SoftHsm;
    let token: TestToken;
    let base: string;
    let admin: pg.Client;
    const schemas: string[] = [];
    const storeUrl = (schema: string) => {
      const url = new URL(baseUrl);
      url.searchParams.set("options", `-c search_path=${schema}`);
      return url.toString();
    };
    const newSchema = async () => {
      const schema = `tresor_rot_${process.pid}_${schemas.length}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      schemas.push(schema);
      return storeUrl(schema);
    };
    before(async () => {
      hsm = await SoftHsm.create();
      token = await hsm.initToken("tresor-cluster-rot");
      base = await mkdtemp(join(tmpdir(), "tresor-cluster-rot-"));
      admin = new pg.Client({ connectionString: baseUrl });
      await admin.connect();
    });
    after(async () => {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin?.end();
      await rm(base, { recursive: true, force: true });
      await hsm?.remove();
    });

    it("rotates while two nodes serve; both keep working and a restarted node opens the new key", async () => {
      const url = await newSchema();
      const env = { SOFTHSM2_CONF: hsm.conf, TRESOR_PKCS11_PIN: token.pin, TRESOR_STORE: url };
      // With a pkcs11 root the data directory holds only the credentials: both nodes use it.
      const dir = join(base, "a");
      const init = await runCli(["init", "--data-dir", dir, "--json", "--root-of-trust", "pkcs11", "--pkcs11-module", hsm.module, "--pkcs11-token", token.label], { env });
      assert.equal(init.code, 0, init.stderr);
      const nodes: TestServer[] = [];
      const clients: KmsClient[] = [];
      try {
        for (let i = 0; i < 2; i++) nodes.push(await startServer({ dataDir: dir, env, keepDataDir: true, serveArgs: ["--store", url] }));
        for (const node of nodes) clients.push(new KmsClient({ endpoint: node.url, secretId: node.secretId, secretKey: node.secretKey, region: node.region }));
        const [a, b] = clients as [KmsClient, KmsClient];
        const keyId = (await a.createKey({ Alias: "before" })).KeyId!;
        const hsmKeyId = (await a.createKey({ Alias: "hsm-before", KeySpec: "AES_256", ProtectionLevel: "HSM" })).KeyId!;
        const blob = await a.encryptBytes(keyId, Buffer.from("made before"));
        const hsmBlob = await a.encryptBytes(hsmKeyId, Buffer.from("hsm before"));

        let stop = false;
        let served = 0;
        const load = (async () => {
          while (!stop) {
            const [from, to] = served % 2 === 0 ? [a, b] : [b, a];
            const made = await from.encryptBytes(keyId, Buffer.from(`during ${served}`));
            assert.equal((await to.decryptBytes(made)).toString(), `during ${served}`, "one node decrypts what the other made");
            await from.createKey({ Alias: `during-${served}` });
            served++;
          }
        })();
        const rotated = await runCli(["rootkey", "rotate", "--store", url, "--data-dir", dir, "--grace-seconds", "2", "--json", "--page-size", "3"], { env });
        stop = true;
        await load;
        assert.equal(rotated.code, 0, rotated.stderr);
        assert.deepEqual((JSON.parse(rotated.stdout) as { to: number }).to, 1);
        assert.ok(served > 2, `served ${served} during the rotation`);
        assert.equal((await hsm.inspectKey(token, "tresor-root.g1")).extractable, false);

        for (const c of clients) {
          assert.equal((await c.decryptBytes(blob)).toString(), "made before");
          assert.equal((await c.decryptBytes(hsmBlob)).toString(), "hsm before");
        }
        await nodes[1]!.stop();
        nodes[1] = await startServer({ dataDir: dir, env, keepDataDir: true, serveArgs: ["--store", url] });
        assert.match(nodes[1].logs(), /tresor-root\.g1/);
        const restarted = new KmsClient({ endpoint: nodes[1].url, secretId: nodes[1].secretId, secretKey: nodes[1].secretKey, region: nodes[1].region });
        clients.push(restarted);
        assert.equal((await restarted.decryptBytes(blob)).toString(), "made before");
        assert.equal((await restarted.decryptBytes(hsmBlob)).toString(), "hsm before");
      } finally {
        for (const c of clients) c.close();
        for (const n of nodes) await n.stop();
      }
    });

    it("refuses to rotate a file root key of a shared store", async () => {
      const url = await newSchema();
      const dir = join(base, "file-root");
      const init = await runCli(["init", "--store", url, "--data-dir", dir, "--json"]);
      assert.equal(init.code, 0, init.stderr);
      const refused = await runCli(["rootkey", "rotate", "--store", url, "--data-dir", dir, "--grace-seconds", "0"]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /file root key of a shared store is not supported/);
    });
  });
}
