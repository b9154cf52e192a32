// ECMR off the event loop: one worker thread (ecmr-thread.ts, through job-thread.ts). A
// multiplication takes about 10 ms of CPU on this kind of machine (docs/disk-encryption.md); on
// the event loop it would stall every other request.

import type { EcmrRequest } from "./ecmr-thread.js";
import { EcPointError, type EcPoint } from "./ecmr.js";
import { JobThread, ThreadBusyError } from "./job-thread.js";

/** More multiplications than this waiting at once: refused (a flood of recoveries must not queue without bound). */
export const MAX_QUEUED_ECMR = 256;

/** The thread already holds MAX_QUEUED_ECMR multiplications. */
export { ThreadBusyError as EcmrBusyError };

export class EcmrThread {
  readonly #thread = new JobThread<Omit<EcmrRequest, "job">, { x: Uint8Array; y: Uint8Array }>(
    new URL("./ecmr-thread.js", import.meta.url),
    "key exchange",
    MAX_QUEUED_ECMR,
    (kind, message) => (kind === "badPoint" ? new EcPointError(message) : new Error(`ECMR failed: ${message}`)),
  );

  /** s·X as ecmrMultiply computes it; the caller's `scalar` is copied, and the copy wiped in the thread. */
  async multiply(scalar: Buffer, point: EcPoint): Promise<EcPoint> {
    const product = await this.#thread.run({ scalar: new Uint8Array(scalar), x: new Uint8Array(point.x), y: new Uint8Array(point.y) });
    return { x: Buffer.from(product.x), y: Buffer.from(product.y) };
  }

  close(): void {
    this.#thread.close();
  }
}
