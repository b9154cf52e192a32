// Issue 21, "first hour with Tresor": each friction a new user met, as the command they ran and
// what it prints now. One CLI vocabulary (docs/cli.md): --key-id takes an id, an alias or
// alias/NAME; --context takes JSON or key=value; times are human in tables and ISO 8601 in --json;
// errors speak in commands and flags and keep the API's code and RequestId.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, type TestServer, runCli, runCliBinary, startServer } from "../helpers/server.js";

let server: TestServer;
let work: string;
let env: Record<string, string>;

before(async () => {
  server = await startServer();
  work = await mkdtemp(path.join(tmpdir(), "tresor-first-hour-"));
  env = { TRESOR_ENDPOINT: server.url, TRESOR_DATA_DIR: server.dataDir };
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function cli(args: string[], input?: string | Buffer, extra: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { cwd: work, env: { ...env, ...extra }, ...(input === undefined ? {} : { input }) });
}

function ok(result: CliResult): string {
  assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  assert.equal(result.stderr, "");
  return result.stdout;
}

function json(result: CliResult): Record<string, any> {
  return JSON.parse(ok(result)) as Record<string, any>;
}

function failed(result: CliResult, code: number, ...patterns: RegExp[]): string {
  assert.equal(result.code, code, `expected exit ${code}, got ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  for (const p of patterns) assert.match(result.stderr, p);
  return result.stderr;
}

describe("one CLI vocabulary", () => {
  let payments: string;
  let signer: string;
  let rsa: string;

  before(async () => {
    payments = json(await cli(["key", "create", "--alias", "payments", "--tag", "team=billing", "--json"])).KeyId;
    signer = json(await cli(["key", "create", "--alias", "signer", "--usage", "ASYMMETRIC_SIGN_VERIFY_SM2", "--json"])).KeyId;
    rsa = json(await cli(["key", "create", "--alias", "rsa-in", "--usage", "ASYMMETRIC_DECRYPT_RSA_2048", "--json"])).KeyId;
  });

  it("key list shows keys of every usage with Usage and State columns, and filters on --usage, --state and --tag", async () => {
    const table = ok(await cli(["key", "list", "--limit", "200"])).split("\n");
    assert.match(table[0]!, /^KeyId\s+Alias\s+Usage\s+State\s+Spec\s+Created$/);
    for (const [id, usage] of [
      [payments, "ENCRYPT_DECRYPT"],
      [signer, "ASYMMETRIC_SIGN_VERIFY_SM2"],
      [rsa, "ASYMMETRIC_DECRYPT_RSA_2048"],
    ]) {
      assert.match(table.find((l) => l.startsWith(id!)) ?? "", new RegExp(`\\s${usage}\\s+Enabled\\s`), table.join("\n"));
    }
    const signing = json(await cli(["key", "list", "--usage", "ASYMMETRIC_SIGN_VERIFY_SM2", "--json"]));
    assert.deepEqual(signing.KeyMetadatas.map((k: { KeyId: string }) => k.KeyId), [signer]);
    ok(await cli(["key", "disable", "rsa-in"]));
    const disabled = json(await cli(["key", "list", "--state", "Disabled", "--json"]));
    assert.deepEqual(disabled.KeyMetadatas.map((k: { KeyId: string }) => k.KeyId), [rsa]);
    ok(await cli(["key", "enable", "alias/rsa-in"]));
    const tagged = json(await cli(["key", "list", "--tag", "team=billing", "--json"]));
    assert.deepEqual(tagged.KeyMetadatas.map((k: { KeyId: string }) => k.KeyId), [payments]);
    failed(await cli(["key", "list", "--state", "Sleeping"]), 2, /--state/);
  });

  it("takes a key id, an upper-case id, an alias or alias/NAME wherever a key goes", async () => {
    for (const ref of [payments, payments.toUpperCase(), "payments", "alias/payments"]) {
      assert.equal(json(await cli(["key", "describe", ref, "--json"])).KeyMetadata.KeyId, payments, ref);
    }
    assert.equal(json(await cli(["key", "get", "alias/payments", "--json"])).KeyMetadata.Alias, "payments");
    const blob = ok(await cli(["encrypt", "--key-id", "alias/payments"], "hello")).trim();
    assert.equal(json(await cli(["decrypt", "--json", "--in", "-"], blob)).KeyId, payments);
    const missing = failed(await cli(["key", "describe", "alias/nowhere"]), 1, /^error: ResourceUnavailable\.CmkNotFound: no key has the id or alias "nowhere"/);
    assert.match(missing, /^request id: [0-9a-f-]{36}$/m);
  });

  it("accepts --context as JSON or key=value on encrypt, decrypt, encrypt-file and decrypt-file alike", async () => {
    const blob = ok(await cli(["encrypt", "--key-id", "payments", "--context", "tenant=acme", "--context", "env=prod"], "ctx")).trim();
    const plain = await runCliBinary(["decrypt", "--context", '{"env":"prod","tenant":"acme"}'], { env, input: blob });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.toString(), "ctx");
    failed(await cli(["decrypt", "--context", "tenant=other", "--out", path.join(work, "x")], blob), 1, /^error: /);

    const src = path.join(work, "file.txt");
    await writeFile(src, "file body");
    const encrypted = json(await cli(["encrypt-file", "--key-id", "alias/payments", "--context", '{"tenant":"acme"}', "--json", src, path.join(work, "file.tre")]));
    assert.equal(encrypted.EncryptedDataKeys[0].keyId, payments);
    json(await cli(["decrypt-file", "--context", "tenant=acme", "--json", path.join(work, "file.tre"), path.join(work, "file.out")]));
    assert.equal(await readFile(path.join(work, "file.out"), "utf8"), "file body");
    failed(await cli(["encrypt", "--key-id", "payments", "--context", "novalue"], "x"), 2, /--context.*key=value/);
  });

  it("prints human times in tables and ISO 8601 in --json", async () => {
    assert.match(ok(await cli(["key", "describe", "payments"])), /^Created:\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/m);
    assert.match(json(await cli(["key", "describe", "payments", "--json"])).KeyMetadata.CreateTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it("infers the algorithm when the key allows one, and asks for --algorithm (never SM2) on an RSA key", async () => {
    const signature = ok(await cli(["sign", "--key-id", "signer"], "msg")).trim();
    assert.equal(ok(await cli(["verify", "--key-id", "signer", "--signature", signature], "msg")), "valid\n");
    failed(await cli(["decrypt", "--asymmetric", "--key-id", "rsa-in", "--out", path.join(work, "p")], "x"), 2, /allows several algorithms: give --algorithm RSAES_/);
    failed(await cli(["sign", "--key-id", "payments"], "x"), 1, /ENCRYPT_DECRYPT key: it does not sign/);
  });

  it("re-encrypts, updates a description, and errors speak in commands and flags with the code and RequestId", async () => {
    const ledger = json(await cli(["key", "create", "--alias", "ledger", "--json"])).KeyId;
    const blob = ok(await cli(["encrypt", "--key-id", "payments", "--context", "a=1"], "move me")).trim();
    const moved = ok(await cli(["re-encrypt", "--key-id", "alias/ledger", "--context", "a=1", "--new-context", "b=2"], blob)).trim();
    const back = json(await cli(["decrypt", "--json", "--context", '{"b":"2"}'], moved));
    assert.equal(back.KeyId, ledger);
    assert.equal(Buffer.from(back.Plaintext, "base64").toString(), "move me");
    ok(await cli(["key", "update-description", "payments", "card payments"]));
    assert.equal(json(await cli(["key", "get", "payments", "--json"])).KeyMetadata.Description, "card payments");

    failed(await cli(["key", "rotate", "payments"]), 1, /^error: \S+: key \S+ does not have rotation enabled: tresor key rotation KEY --enable first$/m, /^request id: /m);
    failed(await cli(["key", "schedule-deletion", "payments", "--days", "7"]), 1, /^error: ResourceUnavailable\.CmkShouldBeDisabled: /, /^hint: disable it first: tresor key disable KEY$/m);
    failed(await cli(["encrypt", "--key-id", "payments"], Buffer.alloc(5000)), 2, /larger than 4096 bytes: for larger data use tresor encrypt-file/);
  });

  it("prints its version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(ok(await cli(["--version"])), `${version}\n`);
  });

  it("reads TRESOR_CA like --ca", async () => {
    failed(await cli(["key", "list"], undefined, { TRESOR_CA: path.join(work, "no-such-ca.pem") }), 2, /cannot read --ca .*no-such-ca\.pem/);
  });
});
