// Test helpers: start a real `tresor serve` on an ephemeral port, and run the CLI as a child process.

import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** dist/src/cli/main.js, resolved from this file's place in dist/test/helpers/. */
export const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface StartServerOptions {
  /** Use this directory; when it already holds admin-credentials.json, init is skipped (restart). */
  dataDir?: string;
  /** Passed to `init --region`. */
  region?: string;
  /** Extra arguments for `serve`. */
  serveArgs?: string[];
  /** Extra environment for init and serve (TRESOR_* from the test's own environment are dropped). */
  env?: Record<string, string>;
  /** Keep a directory this helper created after stop(). */
  keepDataDir?: boolean;
  startTimeoutMs?: number;
}

export interface TestServer {
  url: string;
  /** The process ids of the workers (`--workers N`, N > 1), from the supervisor's listening line; empty for one process. */
  workerPids: number[];
  /** The process id of `tresor serve` (the supervisor, with workers). */
  pid: number;
  dataDir: string;
  secretId: string;
  secretKey: string;
  region: string;
  /** Everything the server wrote so far, stdout then stderr interleaved as received. */
  logs(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
  /** Sends a signal to the server process, e.g. SIGKILL for crash tests; stop() then reaps it. */
  kill(signal: NodeJS.Signals): void;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment for a child: ours without TRESOR_* and proxies, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith("TRESOR_") || /^(https?|no|all)_proxy$/i.test(name)) continue;
    env[name] = value;
  }
  // One process unless a test asks for workers, whatever TRESOR_WORKERS the machine has.
  return { ...env, TRESOR_WORKERS: "1", ...extra };
}

/** Runs `node dist/src/cli/main.js ...args`; never rejects on a non-zero exit. */
export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string | Buffer; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [CLI_MAIN, ...args],
      {
        env: childEnv(options.env),
        encoding: "buffer",
        timeout: options.timeoutMs ?? 20_000,
        maxBuffer: 16 * 1024 * 1024,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
        if (code === null) {
          reject(new Error(`tresor ${args.join(" ")}: ${err?.message ?? "no exit code"}\n${stderr.toString()}`));
          return;
        }
        resolve({ code, stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8") });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

/** Like runCli, but stdout as bytes (for commands that write binary). */
export function runCliBinary(
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string | Buffer } = {},
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [CLI_MAIN, ...args],
      { env: childEnv(options.env), encoding: "buffer", timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
        if (code === null) reject(new Error(`tresor ${args.join(" ")}: ${err?.message ?? "no exit code"}`));
        else resolve({ code, stdout, stderr: stderr.toString("utf8") });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

export async function startServer(options: StartServerOptions = {}): Promise<TestServer> {
  const created = options.dataDir === undefined;
  const dataDir = options.dataDir ?? path.join(await mkdtemp(path.join(tmpdir(), "tresor-test-")), "data");
  const env = options.env ?? {};

  let credentials: { secretId: string; secretKey: string; region: string };
  const credentialsFile = path.join(dataDir, "admin-credentials.json");
  if (existsSync(credentialsFile)) {
    credentials = parseCredentials(await readFile(credentialsFile, "utf8"), credentialsFile);
  } else {
    const init = await runCli(
      ["init", "--data-dir", dataDir, "--json", ...(options.region === undefined ? [] : ["--region", options.region])],
      { env },
    );
    if (init.code !== 0) throw new Error(`tresor init failed (${init.code}): ${init.stderr}${init.stdout}`);
    credentials = parseCredentials(init.stdout, "tresor init --json");
  }

  const child = spawn(process.execPath, [CLI_MAIN, "serve", "--data-dir", dataDir, "--port", "0", ...(options.serveArgs ?? [])], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const { url, workerPids } = await new Promise<{ url: string; workerPids: number[] }>((resolve, reject) => {
    let pending = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tresor serve did not report "listening" within the timeout; logs:\n${output}`));
    }, options.startTimeoutMs ?? 15_000);
    child.stdout.on("data", (chunk: string) => {
      output += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const listening = listeningLine(line);
        if (listening !== undefined) {
          clearTimeout(timer);
          resolve(listening);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tresor serve exited with ${code} before listening; logs:\n${output}`));
    });
  });

  let stopped: Promise<number | null> | undefined;
  return {
    url,
    workerPids,
    pid: child.pid!,
    dataDir,
    ...credentials,
    logs: () => output,
    kill: (signal) => {
      child.kill(signal);
    },
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        const code = await exited;
        clearTimeout(killer);
        if (created && !options.keepDataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
        return code;
      })();
      return stopped;
    },
  };
}

function listeningLine(line: string): { url: string; workerPids: number[] } | undefined {
  try {
    const record = JSON.parse(line) as { msg?: unknown; url?: unknown; pids?: unknown };
    if (record.msg !== "listening" || typeof record.url !== "string") return undefined;
    return { url: record.url, workerPids: Array.isArray(record.pids) ? record.pids.map(Number) : [] };
  } catch {
    return undefined;
  }
}

function parseCredentials(text: string, source: string): { secretId: string; secretKey: string; region: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${source}: expected one JSON object, got ${JSON.stringify(text.slice(0, 200))}`);
  }
  const { secretId, secretKey, region } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof secretId !== "string" || typeof secretKey !== "string" || typeof region !== "string") {
    throw new Error(`${source}: expected {"secretId","secretKey","region"}`);
  }
  return { secretId, secretKey, region };
}

/** A TCP port free on 127.0.0.1 now (for a server that must come back on the same port). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
