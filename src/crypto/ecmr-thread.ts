// The worker thread behind EcmrThread (ecmr-worker.ts): one McCallum-Relyea multiplication per
// message, so its ~10 ms of big-integer work never runs on the server's event loop. Started by
// ecmr-worker.ts, never imported.

import { parentPort } from "node:worker_threads";
import { EcPointError, ecmrMultiply } from "./ecmr.js";
import type { JobReply } from "./job-thread.js";

export interface EcmrRequest {
  job: number;
  scalar: Uint8Array;
  x: Uint8Array;
  y: Uint8Array;
}

export type EcmrReply = JobReply<{ x: Uint8Array; y: Uint8Array }>;

const view = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

if (parentPort) {
  const port = parentPort;
  port.on("message", (req: EcmrRequest) => {
    const scalar = view(req.scalar);
    try {
      const product = ecmrMultiply(scalar, { x: view(req.x), y: view(req.y) });
      port.postMessage({ job: req.job, ok: true, value: { x: product.x, y: product.y } } satisfies EcmrReply);
    } catch (e) {
      port.postMessage({ job: req.job, ok: false, kind: e instanceof EcPointError ? "badPoint" : "error", message: e instanceof Error ? e.message : "failed" } satisfies EcmrReply);
    } finally {
      scalar.fill(0);
    }
  });
}
