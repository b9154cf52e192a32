// The post-quantum algorithms off the event loop: one worker thread (pq-thread.ts, through
// job-thread.ts). An ML-DSA signature or a hybrid decapsulation costs a few milliseconds of
// JavaScript (tens on a loaded machine, docs/performance.md); on the event loop it would stall
// every other request. Inputs are copied into their own buffers (a pooled Buffer would carry its
// whole pool across); the thread wipes its copies of secrets.

import type { HybridKem, HybridKemOps } from "./hybrid-kem.js";
import { JobThread, type JobRequest } from "./job-thread.js";
import type { MlDsaParameterSet } from "./ml-dsa.js";
import type { PqRequest, PqValue } from "./pq-thread.js";

/** More post-quantum operations than this waiting at once: refused. */
export const MAX_QUEUED_PQ = 256;

export class PqThread implements HybridKemOps {
  readonly #thread = new JobThread<JobRequest<PqRequest>, PqValue>(new URL("./pq-thread.js", import.meta.url), "post-quantum", MAX_QUEUED_PQ, (kind, message) =>
    kind === "range" ? new RangeError(message) : new Error(`post-quantum operation failed: ${message}`),
  );

  async sign(set: MlDsaParameterSet, secretKey: Uint8Array, message: Uint8Array, context: Uint8Array): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "sign", set, secretKey: new Uint8Array(secretKey), message: new Uint8Array(message), context: new Uint8Array(context) })) as Uint8Array);
  }

  async verify(set: MlDsaParameterSet, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, context: Uint8Array): Promise<boolean> {
    return (await this.#thread.run({ op: "verify", set, publicKey: new Uint8Array(publicKey), message: new Uint8Array(message), signature: new Uint8Array(signature), context: new Uint8Array(context) })) as boolean;
  }

  /** The raw ML-DSA public key of a seed. */
  async dsaPublicKey(set: MlDsaParameterSet, seed: Uint8Array): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "dsaPublicKey", set, seed: new Uint8Array(seed) })) as Uint8Array);
  }

  /** The signature of the message whose μ is `mu` (ml-dsa.ts mlDsaMuHash), with the key of `seed`. */
  async signMu(set: MlDsaParameterSet, seed: Uint8Array, mu: Uint8Array): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "signMu", set, seed: new Uint8Array(seed), mu: new Uint8Array(mu) })) as Uint8Array);
  }

  async verifyMu(set: MlDsaParameterSet, publicKey: Uint8Array, mu: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return (await this.#thread.run({ op: "verifyMu", set, publicKey: new Uint8Array(publicKey), mu: new Uint8Array(mu), signature: new Uint8Array(signature) })) as boolean;
  }

  async encapsulate(kem: HybridKem, publicKey: Uint8Array): Promise<{ ciphertext: Buffer; sharedSecret: Buffer }> {
    const r = (await this.#thread.run({ op: "encapsulate", kem, publicKey: new Uint8Array(publicKey) })) as { ciphertext: Uint8Array; sharedSecret: Uint8Array };
    return { ciphertext: Buffer.from(r.ciphertext), sharedSecret: Buffer.from(r.sharedSecret) };
  }

  async decapsulate(kem: HybridKem, seed: Uint8Array, ciphertext: Uint8Array): Promise<Buffer> {
    return Buffer.from((await this.#thread.run({ op: "decapsulate", kem, seed: new Uint8Array(seed), ciphertext: new Uint8Array(ciphertext) })) as Uint8Array);
  }

  close(): void {
    this.#thread.close();
  }
}
