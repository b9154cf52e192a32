// The load process: drives one action at a fixed concurrency over keep-alive connections, every
// request freshly TC3-signed, and prints one JSON result line. It runs as its own process so its
// CPU is not the server's; run.ts starts it once per scenario.
//
// Config: one JSON object as argv[2] or in BENCH_LOAD_CONFIG:
//   url          loopback http URL of the server
//   urls         optional: several such URLs (nodes of one cluster); worker i sends to urls[i % n],
//                so the load is spread evenly over them (url is then ignored)
//   action       e.g. "Encrypt"
//   params       request parameters sent with every request
//   cycle        optional { field, values | valuesFile }: request i also sets params[field] to
//                values[i % n] (Decrypt uses it for blobs made beforehand)
//   credentials  { secretId, secretKey, region }
//   concurrency  requests in flight (default 32), warmupSeconds (1), durationSeconds (5),
//   maxRequests  hard cap on measured requests (default 5,000,000)
//   serverPid    optional: the server's pid, to report its CPU use over the window (Linux /proc)
//   serverPids   optional: several servers' pids (with urls); serverCpu is their sum
//
// Result line: {"ok":true,"requests","errors","seconds","reqPerSec","p50Ms","p99Ms",
// "clientCpu","serverCpu","otherCpu"}; the CPU figures are cores used over the measured window
// (1 = one core busy): they say whether the server or this process is the bottleneck, and
// otherCpu (everything else on the machine) whether the figures are trustworthy at all. When any
// request fails it prints {"ok":false,...,"sampleErrors"} with no rate and exits 1: a run with
// errors has no meaningful throughput.

import { Agent } from "node:http";
import { readFileSync } from "node:fs";
import { hrtime } from "node:process";
import { loopbackUrl, post, responseFailure, signedHeaders, type Credentials } from "./signed-request.js";

interface LoadConfig {
  urls: URL[];
  action: string;
  bodies: string[];
  credentials: Credentials;
  concurrency: number;
  warmupSeconds: number;
  durationSeconds: number;
  maxRequests: number;
  serverPids: number[];
}

const MAX_ERRORS_BEFORE_ABORT = 1000;
const SAMPLE_ERRORS = 5;
/** Beyond warm-up plus duration, the longest we wait for in-flight requests before giving up. */
const DRAIN_GRACE_SECONDS = 30;

function needs(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`load config: ${message}`);
}

function positive(raw: unknown, name: string, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  needs(typeof raw === "number" && Number.isFinite(raw) && raw >= 0 && raw <= max, `"${name}" must be a number in [0, ${max}]`);
  return raw;
}

function parseConfig(text: string | undefined): LoadConfig {
  needs(text !== undefined && text !== "", "pass the config as one JSON argument or in BENCH_LOAD_CONFIG");
  const raw = JSON.parse(text) as Record<string, unknown>;
  const urls = raw.urls === undefined ? [raw.url] : (raw.urls as unknown[]);
  needs(Array.isArray(urls) && urls.length > 0 && urls.every((u) => typeof u === "string"), '"url" must be a string, or "urls" a non-empty array of strings');
  const pids = raw.serverPids === undefined ? (raw.serverPid === undefined ? [] : [raw.serverPid]) : (raw.serverPids as unknown[]);
  needs(Array.isArray(pids), '"serverPids" must be an array');
  needs(typeof raw.action === "string" && /^[A-Za-z]+$/.test(raw.action), '"action" must be an action name');
  const params = raw.params ?? {};
  needs(typeof params === "object" && params !== null && !Array.isArray(params), '"params" must be an object');
  const creds = raw.credentials as Partial<Credentials> | undefined;
  needs(
    typeof creds?.secretId === "string" && typeof creds.secretKey === "string" && typeof creds.region === "string",
    '"credentials" must be { secretId, secretKey, region }',
  );

  let bodies = [JSON.stringify(params)];
  if (raw.cycle !== undefined) {
    const cycle = raw.cycle as { field?: unknown; values?: unknown; valuesFile?: unknown };
    needs(typeof cycle.field === "string", '"cycle.field" must be a string');
    const values: unknown =
      typeof cycle.valuesFile === "string" ? JSON.parse(readFileSync(cycle.valuesFile, "utf8")) : cycle.values;
    needs(Array.isArray(values) && values.length > 0, '"cycle" needs a non-empty "values" array or "valuesFile"');
    // Bodies are built once: the bench measures the server and the signing, not JSON.stringify.
    bodies = values.map((v) => JSON.stringify({ ...params, [cycle.field as string]: v }));
  }

  const concurrency = positive(raw.concurrency, "concurrency", 32, 1024);
  needs(Number.isInteger(concurrency) && concurrency >= 1, '"concurrency" must be an integer >= 1');
  return {
    urls: urls.map((u) => loopbackUrl(u as string)),
    action: raw.action,
    bodies,
    credentials: { secretId: creds.secretId, secretKey: creds.secretKey, region: creds.region },
    concurrency,
    warmupSeconds: positive(raw.warmupSeconds, "warmupSeconds", 1, 60),
    durationSeconds: positive(raw.durationSeconds, "durationSeconds", 5, 600),
    maxRequests: positive(raw.maxRequests, "maxRequests", 5_000_000, 50_000_000),
    serverPids: pids.map((pid) => positive(pid, "serverPid", 0, 2 ** 31)),
  };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined where unreadable. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
/** The sum over several processes (the nodes of a cluster); undefined when any is unreadable or there are none. */
function serversCpuSeconds(pids: readonly number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const seconds = processCpuSeconds(pid);
    if (seconds === undefined) return undefined;
    total += seconds;
  }
  return pids.length === 0 ? undefined : total;
}

/** CPU seconds all cores of the machine have spent busy so far (/proc/stat minus idle and iowait). */
function machineBusySeconds(): number | undefined {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest is inside user
    return (total - cpu[3]! - cpu[4]!) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

// USER_HZ, 100 on every mainstream Linux build (getconf CLK_TCK).
const CLOCK_TICKS_PER_SECOND = 100;

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv[2] ?? process.env.BENCH_LOAD_CONFIG);
  const agent = new Agent({ keepAlive: true, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency });
  const hostnames = cfg.urls.map((url) => url.hostname.replace(/^\[|\]$/g, ""));

  const nowNs = (): bigint => hrtime.bigint();
  const start = nowNs();
  const measureFrom = start + BigInt(Math.round(cfg.warmupSeconds * 1e9));
  const measureUntil = measureFrom + BigInt(Math.round(cfg.durationSeconds * 1e9));

  const latenciesNs: number[] = [];
  let errors = 0;
  let measured = 0;
  let next = 0;
  const sampleErrors: string[] = [];
  let aborted = false;

  const fail = (what: string): void => {
    errors++;
    if (sampleErrors.length < SAMPLE_ERRORS) sampleErrors.push(what);
    if (errors >= MAX_ERRORS_BEFORE_ABORT) aborted = true;
  };

  const worker = async (w: number): Promise<void> => {
    const url = cfg.urls[w % cfg.urls.length]!;
    const hostname = hostnames[w % cfg.urls.length]!;
    for (;;) {
      const t0 = nowNs();
      if (t0 >= measureUntil || aborted || measured >= cfg.maxRequests) return;
      const inWindow = t0 >= measureFrom;
      if (inWindow) measured++;
      const body = cfg.bodies[next++ % cfg.bodies.length]!;
      try {
        const res = await post(url, signedHeaders(cfg.action, body, hostname, cfg.credentials), body, agent);
        const failure = responseFailure(res);
        if (failure !== undefined) fail(failure);
        else if (inWindow) latenciesNs.push(Number(nowNs() - t0));
      } catch (e) {
        fail(`transport: ${(e as Error).message}`);
      }
    }
  };

  // CPU use is sampled at the start and end of the measured window, not over the warm-up.
  let cpuAtStart: { client: NodeJS.CpuUsage; server: number | undefined; machine: number | undefined } | undefined;
  const cpuTimer = setTimeout(() => {
    cpuAtStart = {
      client: process.cpuUsage(),
      server: serversCpuSeconds(cfg.serverPids),
      machine: machineBusySeconds(),
    };
  }, cfg.warmupSeconds * 1000);

  const guard = setTimeout(() => {
    process.stderr.write(`load: still running ${DRAIN_GRACE_SECONDS} s past the end; giving up\n`);
    process.exit(2);
  }, (cfg.warmupSeconds + cfg.durationSeconds + DRAIN_GRACE_SECONDS) * 1000);

  await Promise.all(Array.from({ length: cfg.concurrency }, (_, w) => worker(w)));
  const seconds = Number(nowNs() - measureFrom) / 1e9;
  clearTimeout(guard);
  clearTimeout(cpuTimer);
  let clientCpu: number | null = null;
  let serverCpu: number | null = null;
  let otherCpu: number | null = null;
  if (cpuAtStart !== undefined) {
    const used = process.cpuUsage(cpuAtStart.client);
    clientCpu = round((used.user + used.system) / 1e6 / seconds, 2);
    const serverNow = serversCpuSeconds(cfg.serverPids);
    if (serverNow !== undefined && cpuAtStart.server !== undefined) serverCpu = round((serverNow - cpuAtStart.server) / seconds, 2);
    const machineNow = machineBusySeconds();
    if (machineNow !== undefined && cpuAtStart.machine !== undefined && serverCpu !== null) {
      // Kernel softirq work for loopback TCP is charged to whichever process was running, so this
      // stays near 0 on a quiet machine and grows when other work competes for the cores.
      otherCpu = round(Math.max(0, (machineNow - cpuAtStart.machine) / seconds - clientCpu - serverCpu), 2);
    }
  }
  agent.destroy();

  if (errors > 0 || latenciesNs.length === 0) {
    const result = { ok: false, action: cfg.action, requests: measured, errors, aborted, sampleErrors };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stderr.write(`load: ${cfg.action}: ${errors} failed request(s); first: ${sampleErrors[0] ?? "no requests completed"}\n`);
    process.exitCode = 1;
    return;
  }
  const sorted = Float64Array.from(latenciesNs).sort();
  const result = {
    ok: true,
    action: cfg.action,
    requests: latenciesNs.length,
    errors,
    seconds: round(seconds, 3),
    reqPerSec: round(latenciesNs.length / seconds, 1),
    p50Ms: round(percentile(sorted, 50) / 1e6, 3),
    p99Ms: round(percentile(sorted, 99) / 1e6, 3),
    clientCpu,
    serverCpu,
    otherCpu,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`load: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
