// A throwaway PostgreSQL cluster of a test's own, for cases that stop, freeze or restart the
// server (which the shared one from .ci/postgres.sh must not be). Same recipe as that script:
// initdb with trust auth as user tresor, the socket in the temporary directory, 127.0.0.1 only,
// run as the postgres user when we are root (the server refuses to run as root).

import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../helpers/server.js";

const run = promisify(execFile);

/** Where initdb and pg_ctl are: TRESOR_PG_BINDIR, else the newest /usr/lib/postgresql/<ver>/bin; undefined if none. */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.TRESOR_PG_BINDIR;
  if (fromEnv !== undefined && fromEnv !== "") return existsSync(join(fromEnv, "initdb")) ? fromEnv : undefined;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

/** The processes whose parent is `pid`, from /proc (no procps needed on a minimal machine). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …: comm may contain spaces and parentheses, so parse after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return children;
}

export interface Cluster {
  readonly url: string;
  /** pg_ctl stop -m fast: connections are closed, new ones refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP to the server and all its processes: connections stay open but nothing answers. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Stops the server if running and removes its directory. */
  destroy(): Promise<void>;
}

export async function startCluster(binDir: string): Promise<Cluster> {
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), "tresor-pg-test-"));
  const data = join(dir, "data");
  const asOwner = (file: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", join(binDir, file), ...args]) : run(join(binDir, file), args);
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    await chown(dir, Number(stdout.trim()), -1);
  }
  const port = await freePort();
  await asOwner("initdb", ["-D", data, "-A", "trust", "-U", "tresor", "-E", "UTF8", "--no-locale"]);
  let frozen: number[] = [];
  const cluster: Cluster = {
    url: `postgres://tresor@127.0.0.1:${port}/postgres`,
    async start() {
      await asOwner("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "start"]);
    },
    async stop() {
      await asOwner("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
    },
    async freeze() {
      const postmaster = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      frozen = [postmaster, ...childrenOf(postmaster)];
      for (const pid of frozen) process.kill(pid, "SIGSTOP");
    },
    async thaw() {
      for (const pid of frozen) process.kill(pid, "SIGCONT");
      frozen = [];
    },
    async destroy() {
      if (frozen.length > 0) await cluster.thaw();
      if (existsSync(join(data, "postmaster.pid"))) await cluster.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return cluster;
}
