// `tresor audit …` as an operator runs it: export and verify offline on a data directory whose
// store holds records (intact, then with a row changed in the SQLite file: verify exits 1 naming
// the seq), a partial export --since, a wrong pinned key; and search and tail through a real
// server.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { AUDIT_PUBLIC_KEY_META } from "../../src/audit/keys.js";
import { openAuditWriter } from "../../src/audit/writer.js";
import { parseTime } from "../../src/cli/audit.js";
import { DATABASE_FILE, initDataDir, openDataDir } from "../../src/node/data-dir.js";
import { spawn } from "node:child_process";
import { CLI_MAIN, childEnv, type CliResult, runCli, startServer, type TestServer } from "../helpers/server.js";

const DAY = 86_400_000;

function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  return result;
}

describe("tresor audit export and verify (offline)", () => {
  let work: string;
  let dataDir: string;
  let publicKey: string;
  const now = Date.now();

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-audit-cli-"));
    dataDir = path.join(work, "data");
    await initDataDir(dataDir, "local");
    const dir = await openDataDir(dataDir);
    try {
      const writer = await openAuditWriter({ store: dir.store, root: dir.rootOfTrust, nodeId: "node-1", checkpointEvery: 10, checkpointIntervalMs: 0 });
      // 30 records ten days ago, 25 in the last hour.
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 55; i++) {
        pending.push(
          writer.record({
            time: i < 30 ? now - 10 * DAY + i * 1000 : now - 3_600_000 + i * 1000,
            action: i % 2 === 0 ? "Encrypt" : "Decrypt",
            result: "Success",
            accountUin: dir.accountUin,
            principalName: "root",
            requestId: `cli-${i}`,
            resourceType: "key",
            resourceName: "key-1",
            params: { Plaintext: "c2VjcmV0" },
          }),
        );
      }
      await Promise.all(pending);
      await writer.close();
      publicKey = (await dir.store.getMeta(AUDIT_PUBLIC_KEY_META))!;
    } finally {
      await dir.close();
    }
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("parses ISO 8601 times and spans before now", () => {
    const at = Date.UTC(2026, 10, 28, 20, 0, 0);
    assert.equal(parseTime("1h", "--since", at), at / 1000 - 3600);
    assert.equal(parseTime("7d", "--since", at), at / 1000 - 7 * 86_400);
    assert.equal(parseTime("90s", "--since", at), at / 1000 - 90);
    assert.equal(parseTime("now", "--until", at), at / 1000);
    assert.equal(parseTime("2026-11-28T20:00:00Z", "--since", at), at / 1000);
    assert.equal(parseTime("2026-11-28", "--since", at), Date.UTC(2026, 10, 28) / 1000);
    for (const bad of ["yesterday", "1y", "-1h", "", "2026-13-45T99:00:00Z"]) assert.throws(() => parseTime(bad, "--since", at), /--since/);
  });

  it("verifies the store in place, pinned to its public key", async () => {
    const r = ok(await runCli(["audit", "verify", "--data-dir", dataDir, "--public-key", publicKey]));
    assert.match(r.stdout, /audit log intact/);
    assert.match(r.stdout, /55 records \(seq 1 to 55\)/);
    assert.match(r.stdout, /checked against the pinned public key/);
    const unpinned = ok(await runCli(["audit", "verify", "--data-dir", dataDir, "--json"]));
    const report = JSON.parse(unpinned.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.records, 55);
    assert.ok(report.checkpoints >= 1);
  });

  it("exports the whole log and verifies the export against a pinned key file; never overwrites", async () => {
    const out = path.join(work, "audit.jsonl");
    const r = ok(await runCli(["audit", "export", "--data-dir", dataDir, "--out", out, "--format", "jsonl"]));
    assert.match(r.stdout, /55 records/);
    assert.ok(r.stdout.includes(publicKey), "prints the key to pin");
    const text = await readFile(out, "utf8");
    assert.ok(!text.includes("c2VjcmV0"), "no parameters in the export");
    const keyFile = path.join(work, "audit.pub");
    await writeFile(keyFile, `${publicKey}\n`);
    const v = ok(await runCli(["audit", "verify", "--from-export", out, "--public-key-file", keyFile]));
    assert.match(v.stdout, /audit log intact/);
    assert.match(v.stdout, /55 records/);
    const again = await runCli(["audit", "export", "--data-dir", dataDir, "--out", out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /EEXIST/);
    const format = await runCli(["audit", "export", "--data-dir", dataDir, "--out", path.join(work, "x.csv"), "--format", "csv"]);
    assert.equal(format.code, 2);
  });

  it("refuses an export signed by another key than the pinned one", async () => {
    const out = path.join(work, "audit-wrongkey.jsonl");
    ok(await runCli(["audit", "export", "--data-dir", dataDir, "--out", out]));
    const other = Buffer.alloc(32, 1).toString("base64");
    const v = await runCli(["audit", "verify", "--from-export", out, "--public-key", other]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stdout, /BROKEN/);
    assert.match(v.stdout, /bad-checkpoint-signature/);
    assert.match(v.stdout, /another public key/);
    const bad = await runCli(["audit", "verify", "--from-export", out, "--public-key", "not base64"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--public-key/);
  });

  it("exports the records since a time, and verifies that slice", async () => {
    const out = path.join(work, "audit-since.jsonl");
    const r = ok(await runCli(["audit", "export", "--data-dir", dataDir, "--out", out, "--since", "2d"]));
    assert.match(r.stdout, /25 records/);
    const v = ok(await runCli(["audit", "verify", "--from-export", out, "--public-key", publicKey]));
    assert.match(v.stdout, /audit log intact/);
    assert.match(v.stdout, /25 records \(seq 31 to 55\)/);
    assert.match(v.stdout, /partial export since .*seq 31/);
    // A record dropped from the middle of the slice is found.
    const lines = (await readFile(out, "utf8")).split("\n");
    const cut = path.join(work, "audit-since-cut.jsonl");
    await writeFile(cut, lines.filter((l) => !l.includes('"requestId":"cli-40"')).join("\n"));
    const broken = await runCli(["audit", "verify", "--from-export", cut, "--public-key", publicKey]);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /first bad record: seq 41 \(deleted\)/);
  });

  it("finds a changed row in the store: exits 1 naming its seq, in place and in an export", async () => {
    const out = path.join(work, "audit-before.jsonl");
    ok(await runCli(["audit", "export", "--data-dir", dataDir, "--out", out]));
    const db = new Database(path.join(dataDir, DATABASE_FILE));
    try {
      assert.equal(db.prepare("UPDATE audit_records SET action = 'ScheduleKeyDeletion' WHERE seq = 17").run().changes, 1);
    } finally {
      db.close();
    }
    const v = await runCli(["audit", "verify", "--data-dir", dataDir, "--public-key", publicKey]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stdout, /audit log BROKEN/);
    assert.match(v.stdout, /first bad record: seq 17 \(changed\)/);
    const j = await runCli(["audit", "verify", "--data-dir", dataDir, "--json"]);
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.stdout).firstBad.seq, 17);
    const tampered = path.join(work, "audit-after.jsonl");
    ok(await runCli(["audit", "export", "--data-dir", dataDir, "--out", tampered]));
    const e = await runCli(["audit", "verify", "--from-export", tampered, "--public-key", publicKey]);
    assert.equal(e.code, 1);
    assert.match(e.stdout, /seq 17/);
    // The export taken before the change still verifies.
    ok(await runCli(["audit", "verify", "--from-export", out, "--public-key", publicKey]));
  });
});

describe("tresor audit search and tail (through the server)", () => {
  let server: TestServer;
  let env: Record<string, string>;
  let keyId: string;

  before(async () => {
    server = await startServer();
    env = { TRESOR_ENDPOINT: server.url, TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey };
    const created = ok(await runCli(["key", "create", "--alias", "audit-cli", "--json"], { env }));
    keyId = JSON.parse(created.stdout).KeyId;
    ok(await runCli(["encrypt", "--key-id", keyId, "--in", "-"], { env, input: "hello" }));
  });

  after(async () => {
    await server?.stop();
  });

  it("searches by key and action, as lines and as JSON", async () => {
    const r = ok(await runCli(["audit", "search", "--key", keyId, "--since", "1h"], { env }));
    assert.match(r.stdout, new RegExp(`kms:Encrypt\\s+Success\\s+${keyId}`));
    // The key as every command takes it: its alias, bare or alias/NAME, or its id in upper case.
    for (const key of ["audit-cli", "alias/audit-cli", keyId.toUpperCase()]) {
      assert.equal(ok(await runCli(["audit", "search", "--key", key, "--since", "1h"], { env })).stdout, r.stdout, key);
    }
    const j = ok(await runCli(["audit", "search", "--action", "Encrypt", "--json"], { env }));
    const events = JSON.parse(j.stdout).Events as Record<string, any>[];
    assert.ok(events.length >= 1);
    assert.ok(events.every((e) => e.EventName === "Encrypt"));
    const none = ok(await runCli(["audit", "search", "--user", "nobody-at-all", "--json"], { env }));
    assert.deepEqual(JSON.parse(none.stdout).Events, []);
    const bad = await runCli(["audit", "search", "--since", "last tuesday"], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since/);
  });

  it("tails the newest events, oldest of them first", async () => {
    const r = ok(await runCli(["audit", "tail", "-n", "3"], { env }));
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 3);
    const seqs = lines.map((l) => Number(/#(\d+)/.exec(l)![1]));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  });

  it("follows with -f: prints each new event once, and stops cleanly on SIGINT", async () => {
    const child = spawn(process.execPath, [CLI_MAIN, "audit", "tail", "-f", "--interval", "1", "-n", "1"], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const waitFor = async (test: () => boolean, what: string) => {
      for (let i = 0; i < 100 && !test(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(test(), `${what}; stdout: ${out}; stderr: ${err}`);
    };
    try {
      await waitFor(() => out.split("\n").length >= 2, "the newest event first");
      ok(await runCli(["key", "list"], { env }));
      await waitFor(() => /kms:ListKeyDetail/.test(out), "the new ListKeyDetail event");
      await new Promise((r) => setTimeout(r, 2500));
      child.kill("SIGINT");
      assert.equal(await exited, 0, err);
    } finally {
      child.kill("SIGKILL");
    }
    const seqs = out.trim().split("\n").map((l) => Number(/#(\d+)/.exec(l)![1]));
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), "each once, in order");
    const followed = out.trim().split("\n").slice(1).join("\n");
    assert.equal(followed.match(/cloudaudit:LookUpEvents/g)?.length ?? 0, 0, "not its own polls (the first line is older: another command's)");
    assert.equal(err, "");
  });
});
