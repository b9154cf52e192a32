// The thread side of JobThread (job-thread.ts), for the scripts it starts (ecmr-thread.ts,
// pq-thread.ts, sm2-thread.ts): each posted job is answered with `run`'s value or with its
// failure, named by `kindOf` for the caller's error, and `done` then wipes the job's copies of
// secrets, whatever happened.

import { parentPort } from "node:worker_threads";
import type { JobReply } from "./job-thread.js";

/** A Buffer over a posted Uint8Array's bytes (no copy: wiping it wipes them). */
export const bufferView = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function answerJobs<Request extends { job: number }, Value>(run: (req: Request) => Value, kindOf: (e: unknown) => string, done: (req: Request) => void): void {
  const port = parentPort;
  if (port === null) return;
  port.on("message", (req: Request) => {
    try {
      port.postMessage({ job: req.job, ok: true, value: run(req) } satisfies JobReply<Value>);
    } catch (e) {
      port.postMessage({ job: req.job, ok: false, kind: kindOf(e), message: e instanceof Error ? e.message : "failed" } satisfies JobReply<Value>);
    } finally {
      done(req);
    }
  });
}
