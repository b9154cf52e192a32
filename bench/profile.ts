// Profiles `tresor serve --workers 1` under wrk load: a fresh data directory, the server started
// with `node --cpu-prof`, one SM4 key, Encrypt 1 KiB from `wrk -t1 -cN` for S seconds, then SIGTERM
// (which writes the profile) and a summary: the share of wall time the main thread was idle, in
// the garbage collector, and the functions with the most self and total time. The .cpuprofile
// file is kept (open it in Chrome DevTools or speedscope).
// Usage: node dist/bench/profile.js [seconds=10] [connections=32]

import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runNode, startServer, stop } from "./processes.js";
import { callAction, loopbackUrl, signedRequest, type Credentials } from "./signed-request.js";
import { runWrk, wrkMissing } from "./wrk.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");
const TRESOR_MAIN = join(ROOT, "dist", "src", "cli", "main.js");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function label(n: ProfileNode): string {
  const file = n.callFrame.url.split("/").slice(-2).join("/");
  return `${n.callFrame.functionName || "(anonymous)"} ${file}${file ? `:${n.callFrame.lineNumber + 1}` : ""}`;
}

/** Self and total microseconds per function label. */
export function summarize(profile: CpuProfile): { totalUs: number; self: Map<string, number>; inclusive: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const perNode = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    perNode.set(id, (perNode.get(id) ?? 0) + dt);
    totalUs += dt;
  });
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of perNode) {
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + us);
    }
  }
  return { totalUs, self, inclusive };
}

function top(map: Map<string, number>, totalUs: number, count: number): string[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([l, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${l}`);
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const connections = Number(process.argv[3] ?? 32);
  const missing = wrkMissing();
  if (missing !== undefined) throw new Error(missing);
  const tmp = mkdtempSync(join(tmpdir(), "tresor-profile-"));
  const dataDir = join(tmp, "data");
  const out = await runNode([TRESOR_MAIN, "init", "--data-dir", dataDir, "--json"], 60_000, ROOT);
  const creds = JSON.parse(out.trim().split("\n").reverse().find((l) => l.includes('"secretId"'))!) as Credentials;
  const profDir = join(tmp, "profile");
  const server = await startServer(
    "tresor serve",
    ["--cpu-prof", `--cpu-prof-dir=${profDir}`, TRESOR_MAIN, "serve", "--data-dir", dataDir, "--port", "0", "--workers", process.env["PROFILE_WORKERS"] ?? "1"],
    join(tmp, "server.log"),
    ROOT,
  );
  try {
    const url = loopbackUrl(server.listening.url);
    const keyId = String((await callAction(url, "CreateKey", { Alias: "profile", KeySpec: "SM4" }, creds)).KeyId);
    const params = { KeyId: keyId, Plaintext: Buffer.alloc(1024, 7).toString("base64") };
    const r = await runWrk({ url: url.href, connections, durationSeconds: seconds, requests: () => [signedRequest(url, "Encrypt", params, creds)] });
    process.stdout.write(`wrk -t1 -c${connections} -d${seconds}s Encrypt SM4 1 KiB: ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}\n`);
  } finally {
    await stop(server.child, (l) => process.stdout.write(`${l}\n`));
  }
  const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error(`no profile written in ${profDir}`);
  const { totalUs, self, inclusive } = summarize(JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile);
  const share = (name: string) => (((self.get(name) ?? 0) * 100) / totalUs).toFixed(1);
  process.stdout.write(`profile: ${join(profDir, file)} (${(totalUs / 1e6).toFixed(1)} s of the main thread, start-up included)\n`);
  process.stdout.write(`idle ${share("(idle) ")}%, garbage collector ${share("(garbage collector) ")}%\n\nself time:\n`);
  process.stdout.write(`${top(self, totalUs, 25).join("\n")}\n\ntotal time:\n${top(inclusive, totalUs, 40).join("\n")}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`profile: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
