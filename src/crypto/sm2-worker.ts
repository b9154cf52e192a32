// SM2's private-key operations off the event loop: one worker thread (sm2-thread.ts, through
// job-thread.ts). A signature costs about as much CPU as the rest of its request; in the thread it
// runs beside the next requests' parsing, authentication and audit on the event loop, so a node
// signs with two cores instead of one (docs/performance.md). Inputs are copied into their own
// buffers (a pooled Buffer would carry its whole pool across); the thread wipes its copy of d.

import { CryptoError } from "./errors.js";
import { JobThread, type JobRequest, ThreadBusyError } from "./job-thread.js";
import type { Sm2Request, Sm2Value } from "./sm2-thread.js";

/** More SM2 operations than this waiting at once: refused (about 0.2 s of work on one core). */
export const MAX_QUEUED_SM2 = 512;

export { ThreadBusyError as Sm2BusyError };

export class Sm2Thread {
  readonly #thread = new JobThread<JobRequest<Sm2Request>, Sm2Value>(new URL("./sm2-thread.js", import.meta.url), "SM2", MAX_QUEUED_SM2, (kind, message) => {
    if (kind === "crypto") return new CryptoError(message);
    return kind === "range" ? new RangeError(message) : new Error(`SM2 operation failed: ${message}`);
  });

  /** sm2Sign, or sm2SignDigest when `digest`. */
  async sign(privateKey: Buffer, message: Buffer, digest: boolean): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "sign", privateKey: new Uint8Array(privateKey), message: new Uint8Array(message), digest })) as Uint8Array);
  }

  /** sm2VerifyWithPrivateKey, or its digest form when `digest`. */
  async verify(privateKey: Buffer, message: Buffer, digest: boolean, signature: Buffer): Promise<boolean> {
    return (await this.#thread.run({ op: "verify", privateKey: new Uint8Array(privateKey), message: new Uint8Array(message), digest, signature: new Uint8Array(signature) })) as boolean;
  }

  /** sm2Decrypt: CryptoError when the ciphertext does not decrypt. */
  async decrypt(privateKey: Buffer, ciphertext: Buffer): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "decrypt", privateKey: new Uint8Array(privateKey), ciphertext: new Uint8Array(ciphertext) })) as Uint8Array);
  }

  close(): void {
    this.#thread.close();
  }
}
