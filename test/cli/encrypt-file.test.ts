// `tresor encrypt-file` / `decrypt-file` against a real server: files and pipes, several keys and
// regions, context checks, and atomic output (nothing left behind on failure).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { KmsClient } from "../../src/sdk/index.js";
import { runCli, runCliBinary, startServer, type TestServer } from "../helpers/server.js";

describe("tresor encrypt-file / decrypt-file", { timeout: 120_000 }, () => {
  let one: TestServer;
  let two: TestServer;
  let dir: string;
  let keyOne: string;
  let keyTwo: string;
  let common: string[];

  before(async () => {
    [one, two] = await Promise.all([startServer({ region: "east" }), startServer({ region: "west" })]);
    dir = await mkdtemp(path.join(tmpdir(), "tresor-efile-"));
    const c1 = new KmsClient({ endpoint: one.url, secretId: one.secretId, secretKey: one.secretKey, region: one.region });
    const c2 = new KmsClient({ endpoint: two.url, secretId: two.secretId, secretKey: two.secretKey, region: two.region });
    keyOne = (await c1.createKey({ Alias: "efile-one" })).KeyId!;
    keyTwo = (await c2.createKey({ Alias: "efile-two" })).KeyId!;
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
