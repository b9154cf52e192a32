// `tresor encrypt-file` / `decrypt-file` against a real server: files and pipes, several keys and
// regions, context checks, and atomic output (nothing left behind on failure).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { KmsClient } from "../../src/sdk/index.js";
import { runCli, runCliBinary, startServer, type TestServer } from "../helpers/server.js";

// A guard against a hang, not a speed bound: some forty CLI processes, each a few seconds on a loaded machine.
describe("tresor encrypt-file / decrypt-file", { timeout: 600_000 }, () => {
  let one: TestServer;
  let two: TestServer;
  let dir: string;
  let keyOne: string;
  let keyTwo: string;
  let pqKey: string;
  let common: string[];

  before(async () => {
    [one, two] = await Promise.all([startServer({ region: "east" }), startServer({ region: "west" })]);
    dir = await mkdtemp(path.join(tmpdir(), "tresor-efile-"));
    const c1 = new KmsClient({ endpoint: one.url, secretId: one.secretId, secretKey: one.secretKey, region: one.region });
    const c2 = new KmsClient({ endpoint: two.url, secretId: two.secretId, secretKey: two.secretKey, region: two.region });
    keyOne = (await c1.createKey({ Alias: "efile-one" })).KeyId!;
    keyTwo = (await c2.createKey({ Alias: "efile-two" })).KeyId!;
    pqKey = (await c1.createKey({ Alias: "efile-pq", KeyUsage: "ASYMMETRIC_DECRYPT_ML_KEM_1024" })).KeyId!;
    c1.close();
    c2.close();
    common = ["--endpoint", one.url, "--data-dir", one.dataDir];
  });
  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("round-trips a multi-frame file with context, and reports as JSON", async () => {
    const plain = randomBytes(300_000);
    await writeFile(path.join(dir, "a.bin"), plain);
    const enc = await runCli([
      "encrypt-file", ...common, "--key", keyOne, "--context", "app=files", "--context", "env=test", "--frame-size", "4096", "--suite", "SM4_CTR_HMAC_SM3_SM2", "--json",
      path.join(dir, "a.bin"), path.join(dir, "a.tre"),
    ]);
    assert.equal(enc.code, 0, enc.stderr);
    const report = JSON.parse(enc.stdout) as { Suite: string; EncryptionContext: Record<string, string>; BytesRead: number };
    assert.equal(report.Suite, "SM4_CTR_HMAC_SM3_SM2");
    assert.deepEqual(report.EncryptionContext, { app: "files", env: "test" });
    assert.equal(report.BytesRead, plain.length);
    const dec = await runCli(["decrypt-file", ...common, "--require-context", "app=files", path.join(dir, "a.tre"), path.join(dir, "a.out")]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.deepEqual(await readFile(path.join(dir, "a.out")), plain);
  });

  it("--post-quantum wraps the data key to an ML-KEM key's public key; decrypt-file unwraps it through PostQuantumCryptoDecrypt", async () => {
    const plain = randomBytes(50_000);
    await writeFile(path.join(dir, "pq.bin"), plain);
    const enc = await runCli([
      "encrypt-file", ...common, "--post-quantum", "--key-id", "alias/efile-pq", "--suite", "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65", "--json",
      path.join(dir, "pq.bin"), path.join(dir, "pq.tre"),
    ]);
    assert.equal(enc.code, 0, enc.stderr);
    const report = JSON.parse(enc.stdout) as { EncryptedDataKeys: { provider: string; keyId: string }[] };
    assert.deepEqual(report.EncryptedDataKeys.map((e) => [e.provider, e.keyId]), [["tresor-pq", pqKey]]);
    const dec = await runCli(["decrypt-file", ...common, "--json", path.join(dir, "pq.tre"), path.join(dir, "pq.out")]);
    assert.equal(dec.code, 0, dec.stderr);
    assert.deepEqual((JSON.parse(dec.stdout) as { DecryptedWith: unknown }).DecryptedWith, { provider: "tresor-pq", region: "east", keyId: pqKey });
    assert.deepEqual(await readFile(path.join(dir, "pq.out")), plain);
    // A symmetric CMK has no public key to wrap to: refused, nothing written.
    const wrong = await runCli(["encrypt-file", ...common, "--post-quantum", "--key-id", keyOne, path.join(dir, "pq.bin"), path.join(dir, "pq-wrong.tre")]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /GetPublicKey|not a post-quantum decryption key/);
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith("pq-wrong")));
  });

  it("works through stdin and stdout", async () => {
    const plain = randomBytes(70_000);
    const enc = await runCliBinary(["encrypt-file", ...common, "--key", keyOne, "-", "-"], { input: plain });
    assert.equal(enc.code, 0, enc.stderr);
    assert.equal(enc.stdout.subarray(0, 4).toString("latin1"), "TRSE");
    const dec = await runCliBinary(["decrypt-file", ...common, "-", "-"], { input: enc.stdout });
    assert.equal(dec.code, 0, dec.stderr);
    assert.deepEqual(dec.stdout, plain);
  });

  it("fails, naming the region, when a backup region refuses, and leaves nothing behind", async () => {
    await writeFile(path.join(dir, "r.bin"), "two regions");
    // The CLI signs for every region with one access key (the library takes one client per region,
    // each with its own credentials); region west does not know region east's key, so its Encrypt
    // is refused and the whole encryption must fail rather than write a message without its backup.
    const enc = await runCli([
      "encrypt-file", ...common, "--region", "east", "--region-endpoint", `west=${two.url}`, "--key", keyOne, "--key", `west:${keyTwo}`,
      path.join(dir, "r.bin"), path.join(dir, "r.tre"),
    ]);
    assert.equal(enc.code, 1);
    assert.match(enc.stderr, /NoDataKey: cannot get a data key: Encrypt in region west key/);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes("r.tre")), []);
  });

  it("refuses a context mismatch and a damaged or cut message, leaving no output behind", async () => {
    await writeFile(path.join(dir, "b.bin"), randomBytes(50_000));
    const enc = await runCli(["encrypt-file", ...common, "--key", keyOne, "--context", "app=files", "--frame-size", "1000", path.join(dir, "b.bin"), path.join(dir, "b.tre")]);
    assert.equal(enc.code, 0, enc.stderr);
    const message = await readFile(path.join(dir, "b.tre"));

    const mismatch = await runCli(["decrypt-file", ...common, "--require-context", "app=other", path.join(dir, "b.tre"), path.join(dir, "b.out")]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /ContextMismatch/);

    await writeFile(path.join(dir, "cut.tre"), message.subarray(0, message.length - 100));
    const cut = await runCli(["decrypt-file", ...common, path.join(dir, "cut.tre"), path.join(dir, "b.out")]);
    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /Truncated/);

    const damaged = Buffer.from(message);
    damaged[damaged.length - 2000]! ^= 1;
    await writeFile(path.join(dir, "bad.tre"), damaged);
    const bad = await runCli(["decrypt-file", ...common, path.join(dir, "bad.tre"), path.join(dir, "b.out")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /AuthenticationFailed/);

    const left = (await readdir(dir)).filter((f) => f.includes("b.out"));
    assert.deepEqual(left, [], "no OUT and no temporary file may remain");
  });

  it("gives each region its own endpoints and credentials: --key REGION:KEYID@URL and --credentials", async () => {
    // Each server made its own data dir, so each has its own admin credentials: a request signed
    // with the other's is refused. No --endpoint, no --data-dir, and a cwd without ./tresor-data:
    // every credential below comes from --credentials.
    assert.notEqual(one.secretId, two.secretId);
    const plain = randomBytes(200_000);
    await writeFile(path.join(dir, "pr.bin"), plain);
    const twoCreds = path.join(dir, "west-credentials.json");
    await writeFile(twoCreds, JSON.stringify({ secretId: two.secretId, secretKey: two.secretKey }), { mode: 0o600 });
    const enc = await runCli(
      [
        "encrypt-file", "--key", `east:${keyOne}@${one.url}`, "--key", `west:${keyTwo}@${two.url}`,
        "--credentials", `east=${one.dataDir}`, "--credentials", `west=${twoCreds}`, "--frame-size", "65536", "--json",
        path.join(dir, "pr.bin"), path.join(dir, "pr.tre"),
      ],
      { cwd: dir },
    );
    assert.equal(enc.code, 0, enc.stderr);
    const report = JSON.parse(enc.stdout) as { EncryptedDataKeys: Array<{ region: string; keyId: string }> };
    assert.deepEqual(report.EncryptedDataKeys.map((e) => [e.region, e.keyId]), [["east", keyOne], ["west", keyTwo]]);

    // Either region alone decrypts, each with its own credentials.
    const westOnly = await runCli(
      ["decrypt-file", "--region-endpoint", `west=${two.url}`, "--credentials", `west=${two.dataDir}`, "--json", path.join(dir, "pr.tre"), path.join(dir, "pr.west")],
      { cwd: dir },
    );
    assert.equal(westOnly.code, 0, westOnly.stderr);
    assert.equal((JSON.parse(westOnly.stdout) as { DecryptedWith: { region: string } }).DecryptedWith.region, "west");
    assert.deepEqual(await readFile(path.join(dir, "pr.west")), plain);
    // East behind two endpoints, the first one dead: the second answers.
    const eastOnly = await runCli(
      ["decrypt-file", "--region-endpoint", `east=http://127.0.0.1:1,${one.url}`, "--credentials", `east=${one.dataDir}`, "--json", path.join(dir, "pr.tre"), path.join(dir, "pr.east")],
      { cwd: dir },
    );
    assert.equal(eastOnly.code, 0, eastOnly.stderr);
    assert.equal((JSON.parse(eastOnly.stdout) as { DecryptedWith: { region: string } }).DecryptedWith.region, "east");
    assert.deepEqual(await readFile(path.join(dir, "pr.east")), plain);

    // West's endpoint with east's credentials is refused, and the error names the region.
    const wrong = await runCli(
      ["decrypt-file", "--region-endpoint", `west=${two.url}`, "--credentials", `west=${one.dataDir}`, path.join(dir, "pr.tre"), path.join(dir, "pr.wrong")],
      { cwd: dir },
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /NoDataKey: no encrypted data key could be decrypted:[\s\S]*region west key/);
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes("pr.wrong")), []);
  });

  it("takes regions, endpoints and credentials from one --keyring file for both commands", async () => {
    const plain = randomBytes(90_000);
    await writeFile(path.join(dir, "kr.bin"), plain);
    const sub = path.join(dir, "conf");
    await mkdir(sub, { recursive: true });
    // East's credentials from a file (relative to the keyring file), west's from the environment.
    await writeFile(path.join(sub, "east.json"), JSON.stringify({ secretId: one.secretId, secretKey: one.secretKey }), { mode: 0o600 });
    const keyringFile = path.join(sub, "keyring.json");
    await writeFile(
      keyringFile,
      JSON.stringify({
        keys: [
          { keyId: keyOne, region: "east", endpoints: [one.url], credentialsFile: "east.json" },
          { keyId: keyTwo, region: "west", endpoints: [two.url], secretIdEnv: "WEST_SECRET_ID", secretKeyEnv: "WEST_SECRET_KEY" },
        ],
      }),
    );
    const env = { WEST_SECRET_ID: two.secretId, WEST_SECRET_KEY: two.secretKey };
    const enc = await runCli(["encrypt-file", "--keyring", keyringFile, "--json", path.join(dir, "kr.bin"), path.join(dir, "kr.tre")], { cwd: dir, env });
    assert.equal(enc.code, 0, enc.stderr);
    const report = JSON.parse(enc.stdout) as { EncryptedDataKeys: Array<{ region: string }> };
    assert.deepEqual(report.EncryptedDataKeys.map((e) => e.region), ["east", "west"]);
    const dec = await runCli(["decrypt-file", "--keyring", keyringFile, "--json", path.join(dir, "kr.tre"), path.join(dir, "kr.out")], { cwd: dir, env });
    assert.equal(dec.code, 0, dec.stderr);
    assert.equal((JSON.parse(dec.stdout) as { DecryptedWith: { region: string } }).DecryptedWith.region, "east");
    assert.deepEqual(await readFile(path.join(dir, "kr.out")), plain);

    // --key picks keys from the keyring's regions: west alone as primary.
    const westKey = await runCli(["encrypt-file", "--keyring", keyringFile, "--key", `west:${keyTwo}`, "--json", path.join(dir, "kr.bin"), path.join(dir, "kr2.tre")], { cwd: dir, env });
    assert.equal(westKey.code, 0, westKey.stderr);
    assert.deepEqual((JSON.parse(westKey.stdout) as { EncryptedDataKeys: Array<{ region: string }> }).EncryptedDataKeys.map((e) => e.region), ["west"]);

    // Without west's variables: a usage error naming them, before any request.
    const noEnv = await runCli(["decrypt-file", "--keyring", keyringFile, path.join(dir, "kr.tre"), path.join(dir, "kr.out2")], { cwd: dir });
    assert.equal(noEnv.code, 2);
    assert.match(noEnv.stderr, /region west: set WEST_SECRET_ID and WEST_SECRET_KEY/);
  });

  it("refuses contradictory or malformed region settings with exit code 2", async () => {
    await writeFile(path.join(dir, "u.bin"), "x");
    const twice = await runCli(
      ["encrypt-file", "--key", `east:${keyOne}@${one.url}`, "--region-endpoint", `east=${two.url}`, "--credentials", `east=${one.dataDir}`, path.join(dir, "u.bin"), path.join(dir, "u.tre")],
      { cwd: dir },
    );
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /region east: endpoints given twice and different/);
    const bad = path.join(dir, "bad-keyring.json");
    await writeFile(bad, JSON.stringify({ keys: [{ keyId: keyOne, region: "east", endpoints: [one.url], secretId: "inline secrets are not read" }] }));
    const unknown = await runCli(["encrypt-file", "--keyring", bad, path.join(dir, "u.bin"), path.join(dir, "u.tre")], { cwd: dir });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown field "secretId"/);
    const orphan = await runCli(["decrypt-file", "--endpoint", one.url, "--data-dir", one.dataDir, "--credentials", `west=${two.dataDir}`, path.join(dir, "u.tre"), path.join(dir, "u.out")], { cwd: dir });
    assert.equal(orphan.code, 2);
    assert.match(orphan.stderr, /region west: credentials given but no endpoint/);
    const badKey = await runCli(["encrypt-file", "--endpoint", one.url, "--data-dir", one.dataDir, "--key", "a:b:c", path.join(dir, "u.bin"), path.join(dir, "u.tre")], { cwd: dir });
    assert.equal(badKey.code, 2);
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith("u.tre") || f.startsWith("u.out")), []);
  });

  it("refuses a message whose frames are longer than --max-frame-size", async () => {
    await writeFile(path.join(dir, "mf.bin"), randomBytes(10_000));
    const enc = await runCli(["encrypt-file", ...common, "--key", keyOne, "--frame-size", "8192", path.join(dir, "mf.bin"), path.join(dir, "mf.tre")]);
    assert.equal(enc.code, 0, enc.stderr);
    const refused = await runCli(["decrypt-file", ...common, "--max-frame-size", "4096", path.join(dir, "mf.tre"), path.join(dir, "mf.out")]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FrameTooLarge/);
    const ok = await runCli(["decrypt-file", ...common, "--max-frame-size", "8192", path.join(dir, "mf.tre"), path.join(dir, "mf.out")]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it("gives usage errors exit code 2", async () => {
    const noKey = await runCli(["encrypt-file", ...common, "x", "y"]);
    assert.equal(noKey.code, 2);
    const badRegion = await runCli(["encrypt-file", ...common, "--key", "nowhere:abc", path.join(dir, "b.bin"), path.join(dir, "z")]);
    assert.equal(badRegion.code, 2);
    assert.match(badRegion.stderr, /no endpoint for region nowhere/);
    const missing = await runCli(["encrypt-file", ...common, "--key", keyOne, path.join(dir, "does-not-exist"), path.join(dir, "z")]);
    assert.equal(missing.code, 2);
  });
});
