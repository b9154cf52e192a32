// The bench's child processes: servers whose output goes to a log file (so their request log costs
// the bench nothing), started once they print their `listening` line, and stopped with SIGTERM.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const START_TIMEOUT_MS = 30_000;

export interface Started {
  child: ChildProcess;
  logPath: string;
  listening: Record<string, unknown> & { url: string };
}

const children = new Set<ChildProcess>();

/** Starts `node args…` with its stdout and stderr in `logPath`, and waits for its `{"msg":"listening","url":…}` line. */
export async function startServer(name: string, args: string[], logPath: string, cwd: string): Promise<Started> {
  const fd = openSync(logPath, "w");
  const child = spawn(process.execPath, args, { stdio: ["ignore", fd, fd], cwd });
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
        if (parsed.msg === "listening" && typeof parsed.url === "string") return { child, logPath, listening: parsed as Started["listening"] };
      } catch {
        // not a JSON line; keep looking
      }
    }
    if (exited !== undefined) throw new Error(`${name} ${exited} before listening:\n${tail(logPath)}`);
    await sleep(50);
  }
  throw new Error(`${name} did not log a "listening" line within ${START_TIMEOUT_MS / 1000} s:\n${tail(logPath)}`);
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).map((l) => `  | ${l}`).join("\n");
  } catch {
    return "  (no log)";
  }
}

export function alive(s: Started): boolean {
  return s.child.exitCode === null && s.child.signalCode === null;
}

export async function stop(child: ChildProcess, log: (line: string) => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
  if (timedOut) {
    log(`  (pid ${String(child.pid)} ignored SIGTERM for 10 s; sending SIGKILL)`);
    child.kill("SIGKILL");
    await exited;
  }
}

/** Runs `node args…` to completion; its stdout. */
export function runNode(args: string[], timeoutMs: number, cwd: string): Promise<string> {
  return new Promise((res, rej) => {
    execFile(process.execPath, args, { cwd, timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`node ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`));
      else res(stdout);
    });
  });
}

/** On SIGINT/SIGTERM of the bench, its children go too. */
export function stopChildrenOnSignal(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      for (const c of children) c.kill("SIGTERM");
      process.exit(130);
    });
  }
}
