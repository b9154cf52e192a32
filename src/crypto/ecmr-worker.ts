// ECMR off the event loop: one worker thread (ecmr-thread.ts), started on first use and unref'd so
// it never keeps the process alive. A multiplication takes about 10 ms of CPU on this kind of
// machine (docs/disk-encryption.md); on the event loop it would stall every other request.

import { Worker } from "node:worker_threads";
import type { EcmrReply, EcmrRequest } from "./ecmr-thread.js";
import { EcPointError, type EcPoint } from "./ecmr.js";

/** More multiplications than this waiting at once: refused (a flood of recoveries must not queue without bound). */
export const MAX_QUEUED_ECMR = 256;

/** The thread already holds MAX_QUEUED_ECMR multiplications. */
export class EcmrBusyError extends Error {
  override readonly name = "EcmrBusyError";
}

export class EcmrThread {
  #worker: Worker | undefined;
  #next = 0;
  readonly #pending = new Map<number, { resolve: (p: EcPoint) => void; reject: (e: Error) => void }>();

  /** s·X as ecmrMultiply computes it; the caller's `scalar` is copied, and the copy wiped in the thread. */
  multiply(scalar: Buffer, point: EcPoint): Promise<EcPoint> {
    if (this.#pending.size >= MAX_QUEUED_ECMR) return Promise.reject(new EcmrBusyError(`${MAX_QUEUED_ECMR} key exchanges are already waiting: retry later`));
    const worker = this.#start();
    const job = this.#next++;
    return new Promise<EcPoint>((resolve, reject) => {
      this.#pending.set(job, { resolve, reject });
      worker.postMessage({ job, scalar: new Uint8Array(scalar), x: new Uint8Array(point.x), y: new Uint8Array(point.y) } satisfies EcmrRequest);
    });
  }

  close(): void {
    void this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll(new Error("the ECMR thread was closed"));
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./ecmr-thread.js", import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 } });
    worker.unref();
    worker.on("message", (reply: EcmrReply) => {
      const pending = this.#pending.get(reply.job);
      this.#pending.delete(reply.job);
      if (!pending) return;
      if (reply.ok) pending.resolve({ x: Buffer.from(reply.x), y: Buffer.from(reply.y) });
      else pending.reject(reply.badPoint ? new EcPointError(reply.message) : new Error(`ECMR failed: ${reply.message}`));
    });
    // A crashed thread fails what it held; the next call starts a new one.
    worker.on("error", (e) => this.#failAll(e));
    worker.on("exit", () => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#failAll(new Error("the ECMR thread exited"));
    });
    this.#worker = worker;
    return worker;
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}
