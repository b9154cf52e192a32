// `npm run bench`: Tresor's Encrypt, Decrypt and GenerateDataKey throughput against the same signed
// load on a bare node:http server, in one run, reported as a ratio (DESIGN.md: benchmarks report
// ratios to a baseline measured in the same run, never a bare absolute time).
//
// Options (argv or env): --duration=S (BENCH_DURATION, default 5), --warmup=S (BENCH_WARMUP, 1),
// --concurrency=N (BENCH_CONCURRENCY, 32), --server=tresor|fake (BENCH_SERVER, tresor; "fake"
// tests the harness against fake-kms-server.ts). Writes bench/results/latest.json. Exits non-zero
// when any scenario had errors or a server failed. With TRESOR_TEST_PG_URL set, Encrypt also runs
// on the PostgreSQL store, one node and three, as ratios to the SQLite node (bench/postgres-store.ts).

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { measureAsymmetricSpeed, type AsymmetricSpeed } from "./asymmetric-speed.js";
import { encryptionBytes, encryptionTable, measureEncryption } from "./encryption.js";
import { hsmUnavailable, startHsmNode } from "./hsm.js";
import { startPostgresNode } from "./postgres-store.js";
import { callAction, loopbackUrl, type Credentials } from "./signed-request.js";

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, "..", "..");
const TRESOR_MAIN = join(ROOT, "dist", "src", "cli", "main.js");
const RESULTS = join(ROOT, "bench", "results", "latest.json");

const PLAINTEXT_BYTES = 1024;
const DECRYPT_BLOBS = 64;
const ENCRYPT_TARGET_RATIO = 0.4;
/** Issue 6: Encrypt with its audit record durable before the answer, at >= 0.8 of Encrypt without audit. */
const AUDIT_TARGET_RATIO = 0.8;
const NO_AUDIT_SCENARIO = "Encrypt SM4 1 KiB (audit off build)";
/** In-process SM2 signing against `openssl speed sm2` in the same run. */
const SM2_SIGN_TARGET_RATIO = 0.7;
const SIGN_MESSAGE_BYTES = 32;
const START_TIMEOUT_MS = 20_000;
/** `tresor serve` nodes sharing one PostgreSQL store in the cluster scenario. */
const PG_CLUSTER_NODES = 3;

interface Options {
  durationSeconds: number;
  warmupSeconds: number;
  concurrency: number;
  server: "tresor" | "fake";
}

function option(name: string, env: string): string | undefined {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  return arg !== undefined ? arg.slice(prefix.length) : process.env[env];
}

function numberOption(name: string, env: string, fallback: number, min: number, max: number): number {
  const raw = option(name, env);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`"${name}" must be a number in [${min}, ${max}], got ${raw}`);
  return n;
}

function parseOptions(): Options {
  for (const a of process.argv.slice(2)) {
    if (!/^--(duration|warmup|concurrency|server)=/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const server = option("server", "BENCH_SERVER") ?? "tresor";
  if (server !== "tresor" && server !== "fake") throw new Error(`"server" must be tresor or fake, got ${server}`);
  const concurrency = numberOption("concurrency", "BENCH_CONCURRENCY", 32, 1, 1024);
  if (!Number.isInteger(concurrency)) throw new Error(`"concurrency" must be an integer`);
  return {
    durationSeconds: numberOption("duration", "BENCH_DURATION", 5, 0.1, 600),
    warmupSeconds: numberOption("warmup", "BENCH_WARMUP", 1, 0, 60),
    concurrency,
    server,
  };
}

const log = (line: string): void => void process.stdout.write(`${line}\n`);

// ---- child processes ---------------------------------------------------------------------------

const children = new Set<ChildProcess>();

interface Started {
  child: ChildProcess;
  logPath: string;
  listening: Record<string, unknown> & { url: string };
}

/**
 * Starts a server whose stdout and stderr go to a file (so its per-request log lines cost the
 * bench process nothing), then waits for its `{"msg":"listening","url":...}` line in that file.
 */
async function startServer(name: string, args: string[], logPath: string): Promise<Started> {
  const fd = openSync(logPath, "w");
  const child = spawn(process.execPath, args, { stdio: ["ignore", fd, fd], cwd: ROOT });
  closeSync(fd);
  children.add(child);
  let exited: string | undefined;
  child.on("exit", (code, signal) => {
    children.delete(child);
    exited = `exited with ${signal ?? `code ${String(code)}`}`;
  });
  child.on("error", (e) => (exited = `failed to start: ${e.message}`));

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const line of readFileSync(logPath, "utf8").split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.msg === "listening" && typeof parsed.url === "string") {
          return { child, logPath, listening: parsed as Started["listening"] };
        }
      } catch {
        // not a JSON line; keep looking
      }
    }
    if (exited !== undefined) throw new Error(`${name} ${exited} before listening:\n${tail(logPath)}`);
    await sleep(50);
  }
  throw new Error(`${name} did not log a "listening" line within ${START_TIMEOUT_MS / 1000} s:\n${tail(logPath)}`);
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).map((l) => `  | ${l}`).join("\n");
  } catch {
    return "  (no log)";
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
  if (timedOut) {
    log(`  (pid ${String(child.pid)} ignored SIGTERM for 5 s; sending SIGKILL)`);
    child.kill("SIGKILL");
    await exited;
  }
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`node ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`));
      else res(stdout);
    });
  });
}

// ---- scenarios ---------------------------------------------------------------------------------

interface LoadResult {
  ok: boolean;
  requests: number;
  errors: number;
  seconds?: number;
  reqPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  clientCpu?: number | null;
  serverCpu?: number | null;
  otherCpu?: number | null;
  sampleErrors?: string[];
}

interface Scenario {
  name: string;
  url: string;
  action: string;
  params: Record<string, unknown>;
  cycle?: { field: string; valuesFile: string };
  serverPid: number | undefined;
  /** Several nodes of one cluster: the load process spreads its workers evenly over them (url is the first). */
  cluster?: { urls: string[]; serverPids: number[] };
  bare?: true;
  /** Another server's credentials (a server with a data directory of its own). */
  credentials?: Credentials;
}

function runLoad(s: Scenario, creds: Credentials, opts: Options): Promise<LoadResult> {
  const config = {
    url: s.url,
    action: s.action,
    params: s.params,
    ...(s.cycle ? { cycle: s.cycle } : {}),
    credentials: creds,
    concurrency: opts.concurrency,
    warmupSeconds: opts.warmupSeconds,
    durationSeconds: opts.durationSeconds,
    ...(s.serverPid !== undefined ? { serverPid: s.serverPid } : {}),
    ...(s.cluster !== undefined ? { urls: s.cluster.urls, serverPids: s.cluster.serverPids } : {}),
  };
  return new Promise((res) => {
    // stderr is inherited so a failing load process explains itself on the console.
    const child = spawn(process.execPath, [join(HERE, "load.js"), JSON.stringify(config)], { stdio: ["ignore", "pipe", "inherit"] });
    children.add(child);
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.on("close", (code) => {
      children.delete(child);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        const parsed = JSON.parse(line) as LoadResult;
        res(code === 0 ? parsed : { ...parsed, ok: false });
      } catch {
        res({ ok: false, requests: 0, errors: 1, sampleErrors: [`load process exited ${String(code)} with no result`] });
      }
    });
  });
}

// ---- report ------------------------------------------------------------------------------------

interface Row {
  scenario: string;
  reqPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  ratioToBare: number | null;
  clientCpu: number | null;
  serverCpu: number | null;
  otherCpu: number | null;
  requests: number;
  errors: number;
}

function table(rows: Row[]): string {
  const head = ["scenario", "req/s", "p50 ms", "p99 ms", "ratio to bare", "cpu load", "cpu server", "cpu other"];
  const fmt = (v: number | null, digits: number, missing = "FAILED"): string => (v === null ? missing : v.toFixed(digits));
  const body = rows.map((r) => [
    r.scenario,
    fmt(r.reqPerSec, 0),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    fmt(r.ratioToBare, 3),
    fmt(r.clientCpu, 2, "-"),
    fmt(r.serverCpu, 2, "-"),
    fmt(r.otherCpu, 2, "-"),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function speedTable(rows: AsymmetricSpeed[]): string {
  const head = ["in process", "ops/s", "openssl speed ops/s", "ratio to openssl"];
  const body = rows.map((r) => [r.name, r.opsPerSec.toFixed(0), r.opensslOpsPerSec === null ? "-" : r.opensslOpsPerSec.toFixed(0), r.ratio === null ? "-" : r.ratio.toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseOptions();
  const tmp = mkdtempSync(join(tmpdir(), "tresor-bench-"));
  let keepTmp = false;
  log(
    `bench: server=${opts.server} concurrency=${opts.concurrency} warmup=${opts.warmupSeconds}s duration=${opts.durationSeconds}s ` +
      `cpus=${cpus().length} node=${process.version} tmp=${tmp}`,
  );
  const started: Started[] = [];
  let dropPgSchema: (() => Promise<void>) | undefined;
  try {
    // 0. The asymmetric primitives in process, against `openssl speed`, before any server runs.
    log(`bench: asymmetric primitives in process vs openssl speed (${opts.durationSeconds}s each) ...`);
    const speeds = await measureAsymmetricSpeed(opts.durationSeconds);
    log("");
    log(speedTable(speeds));
    log("");

    // 0b. The Encryption SDK per suite against raw node:crypto, in process (bench/encryption.ts).
    const encryptionSdk = await measureEncryption(encryptionBytes(), log);
    log("");
    log(encryptionTable(encryptionSdk));
    log("");

    // 1. The server under test, with a fresh data directory.
    let creds: Credentials;
    let server: Started;
    if (opts.server === "tresor") {
      if (!existsSync(TRESOR_MAIN)) throw new Error(`${TRESOR_MAIN} does not exist: is the CLI built?`);
      const dataDir = join(tmp, "data");
      log("bench: tresor init");
      const out = await run([TRESOR_MAIN, "init", "--data-dir", dataDir, "--json"], 60_000);
      const initLine = out.trim().split("\n").reverse().find((l) => l.includes('"secretId"'));
      if (initLine === undefined) throw new Error(`tresor init printed no credentials:\n${out}`);
      creds = JSON.parse(initLine) as Credentials;
      log("bench: tresor serve");
      server = await startServer("tresor serve", [TRESOR_MAIN, "serve", "--data-dir", dataDir, "--port", "0"], join(tmp, "server.log"));
    } else {
      log("bench: fake KMS server (harness self-test; its figures say nothing about Tresor)");
      server = await startServer("fake-kms-server", [join(HERE, "fake-kms-server.js")], join(tmp, "server.log"));
      const l = server.listening;
      creds = { secretId: String(l.secretId), secretKey: String(l.secretKey), region: String(l.region) };
    }
    started.push(server);
    const url = loopbackUrl(server.listening.url);
    log(`bench: server at ${url.href} (log: ${server.logPath})`);

    // 2. Keys, and Decrypt blobs made beforehand.
    const sm4 = await callAction(url, "CreateKey", { Alias: "bench-sm4", KeySpec: "SM4" }, creds);
    const aes = await callAction(url, "CreateKey", { Alias: "bench-aes", KeySpec: "AES_256" }, creds);
    const sm4KeyId = String(sm4.KeyId);
    const aesKeyId = String(aes.KeyId);
    log(`bench: keys SM4 ${sm4KeyId}, AES_256 ${aesKeyId}`);
    // An SM2 signing key, and one signature checked before it is measured.
    let signScenario: Omit<Scenario, "serverPid"> | undefined;
    if (opts.server === "tresor") {
      const sm2 = await callAction(url, "CreateKey", { Alias: "bench-sm2-sign", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2" }, creds);
      const signParams = { KeyId: String(sm2.KeyId), Algorithm: "SM2DSA", Message: randomBytes(SIGN_MESSAGE_BYTES).toString("base64") };
      const signed = await callAction(url, "SignByAsymmetricKey", signParams, creds);
      const verified = await callAction(url, "VerifyByAsymmetricKey", { ...signParams, SignatureValue: signed.Signature }, creds);
      if (verified.SignatureValid !== true) throw new Error("a fresh SM2 signature did not verify");
      signScenario = { name: `SignByAsymmetricKey SM2 RAW ${SIGN_MESSAGE_BYTES} B`, url: url.href, action: "SignByAsymmetricKey", params: signParams };
    }

    const plaintext = randomBytes(PLAINTEXT_BYTES).toString("base64");
    const blobPlaintexts = Array.from({ length: DECRYPT_BLOBS }, () => randomBytes(PLAINTEXT_BYTES).toString("base64"));
    const blobs: string[] = [];
    for (const p of blobPlaintexts) {
      blobs.push(String((await callAction(url, "Encrypt", { KeyId: sm4KeyId, Plaintext: p }, creds)).CiphertextBlob));
    }
    // A throughput figure for a Decrypt that returns the wrong bytes would be worthless.
    const check = await callAction(url, "Decrypt", { CiphertextBlob: blobs[0] }, creds);
    if (check.Plaintext !== blobPlaintexts[0]) throw new Error("Decrypt of a fresh blob did not return its plaintext");
    const blobsFile = join(tmp, "blobs-sm4.json");
    writeFileSync(blobsFile, JSON.stringify(blobs));
    log(`bench: ${DECRYPT_BLOBS} Decrypt blobs of ${PLAINTEXT_BYTES} B made (${blobs[0]!.length} chars each)`);

    // 3. Bare baseline server, started now so it idles during the Tresor runs rather than the reverse.
    const bare = await startServer("bare-server", [join(HERE, "bare-server.js")], join(tmp, "bare.log"));
    started.push(bare);

    // 3b. The same server built without its audit writer (bench/no-audit-server.ts) on a data
    // directory of its own: Encrypt with audit is reported as a ratio to Encrypt without.
    let noAuditScenario: Scenario | undefined;
    if (opts.server === "tresor") {
      const noAuditDir = join(tmp, "data-no-audit");
      const noAuditOut = await run([TRESOR_MAIN, "init", "--data-dir", noAuditDir, "--json"], 60_000);
      const noAuditCreds = JSON.parse(noAuditOut.trim().split("\n").reverse().find((l) => l.includes('"secretId"'))!) as Credentials;
      const noAudit = await startServer("no-audit server", [join(HERE, "no-audit-server.js"), noAuditDir], join(tmp, "no-audit.log"));
      started.push(noAudit);
      const noAuditUrl = loopbackUrl(noAudit.listening.url);
      const noAuditKey = String((await callAction(noAuditUrl, "CreateKey", { Alias: "bench-sm4", KeySpec: "SM4" }, noAuditCreds)).KeyId);
      noAuditScenario = {
        name: NO_AUDIT_SCENARIO,
        url: noAuditUrl.href,
        action: "Encrypt",
        params: { KeyId: noAuditKey, Plaintext: plaintext },
        serverPid: noAudit.child.pid,
        credentials: noAuditCreds,
      };
    }

    const pid = server.child.pid;
    const scenarios: Scenario[] = [
      { name: "Encrypt SM4 1 KiB", url: url.href, action: "Encrypt", params: { KeyId: sm4KeyId, Plaintext: plaintext }, serverPid: pid },
      ...(noAuditScenario ? [noAuditScenario] : []),
      { name: "Encrypt AES_256 1 KiB", url: url.href, action: "Encrypt", params: { KeyId: aesKeyId, Plaintext: plaintext }, serverPid: pid },
      {
        name: "Decrypt SM4 1 KiB",
        url: url.href,
        action: "Decrypt",
        params: {},
        cycle: { field: "CiphertextBlob", valuesFile: blobsFile },
        serverPid: pid,
      },
      {
        name: "GenerateDataKey SM4 AES_256",
        url: url.href,
        action: "GenerateDataKey",
        params: { KeyId: sm4KeyId, KeySpec: "AES_256" },
        serverPid: pid,
      },
      ...(signScenario ? [{ ...signScenario, serverPid: pid }] : []),
    ];
    // The baseline gets the same signed Encrypt request, so it pays the same client and parsing
    // costs. It runs first and last, and the ratio uses the faster of the two: other work on a
    // shared 2-core machine only ever slows a run, so the faster one is the better estimate and
    // never flatters Tresor.
    const bareScenario = (when: string): Scenario => ({
      name: `bare node:http (${when})`,
      url: bare.listening.url,
      action: "Encrypt",
      params: { KeyId: sm4KeyId, Plaintext: plaintext },
      serverPid: bare.child.pid,
      bare: true,
    });
    scenarios.unshift(bareScenario("first"));
    scenarios.push(bareScenario("last"));

    const results: Array<{ scenario: Scenario; result: LoadResult }> = [];
    for (const [i, s] of scenarios.entries()) {
      log(`bench: [${i + 1}/${scenarios.length}] ${s.name} ...`);
      const result = await runLoad(s, s.credentials ?? creds, opts);
      results.push({ scenario: s, result });
      if (result.ok) {
        log(
          `bench:        ${result.reqPerSec} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (${result.requests} requests; ` +
            `cores used: load ${String(result.clientCpu)}, server ${String(result.serverCpu)})`,
        );
      } else {
        log(`bench:        FAILED: ${result.errors} error(s); ${(result.sampleErrors ?? []).join(" | ")}`);
      }
      if (server.child.exitCode !== null || server.child.signalCode !== null) {
        throw new Error(`the server died during "${s.name}":\n${tail(server.logPath)}`);
      }
    }

    // 4. The same Encrypt over the PostgreSQL store, on one node and then spread over three nodes
    // sharing that store, each as a ratio to the SQLite node's.
    const pgUrl = process.env.TRESOR_TEST_PG_URL;
    const pgScenarioName = "Encrypt SM4 1 KiB (PostgreSQL store)";
    const pgClusterScenarioName = `Encrypt SM4 1 KiB (PostgreSQL store, ${PG_CLUSTER_NODES} nodes)`;
    let postgresNote: string | undefined;
    if (opts.server !== "tresor") postgresNote = "skipped: the fake server has no store";
    else if (pgUrl === undefined || pgUrl === "") {
      postgresNote = "skipped: TRESOR_TEST_PG_URL is not set (run `. .ci/postgres.sh` first to start a throwaway PostgreSQL, or point it at an empty database)";
    } else {
      log("bench: tresor init --store / serve --store on TRESOR_TEST_PG_URL (a fresh schema)");
      const pgNode = await startPostgresNode({ pgUrl, tmp, tresorMain: TRESOR_MAIN, run, start: startServer });
      started.push(pgNode.server);
      dropPgSchema = pgNode.dropSchema;
      const s: Scenario = {
        name: pgScenarioName,
        url: pgNode.url.href,
        action: "Encrypt",
        params: { KeyId: pgNode.keyId, Plaintext: plaintext },
        serverPid: pgNode.server.child.pid,
      };
      log(`bench: ${s.name} ...`);
      const result = await runLoad(s, pgNode.creds, opts);
      results.push({ scenario: s, result });
      log(result.ok ? `bench:        ${result.reqPerSec} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms` : `bench:        FAILED: ${(result.sampleErrors ?? []).join(" | ")}`);

      log(`bench: ${PG_CLUSTER_NODES - 1} more tresor serve --store nodes on the same schema`);
      const more = await pgNode.startMoreNodes(PG_CLUSTER_NODES - 1);
      started.push(...more);
      const nodes = [pgNode.server, ...more];
      const c: Scenario = {
        name: pgClusterScenarioName,
        url: pgNode.url.href,
        action: "Encrypt",
        params: { KeyId: pgNode.keyId, Plaintext: plaintext },
        serverPid: undefined,
        cluster: { urls: nodes.map((n) => loopbackUrl(n.listening.url).href), serverPids: nodes.map((n) => n.child.pid!) },
      };
      log(`bench: ${c.name} (the load's workers spread round-robin over the nodes) ...`);
      const clusterResult = await runLoad(c, pgNode.creds, opts);
      results.push({ scenario: c, result: clusterResult });
      log(
        clusterResult.ok
          ? `bench:        ${clusterResult.reqPerSec} req/s, p50 ${clusterResult.p50Ms} ms, p99 ${clusterResult.p99Ms} ms (cores used: load ${String(clusterResult.clientCpu)}, nodes ${String(clusterResult.serverCpu)})`
          : `bench:        FAILED: ${(clusterResult.sampleErrors ?? []).join(" | ")}`,
      );
      for (const n of nodes) {
        if (n.child.exitCode !== null || n.child.signalCode !== null) throw new Error(`a PostgreSQL-store node died during the run:\n${tail(n.logPath)}`);
      }
    }
    if (postgresNote !== undefined) log(`bench: Encrypt on the PostgreSQL store (1 and ${PG_CLUSTER_NODES} nodes) ${postgresNote}`);

    // 5. Encrypt under a pkcs11 root of trust (SoftHSM2): an HSM-protected AES_256 key and a software
    // one, each as a ratio to the file-root AES_256 key's rate above (bench/hsm.ts).
    const hsmScenarioNames = { hsm: "Encrypt AES_256 1 KiB (HSM key, SoftHSM2)", software: "Encrypt AES_256 1 KiB (software key, pkcs11 root)" };
    const hsmNote = opts.server !== "tresor" ? "skipped: the fake server has no root of trust" : hsmUnavailable();
    if (hsmNote === undefined) {
      log("bench: tresor init --root-of-trust pkcs11 / serve on a throwaway SoftHSM2 token");
      const hsmNode = await startHsmNode({ tmp, tresorMain: TRESOR_MAIN, run, start: startServer });
      started.push(hsmNode.server);
      for (const [name, keyId] of [
        [hsmScenarioNames.hsm, hsmNode.hsmKeyId],
        [hsmScenarioNames.software, hsmNode.softwareKeyId],
      ] as const) {
        const s: Scenario = { name, url: hsmNode.url.href, action: "Encrypt", params: { KeyId: keyId, Plaintext: plaintext }, serverPid: hsmNode.server.child.pid };
        log(`bench: ${s.name} ...`);
        const result = await runLoad(s, hsmNode.creds, opts);
        results.push({ scenario: s, result });
        log(result.ok ? `bench:        ${result.reqPerSec} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms` : `bench:        FAILED: ${(result.sampleErrors ?? []).join(" | ")}`);
      }
    } else {
      log(`bench: Encrypt under a pkcs11 root of trust ${hsmNote}`);
    }

    const bareResults = results.filter((r) => r.scenario.bare).map((r) => r.result);
    const bareRate = bareResults.every((r) => r.ok) ? Math.max(...bareResults.map((r) => r.reqPerSec!)) : null;
    const rows: Row[] = results.map(({ scenario, result }) => ({
      scenario: scenario.name,
      reqPerSec: result.ok ? result.reqPerSec! : null,
      p50Ms: result.ok ? result.p50Ms! : null,
      p99Ms: result.ok ? result.p99Ms! : null,
      ratioToBare: result.ok && bareRate ? Number((result.reqPerSec! / bareRate).toFixed(3)) : null,
      clientCpu: result.clientCpu ?? null,
      serverCpu: result.serverCpu ?? null,
      otherCpu: result.otherCpu ?? null,
      requests: result.requests,
      errors: result.errors,
    }));
    const failed = results.filter((r) => !r.result.ok);
    const targetRow = rows.find((r) => r.scenario === "Encrypt SM4 1 KiB")!;
    const encryptRatio = targetRow.ratioToBare;
    const targetMet = encryptRatio !== null && encryptRatio >= ENCRYPT_TARGET_RATIO;

    log("");
    log(table(rows));
    log("");
    log(
      `target: Encrypt SM4 at >= ${ENCRYPT_TARGET_RATIO} of bare: ` +
        (encryptRatio === null ? "not measured" : `${encryptRatio.toFixed(3)} (${targetMet ? "met" : "NOT met"})`),
    );

    const warnings: string[] = [];
    const [bareFirst, bareLast] = bareResults;
    if (bareFirst?.ok && bareLast?.ok) {
      const spread = Math.abs(bareFirst.reqPerSec! - bareLast.reqPerSec!) / Math.max(bareFirst.reqPerSec!, bareLast.reqPerSec!);
      if (spread > 0.15) warnings.push(`the two baseline runs differ by ${(spread * 100).toFixed(0)}%: the machine was not quiet`);
    }
    const busy = rows.filter((r) => (r.otherCpu ?? 0) > 0.2).map((r) => r.scenario);
    if (busy.length > 0) warnings.push(`other processes used > 0.2 core during: ${busy.join(", ")}; re-run on a quiet machine`);
    const clientBound = rows.filter((r) => (r.clientCpu ?? 0) >= 0.9).map((r) => r.scenario);
    if (clientBound.length > 0) {
      warnings.push(`the load process used a full core during: ${clientBound.join(", ")}; those rates are bounded by the client, not the server`);
    }
    const sm2Sign = speeds.find((r) => r.name === "SM2 sign");
    const sm2Ratio = sm2Sign?.ratio ?? null;
    const sm2TargetMet = sm2Ratio !== null && sm2Ratio >= SM2_SIGN_TARGET_RATIO;
    log(
      `target: SM2 sign in process at >= ${SM2_SIGN_TARGET_RATIO} of openssl speed sm2: ` +
        (sm2Ratio === null ? "not measured" : `${sm2Ratio.toFixed(3)} (${sm2TargetMet ? "met" : "NOT met"})`),
    );
    const ratioToSqlite = (name: string): number | null => {
      const row = rows.find((r) => r.scenario === name);
      return row !== undefined && row.reqPerSec !== null && targetRow.reqPerSec !== null ? Number((row.reqPerSec / targetRow.reqPerSec).toFixed(3)) : null;
    };
    const pgRatio = ratioToSqlite(pgScenarioName);
    const pgClusterRatio = ratioToSqlite(pgClusterScenarioName);
    log(
      postgresNote !== undefined
        ? `postgres: Encrypt SM4 on the PostgreSQL store (1 and ${PG_CLUSTER_NODES} nodes) ${postgresNote}`
        : `postgres: Encrypt SM4 on one PostgreSQL-store node at ${pgRatio === null ? "not measured" : pgRatio.toFixed(3)} of the SQLite node's rate; ` +
            `spread over ${PG_CLUSTER_NODES} nodes at ${pgClusterRatio === null ? "not measured" : pgClusterRatio.toFixed(3)} (all on this machine's ${cpus().length} cores)`,
    );
    const noAuditRate = rows.find((r) => r.scenario === NO_AUDIT_SCENARIO)?.reqPerSec ?? null;
    const auditRatio = noAuditRate === null || targetRow.reqPerSec === null ? null : Number((targetRow.reqPerSec / noAuditRate).toFixed(3));
    const auditTargetMet = auditRatio !== null && auditRatio >= AUDIT_TARGET_RATIO;
    log(
      `target: Encrypt SM4 with audit at >= ${AUDIT_TARGET_RATIO} of the same server without audit: ` +
        (auditRatio === null ? "not measured" : `${auditRatio.toFixed(3)} (${auditTargetMet ? "met" : "NOT met"})`),
    );
    const fileAes = rows.find((r) => r.scenario === "Encrypt AES_256 1 KiB")?.reqPerSec ?? null;
    const ratioToFileAes = (name: string): number | null => {
      const rate = rows.find((r) => r.scenario === name)?.reqPerSec ?? null;
      return rate === null || fileAes === null ? null : Number((rate / fileAes).toFixed(3));
    };
    const hsmRatios = { hsmKey: ratioToFileAes(hsmScenarioNames.hsm), softwareKeyPkcs11Root: ratioToFileAes(hsmScenarioNames.software) };
    log(
      `hsm: Encrypt AES_256 with an HSM key at ${hsmRatios.hsmKey === null ? (hsmNote ?? "not measured") : hsmRatios.hsmKey.toFixed(3)}, ` +
        `with a software key under the pkcs11 root at ${hsmRatios.softwareKeyPkcs11Root === null ? (hsmNote ?? "not measured") : hsmRatios.softwareKeyPkcs11Root.toFixed(3)}, of the file-root software key's rate`,
    );
    for (const w of warnings) log(`warning: ${w}`);

    mkdirSync(dirname(RESULTS), { recursive: true });
    const report = {
      date: new Date().toISOString(),
      server: opts.server,
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      concurrency: opts.concurrency,
      warmupSeconds: opts.warmupSeconds,
      durationSeconds: opts.durationSeconds,
      plaintextBytes: PLAINTEXT_BYTES,
      bareReqPerSec: bareRate === null ? null : Number(bareRate.toFixed(1)),
      warnings,
      target: { scenario: targetRow.scenario, minRatioToBare: ENCRYPT_TARGET_RATIO, ratio: encryptRatio, met: targetMet },
      sm2SignTarget: { minRatioToOpenssl: SM2_SIGN_TARGET_RATIO, ratio: sm2Ratio, met: sm2TargetMet },
      auditTarget: { scenario: NO_AUDIT_SCENARIO, minRatioOfAuditedToUnaudited: AUDIT_TARGET_RATIO, ratio: auditRatio, met: auditTargetMet },
      postgresStore: {
        scenario: pgScenarioName,
        ratioToSqlite: pgRatio,
        cluster: { scenario: pgClusterScenarioName, nodes: PG_CLUSTER_NODES, ratioToSqlite: pgClusterRatio },
        ...(postgresNote === undefined ? {} : { note: postgresNote }),
      },
      pkcs11: { baseline: "Encrypt AES_256 1 KiB", ratioToFileRootSoftwareKey: hsmRatios, ...(hsmNote === undefined ? {} : { note: hsmNote }) },
      scenarios: rows,
      asymmetricInProcess: speeds,
      encryptionSdk,
    };
    writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
    log(`bench: wrote ${RESULTS}`);

    if (failed.length > 0) {
      keepTmp = true;
      log(`bench: FAILED: ${failed.map((f) => f.scenario.name).join(", ")} had errors (server log kept: ${server.logPath})`);
      return 1;
    }
    return 0;
  } catch (e) {
    keepTmp = true;
    log(`bench: FAILED: ${(e as Error).message}`);
    log(`bench: temp dir kept: ${tmp}`);
    return 1;
  } finally {
    for (const s of started) await stop(s.child);
    await dropPgSchema?.().catch((e: unknown) => log(`bench: could not drop the PostgreSQL schema: ${(e as Error).message}`));
    if (!keepTmp) rmSync(tmp, { recursive: true, force: true });
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const c of children) c.kill("SIGTERM");
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    log(`bench: FAILED: ${(e as Error).message}`);
    process.exitCode = 1;
  },
);
