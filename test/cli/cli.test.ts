// The client commands end to end: `tresor key …`, `encrypt`, `decrypt`, `datakey`, `random`,
// `pubkey`, `sign`, `verify`, `decrypt --asymmetric` as
// child processes against a real `tresor serve`.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { type CliResult, type TestServer, runCli, runCliBinary, startServer } from "../helpers/server.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

let server: TestServer;
let work: string; // an empty working directory, so ./tresor-data never exists by accident
/** Credentials from the environment. */
let envCreds: Record<string, string>;
/** Credentials from <data-dir>/admin-credentials.json. */
let dirArgs: string[];
let dirEnv: Record<string, string>;

before(async () => {
  server = await startServer();
  work = await mkdtemp(path.join(tmpdir(), "tresor-cli-"));
  envCreds = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey };
  dirArgs = ["--data-dir", server.dataDir];
  dirEnv = { TRESOR_ENDPOINT: server.url };
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function cli(args: string[], options: { env?: Record<string, string>; input?: string | Buffer } = {}): Promise<CliResult> {
  return runCli(args, { cwd: work, ...options });
}

/** Exit 0, nothing on stderr, and never the secret key anywhere. */
function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  assert.equal(result.stderr, "");
  assert.ok(!result.stdout.includes(server.secretKey));
  return result;
}

function failed(result: CliResult, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, `expected exit ${code}, got ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.ok(!result.stderr.includes(server.secretKey) && !result.stdout.includes(server.secretKey));
}

function json(result: CliResult): Record<string, unknown> {
  ok(result);
  const lines = result.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `expected one JSON line, got: ${result.stdout}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

async function createKey(alias: string, extra: string[] = []): Promise<string> {
  const created = json(await cli(["key", "create", "--alias", alias, "--json", ...extra], { env: envCreds }));
  assert.equal(typeof created["KeyId"], "string");
  return created["KeyId"] as string;
}

describe("tresor key", () => {
  it("creates keys with credentials from the environment and from --data-dir", async () => {
    const viaEnv = json(await cli(["key", "create", "--alias", "cli-env", "--description", "from env", "--json"], { env: envCreds }));
    assert.equal(viaEnv["Alias"], "cli-env");
    assert.equal(viaEnv["KeyState"], "Enabled");
    assert.equal(typeof viaEnv["RequestId"], "string");

    const human = ok(await cli(["key", "create", "--alias", "cli-dir", "--key-spec", "AES_256", ...dirArgs], { env: dirEnv }));
    assert.match(human.stdout, /^[0-9a-f-]{36}  cli-dir  Enabled\n$/);

    const bare = json(await cli(["key", "create", "--json", ...dirArgs], { env: dirEnv }));
    assert.match(String(bare["Alias"]), /^key-[0-9a-f]{12}$/);
  });

  it("lists keys as a table and as JSON", async () => {
    const keyId = await createKey("cli-list", ["--key-spec", "SM4"]);
    const table = ok(await cli(["key", "list", "--limit", "200", ...dirArgs], { env: dirEnv })).stdout.split("\n");
    assert.match(table[0] ?? "", /^KeyId\s+Alias\s+Usage\s+State\s+Spec\s+Created$/);
    const row = table.find((line) => line.startsWith(keyId));
    assert.ok(row, table.join("\n"));
    assert.match(row, new RegExp(`^${keyId}\\s+cli-list\\s+ENCRYPT_DECRYPT\\s+Enabled\\s+SM4\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} UTC$`));

    const listed = json(await cli(["key", "list", "--json", "--limit", "200"], { env: envCreds }));
    const metas = listed["KeyMetadatas"] as Array<Record<string, unknown>>;
    assert.ok(metas.some((m) => m["KeyId"] === keyId && m["KeySpec"] === "SM4"));
    assert.equal(typeof listed["TotalCount"], "number");

    const page = json(await cli(["key", "list", "--json", "--offset", "0", "--limit", "1"], { env: envCreds }));
    assert.equal((page["KeyMetadatas"] as unknown[]).length, 1);
  });

  it("describes, disables, enables and renames a key", async () => {
    const keyId = await createKey("cli-life");

    const described = json(await cli(["key", "describe", keyId, "--json"], { env: envCreds }));
    assert.equal((described["KeyMetadata"] as Record<string, unknown>)["Alias"], "cli-life");
    const human = ok(await cli(["key", "describe", keyId, ...dirArgs], { env: dirEnv })).stdout;
    assert.match(human, new RegExp(`^KeyId:\\s+${keyId}$`, "m"));
    assert.match(human, /^State:\s+Enabled$/m);

    assert.equal(ok(await cli(["key", "disable", keyId], { env: envCreds })).stdout, `disabled ${keyId}\n`);
    failed(await cli(["encrypt", "--key-id", keyId], { env: envCreds, input: "x" }), 1, /^error: ResourceUnavailable\.CmkDisabled: /);
    const state = json(await cli(["key", "describe", keyId, "--json"], { env: envCreds }));
    assert.equal((state["KeyMetadata"] as Record<string, unknown>)["KeyState"], "Disabled");

    const enabled = json(await cli(["key", "enable", keyId, "--json", ...dirArgs], { env: dirEnv }));
    assert.equal(enabled["KeyId"], keyId);
    ok(await cli(["encrypt", "--key-id", keyId], { env: envCreds, input: "x" }));

    assert.equal(ok(await cli(["key", "alias", keyId, "cli-renamed"], { env: envCreds })).stdout, `${keyId} is now cli-renamed\n`);
    const renamed = json(await cli(["key", "describe", keyId, "--json"], { env: envCreds }));
    assert.equal((renamed["KeyMetadata"] as Record<string, unknown>)["Alias"], "cli-renamed");
  });

  it("reports server errors as `error: <Code>: <Message>` with exit 1", async () => {
    failed(await cli(["key", "describe", "00000000-0000-4000-8000-000000000000"], { env: envCreds }), 1, /^error: ResourceUnavailable\.CmkNotFound: .+\nrequest id: [0-9a-f-]{36}\n$/);
    failed(await cli(["key", "create", "--alias", "bad alias!"], { env: envCreds }), 1, /^error: InvalidParameterValue\.InvalidAlias: /);
    failed(
      await cli(["random", "--bytes", "4"], { env: { ...envCreds, TRESOR_SECRET_KEY: "wrong" } }),
      1,
      /^error: AuthFailure\.SignatureFailure: /,
    );
    failed(await cli(["random", "--bytes", "4", "--region", "elsewhere"], { env: envCreds }), 1, /^error: UnsupportedRegion: /);
    failed(await cli(["random", "--bytes", "4"], { env: { ...envCreds, TRESOR_REGION: "elsewhere" } }), 1, /^error: UnsupportedRegion: /);
  });

  it("rejects bad usage with exit 2", async () => {
    failed(await cli(["key", "create", "--key-spec", "DES"], { env: envCreds }), 2, /--key-spec/);
    failed(await cli(["key", "list", "--limit", "0"], { env: envCreds }), 2, /--limit/);
    failed(await cli(["key", "list", "--offset", "-1"], { env: envCreds }), 2, /--offset/);
    failed(await cli(["key", "describe"], { env: envCreds }), 2, /missing required argument 'key'/);
    failed(await cli(["key", "alias", "only-one-arg"], { env: envCreds }), 2, /alias/);
  });

  // Issue 13: a Description holding ESC and BEL was printed raw: terminal escape injection.
  it("escapes control characters of server-provided strings in human output, and C1 and bidi controls in --json", async () => {
    const hostile = "ok\x1b]0;owned\x07\x1b[2J\x9b31m\x7f\u202eevil\nState:     Disabled";
    const keyId = await createKey("cli-hostile", ["--description", hostile]);
    const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
    const human = ok(await cli(["key", "describe", keyId], { env: envCreds })).stdout;
    assert.doesNotMatch(human, raw);
    assert.match(human, /^Description:\s+ok\\x1b\]0;owned\\x07\\x1b\[2J\\x9b31m\\x7f\\u202eevil\\nState:     Disabled$/m);
    assert.match(human, /^State:\s+Enabled$/m);
    assert.equal(human.match(/^State:/gm)?.length, 1, "the description cannot add a line");
    const asJson = ok(await cli(["key", "describe", keyId, "--json"], { env: envCreds })).stdout;
    assert.doesNotMatch(asJson, raw);
    assert.equal((JSON.parse(asJson)["KeyMetadata"] as Record<string, unknown>)["Description"], hostile);
  });
});

describe("tresor encrypt / decrypt", () => {
  let keyId: string;
  before(async () => {
    keyId = await createKey("cli-crypto");
  });

  it("round-trips binary data through files", async () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const inFile = path.join(work, "plain.bin");
    const blobFile = path.join(work, "plain.blob");
    const outFile = path.join(work, "plain.out");
    await writeFile(inFile, data);

    const encrypted = ok(await cli(["encrypt", "--key-id", keyId, "--in", inFile, ...dirArgs], { env: dirEnv }));
    const blob = encrypted.stdout.trim();
    assert.equal(encrypted.stdout, `${blob}\n`);
    assert.match(blob, /^[A-Za-z0-9+/=]+$/);
    await writeFile(blobFile, encrypted.stdout);

    const decrypted = ok(await cli(["decrypt", "--in", blobFile, "--out", outFile], { env: envCreds }));
    assert.equal(decrypted.stdout, `wrote 4096 bytes to ${outFile}\n`);
    assert.deepEqual(await readFile(outFile), data);
    assert.equal((await stat(outFile)).mode & 0o777, 0o600);
  });

  it("round-trips through stdin and stdout, with an encryption context", async () => {
    const data = Buffer.from([0, 255, 10, 13, 1, 2, 3]);
    const context = '{"purpose":"cli test","n":"1"}';
    const encrypted = json(await cli(["encrypt", "--key-id", keyId, "--context", context, "--json"], { env: envCreds, input: data }));
    const blob = encrypted["CiphertextBlob"] as string;
    assert.equal(encrypted["KeyId"], keyId);

    const raw = await runCliBinary(["decrypt", "--context", context], { env: envCreds, input: blob });
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual(raw.stdout, data);

    const viaJson = json(await cli(["decrypt", "--context", context, "--json"], { env: envCreds, input: `${blob}\n` }));
    assert.equal(viaJson["Plaintext"], data.toString("base64"));
    assert.equal(viaJson["KeyId"], keyId);

    failed(await cli(["decrypt"], { env: envCreds, input: blob }), 1, /^error: \S+: /);
    failed(await cli(["decrypt", "--context", '{"purpose":"other","n":"1"}'], { env: envCreds, input: blob }), 1, /^error: \S+: /);
  });

  it("refuses bad input with a clear message and exit 2, before any request", async () => {
    // Nothing listens here: a request would fail with NetworkError, not with the usage error.
    const dead = { ...envCreds, TRESOR_ENDPOINT: "http://127.0.0.1:1" };
    failed(await cli(["encrypt"], { env: dead, input: "x" }), 2, /--key-id/);
    failed(await cli(["encrypt", "--key-id", keyId], { env: dead, input: Buffer.alloc(4097) }), 2, /^error: .*larger than 4096 bytes/);
    const big = path.join(work, "big.bin");
    await writeFile(big, Buffer.alloc(10_000));
    failed(await cli(["encrypt", "--key-id", keyId, "--in", big], { env: dead }), 2, /larger than 4096 bytes/);
    failed(await cli(["encrypt", "--key-id", keyId, "--in", path.join(work, "missing")], { env: dead }), 2, /cannot read/);
    failed(await cli(["encrypt", "--key-id", keyId, "--context", "not json"], { env: dead, input: "x" }), 2, /--context/);
    failed(await cli(["encrypt", "--key-id", keyId, "--context", '{"n":1}'], { env: dead, input: "x" }), 2, /--context/);
    failed(await cli(["decrypt"], { env: dead, input: "  \n" }), 2, /no ciphertext/);
    failed(await cli(["encrypt", "--key-id", keyId], { env: dead, input: "x" }), 1, /^error: NetworkError: /);
  });

  it("explains how to provide credentials when there are none", async () => {
    const result = await cli(["encrypt", "--key-id", keyId], { env: { TRESOR_ENDPOINT: server.url }, input: "x" });
    failed(result, 2, /TRESOR_SECRET_ID.*TRESOR_SECRET_KEY.*tresor init/);
    failed(await cli(["random", "--bytes", "4"], { env: { ...dirEnv, TRESOR_SECRET_ID: server.secretId } }), 2, /TRESOR_SECRET_KEY/);
  });
});

describe("tresor datakey / random", () => {
  let keyId: string;
  before(async () => {
    keyId = await createKey("cli-datakey");
  });

  it("generates a data key whose blob decrypts to its plaintext", async () => {
    const human = ok(await cli(["datakey", "--key-id", keyId, ...dirArgs], { env: dirEnv })).stdout;
    const m = /^Plaintext: ([A-Za-z0-9+/=]+)\nCiphertextBlob: ([A-Za-z0-9+/=]+)\n$/.exec(human);
    assert.ok(m, human);
    assert.equal(Buffer.from(m[1]!, "base64").length, 32);
    const back = json(await cli(["decrypt", "--json"], { env: envCreds, input: m[2]! }));
    assert.equal(back["Plaintext"], m[1]);

    const context = '{"file":"a.txt"}';
    const small = json(await cli(["datakey", "--key-id", keyId, "--key-spec", "AES_128", "--context", context, "--json"], { env: envCreds }));
    assert.equal(Buffer.from(String(small["Plaintext"]), "base64").length, 16);
    const backWithContext = json(await cli(["decrypt", "--json", "--context", context], { env: envCreds, input: String(small["CiphertextBlob"]) }));
    assert.equal(backWithContext["Plaintext"], small["Plaintext"]);

    const sized = json(await cli(["datakey", "--key-id", keyId, "--bytes", "48", "--json"], { env: envCreds }));
    assert.equal(Buffer.from(String(sized["Plaintext"]), "base64").length, 48);
  });

  it("returns random bytes", async () => {
    const human = ok(await cli(["random", "--bytes", "32"], { env: envCreds })).stdout;
    assert.equal(Buffer.from(human.trim(), "base64").length, 32);
    const viaJson = json(await cli(["random", "--bytes", "1024", "--json", ...dirArgs], { env: dirEnv }));
    assert.equal(Buffer.from(String(viaJson["Plaintext"]), "base64").length, 1024);
  });

  it("rejects bad sizes with exit 2", async () => {
    const dead = { ...envCreds, TRESOR_ENDPOINT: "http://127.0.0.1:1" };
    for (const bytes of ["0", "1025", "abc", "1.5", "-3"]) {
      failed(await cli(["random", "--bytes", bytes], { env: dead }), 2, /--bytes/);
      failed(await cli(["datakey", "--key-id", keyId, "--bytes", bytes], { env: dead }), 2, /--bytes/);
    }
    failed(await cli(["random"], { env: dead }), 2, /--bytes/);
    failed(await cli(["datakey", "--bytes", "16"], { env: dead }), 2, /--key-id/);
    failed(await cli(["datakey", "--key-id", keyId, "--key-spec", "AES_512"], { env: dead }), 2, /--key-spec/);
    failed(await cli(["datakey", "--key-id", keyId, "--key-spec", "AES_128", "--bytes", "16"], { env: dead }), 2, /cannot be used with/);
  });
});

describe("tresor pubkey / sign / verify / decrypt --asymmetric", { skip: opensslSkip }, () => {
  before(requireOpenssl);

  it("creates an SM2 signing key whose CLI signatures verify with openssl and with `tresor verify`", async () => {
    const keyId = await createKey("cli-sm2-sign", ["--usage", "ASYMMETRIC_SIGN_VERIFY_SM2"]);
    const described = json(await cli(["key", "describe", keyId, "--json"], { env: envCreds }));
    assert.equal((described["KeyMetadata"] as Record<string, unknown>)["KeyUsage"], "ASYMMETRIC_SIGN_VERIFY_SM2");

    const pem = ok(await cli(["pubkey", keyId], { env: envCreds })).stdout;
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const der = ok(await cli(["pubkey", keyId, "--der"], { env: envCreds })).stdout.trim();
    assert.equal(der, pem.replace(/-----[A-Z ]+-----|\n/g, ""));
    const pemFile = path.join(work, "sm2.pem");
    await writeFile(pemFile, pem);

    const message = "a message signed from the command line";
    const signature = ok(await cli(["sign", "--key-id", keyId, "--algorithm", "SM2DSA"], { env: envCreds, input: message })).stdout.trim();
    const msgFile = path.join(work, "msg.txt");
    const sigFile = path.join(work, "msg.sig");
    await writeFile(msgFile, message);
    await writeFile(sigFile, Buffer.from(signature, "base64"));
    const verified = execFileSync(
      "openssl",
      ["pkeyutl", "-verify", "-pubin", "-inkey", pemFile, "-rawin", "-in", msgFile, "-sigfile", sigFile, "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
      { stdio: "pipe" },
    ).toString();
    assert.match(verified, /Signature Verified Successfully/);

    assert.equal(ok(await cli(["verify", "--key-id", keyId, "--algorithm", "SM2DSA", "--in", msgFile, "--signature", signature], { env: envCreds })).stdout, "valid\n");
    const b64File = path.join(work, "msg.sig.b64");
    await writeFile(b64File, `${signature}\n`);
    assert.equal(ok(await cli(["verify", "--key-id", keyId, "--algorithm", "SM2DSA", "--signature-file", b64File], { env: envCreds, input: message })).stdout, "valid\n");
    const other = await cli(["verify", "--key-id", keyId, "--algorithm", "SM2DSA", "--signature", signature], { env: envCreds, input: `${message}!` });
    assert.equal(other.code, 1);
    assert.equal(other.stdout, "invalid\n");

    failed(await cli(["sign", "--key-id", keyId, "--algorithm", "ECC_P256_R1"], { env: envCreds, input: "x" }), 1, /^error: InvalidParameterValue: --algorithm ECC_P256_R1 does not fit/);
    failed(await cli(["sign", "--key-id", keyId, "--algorithm", "MD5"], { env: envCreds, input: "x" }), 2, /--algorithm/);
    failed(await cli(["verify", "--key-id", keyId, "--algorithm", "SM2DSA"], { env: envCreds, input: "x" }), 2, /--signature/);
  });

  it("signs a digest with an ECC key", async () => {
    const keyId = await createKey("cli-ecc", ["--usage", "ASYMMETRIC_SIGN_VERIFY_ECC"]);
    const digest = execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: "hashed elsewhere" });
    const signed = json(await cli(["sign", "--key-id", keyId, "--algorithm", "ECC_P256_R1", "--digest", "--json"], { env: envCreds, input: digest }));
    const verified = await cli(["verify", "--key-id", keyId, "--algorithm", "ECC_P256_R1", "--signature", String(signed["Signature"])], { env: envCreds, input: "hashed elsewhere" });
    assert.equal(ok(verified).stdout, "valid\n", "a DIGEST signature verifies over the RAW message");
  });

  it("decrypts with --asymmetric what openssl encrypted to the SM2 and RSA public keys", async () => {
    for (const [usage, algorithm, opts] of [
      ["ASYMMETRIC_DECRYPT_SM2", undefined, []],
      ["ASYMMETRIC_DECRYPT_RSA_2048", "RSAES_OAEP_SHA_256", ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]],
    ] as const) {
      const keyId = await createKey(`cli-dec-${usage.toLowerCase().replaceAll("_", "-")}`, ["--usage", usage]);
      const pemFile = path.join(work, `${keyId}.pem`);
      await writeFile(pemFile, ok(await cli(["pubkey", keyId], { env: envCreds })).stdout);
      const ctFile = path.join(work, `${keyId}.bin`);
      await writeFile(ctFile, execFileSync("openssl", ["pkeyutl", "-encrypt", "-pubin", "-inkey", pemFile, ...opts], { input: "asymmetric secret" }));
      const out = path.join(work, `${keyId}.out`);
      const args = ["decrypt", "--asymmetric", "--key-id", keyId, "--in", ctFile, "--out", out, ...(algorithm ? ["--algorithm", algorithm] : [])];
      assert.equal(ok(await cli(args, { env: envCreds })).stdout, `wrote 17 bytes to ${out}\n`);
      assert.equal(await readFile(out, "utf8"), "asymmetric secret");
      assert.equal((await stat(out)).mode & 0o777, 0o600);
    }
    failed(await cli(["decrypt", "--asymmetric", "--out", path.join(work, "x")], { env: envCreds, input: "x" }), 2, /--key-id/);
    failed(await cli(["decrypt", "--key-id", "00000000-0000-4000-8000-000000000000"], { env: envCreds, input: "x" }), 2, /--asymmetric/);
  });
});
