// The server as a process: init, restart persistence, durability after kill -9, TLS, and the
// refusal to serve plain HTTP beyond loopback.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { KmsClient } from "tresor/sdk";
import { officialKmsClient } from "../helpers/official-client.js";
import { runCli, startServer, type TestServer } from "../helpers/server.js";

function client(server: TestServer, ca?: Buffer): KmsClient {
  return new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region, ...(ca ? { ca } : {}) });
}

describe("tresor init", () => {
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "tresor-init-"));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("creates the data directory with private files and prints the credentials once", async () => {
    const dir = join(base, "d1");
    const r = await runCli(["init", "--data-dir", dir, "--region", "test-1", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { secretId: string; secretKey: string; region: string };
    assert.equal(printed.region, "test-1");
    assert.match(printed.secretId, /^AKID[A-Za-z0-9]{32}$/);
    assert.match(printed.secretKey, /^[A-Za-z0-9]{40}$/);
    const saved = JSON.parse(await readFile(join(dir, "admin-credentials.json"), "utf8"));
    assert.deepEqual(saved, printed);
    for (const file of ["admin-credentials.json", "root.key", "tresor.db"]) {
      assert.equal((await stat(join(dir, file))).mode & 0o077, 0, `${file} is private to its owner`);
    }
    assert.equal((await stat(join(dir, "root.key"))).size, 32);
    const db = await readFile(join(dir, "tresor.db"));
    assert.ok(!db.includes(Buffer.from(printed.secretKey)), "the store holds the secret key only wrapped");
  });

  it("refuses to overwrite an existing data directory", async () => {
    const dir = join(base, "d2");
    assert.equal((await runCli(["init", "--data-dir", dir, "--json"])).code, 0);
    const before = await readFile(join(dir, "root.key"));
    const again = await runCli(["init", "--data-dir", dir, "--json"]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /not empty|exists/);
    assert.deepEqual(await readFile(join(dir, "root.key")), before, "the root key is untouched");
  });

  it("refuses a bad region", async () => {
    const r = await runCli(["init", "--data-dir", join(base, "d3"), "--region", "Bad Region!"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /region/);
  });
});

describe("tresor serve", () => {
  it("keeps keys and ciphertexts across a clean restart", async () => {
    const first = await startServer({ keepDataDir: true });
    let blob: string;
    let keyId: string;
    const c1 = client(first);
    try {
      keyId = (await c1.createKey({ Alias: "persist" })).KeyId!;
      blob = await c1.encryptBytes(keyId, Buffer.from("persisted plaintext"), { k: "v" });
      const other = (await c1.createKey({ Alias: "persist-disabled", KeySpec: "AES_256" })).KeyId!;
      await c1.disableKey({ KeyId: other });
    } finally {
      c1.close();
    }
    assert.equal(await first.stop(), 0, "SIGTERM stops the server cleanly");
    assert.match(first.logs(), /"msg":"stopped"/);

    const second = await startServer({ dataDir: first.dataDir });
    const c2 = client(second);
    try {
      assert.equal((await c2.decryptBytes(blob, { k: "v" })).toString(), "persisted plaintext");
      const listed = await c2.listKeyDetail({ SearchKeyAlias: "persist", OrderType: 1 });
      assert.deepEqual(
        listed.KeyMetadatas!.map((m) => [m.Alias, m.KeyState, m.KeySpec]),
        [
          ["persist", "Enabled", "SM4"],
          ["persist-disabled", "Disabled", "AES_256"],
        ],
      );
    } finally {
      c2.close();
      await second.stop();
      await rm(join(first.dataDir, ".."), { recursive: true, force: true });
    }
  });

  it("keeps every acknowledged write after kill -9", async () => {
    const first = await startServer({ keepDataDir: true });
    const c1 = client(first);
    const written: { keyId: string; blob: string; text: string }[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const keyId = (await c1.createKey({ Alias: `crash-${i}` })).KeyId!;
        const text = `acknowledged ${i}`;
        written.push({ keyId, blob: await c1.encryptBytes(keyId, Buffer.from(text)), text });
      }
      await c1.disableKey({ KeyId: written[0]!.keyId });
    } finally {
      c1.close();
    }
    first.kill("SIGKILL");
    assert.equal(await first.stop(), null, "killed by a signal");

    const second = await startServer({ dataDir: first.dataDir });
    const c2 = client(second);
    try {
      assert.equal((await c2.describeKey({ KeyId: written[0]!.keyId })).KeyMetadata!.KeyState, "Disabled");
      await c2.enableKey({ KeyId: written[0]!.keyId });
      for (const w of written) assert.equal((await c2.decryptBytes(w.blob)).toString(), w.text);
    } finally {
      c2.close();
      await second.stop();
      await rm(join(first.dataDir, ".."), { recursive: true, force: true });
    }
  });

  it("refuses plain HTTP on a non-loopback address unless told otherwise", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tresor-bind-"));
    try {
      const r = await runCli(["serve", "--data-dir", join(dir, "d"), "--host", "0.0.0.0", "--port", "0"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--tls-cert.*--insecure-http|--insecure-http/);
      const half = await runCli(["serve", "--data-dir", join(dir, "d"), "--tls-cert", "x.pem", "--port", "0"]);
      assert.equal(half.code, 2);
      assert.match(half.stderr, /--tls-key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a bad --audit-retention-days before creating anything, naming it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tresor-retention-"));
    try {
      for (const bad of ["0", "abc", "-5", "36501"]) {
        const r = await runCli(["serve", "--data-dir", join(dir, "d"), "--port", "0", "--audit-retention-days", bad]);
        assert.equal(r.code, 2, `--audit-retention-days ${bad}`);
        assert.match(r.stderr, /--audit-retention-days must be an integer from 1 to 36500/);
      }
      await assert.rejects(stat(join(dir, "d")), "no data directory was made");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses bad abuse-limit flags before creating anything, naming them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tresor-limits-"));
    try {
      const cases: [string[], RegExp][] = [
        [["--rate-limit", "-1"], /--rate-limit must be an integer from 1 to 1000000/],
        [["--max-connections", "0"], /--max-connections must be an integer from 1 to 1000000/],
        [["--auth-failure-records", "x"], /--auth-failure-records must be an integer/],
        [["--headers-timeout", "30", "--request-timeout", "20"], /--headers-timeout must not be longer than --request-timeout/],
        [["--keep-alive-timeout", "0"], /--keep-alive-timeout must be an integer from 1 to 3600/],
      ];
      for (const [flags, message] of cases) {
        const r = await runCli(["serve", "--data-dir", join(dir, "d"), "--port", "0", ...flags]);
        assert.equal(r.code, 2, flags.join(" "));
        assert.match(r.stderr, message);
      }
      await assert.rejects(stat(join(dir, "d")), "no data directory was made");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("answers RequestLimitExceeded above --rate-limit (issue 13: no per-account quota)", async () => {
    const server = await startServer({ serveArgs: ["--rate-limit", "1"] });
    try {
      const official = officialKmsClient(server);
      // 20 at once against 1 a second: some are refused unless they take over 19 s.
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => official("GetServiceStatus")));
      const refused = results.filter((r) => r.status === "rejected" && /RequestLimitExceeded/.test(String((r.reason as { code?: string }).code)));
      assert.ok(results.some((r) => r.status === "fulfilled"), "the first request is served");
      assert.ok(refused.length > 0, `refused: ${refused.length}; ${results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")).join(", ")}`);
    } finally {
      await server.stop();
    }
  });

  it("appends every audit record to the --audit-sink file as one JSON line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tresor-sink-"));
    const sink = join(dir, "audit.jsonl");
    const server = await startServer({ serveArgs: ["--audit-sink", sink] });
    try {
      const client = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey });
      const created = await client.createKey({ Alias: "sunk" });
      const listed = await client.listKeys({});
      client.close();
      let lines: Record<string, unknown>[] = [];
      for (let i = 0; i < 50 && lines.length < 2; i++) {
        lines = (await readFile(sink, "utf8").catch(() => "")).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
        if (lines.length < 2) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(
        lines.map((l) => [l.requestId, l.action, l.result]),
        [
          [created.RequestId, "CreateKey", "Success"],
          [listed.RequestId, "ListKeys", "Success"],
        ],
      );
      assert.ok(!lines.some((l) => JSON.stringify(l).includes(server.secretKey)));
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("over TLS", () => {
    let dir: string;
    let server: TestServer;
    let ca: Buffer;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "tresor-tls-"));
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:kms.tresor.test",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
      ], { stdio: "ignore" });
      ca = await readFile(join(dir, "cert.pem"));
      server = await startServer({ serveArgs: ["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")] });
    });
    after(async () => {
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it("serves HTTPS to tresor/sdk and to the official client with the CA trusted", async () => {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const c = client(server, ca);
      try {
        const keyId = (await c.createKey({ Alias: "tls" })).KeyId!;
        const blob = await c.encryptBytes(keyId, Buffer.from("over tls"));
        const official = officialKmsClient(server, { ca });
        const dec = await official("Decrypt", { CiphertextBlob: blob });
        assert.equal(Buffer.from(dec.Plaintext, "base64").toString(), "over tls");
      } finally {
        c.close();
      }
    });

    it("refuses TLS 1.1", async () => {
      const port = Number(new URL(server.url).port);
      await new Promise<void>((resolve, reject) => {
        const socket = connect({ host: "127.0.0.1", port, ca, maxVersion: "TLSv1.1", minVersion: "TLSv1" });
        socket.once("secureConnect", () => {
          socket.destroy();
          reject(new Error("a TLS 1.1 handshake succeeded"));
        });
        socket.once("error", () => resolve());
      });
    });
  });
});
