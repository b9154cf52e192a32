// Two Tresor servers in two regions: a message encrypted under a CMK in each still decrypts when
// one region is stopped or its key disabled, and fails with every failure named when neither can.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KmsClient } from "../../../src/sdk/index.js";
import { decrypt, encrypt, EncryptionSdkError, KmsKeyring, SUITE_NAMES } from "../../../src/sdk/encryption/index.js";
import { startServer, type TestServer } from "../../helpers/server.js";

describe("KmsKeyring across two regions", { timeout: 120_000 }, () => {
  let r1: TestServer;
  let r2: TestServer;
  let c1: KmsClient;
  let c2: KmsClient;
  let k1: string;
  let k2: string;
  const client = (s: TestServer): KmsClient =>
    new KmsClient({ endpoint: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region, maxRetries: 0, timeoutMs: 3000 });

  before(async () => {
    [r1, r2] = await Promise.all([startServer({ region: "region-one" }), startServer({ region: "region-two" })]);
    c1 = client(r1);
    c2 = client(r2);
    k1 = (await c1.createKey({ Alias: "esdk-r1" })).KeyId!;
    k2 = (await c2.createKey({ Alias: "esdk-r2", KeySpec: "AES_256" })).KeyId!;
  });
  after(async () => {
    c1?.close();
    c2?.close();
    await Promise.all([r1?.stop(), r2?.stop()]);
  });

  const keyring = (): KmsKeyring =>
    new KmsKeyring({ primary: { keyId: k1, region: "region-one", clients: c1 }, backups: [{ keyId: k2, region: "region-two", clients: c2 }] });

  it("encrypts under both regions and decrypts through either", async () => {
    for (const suite of SUITE_NAMES) {
      const { message, info } = await encrypt("across regions", { keyring: keyring(), suite, encryptionContext: { app: "t" } });
      assert.deepEqual(
        info.encryptedDataKeys.map((e) => [e.provider, e.region, e.keyId]),
        [
          ["tresor-kms", "region-one", k1],
          ["tresor-kms", "region-two", k2],
        ],
      );
      const out = await decrypt(message, { keyring: keyring(), requiredContext: { app: "t" } });
      assert.equal(out.plaintext.toString(), "across regions");
      assert.equal(out.info.decryptedWith?.region, "region-one");
      // A keyring that knows only region two still decrypts.
      const onlyTwo = new KmsKeyring({ primary: { keyId: k2, region: "region-two", clients: c2 } });
      assert.equal((await decrypt(message, { keyring: onlyTwo })).info.decryptedWith?.region, "region-two");
    }
  });

  it("still decrypts with the key disabled in one region, then with that region stopped; fails naming both when neither answers", async () => {
    const { message } = await encrypt(Buffer.alloc(300_000, 7), { keyring: keyring(), frameLength: 4096, encryptionContext: { app: "t" } });

    await c1.disableKey({ KeyId: k1 });
    const disabled = await decrypt(message, { keyring: keyring() });
    assert.equal(disabled.info.decryptedWith?.region, "region-two");
    assert.deepEqual(disabled.plaintext, Buffer.alloc(300_000, 7));
    // Encryption needs the primary: with it disabled, it fails and says why.
    await assert.rejects(encrypt("x", { keyring: keyring() }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "NoDataKey" && /region-one/.test(e.message));
    await c1.enableKey({ KeyId: k1 });

    await r2.stop();
    const viaOne = await decrypt(message, { keyring: keyring() });
    assert.equal(viaOne.info.decryptedWith?.region, "region-one");
    // With region one disabled and region two down, nothing can decrypt.
    await c1.disableKey({ KeyId: k1 });
    await assert.rejects(decrypt(message, { keyring: keyring() }), (e: unknown) => {
      assert.ok(e instanceof EncryptionSdkError && e.code === "NoDataKey", String(e));
      assert.equal(e.failures.length, 2);
      assert.match(e.failures[0]!, new RegExp(`^region region-one key ${k1}: ResourceUnavailable`));
      assert.match(e.failures[1]!, new RegExp(`^region region-two key ${k2}: NetworkError`));
      return true;
    });

    await r1.stop();
    await assert.rejects(decrypt(message, { keyring: keyring() }), (e: unknown) => {
      assert.ok(e instanceof EncryptionSdkError && e.code === "NoDataKey");
      assert.match(e.message, /region region-one key .*: NetworkError: Decrypt: cannot reach http/);
      assert.match(e.message, /region region-two key .*: NetworkError: Decrypt: cannot reach http/);
      return true;
    });
  });
});
