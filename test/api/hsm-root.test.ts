// A data directory whose root key lives in an HSM (SoftHSM2 here): init, serve, restart.

import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KmsClient } from "tresor/sdk";
import { runCli, startServer } from "../helpers/server.js";
import { SoftHsm, softhsmSkip, type TestToken } from "../helpers/softhsm.js";

describe("a pkcs11 root of trust", { skip: softhsmSkip }, () => {
  let hsm: SoftHsm;
  let token: TestToken;
  let base: string;
  before(async () => {
    hsm = await SoftHsm.create();
    token = await hsm.initToken("tresor-e2e");
    base = await mkdtemp(join(tmpdir(), "tresor-hsm-root-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
    await hsm?.remove();
  });

  const initArgs = (dir: string) => ["init", "--data-dir", dir, "--json", "--root-of-trust", "pkcs11", "--pkcs11-module", hsm.module, "--pkcs11-token", token.label];

  it("refuses to init without a PIN, naming where to give it", async () => {
    const r = await runCli(initArgs(join(base, "nopin")), { env: { SOFTHSM2_CONF: hsm.conf } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TRESOR_PKCS11_PIN/);
  });

  it("keeps the root key in the token: init, serve, encrypt, restart, decrypt", async () => {
    const dir = join(base, "d");
    const env = { SOFTHSM2_CONF: hsm.conf, TRESOR_PKCS11_PIN: token.pin };
    const init = await runCli(initArgs(dir), { env });
    assert.equal(init.code, 0, init.stderr);
    await assert.rejects(readFile(join(dir, "root.key")), "no root key file is written");
    const report = await hsm.inspectKey(token, "tresor-root");
    assert.equal(report.found, 1);
    assert.equal(report.sensitive, true);
    assert.equal(report.extractable, false);
    assert.match(String(report.value), /^CKR_/, "the token refuses to reveal the root key");

    const first = await startServer({ dataDir: dir, env, keepDataDir: true });
    let blob: string;
    const c1 = new KmsClient({ endpoint: first.url, secretId: first.secretId, secretKey: first.secretKey, region: first.region });
    try {
      assert.match(first.logs(), /"rootOfTrust":"pkcs11:tresor-e2e\/tresor-root"/);
      assert.ok(!first.logs().includes(token.pin), "the PIN is not logged");
      const keyId = (await c1.createKey({ Alias: "under-hsm-root" })).KeyId!;
      blob = await c1.encryptBytes(keyId, Buffer.from("wrapped by the HSM"));
    } finally {
      c1.close();
      await first.stop();
    }

    const noPin = await runCli(["serve", "--data-dir", dir, "--port", "0"], { env: { SOFTHSM2_CONF: hsm.conf } });
    assert.notEqual(noPin.code, 0);
    assert.match(noPin.stderr, /PIN/);

    const second = await startServer({ dataDir: dir, env, keepDataDir: true });
    const c2 = new KmsClient({ endpoint: second.url, secretId: second.secretId, secretKey: second.secretKey, region: second.region });
    try {
      assert.equal((await c2.decryptBytes(blob)).toString(), "wrapped by the HSM");
    } finally {
      c2.close();
      await second.stop();
    }
  });
});
