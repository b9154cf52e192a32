// `tresor serve --workers N`: N processes serving one port through node:cluster (the supervisor
// accepts connections and hands them to the workers in turn). Every worker is a whole node over the
// same store, so there is still one audit chain (each append reads and extends the head inside the
// store's write transaction) and jobs are claimed through the store; only worker 0 runs the
// scheduler, to save the others the polling. The supervisor restarts a worker that dies after it
// started serving, stops them all (each finishing its requests in flight) on SIGTERM or SIGINT, and
// gives up when a worker fails before it serves (a configuration or root-of-trust error would only
// fail again). A worker whose supervisor disappears (SIGKILL) shuts down gracefully on its own.
// The supervisor also keeps the host's one table of signature bindings (docs/security.md, replays):
// a captured request replayed as another action is refused whichever worker takes it.

import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Logger } from "pino";
import { nodeSignatureBindings } from "../api/tencent/authenticate.js";
import type { BindingOutcome, SignatureBinder } from "../api/tencent/signature-bindings.js";
import { KmsError } from "../service/errors.js";
import { ConfigError } from "./config.js";

export const MAX_WORKERS = 256;
/** Restarts of one worker slot within a minute before the supervisor stops trying. */
const MAX_RESTARTS_PER_MINUTE = 10;

/** --workers (env TRESOR_WORKERS): 1 to 256, or `auto` (the default) for the cores available. */
export function resolveWorkers(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const text = flag ?? env["TRESOR_WORKERS"];
  if (text === undefined || text === "" || text === "auto") return Math.min(MAX_WORKERS, availableParallelism());
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
  /** The host's signature bindings, kept by the supervisor. */
  signatureBindings: SignatureBinder;
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
    signatureBindings: new SupervisorBindings(),
  };
}

interface BindRequest {
  tresor: "bind";
  id: number;
  signature: string;
  timestamp: number;
  action: string;
  now: number;
}

interface BindReply {
  tresor: "bound";
  id: number;
  outcome: BindingOutcome;
}

function isBindRequest(m: unknown): m is BindRequest {
  const r = m as BindRequest;
  return (
    typeof m === "object" &&
    m !== null &&
    r.tresor === "bind" &&
    Number.isSafeInteger(r.id) &&
    typeof r.signature === "string" &&
    Number.isSafeInteger(r.timestamp) &&
    typeof r.action === "string" &&
    Number.isSafeInteger(r.now)
  );
}

function isBindReply(m: unknown): m is BindReply {
  const r = m as BindReply;
  return typeof m === "object" && m !== null && r.tresor === "bound" && Number.isSafeInteger(r.id) && typeof r.outcome === "object" && r.outcome !== null;
}

/** A worker's side of the bindings: each bind is a question to the supervisor, answered in order. */
class SupervisorBindings implements SignatureBinder {
  readonly #pending = new Map<number, { resolve: (outcome: BindingOutcome) => void; reject: (err: Error) => void }>();
  #nextId = 0;

  constructor() {
    process.on("message", (m: unknown) => {
      if (!isBindReply(m)) return;
      const pending = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      pending?.resolve(m.outcome);
    });
    process.once("disconnect", () => {
      for (const pending of this.#pending.values()) pending.reject(supervisorGone());
      this.#pending.clear();
    });
  }

  bind(signatureHex: string, timestamp: number, action: string, nowSeconds: number): Promise<BindingOutcome> {
    return new Promise((resolve, reject) => {
      if (process.send === undefined || !process.connected) return reject(supervisorGone());
      const id = this.#nextId++;
      this.#pending.set(id, { resolve, reject });
      // The table names an entry by the signature's first 16 bytes: only those cross.
      const request: BindRequest = { tresor: "bind", id, signature: signatureHex.slice(0, 32), timestamp, action, now: nowSeconds };
      process.send(request, undefined, undefined, (err) => {
        if (err === null) return;
        this.#pending.delete(id);
        reject(supervisorGone());
      });
    });
  }
}

function supervisorGone(): KmsError {
  return new KmsError("ServiceUnavailable", "this worker is shutting down: send the request again");
}

/** The supervisor's side: one table for every worker; actions interned, as the table expects. */
function answerBindings(): (worker: Worker, message: BindRequest) => void {
  const bindings = nodeSignatureBindings();
  const actions = new Map<string, string>();
  return (worker, m) => {
    let action = actions.get(m.action);
    if (action === undefined) {
      action = m.action;
      // Action names come from the workers' catalogue: a few hundred at most.
      if (actions.size < 10_000) actions.set(action, action);
    }
    const reply: BindReply = { tresor: "bound", id: m.id, outcome: bindings.bind(m.signature, m.timestamp, action, m.now) };
    if (worker.isConnected()) worker.send(reply);
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
    const bind = answerBindings();

    const fork = (index: number): void => {
      const worker = cluster.fork({ TRESOR_WORKER_INDEX: String(index) });
      slots.set(worker, { index, serving: false });
      worker.on("message", (message: unknown) => {
        if (isBindRequest(message)) return bind(worker, message);
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
