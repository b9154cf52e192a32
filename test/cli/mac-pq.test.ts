// `tresor key create --usage …`, `mac`/`verify-mac`, `pq-encrypt`/`pq-decrypt` and `sign`/`verify`
// with Ed25519 and ML-DSA keys, as child processes against a Tresor server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runCli, runCliBinary, type CliResult } from "../helpers/server.js";
import { startInProcessServer, type InProcessServer } from "../api/helpers-inprocess.js";
import type { KeyUsage } from "../../src/keys/key.js";

let s: InProcessServer;
let env: Record<string, string>;

before(async () => {
  s = await startInProcessServer();
  env = { TRESOR_ENDPOINT: s.url, TRESOR_SECRET_ID: s.secretId, TRESOR_SECRET_KEY: s.secretKey };
});
after(async () => {
  await s.stop();
});

function ok(r: CliResult): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function createKey(alias: string, ...args: string[]): Promise<string> {
  return (JSON.parse(ok(await runCli(["key", "create", "--alias", alias, ...args, "--json"], { env }))) as { KeyId: string }).KeyId;
}

/** Keys the test only uses are made through the service: each CLI process costs seconds. */
async function serviceKey(alias: string, keyUsage: KeyUsage): Promise<string> {
  return (await s.service.createKey(s.caller, { alias, description: "", keyUsage, tags: [] })).keyId;
}

/** The CLI's signature checked by the service itself (the CLI's verify is checked refusing another message). */
async function verifiesThroughService(alias: string, usage: KeyUsage, signature: string): Promise<boolean> {
  const keyId = await s.service.keyIdOfAlias(s.caller, alias);
  const message = Buffer.from("signed text");
  if (usage === "ASYMMETRIC_SIGN_VERIFY_ED25519") return s.service.verify(s.caller, { keyId, algorithm: "ED25519", message, messageType: "RAW", signature: Buffer.from(signature, "base64") });
  return s.service.postQuantum.verify(s.caller, { keyId, message, signature: Buffer.from(signature, "base64"), context: Buffer.alloc(0) });
}

describe("tresor mac, verify-mac, pq-encrypt, pq-decrypt and sign/verify with new key types", () => {
  it("makes and checks a MAC with an HMAC_SHA256 key; a wrong MAC exits 1", async () => {
    const keyId = await createKey("cli-mac", "--usage", "GENERATE_VERIFY_MAC", "--key-spec", "HMAC_SHA256");
    const mac = ok(await runCli(["mac", "--key-id", "alias/cli-mac"], { env, input: "the message" }));
    assert.equal(Buffer.from(mac, "base64").length, 32);
    assert.equal(ok(await runCli(["verify-mac", "--key-id", keyId, "--mac", mac], { env, input: "the message" })), "valid");
    const r = await runCli(["verify-mac", "--key-id", keyId, "--mac", mac], { env, input: "another message" });
    assert.equal(r.code, 1);
    assert.equal(r.stdout.trim(), "invalid");
  });

  it("pq-encrypt then pq-decrypt round-trips through an ML-KEM-768 key", async () => {
    await serviceKey("cli-kem", "ASYMMETRIC_DECRYPT_ML_KEM_768");
    const blob = ok(await runCli(["pq-encrypt", "--key-id", "alias/cli-kem"], { env, input: "post-quantum secret" }));
    const out = await runCliBinary(["pq-decrypt"], { env, input: blob });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.toString(), "post-quantum secret");
  });

  it("sign and verify work with ML-DSA-65 and Ed25519 keys", async () => {
    for (const [alias, usage] of [["cli-mldsa", "ASYMMETRIC_SIGN_VERIFY_ML_DSA_65"], ["cli-ed25519", "ASYMMETRIC_SIGN_VERIFY_ED25519"]] as const) {
      await serviceKey(alias, usage);
      const signature = ok(await runCli(["sign", "--key-id", `alias/${alias}`], { env, input: "signed text" }));
      const r = await runCli(["verify", "--key-id", `alias/${alias}`, "--signature", signature], { env, input: "other text" });
      assert.equal(r.code, 1, usage);
      assert.ok(await verifiesThroughService(alias, usage, signature), usage);
    }
  });

  it("refuses mac with a key that is not an HMAC key, exiting 2", async () => {
    await serviceKey("cli-sym", "ENCRYPT_DECRYPT");
    const r = await runCli(["mac", "--key-id", "alias/cli-sym"], { env, input: "m" });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /GENERATE_VERIFY_MAC/);
  });
});
