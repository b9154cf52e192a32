// `npm run bench`: Tresor's request path against a bare node:http server driven by the same wrk load
// in the same run, interleaved, as ratios (DESIGN.md: benchmarks report ratios to a baseline
// measured in the same run, never a bare absolute time). Every section runs several rounds and
// reports medians, so one busy moment of a shared machine moves one sample, not the figure.
//
// Options (argv or env): --duration=S (BENCH_DURATION, seconds per wrk run, default 3),
// --rounds=N (BENCH_ROUNDS, default 3), --quick (BENCH_QUICK=1: 1 round of 1 s, a small Encryption
// SDK stream), --only=http|in-process (BENCH_ONLY: one part). Writes bench/results/latest.json; exits non-zero when any request of any scenario
// failed or a server died. With TRESOR_TEST_PG_URL set, Encrypt also runs on the PostgreSQL store.

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measureAsymmetricSpeed, speedTable } from "./asymmetric-speed.js";
import { consoleLine, measureConsole } from "./console.js";
import { measureFdatasync } from "./disk.js";
import { encryptionBytes, encryptionTable, measureEncryption } from "./encryption.js";
import { hsmUnavailable, startHsmNode } from "./hsm.js";
import { startPostgresNode } from "./postgres-store.js";
import { alive, runNode, startServer, stop, stopChildrenOnSignal, tail, type Started } from "./processes.js";
import { CAM, callAction, loopbackUrl, signedRequest, type Credentials } from "./signed-request.js";
import { median, runWrk, wrkMissing, type WrkRequest, type WrkResult } from "./wrk.js";

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, "..", "..");
const TRESOR_MAIN = join(ROOT, "dist", "src", "cli", "main.js");
const RESULTS = join(ROOT, "bench", "results", "latest.json");

const PLAINTEXT_BYTES = 1024;
const DECRYPT_BLOBS = 64;
const SIGN_MESSAGE_BYTES = 32;
/** wrk connections: the latency of one, the acceptance point, and many. */
const CONNECTIONS = [1, 32, 128] as const;
const MAIN_CONNECTIONS = 32;
const PG_CLUSTER_NODES = 3;

const TARGETS = {
  encryptRatio: 0.4,
  encryptP99Ms: 10,
  encryptOneConnectionMeanMs: 0.5,
  /** Decrypt and GenerateDataKey within 20% of Encrypt. */
  siblingsOfEncrypt: 0.8,
  /** The audited server within 15% of the no-audit build. */
  auditedToUnaudited: 0.85,
  /** SM2 sign over HTTP against the in-process sign rate. */
  sm2SignHttpToInProcess: 0.6,
  sm2VerifyToOpenssl: 0.7,
} as const;

const SCENARIO = {
  encryptSm4: "Encrypt SM4 1 KiB",
  noAudit: "Encrypt SM4 1 KiB (no-audit build)",
  floor: "Encrypt SM4 1 KiB (floor: the work alone)",
  floorNoStore: "Encrypt SM4 1 KiB (floor, audit not stored)",
  workers: "Encrypt SM4 1 KiB (--workers 2)",
  decrypt: "Decrypt SM4 1 KiB",
  generateDataKey: "GenerateDataKey SM4 AES_256",
  sm2Sign: `SignByAsymmetricKey SM2 RAW ${SIGN_MESSAGE_BYTES} B`,
  pg: "Encrypt SM4 1 KiB (PostgreSQL store)",
  pgCluster: `Encrypt SM4 1 KiB (PostgreSQL store, ${PG_CLUSTER_NODES} nodes)`,
  hsm: "Encrypt AES_256 1 KiB (HSM key, SoftHSM2)",
  hsmSoftware: "Encrypt AES_256 1 KiB (software key, pkcs11 root)",
} as const;

interface Options {
  durationSeconds: number;
  rounds: number;
  quick: boolean;
  only: "http" | "in-process" | undefined;
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
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`"${name}" must be a whole number in [${min}, ${max}], got ${raw}`);
  return n;
}

function parseOptions(): Options {
  for (const a of process.argv.slice(2)) {
    if (!/^--((duration|rounds|only)=|quick$)/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const quick = process.argv.includes("--quick") || process.env["BENCH_QUICK"] === "1";
  const only = option("only", "BENCH_ONLY") || undefined;
  if (only !== undefined && only !== "http" && only !== "in-process") throw new Error(`"only" must be http or in-process, got ${only}`);
  return {
    only,
    durationSeconds: numberOption("duration", "BENCH_DURATION", quick ? 1 : 3, 1, 600),
    rounds: numberOption("rounds", "BENCH_ROUNDS", quick ? 1 : 3, 1, 50),
    quick,
  };
}

const log = (line: string): void => void process.stdout.write(`${line}\n`);

// ---- scenarios ---------------------------------------------------------------------------------

interface Scenario {
  name: string;
  /** The server's URL; several for a cluster (one wrk per node, run together, rates summed). */
  urls: URL[];
  connections: readonly number[];
  /** The signed requests of one run (signed when it starts). */
  requests: (url: URL) => WrkRequest[];
  bare?: true;
}

interface Sample {
  scenario: string;
  connections: number;
  result: WrkResult;
}

/** One run of `s` at `connections`, split over its nodes. */
async function runScenario(s: Scenario, connections: number, durationSeconds: number): Promise<WrkResult> {
  const per = Math.max(1, Math.round(connections / s.urls.length));
  const results = await Promise.all(s.urls.map((url) => runWrk({ url: url.href, connections: per, durationSeconds, requests: () => s.requests(url) })));
  if (results.length === 1) return results[0]!;
  const requests = results.reduce((n, r) => n + r.requests, 0);
  return {
    requests,
    seconds: Math.max(...results.map((r) => r.seconds)),
    reqPerSec: results.reduce((n, r) => n + r.reqPerSec, 0),
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    meanMs: results.reduce((n, r) => n + r.meanMs * r.requests, 0) / Math.max(1, requests),
    errors: results.reduce((n, r) => n + r.errors, 0),
  };
}

/**
 * Round after round, at each connection count: the bare baseline, then every scenario that runs at
 * that count, so baseline and scenarios share each moment of the machine.
 */
async function runRounds(scenarios: readonly Scenario[], opts: Options, watch: () => void): Promise<Sample[]> {
  const samples: Sample[] = [];
  // A warm-up run of every scenario (not recorded), so the first one measured does not pay for the JIT.
  if (!opts.quick) {
    log("bench: warm-up, 1 s of every scenario at 32 connections");
    for (const s of scenarios) await runScenario(s, MAIN_CONNECTIONS, 1);
    watch();
  }
  for (let round = 1; round <= opts.rounds; round++) {
    for (const c of CONNECTIONS) {
      for (const s of scenarios.filter((x) => x.connections.includes(c))) {
        const result = await runScenario(s, c, opts.durationSeconds);
        samples.push({ scenario: s.name, connections: c, result });
        log(
          `bench: round ${round}/${opts.rounds} c=${String(c).padStart(3)} ${s.name.padEnd(44)} ${result.reqPerSec.toFixed(0).padStart(6)} req/s  ` +
            `p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${result.errors > 0 ? `  ERRORS ${result.errors}` : ""}`,
        );
        watch();
      }
    }
  }
  return samples;
}

interface Row {
  scenario: string;
  connections: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** The median rate over the median rate of the bare baseline at the same connection count. */
  ratioToBare: number | null;
  samples: number;
  errors: number;
}

const BARE = "bare node:http";

function rowsOf(samples: readonly Sample[]): Row[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const id = `${s.scenario}\0${s.connections}`;
    groups.set(id, [...(groups.get(id) ?? []), s]);
  }
  const rows = [...groups.values()].map((g) => ({
    scenario: g[0]!.scenario,
    connections: g[0]!.connections,
    reqPerSec: round(median(g.map((s) => s.result.reqPerSec)), 0),
    p50Ms: round(median(g.map((s) => s.result.p50Ms)), 3),
    p99Ms: round(median(g.map((s) => s.result.p99Ms)), 3),
    meanMs: round(median(g.map((s) => s.result.meanMs)), 3),
    ratioToBare: null as number | null,
    samples: g.length,
    errors: g.reduce((n, s) => n + s.result.errors, 0),
  }));
  for (const r of rows) {
    const bare = rows.find((b) => b.scenario === BARE && b.connections === r.connections);
    r.ratioToBare = bare && bare.reqPerSec > 0 ? round(r.reqPerSec / bare.reqPerSec, 3) : null;
  }
  return rows.sort((a, b) => a.connections - b.connections);
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function table(rows: readonly Row[]): string {
  const head = ["scenario", "conns", "req/s", "p50 ms", "p99 ms", "mean ms", "ratio to bare", "errors"];
  const body = rows.map((r) => [
    r.scenario,
    String(r.connections),
    r.reqPerSec.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.meanMs.toFixed(3),
    r.ratioToBare === null ? "-" : r.ratioToBare.toFixed(3),
    String(r.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

// ---- servers -----------------------------------------------------------------------------------

async function initDataDir(dir: string): Promise<Credentials> {
  const out = await runNode([TRESOR_MAIN, "init", "--data-dir", dir, "--json"], 60_000, ROOT);
  const line = out.trim().split("\n").reverse().find((l) => l.includes('"secretId"'));
  if (line === undefined) throw new Error(`tresor init printed no credentials:\n${out}`);
  return JSON.parse(line) as Credentials;
}

/** A sub-user allowed to Encrypt with one key under a condition (source address on loopback), so authorization is measured. */
async function conditionedUser(url: URL, root: Credentials, keyId: string, accountUin: string): Promise<Credentials> {
  const policy = {
    version: "2.0",
    statement: [
      {
        effect: "allow",
        action: ["name/kms:Encrypt"],
        resource: [`qcs::kms:${root.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${keyId}`],
        condition: { ip_equal: { "qcs:ip": ["127.0.0.0/8"] } },
      },
    ],
  };
  const { PolicyId } = await callAction(url, "CreatePolicy", { PolicyName: "bench-encrypt", PolicyDocument: JSON.stringify(policy) }, root, CAM);
  const user = await callAction(url, "AddUser", { Name: "bench-encryptor", UseApi: 1 }, root, CAM);
  await callAction(url, "AttachUserPolicy", { PolicyId, AttachUin: user.Uin }, root, CAM);
  return { secretId: String(user.SecretId), secretKey: String(user.SecretKey), region: root.region };
}

function writeReport(report: object): void {
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
  log(`bench: wrote ${RESULTS}`);
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseOptions();
  const missing = wrkMissing();
  if (missing !== undefined) {
    log(`bench: ${missing}`);
    return 1;
  }
  if (!existsSync(TRESOR_MAIN)) throw new Error(`${TRESOR_MAIN} does not exist: is the CLI built?`);
  const tmp = mkdtempSync(join(tmpdir(), "tresor-bench-"));
  let keepTmp = false;
  log(`bench: rounds=${opts.rounds} duration=${opts.durationSeconds}s connections=${CONNECTIONS.join("/")} cpus=${cpus().length} node=${process.version} tmp=${tmp}`);
  const started: Started[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // 1. In process, before any server runs: the Encryption SDK against raw node:crypto, and
    // asymmetric primitives against `openssl speed`, each interleaved with its baseline, medians of
    // rounds. The Encryption SDK first: its raw baseline runs on this thread, and after the
    // asymmetric rounds (their big-integer tables on the heap) raw AES-256-GCM measured 0.3–0.8
    // GB/s instead of 1.8–3.2, while the suites, in worker threads, kept their speed.
    const inProcess = opts.only !== "http";
    const encryptionSdk = inProcess ? await measureEncryption(encryptionBytes(opts.quick), opts.rounds, log) : undefined;
    if (encryptionSdk) log(`\n${encryptionTable(encryptionSdk)}\n`);
    if (inProcess) log(`bench: asymmetric primitives in process vs openssl speed (${opts.rounds} round(s)) ...`);
    const speeds = inProcess ? await measureAsymmetricSpeed(1, opts.rounds) : [];
    if (inProcess) log(`\n${speedTable(speeds)}\n`);
    if (opts.only === "in-process") {
      writeReport({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, rounds: opts.rounds, asymmetricInProcess: speeds, encryptionSdk });
      return 0;
    }

    // 2. Tresor (one process, default settings), the no-audit build, the bare baseline.
    const dataDir = join(tmp, "data");
    log("bench: tresor init, tresor serve --workers 1; tresor serve --workers 2 on a data directory of its own");
    const creds = await initDataDir(dataDir);
    const server = await startServer("tresor serve", [TRESOR_MAIN, "serve", "--data-dir", dataDir, "--port", "0", "--workers", "1"], join(tmp, "server.log"), ROOT);
    started.push(server);
    // Its own data directory: two servers writing one SQLite file would slow each other's runs.
    const workersDir = join(tmp, "data-workers");
    const workersCreds = await initDataDir(workersDir);
    const workers = await startServer("tresor serve --workers 2", [TRESOR_MAIN, "serve", "--data-dir", workersDir, "--port", "0", "--workers", "2"], join(tmp, "server-workers.log"), ROOT);
    started.push(workers);
    const workersUrl = loopbackUrl(workers.listening.url);
    const url = loopbackUrl(server.listening.url);
    const noAuditDir = join(tmp, "data-no-audit");
    const noAuditCreds = await initDataDir(noAuditDir);
    const noAudit = await startServer("no-audit server", [join(HERE, "no-audit-server.js"), noAuditDir], join(tmp, "no-audit.log"), ROOT);
    started.push(noAudit);
    const noAuditUrl = loopbackUrl(noAudit.listening.url);
    const bare = await startServer("bare server", [join(HERE, "bare-server.js")], join(tmp, "bare.log"), ROOT);
    started.push(bare);
    const bareUrl = loopbackUrl(bare.listening.url);
    // The floor (floor-server.ts) accepts the tresor node's admin credentials, read from its data directory.
    const floorOf = async (name: string, extra: string[]) => {
      const floorDir = join(tmp, name);
      mkdirSync(floorDir);
      const floor = await startServer(name, [join(HERE, "floor-server.js"), floorDir, dataDir, ...extra], join(tmp, `${name}.log`), ROOT);
      started.push(floor);
      return { url: loopbackUrl(floor.listening.url), keyId: String(floor.listening["keyId"]) };
    };
    const floor = await floorOf("floor", []);
    const floorNoStore = await floorOf("floor-no-audit-store", ["--no-audit-store"]);
    log(`bench: tresor at ${url.href} (log ${server.logPath}); no-audit build at ${noAuditUrl.href}; bare at ${bareUrl.href}`);

    // 3. Keys, blobs, signatures, the sub-user; each checked once before it is measured.
    const keyOf = async (u: URL, c: Credentials, params: object) => String((await callAction(u, "CreateKey", params, c)).KeyId);
    const sm4 = await keyOf(url, creds, { Alias: "bench-sm4", KeySpec: "SM4" });
    const aes = await keyOf(url, creds, { Alias: "bench-aes", KeySpec: "AES_256" });
    const sm2 = await keyOf(url, creds, { Alias: "bench-sm2", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_SM2" });
    const ecc = await keyOf(url, creds, { Alias: "bench-ecc", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC" });
    const noAuditSm4 = await keyOf(noAuditUrl, noAuditCreds, { Alias: "bench-sm4", KeySpec: "SM4" });
    const workersSm4 = await keyOf(workersUrl, workersCreds, { Alias: "bench-sm4", KeySpec: "SM4" });
    const plaintext = randomBytes(PLAINTEXT_BYTES).toString("base64");
    const blobPlaintexts = Array.from({ length: DECRYPT_BLOBS }, () => randomBytes(PLAINTEXT_BYTES).toString("base64"));
    const blobs: string[] = [];
    for (const p of blobPlaintexts) blobs.push(String((await callAction(url, "Encrypt", { KeyId: sm4, Plaintext: p }, creds)).CiphertextBlob));
    const check = await callAction(url, "Decrypt", { CiphertextBlob: blobs[0] }, creds);
    if (check.Plaintext !== blobPlaintexts[0]) throw new Error("Decrypt of a fresh blob did not return its plaintext");
    const message = randomBytes(SIGN_MESSAGE_BYTES).toString("base64");
    const sm2Sign = { KeyId: sm2, Algorithm: "SM2DSA", Message: message, MessageType: "RAW" };
    const eccSign = { KeyId: ecc, Algorithm: "ECC_P256_R1", Message: message, MessageType: "DIGEST" };
    const sm2Signature = String((await callAction(url, "SignByAsymmetricKey", sm2Sign, creds)).Signature);
    const sm2Verify = { ...sm2Sign, SignatureValue: sm2Signature };
    if ((await callAction(url, "VerifyByAsymmetricKey", sm2Verify, creds)).SignatureValid !== true) throw new Error("a fresh SM2 signature did not verify");
    await callAction(url, "SignByAsymmetricKey", eccSign, creds);
    const accountUin = String(((await callAction(url, "DescribeKey", { KeyId: sm4 }, creds)).KeyMetadata as { CreatorUinString: string }).CreatorUinString);
    const user = await conditionedUser(url, creds, sm4, accountUin);
    await callAction(url, "Encrypt", { KeyId: sm4, Plaintext: plaintext }, user);

    const one = (action: string, params: object, c: Credentials = creds) => (u: URL) => [signedRequest(u, action, params, c)];
    const all = CONNECTIONS;
    const main32 = [MAIN_CONNECTIONS] as const;
    const encryptSm4 = one("Encrypt", { KeyId: sm4, Plaintext: plaintext });
    const scenarios: Scenario[] = [
      // The baseline gets the same signed Encrypt request, so it pays the same client and parsing costs.
      { name: BARE, urls: [bareUrl], connections: all, requests: encryptSm4, bare: true },
      { name: SCENARIO.encryptSm4, urls: [url], connections: all, requests: encryptSm4 },
      { name: SCENARIO.workers, urls: [workersUrl], connections: [32, 128], requests: one("Encrypt", { KeyId: workersSm4, Plaintext: plaintext }, workersCreds) },
      { name: SCENARIO.noAudit, urls: [noAuditUrl], connections: main32, requests: one("Encrypt", { KeyId: noAuditSm4, Plaintext: plaintext }, noAuditCreds) },
      { name: SCENARIO.floor, urls: [floor.url], connections: all, requests: one("Encrypt", { KeyId: floor.keyId, Plaintext: plaintext }) },
      { name: SCENARIO.floorNoStore, urls: [floorNoStore.url], connections: main32, requests: one("Encrypt", { KeyId: floorNoStore.keyId, Plaintext: plaintext }) },
      { name: "Encrypt AES_256 1 KiB", urls: [url], connections: main32, requests: one("Encrypt", { KeyId: aes, Plaintext: plaintext }) },
      { name: SCENARIO.decrypt, urls: [url], connections: main32, requests: (u) => blobs.map((b) => signedRequest(u, "Decrypt", { CiphertextBlob: b }, creds)) },
      { name: SCENARIO.generateDataKey, urls: [url], connections: main32, requests: one("GenerateDataKey", { KeyId: sm4, KeySpec: "AES_256" }) },
      { name: "GenerateRandom 32 B", urls: [url], connections: main32, requests: one("GenerateRandom", { NumberOfBytes: 32 }) },
      { name: SCENARIO.sm2Sign, urls: [url], connections: main32, requests: one("SignByAsymmetricKey", sm2Sign) },
      { name: `SignByAsymmetricKey ECC P-256 ${SIGN_MESSAGE_BYTES} B digest`, urls: [url], connections: main32, requests: one("SignByAsymmetricKey", eccSign) },
      { name: `VerifyByAsymmetricKey SM2 RAW ${SIGN_MESSAGE_BYTES} B`, urls: [url], connections: main32, requests: one("VerifyByAsymmetricKey", sm2Verify) },
      { name: "Encrypt SM4 1 KiB (sub-user, conditioned policy)", urls: [url], connections: main32, requests: one("Encrypt", { KeyId: sm4, Plaintext: plaintext }, user) },
    ];

    // 4. Optional nodes: the PostgreSQL store (one node, then three on one schema), a pkcs11 root.
    const pgUrl = process.env["TRESOR_TEST_PG_URL"];
    const notes: Record<string, string> = {};
    const start = (name: string, args: string[], logPath: string) => startServer(name, args, logPath, ROOT);
    const run = (args: string[], timeoutMs: number) => runNode(args, timeoutMs, ROOT);
    if (pgUrl === undefined || pgUrl === "") {
      notes["postgres"] = "skipped: TRESOR_TEST_PG_URL is not set (`. .ci/postgres.sh` starts a throwaway PostgreSQL)";
    } else {
      const pgNode = await startPostgresNode({ pgUrl, tmp, tresorMain: TRESOR_MAIN, run, start });
      started.push(pgNode.server);
      cleanups.push(pgNode.dropSchema);
      const more = await pgNode.startMoreNodes(PG_CLUSTER_NODES - 1);
      started.push(...more);
      const request = one("Encrypt", { KeyId: pgNode.keyId, Plaintext: plaintext }, pgNode.creds);
      scenarios.push(
        { name: SCENARIO.pg, urls: [pgNode.url], connections: main32, requests: request },
        { name: SCENARIO.pgCluster, urls: [pgNode.server, ...more].map((n) => loopbackUrl(n.listening.url)), connections: main32, requests: request },
      );
    }
    const hsmNote = hsmUnavailable();
    if (hsmNote !== undefined) notes["pkcs11"] = hsmNote;
    else {
      const hsmNode = await startHsmNode({ tmp, tresorMain: TRESOR_MAIN, run, start });
      started.push(hsmNode.server);
      scenarios.push(
        { name: SCENARIO.hsm, urls: [hsmNode.url], connections: main32, requests: one("Encrypt", { KeyId: hsmNode.hsmKeyId, Plaintext: plaintext }, hsmNode.creds) },
        { name: SCENARIO.hsmSoftware, urls: [hsmNode.url], connections: main32, requests: one("Encrypt", { KeyId: hsmNode.softwareKeyId, Plaintext: plaintext }, hsmNode.creds) },
      );
    }
    for (const [what, note] of Object.entries(notes)) log(`bench: ${what} ${note}`);

    // 5. The rounds.
    const watch = () => {
      for (const s of started) if (!alive(s)) throw new Error(`a server died during the run:\n${tail(s.logPath)}`);
    };
    const samples = await runRounds(scenarios, opts, watch);
    const rows = rowsOf(samples);
    log("");
    log(table(rows));
    log("");

    // 6. The acceptance figures.
    const at = (name: string, c = MAIN_CONNECTIONS) => rows.find((r) => r.scenario === name && r.connections === c);
    const enc = at(SCENARIO.encryptSm4);
    const enc1 = at(SCENARIO.encryptSm4, 1);
    const rate = (name: string) => at(name)?.reqPerSec ?? null;
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || b === 0 ? null : round(a / b, 3));
    const speed = (name: string) => speeds.find((s) => s.name === name);
    const targets = [
      { name: `Encrypt SM4 1 KiB, c=${MAIN_CONNECTIONS}: ratio to bare node:http`, min: TARGETS.encryptRatio, value: enc?.ratioToBare ?? null },
      { name: `Encrypt SM4 1 KiB, c=${MAIN_CONNECTIONS}: p99 ms (at most)`, max: TARGETS.encryptP99Ms, value: enc?.p99Ms ?? null },
      { name: "Encrypt SM4 1 KiB, c=1: mean latency ms (at most)", max: TARGETS.encryptOneConnectionMeanMs, value: enc1?.meanMs ?? null },
      { name: "Decrypt / Encrypt rate", min: TARGETS.siblingsOfEncrypt, value: ratio(rate(SCENARIO.decrypt), enc?.reqPerSec) },
      { name: "GenerateDataKey / Encrypt rate", min: TARGETS.siblingsOfEncrypt, value: ratio(rate(SCENARIO.generateDataKey), enc?.reqPerSec) },
      { name: "Encrypt audited / no-audit build", min: TARGETS.auditedToUnaudited, value: ratio(enc?.reqPerSec, rate(SCENARIO.noAudit)) },
      { name: "SM2 sign over HTTP / in process", min: TARGETS.sm2SignHttpToInProcess, value: ratio(rate(SCENARIO.sm2Sign), speed("SM2 sign")?.opsPerSec) },
      { name: "SM2 verify in process / openssl speed", min: TARGETS.sm2VerifyToOpenssl, value: speed("SM2 verify")?.ratio ?? null },
      ...(encryptionSdk?.targets ?? []).map((t) => ({ name: `Encryption SDK: ${t.name}`, min: t.min, value: t.ratio })),
    ].map((t) => ({ ...t, met: t.value !== null && ("min" in t ? t.value >= t.min! : t.value <= t.max!) }));
    for (const t of targets) {
      const bound = "min" in t ? `>= ${t.min}` : `<= ${t.max}`;
      log(`target: ${t.name} ${bound}: ${t.value === null ? "not measured" : t.value.toFixed(3)} (${t.met ? "met" : "NOT met"})`);
    }
    const floorRow = at(SCENARIO.floor);
    log(
      `floor: the work alone (floor-server.ts) at ${floorRow?.ratioToBare ?? "-"} of bare (c=${MAIN_CONNECTIONS}), p99 ${floorRow?.p99Ms ?? "-"} ms, ` +
        `c=1 mean ${at(SCENARIO.floor, 1)?.meanMs ?? "-"} ms; without storing the audit record ${at(SCENARIO.floorNoStore)?.ratioToBare ?? "-"}; ` +
        `Tresor at ${ratio(enc?.reqPerSec, floorRow?.reqPerSec) ?? "-"} of the floor (c=${MAIN_CONNECTIONS}), ${ratio(enc1?.meanMs, at(SCENARIO.floor, 1)?.meanMs) ?? "-"}x its c=1 mean`,
    );
    const disk = await measureFdatasync(tmp);
    notes["disk"] = `fdatasync after an 8 KiB append, in the data's file system: p50 ${disk.p50Ms} ms, p90 ${disk.p90Ms} ms (${disk.count} syncs)`;
    log(`disk: ${notes["disk"]}: a durable answer waits for one, the floor of the c=1 latency`);
    log(`workers: --workers 2 serves Encrypt SM4 at ${ratio(rate(SCENARIO.workers), enc?.reqPerSec) ?? "-"} of one process's rate (c=${MAIN_CONNECTIONS}), ${ratio(at(SCENARIO.workers, 128)?.reqPerSec, at(SCENARIO.encryptSm4, 128)?.reqPerSec) ?? "-"} (c=128), on ${cpus().length} cores shared with wrk`);
    log(`postgres: one node at ${ratio(rate(SCENARIO.pg), enc?.reqPerSec) ?? notes["postgres"] ?? "-"}, ${PG_CLUSTER_NODES} nodes at ${ratio(rate(SCENARIO.pgCluster), enc?.reqPerSec) ?? "-"} of the SQLite node's Encrypt rate`);
    log(`pkcs11: HSM key at ${ratio(rate(SCENARIO.hsm), rate("Encrypt AES_256 1 KiB")) ?? notes["pkcs11"] ?? "-"}, software key at ${ratio(rate(SCENARIO.hsmSoftware), rate("Encrypt AES_256 1 KiB")) ?? "-"} of the file-root AES_256 rate`);

    // 7. The web console: bundle size and first load in chromium, after the load so it disturbs no round.
    const webConsole = await measureConsole(url.href, opts.rounds);
    log(consoleLine(webConsole));

    writeReport({
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      rounds: opts.rounds,
      durationSeconds: opts.durationSeconds,
      plaintextBytes: PLAINTEXT_BYTES,
      targets,
      notes,
      scenarios: rows,
      asymmetricInProcess: speeds,
      encryptionSdk,
      console: webConsole,
    });
    const failed = rows.filter((r) => r.errors > 0);
    if (failed.length > 0) {
      keepTmp = true;
      log(`bench: FAILED: ${failed.map((f) => `${f.scenario} c=${f.connections}`).join(", ")} had errors (logs kept in ${tmp})`);
      return 1;
    }
    return 0;
  } catch (e) {
    keepTmp = true;
    log(`bench: FAILED: ${(e as Error).message}`);
    log(`bench: temp dir kept: ${tmp}`);
    return 1;
  } finally {
    for (const s of started) await stop(s.child, log);
    for (const c of cleanups) await c().catch((e: unknown) => log(`bench: cleanup failed: ${(e as Error).message}`));
    if (!keepTmp) rmSync(tmp, { recursive: true, force: true });
  }
}

stopChildrenOnSignal();
main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    log(`bench: FAILED: ${(e as Error).message}`);
    process.exitCode = 1;
  },
);
