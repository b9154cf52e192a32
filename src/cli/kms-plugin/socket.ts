// The plugin's unix socket. Node's net (under grpc-js) fails with EADDRINUSE on an existing socket
// file, and a new socket file's mode follows the umask. So: an existing socket is probed with a
// connect, refused when something answers and removed when stale; the new socket is bound inside a
// fresh 0700 directory, set to 0600 there, then renamed into place, so no one can reach it before
// its mode is set (and no umask is changed under the rest of the process).

import { lstatSync, unlinkSync } from "node:fs";
import { chmod, lstat, mkdtemp, rename, rm, unlink } from "node:fs/promises";
import { connect } from "node:net";
import path from "node:path";
import { UsageError } from "../client-options.js";

/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
const PROBE_TIMEOUT_MS = 2_000;

export interface PluginSocket {
  readonly path: string;
  /** Removes the socket file if it is still the one this process made; safe to call twice. */
  remove(): void;
}

/** Checks --socket before anything is bound: an absolute path that fits a unix socket address. */
export function socketPathArg(value: string): string {
  const resolved = path.resolve(value);
  if (Buffer.byteLength(resolved) > MAX_SOCKET_PATH_BYTES) throw new UsageError(`--socket ${resolved} is longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit of a unix socket path`);
  return resolved;
}

/** Refuses a live socket or a file that is not a socket; removes a stale socket. */
export async function clearStaleSocket(socketPath: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new UsageError(`--socket ${socketPath}: ${(err as Error).message}`);
  }
  if (!stats.isSocket()) throw new UsageError(`--socket ${socketPath} exists and is not a socket: refusing to replace it`);
  if (await answers(socketPath)) throw new UsageError(`--socket ${socketPath} is served by another running process: refusing to replace it`);
  await unlink(socketPath);
}

/** Whether a process accepts connections on the socket (a timeout counts as yes: never steal a slow one). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const done = (result: boolean | Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once("connect", () => done(true));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED" || err.code === "ENOENT") done(false);
      else done(new UsageError(`--socket ${socketPath}: cannot tell whether it is in use (${err.code ?? err.message})`));
    });
  });
}

/**
 * Binds through `bind` (given a "unix:" address) in a private directory beside the socket's path,
 * sets mode 0600, and moves the socket into place.
 */
export async function bindPrivateSocket(socketPath: string, bind: (address: string) => Promise<void>): Promise<PluginSocket> {
  await clearStaleSocket(socketPath);
  let dir: string;
  try {
    dir = await mkdtemp(path.join(path.dirname(socketPath), ".kms-"));
  } catch (err) {
    throw new UsageError(`--socket ${socketPath}: cannot create the socket there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const temporary = path.join(dir, "s");
  try {
    await bind(`unix:${temporary}`);
    await chmod(temporary, 0o600);
    await rename(temporary, socketPath);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const { dev, ino } = await lstat(socketPath);
  return {
    path: socketPath,
    remove() {
      try {
        const now = lstatSync(socketPath);
        // Another plugin may have replaced a socket file it found stale: leave its socket alone.
        if (now.dev === dev && now.ino === ino) unlinkSync(socketPath);
      } catch {
        // Already gone.
      }
    },
  };
}
