// A small shared pool of frame workers (./frame-worker.ts), one per core beyond the first and at
// least one, started on first use. Workers are unref'd while idle so they never keep a process
// alive, and ref'd while a job is in flight so an awaited reply is never lost to an exit.

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, type EncryptionErrorCode } from "./errors.js";
import type { WorkerReply, WorkerRequest } from "./frame-worker.js";
import type { Suite } from "./suites.js";

interface PoolWorker {
  worker: Worker;
  inFlight: number;
  jobs: Map<number, { resolve: (r: { data: Buffer; tag: Buffer | undefined }) => void; reject: (e: Error) => void }>;
}

let pool: PoolWorker[] | undefined;
let nextJob = 1;
let nextMessage = 1;

/**
 * Workers in the pool: one per core beyond the calling thread's, at least one, at most four. The
 * calling thread seals or opens a share of the frames itself (localShare), so every core works
 * and fewer frames are copied across threads.
 */
export function poolSize(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

function getPool(): PoolWorker[] {
  if (pool) return pool;
  pool = [];
  for (let i = 0; i < poolSize(); i++) {
    const worker = new Worker(new URL("./frame-worker.js", import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 } });
    const entry: PoolWorker = { worker, inFlight: 0, jobs: new Map() };
    worker.on("message", (reply: WorkerReply) => {
      const job = entry.jobs.get(reply.job);
      if (!job) return;
      entry.jobs.delete(reply.job);
      if (--entry.inFlight === 0) worker.unref();
      if (reply.ok) {
        const data = Buffer.allocUnsafe(reply.data.byteLength);
        data.set(reply.data);
        recycle(reply.data.buffer as ArrayBuffer);
        job.resolve({ data, tag: reply.tag && Buffer.from(reply.tag) });
      }
      else job.reject(new EncryptionSdkError(reply.code as EncryptionErrorCode, reply.message));
    });
    worker.on("error", (err) => {
      for (const job of entry.jobs.values()) job.reject(err);
      entry.jobs.clear();
      pool = undefined; // the next message starts a fresh pool
    });
    worker.unref();
    pool.push(entry);
  }
  return pool;
}

// Frame buffers go to a worker and come back (transferred both ways); once their content is
// copied out they are reused, so a long stream circulates a bounded set of them instead of leaving
// transferred backing stores for the garbage collector, which does not count them promptly.
const FREE_LIST_MAX = 64;
const free = new Map<number, ArrayBuffer[]>();

function recycle(buffer: ArrayBuffer): void {
  const list = free.get(buffer.byteLength) ?? [];
  if (list.length < FREE_LIST_MAX) {
    new Uint8Array(buffer).fill(0);
    list.push(buffer);
    free.set(buffer.byteLength, list);
  }
}

/** Copies into an ArrayBuffer of its own (reused when one is free) that can be transferred. */
function own(b: Buffer): Uint8Array {
  const u = new Uint8Array(free.get(b.length)?.pop() ?? new ArrayBuffer(b.length));
  u.set(b);
  return u;
}

/** One message's frames spread over the pool, round robin. */
export class ParallelFrames {
  readonly #workers: PoolWorker[];
  readonly #message = nextMessage++;
  #turn = 0;
  #ended = false;

  constructor(suite: Suite, dataKey: Buffer, messageId: Buffer) {
    this.#workers = getPool();
    for (const w of this.#workers) {
      const copy = own(dataKey);
      w.worker.postMessage({ kind: "begin", message: this.#message, suiteId: suite.id, dataKey: copy, messageId: own(messageId) } satisfies WorkerRequest, [copy.buffer as ArrayBuffer]);
    }
  }

  seal(seq: number, aad: Buffer, plaintext: Buffer): Promise<{ data: Buffer; tag: Buffer | undefined }> {
    const data = own(plaintext);
    return this.#submit({ kind: "seal", job: nextJob++, message: this.#message, seq, aad: own(aad), data }, data);
  }

  open(seq: number, aad: Buffer, ciphertext: Buffer, tag: Buffer): Promise<{ data: Buffer; tag: Buffer | undefined }> {
    const data = own(ciphertext);
    return this.#submit({ kind: "open", job: nextJob++, message: this.#message, seq, aad: own(aad), data, tag: own(tag) }, data);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const w of this.#workers) w.worker.postMessage({ kind: "end", message: this.#message } satisfies WorkerRequest);
  }

  #submit(req: WorkerRequest & { job: number }, data: Uint8Array): Promise<{ data: Buffer; tag: Buffer | undefined }> {
    if (this.#ended) return Promise.reject(new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, "the message has ended"));
    const w = this.#workers[this.#turn++ % this.#workers.length]!;
    return new Promise((resolve, reject) => {
      w.jobs.set(req.job, { resolve, reject });
      if (w.inFlight++ === 0) w.worker.ref();
      w.worker.postMessage(req, [data.buffer as ArrayBuffer]);
    });
  }
}
