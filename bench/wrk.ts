// Drives one HTTP scenario with `wrk` (Debian's C load generator, so the baseline is never
// client-bound): a Lua script made per run holds the requests, signed once for that run (a TC3
// signature stays valid 300 s, and the same signed request repeated is served: the replay table
// binds a signature to its first action only). wrk cycles through them; every answer that is not
// HTTP 200 or carries "Error" is counted. The script's done() prints one JSON line.

import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One HTTP request as wrk sends it. */
export interface WrkRequest {
  headers: Record<string, string>;
  body: string;
}

export interface WrkOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  /** Built afresh just before the run, so the signatures are fresh. */
  requests: () => WrkRequest[];
}

export interface WrkResult {
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Socket errors (connect, read, write, timeout), non-200 answers and answers carrying an Error. */
  errors: number;
}

/** Why wrk cannot run here (with how to install it), or undefined when it can. */
export function wrkMissing(): string | undefined {
  try {
    execFileSync("wrk", ["-v"], { stdio: "ignore" });
    return undefined;
  } catch (e) {
    // `wrk -v` prints its version and exits 1: only a missing binary is a failure.
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return undefined;
    return "wrk is not installed: install it with `sudo apt-get install wrk` (Debian/Ubuntu), then run the bench again";
  }
}

/** `text` as a quoted Lua string: quotes, backslashes and control characters escaped. */
function luaString(text: string): string {
  return `"${text.replace(/[\\"\x00-\x1f\x7f]/g, (c) => `\\${String(c.charCodeAt(0)).padStart(3, "0")}`)}"`;
}

function luaTable(headers: Record<string, string>): string {
  return `{ ${Object.entries(headers).map(([k, v]) => `[${luaString(k)}] = ${luaString(v)}`).join(", ")} }`;
}

export function wrkScript(requests: readonly WrkRequest[]): string {
  if (requests.length === 0) throw new Error("wrk: no requests");
  const specs = requests.map((r) => `  { headers = ${luaTable(r.headers)}, body = ${luaString(r.body)} },`).join("\n");
  return `-- made by bench/wrk.ts for one run
local specs = {
${specs}
}
local prepared, i = {}, 0
errors = 0
function init(args)
  for k, s in ipairs(specs) do prepared[k] = wrk.format("POST", "/", s.headers, s.body) end
end
function request()
  i = i % #prepared + 1
  return prepared[i]
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"Error"', 1, true) then errors = errors + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("errors") end
  local e = summary.errors
  io.write(string.format('\\n{"requests":%d,"durationUs":%d,"socketErrors":%d,"badResponses":%d,"p50Us":%d,"p99Us":%d,"meanUs":%.1f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, bad,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
`;
}

/** One wrk run: `-t1`, `connections` connections, for `durationSeconds`. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), "tresor-wrk-"));
  try {
    const script = join(dir, "requests.lua");
    writeFileSync(script, wrkScript(options.requests()));
    const args = ["-t1", `-c${options.connections}`, `-d${options.durationSeconds}s`, "--timeout", "10s", "-s", script, options.url];
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile("wrk", args, { maxBuffer: 1 << 20, timeout: (options.durationSeconds + 30) * 1000 }, (err, out, errOut) => {
        if (err) reject(new Error(`wrk ${args.join(" ")}: ${err.message}\n${out}${errOut}`));
        else resolve(out);
      });
    });
    const line = stdout.split("\n").reverse().find((l) => l.startsWith('{"requests"'));
    if (line === undefined) throw new Error(`wrk printed no result:\n${stdout}`);
    const r = JSON.parse(line) as { requests: number; durationUs: number; socketErrors: number; badResponses: number; p50Us: number; p99Us: number; meanUs: number };
    const seconds = r.durationUs / 1e6;
    return {
      requests: r.requests,
      seconds,
      reqPerSec: r.requests / seconds,
      p50Ms: r.p50Us / 1000,
      p99Ms: r.p99Us / 1000,
      meanMs: r.meanUs / 1000,
      errors: r.socketErrors + r.badResponses,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
