// One worker thread that runs CPU-heavy jobs off the event loop (SM2's private-key operations, the
// ECMR exchange, the post-quantum algorithms): started on first use, keeping the process alive
// only while it holds jobs (an idle thread never does; a script awaiting a job must not exit under
// it), at most `maxQueued` jobs waiting (a flood must not queue without bound), and a crashed
// thread fails what it held while the next job starts a new one. The thread's side: job-worker.ts.

import { Worker } from "node:worker_threads";

/** What a thread posts back for each job. */
export type JobReply<T> = { job: number; ok: true; value: T } | { job: number; ok: false; kind: string; message: string };

/** Each member of a union without fields K (Omit over the union itself would keep only the fields every member shares). */
export type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A request as its caller hands it to JobThread.run: without the job number the thread adds. */
export type JobRequest<T> = OmitEach<T, "job">;

/** The thread already holds its maximum of jobs. */
export class ThreadBusyError extends Error {
  override readonly name = "ThreadBusyError";
}

export class JobThread<Request extends object, Value> {
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (v: Value) => void; reject: (e: Error) => void }>();

  /** `failure` turns a job's failure (its kind and message) into the error the caller gets. */
  constructor(
    private readonly script: URL,
    private readonly name: string,
    private readonly maxQueued: number,
    private readonly failure: (kind: string, message: string) => Error,
  ) {}

  run(request: Request): Promise<Value> {
    if (this.#pending.size >= this.maxQueued) return Promise.reject(new ThreadBusyError(`${this.maxQueued} ${this.name} jobs are already waiting: retry later`));
    const worker = this.#start();
    const job = this.#next++;
    return new Promise<Value>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(job, { resolve, reject });
      worker.postMessage({ ...request, job });
    });
  }

  /** Whether a thread is up (started by a job, not closed or exited since). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  close(): void {
    void this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll(new Error(`the ${this.name} thread was closed`));
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(this.script, { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } });
    worker.unref();
    worker.on("message", (reply: JobReply<Value>) => {
      const pending = this.#pending.get(reply.job);
      this.#pending.delete(reply.job);
      if (this.#pending.size === 0) worker.unref();
      if (!pending) return;
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(this.failure(reply.kind, reply.message));
    });
    // Only the current thread's end fails what is pending: a thread closed earlier may exit after
    // its successor took new jobs.
    worker.on("error", (e) => {
      if (this.#worker === worker) this.#failAll(e);
    });
    worker.on("exit", () => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(new Error(`the ${this.name} thread exited`));
    });
    this.#worker = worker;
    return worker;
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}
