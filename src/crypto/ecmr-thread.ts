// The worker thread behind EcmrThread (ecmr-worker.ts): one McCallum-Relyea multiplication per
// message, so its ~10 ms of big-integer work never runs on the server's event loop. Started by
// ecmr-worker.ts, never imported.

import { EcPointError, ecmrMultiply } from "./ecmr.js";
import { answerJobs, bufferView as view } from "./job-worker.js";

export interface EcmrRequest {
  job: number;
  scalar: Uint8Array;
  x: Uint8Array;
  y: Uint8Array;
}

answerJobs<EcmrRequest, { x: Uint8Array; y: Uint8Array }>(
  (req) => {
    const product = ecmrMultiply(view(req.scalar), { x: view(req.x), y: view(req.y) });
    return { x: product.x, y: product.y };
  },
  (e) => (e instanceof EcPointError ? "badPoint" : "error"),
  (req) => view(req.scalar).fill(0),
);
