// `tresor serve --workers N`: N processes serving one port through node:cluster (the supervisor
// accepts connections and hands them to the workers in turn). Every worker is a whole node over the
// same store, so there is still one audit chain (each append reads and extends the head inside the
// store's write transaction) and jobs are claimed through the store; only worker 0 runs the
// scheduler, to save the others the polling. The supervisor restarts a worker that dies after it
// started serving, stops them all (each finishing its requests in flight) on SIGTERM or SIGINT, and
// gives up when a worker fails before it serves (a configuration or root-of-trust error would only
// fail again). A worker whose supervisor disappears (SIGKILL) shuts down gracefully on its own.

import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { ConfigError } from "./config.js";

export const MAX_WORKERS = 256;
/** Restarts of one worker slot within a minute before the supervisor stops trying. */
const MAX_RESTARTS_PER_MINUTE = 10;

/**
 * --workers (env TRESOR_WORKERS): 1 to 256, or `auto` for the cores available. Default 1: each
 * process keeps its own signature bindings (docs/security.md), so with several workers a captured
 * request replayed as another action may reach another worker, as it may reach another node.
 */
export function resolveWorkers(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const text = flag ?? env["TRESOR_WORKERS"];
  if (text === undefined || text === "") return 1;
  if (text === "auto") return Math.min(MAX_WORKERS, availableParallelism());
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_WORKERS) throw new ConfigError(`--workers must be auto or an integer from 1 to ${MAX_WORKERS}, got ${JSON.stringify(text)}`);
  return n;
}

/** What a worker process knows of its place: undefined in a single process. */
export interface WorkerRole {
  index: number;
  /** Worker 0 runs the job scheduler. */
  runsScheduler: boolean;
  /** Tells the supervisor the worker serves at `url` (and KMIP on `kmipPort`). */
  listening(url: string, kmipPort?: number): void;
  /** Called once when the supervisor is gone: the worker should stop. */
  onSupervisorGone(stop: () => void): void;
}

interface ListeningMessage {
  tresor: "listening";
  url: string;
  kmipPort?: number;
}

function isListening(message: unknown): message is ListeningMessage {
  return typeof message === "object" && message !== null && (message as ListeningMessage).tresor === "listening" && typeof (message as ListeningMessage).url === "string";
}

/** This process's role when it is a worker of `tresor serve --workers N`, else undefined. */
export function workerRole(): WorkerRole | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env["TRESOR_WORKER_INDEX"] ?? "0");
  return {
    index,
    runsScheduler: index === 0,
    listening: (url, kmipPort) => process.send?.({ tresor: "listening", url, ...(kmipPort === undefined ? {} : { kmipPort }) } satisfies ListeningMessage),
    onSupervisorGone: (stop) => process.once("disconnect", stop),
  };
}

/** The supervisor's side, whether this process should be one: N > 1 and not already a worker. */
export function isSupervisor(workers: number): boolean {
  return workers > 1 && cluster.isPrimary;
}

/**
 * Forks `count` workers running this same command, logs one "listening" line once all serve (then
 * calls `announce` with the URL, which flushes the log so a reader sees it at once), and supervises
 * them until SIGTERM or SIGINT. Resolves with the exit code for the supervisor.
 */
export function supervise(count: number, logger: Logger, announce: (url: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const slots = new Map<Worker, { index: number; serving: boolean }>();
    const restarts: number[][] = Array.from({ length: count }, () => []);
    let url: string | undefined;
    let announced = false;
    let stopping = false;
    let exitCode = 0;

    const fork = (index: number): void => {
      const worker = cluster.fork({ TRESOR_WORKER_INDEX: String(index) });
      slots.set(worker, { index, serving: false });
      worker.on("message", (message: unknown) => {
        if (!isListening(message)) return;
        slots.get(worker)!.serving = true;
        url = message.url;
        const serving = [...slots.values()].filter((s) => s.serving).length;
        if (!announced && serving === count) {
          announced = true;
          const kmipPort = typeof message.kmipPort === "number" ? { kmipPort: message.kmipPort } : {};
          logger.info({ url, ...kmipPort, workers: count, pids: [...slots.keys()].map((w) => w.process.pid) }, "listening");
          announce(message.url);
        }
      });
    };

    const stopAll = (code: number): void => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      for (const worker of slots.keys()) worker.process.kill("SIGTERM");
      if (slots.size === 0) resolve(exitCode);
    };

    cluster.on("exit", (worker, code, signal) => {
      const slot = slots.get(worker);
      slots.delete(worker);
      if (slot === undefined) return;
      if (stopping) {
        if (slots.size === 0) resolve(exitCode);
        return;
      }
      const now = Date.now();
      const recent = restarts[slot.index]!.filter((t) => now - t < 60_000);
      if (!slot.serving || recent.length >= MAX_RESTARTS_PER_MINUTE) {
        logger.error({ worker: slot.index, pid: worker.process.pid, code, signal }, slot.serving ? "a worker keeps dying: stopping" : "a worker failed to start: stopping");
        stopAll(1);
        return;
      }
      logger.warn({ worker: slot.index, pid: worker.process.pid, code, signal }, "a worker died: starting another");
      restarts[slot.index] = [...recent, now];
      fork(slot.index);
    });

    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.once(signal, () => {
        logger.info({ signal }, "shutting down the workers");
        stopAll(0);
      });
    }
    for (let i = 0; i < count; i++) fork(i);
  });
}
