// Issue 21, "first hour with Tresor": each friction a new user met, as the command they ran and
// what it prints now. One CLI vocabulary (docs/cli.md): --key-id takes an id, an alias or
// alias/NAME; --context takes JSON or key=value; times are human in tables and ISO 8601 in --json;
// errors speak in commands and flags and keep the API's code and RequestId.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { opensslSkip } from "../helpers/openssl.js";
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
    ok(await cli(["key", "tag", "set", "payments", "--tag", "team=cards", "--tag", "tier=1"]));
    assert.deepEqual(json(await cli(["key", "list", "--tag", "team=cards", "--json"])).KeyMetadatas.map((k: { KeyId: string }) => k.KeyId), [json(await cli(["key", "get", "payments", "--json"])).KeyMetadata.KeyId]);
    assert.deepEqual(ok(await cli(["key", "tag", "list", "payments"])).trimEnd().split("\n").map((l) => l.trimEnd().split(/\s+/)), [["TagKey", "TagValue"], ["team", "cards"], ["tier", "1"]]);
    ok(await cli(["key", "tag", "remove", "payments", "team"]));
    assert.deepEqual(json(await cli(["key", "tag", "list", "payments", "--json"])).Tags, [{ TagKey: "tier", TagValue: "1" }]);
    ok(await cli(["key", "tag", "remove", "payments", "tier"]));
    assert.match(ok(await cli(["key", "tag", "list", "payments"])), /^\S+ has no tags\n$/);
    assert.deepEqual(json(await cli(["key", "list", "--tag", "team=cards", "--json"])).KeyMetadatas ?? [], []);

    failed(await cli(["key", "rotate", "payments"]), 1, /^error: \S+: key \S+ does not have rotation enabled: tresor key rotation KEY --enable first$/m, /^request id: /m);
    failed(await cli(["key", "schedule-deletion", "payments", "--days", "7"]), 1, /^error: ResourceUnavailable\.CmkShouldBeDisabled: /, /^hint: disable it first: tresor key disable KEY$/m);
    failed(await cli(["encrypt", "--key-id", "payments"], Buffer.alloc(5000)), 2, /larger than 4096 bytes: for larger data use tresor encrypt-file/);
  });

  it("lists the installation's accounts", async () => {
    const created = JSON.parse(ok(await runCli(["account", "create", "--data-dir", server.dataDir, "--json"], { cwd: work }))) as { accountUin: string };
    const first = String(json(await cli(["key", "get", "payments", "--json"])).KeyMetadata.CreatorUinString);
    const listed = JSON.parse(ok(await runCli(["account", "list", "--data-dir", server.dataDir, "--json"], { cwd: work }))) as { Accounts: { AccountUin: string; CreateTime: string }[] };
    assert.deepEqual(listed.Accounts.map((a) => a.AccountUin).sort(), [first, created.accountUin].sort());
    assert.ok(listed.Accounts.every((a) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(a.CreateTime)));
    const table = ok(await runCli(["account", "list", "--data-dir", server.dataDir], { cwd: work }));
    assert.match(table, new RegExp(`^${created.accountUin}\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} UTC$`, "m"));
  });

  it("prints its version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(ok(await cli(["--version"])), `${version}\n`);
  });

  it("reads TRESOR_CA like --ca", async () => {
    failed(await cli(["key", "list"], undefined, { TRESOR_CA: path.join(work, "no-such-ca.pem") }), 2, /cannot read --ca .*no-such-ca\.pem/);
  });
});

describe("names for users, policies and roles", () => {
  it("creates a user, attaches a policy by names, simulates with --context and --key-id, and assumes a role by name", async () => {
    const key = json(await cli(["key", "create", "--alias", "tenant-key", "--json"]));
    const accountUin = String(json(await cli(["key", "get", key.KeyId, "--json"])).KeyMetadata.CreatorUinString);
    assert.match(ok(await cli(["admin", "user", "create", "bob", "--no-access-key"])), /^added user bob/);
    ok(await cli(["admin", "user", "add", "carol", "--no-access-key"])); // the older spelling still works
    const bobKey = json(await cli(["admin", "accesskey", "create", "--user", "bob", "--json"])).AccessKey.AccessKeyId;
    assert.match(ok(await cli(["admin", "accesskey", "list", "--user", "bob"])), new RegExp(`^${bobKey}\\s+Active\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} UTC`, "m"));

    const policy = path.join(work, "acme-only.json");
    const condition = { string_equal: { "kms:encryption_context/tenant": "acme" } };
    await writeFile(policy, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/kms:Encrypt", resource: "*", condition }] }));
    ok(await cli(["admin", "policy", "create", "acme-only", "--file", policy]));
    assert.equal(ok(await cli(["admin", "policy", "attach", "acme-only", "--user", "bob"])), "attached policy acme-only to user bob\n");
    assert.match(ok(await cli(["admin", "policy", "attached", "--user", "bob"])), /acme-only/);
    assert.match(ok(await cli(["admin", "policy", "get", "acme-only"])), /^acme-only \(id \d+, custom\)$/m);

    const simulate = ["admin", "simulate", "--user", "bob", "--action", "kms:Encrypt", "--key-id", "tenant-key"];
    assert.match(ok(await cli([...simulate, "--context", "tenant=acme"])), /allow/i);
    const denied = await cli([...simulate, "--context", '{"tenant":"other"}']);
    assert.equal(denied.code, 3, denied.stderr);

    const trust = path.join(work, "trust.json");
    await writeFile(trust, JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] }));
    ok(await cli(["admin", "role", "create", "operator", "--trust-file", trust]));
    ok(await cli(["admin", "policy", "attach", "QcloudKMSCryptoAccess", "--role", "operator"]));
    const lines = ok(await cli(["admin", "role", "assume", "operator"])).split("\n");
    const exported = Object.fromEntries(lines.filter((l) => l.startsWith("export ")).map((l) => /^export (\w+)=(.*)$/.exec(l)!.slice(1, 3) as [string, string]));
    assert.deepEqual(Object.keys(exported).sort(), ["TRESOR_SECRET_ID", "TRESOR_SECRET_KEY", "TRESOR_TOKEN"]);
    const temporary = { TRESOR_ENDPOINT: server.url, ...exported };
    ok(await runCli(["encrypt", "--key-id", key.KeyId], { cwd: work, env: temporary, input: "as operator" }));
    const noToken = await runCli(["encrypt", "--key-id", key.KeyId], { cwd: work, env: { ...temporary, TRESOR_TOKEN: "" }, input: "x" });
    failed(noToken, 1, /^error: AuthFailure\.SecretIdNotFound: /, /^hint: temporary credentials .* need TRESOR_TOKEN/m);

    ok(await cli(["admin", "policy", "detach", "acme-only", "--user", "bob"]));
    ok(await cli(["admin", "policy", "delete", "acme-only"]));
    failed(await cli(["admin", "policy", "get", "acme-only"]), 1, /no policy is named "acme-only"/);
  });
});

describe("tresor serve, first run", () => {
  it("names the port and --port when the address is in use", async () => {
    const port = new URL(server.url).port;
    const dir = path.join(work, "busy");
    const busy = await runCli(["serve", "--data-dir", dir, "--port", port], { cwd: work });
    assert.equal(busy.code, 1, busy.stderr);
    assert.match(busy.stderr, new RegExp(`^error: port ${port} on 127\\.0\\.0\\.1 is already in use \\(EADDRINUSE\\): .*--port`, "m"));
  });

  it("refuses an unknown --log-format before touching anything", async () => {
    const bad = await runCli(["serve", "--data-dir", path.join(work, "never-made"), "--log-format", "xml"], { cwd: work });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^error: --log-format must be json or pretty, got "xml"$/m);
    await assert.rejects(readFile(path.join(work, "never-made", "node-id")), { code: "ENOENT" });
  });

  it("says which TLS file is wrong when --tls-cert and --tls-key are swapped or not a pair", { skip: opensslSkip }, async () => {
    const tls = path.join(work, "tls");
    await mkdir(tls);
    for (const name of ["a", "b"]) {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", path.join(tls, `${name}.key`), "-out", path.join(tls, `${name}.pem`)], { stdio: "ignore" });
    }
    const serve = (cert: string, key: string) => runCli(["serve", "--data-dir", path.join(work, "tls-data"), "--port", "0", "--tls-cert", path.join(tls, cert), "--tls-key", path.join(tls, key)], { cwd: work });
    const swapped = await serve("a.key", "a.pem");
    assert.equal(swapped.code, 2, swapped.stderr);
    assert.match(swapped.stderr, /^error: --tls-cert holds a private key and --tls-key a certificate: the two files are swapped$/m);
    const mismatched = await serve("a.pem", "b.key");
    assert.equal(mismatched.code, 2, mismatched.stderr);
    assert.match(mismatched.stderr, /^error: --tls-key is not the private key of the first certificate in --tls-cert$/m);
  });

  it("on a terminal prints readable logs, the URL and export lines; keeps its node id; warns when --region contradicts the data directory", async (t) => {
    if (!(await hasScript())) {
      if (process.env["CI"] === "true") assert.fail("script(1) from util-linux is needed to give tresor serve a terminal");
      t.skip("no script(1) to give tresor serve a terminal");
      return;
    }
    const dir = path.join(work, "tty-data");
    const lines = await serveOnTerminal(dir);
    assert.match(lines, /^\d\d:\d\d:\d\d INFO  listening url=http:\/\/127\.0\.0\.1:\d+ /m);
    assert.doesNotMatch(lines, /^\{"level"/m);
    assert.match(lines, /^Tresor is listening on http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(lines, /^ {2}export TRESOR_ENDPOINT=http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(lines, new RegExp(`^  export TRESOR_DATA_DIR=${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
    assert.match(lines, /^ {2}export TRESOR_SECRET_KEY=\$\(node -p /m);
    const nodeId = (await readFile(path.join(dir, "node-id"), "utf8")).trim();
    assert.match(nodeId, /^[\x21-\x7e]+-[0-9a-f]{6}$/);

    // Not a terminal: JSON lines, the same node id; another --region is named in a warning.
    const again = await startServer({ dataDir: dir, keepDataDir: true, serveArgs: ["--region", "elsewhere"] });
    try {
      const records = again.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(records.length > 0 && records.every((r) => r["node"] === nodeId), again.logs());
      assert.ok(records.some((r) => r["level"] === 40 && r["region"] === "elsewhere" && r["dataDirRegion"] === "local" && String(r["msg"]).includes("--region")), again.logs());
    } finally {
      await again.stop();
    }
  });
});

async function hasScript(): Promise<boolean> {
  const { access } = await import("node:fs/promises");
  return access("/usr/bin/script").then(
    () => true,
    () => false,
  );
}

/** Runs `tresor serve` under script(1), a real pseudo-terminal, until it printed its export lines; returns what it printed. */
async function serveOnTerminal(dataDir: string): Promise<string> {
  const { spawn } = await import("node:child_process");
  const { CLI_MAIN, childEnv } = await import("../helpers/server.js");
  const command = [process.execPath, CLI_MAIN, "serve", "--data-dir", dataDir, "--port", "0"].map((a) => `'${a}'`).join(" ");
  const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { cwd: work, env: childEnv(), stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no export lines within 15 s; output:\n${out}`)), 15_000);
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (/export TRESOR_SECRET_KEY=[^\n]*\n/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`serve ended early:\n${out}`)));
    });
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  return out.replace(/\r\n/g, "\n");
}
