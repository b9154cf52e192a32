// RSA's private-key operations off the event loop: one worker thread (rsa-thread.ts, through
// job-thread.ts). An RSA-4096 signature or decryption is about 4 ms of OpenSSL on one core, and
// node:crypto has no asynchronous form for privateDecrypt or privateEncrypt: on the event loop
// every other request would wait for it. The thread keeps a clone of each key it was sent until
// the key is destroyed here (the material cache's eviction). Inputs are copied into their own
// buffers (a pooled Buffer would carry its whole pool across).

import { CryptoError } from "./errors.js";
import { JobThread, type JobRequest, type OmitEach } from "./job-thread.js";
import { bufferView } from "./job-worker.js";
import type { RsaEncryptionAlgorithm, RsaPrivateKey, RsaSignatureAlgorithm } from "./rsa.js";
import { UNKNOWN_KEY, type RsaRequest } from "./rsa-thread.js";

/** More RSA operations than this waiting at once: refused (about one second of RSA-4096 work). */
export const MAX_QUEUED_RSA = 256;

/** What a caller's method asks; #run adds the key's number (and the key, the first time). */
type Job = OmitEach<RsaRequest, "job" | "keyNumber" | "key">;

class UnknownKey extends Error {}

export class RsaThread {
  readonly #thread = new JobThread<JobRequest<RsaRequest>, Uint8Array | null>(
    new URL("./rsa-thread.js", import.meta.url),
    "RSA",
    MAX_QUEUED_RSA,
    (kind, message) => {
      if (kind === UNKNOWN_KEY) return new UnknownKey(message);
      if (kind === "crypto") return new CryptoError(message);
      if (kind === "range") return new RangeError(message);
      return kind === "type" ? new TypeError(message) : new Error(`RSA operation failed: ${message}`);
    },
  );
  /** The number each key was sent under; a key destroyed here is forgotten there. */
  readonly #numbers = new WeakMap<RsaPrivateKey, number>();
  #next = 0;

  /** RsaPrivateKey.sign, or signDigest when `digest`. */
  async sign(key: RsaPrivateKey, algorithm: RsaSignatureAlgorithm, message: Buffer, digest: boolean): Promise<Buffer> {
    return bufferView((await this.#run(key, { op: "sign", algorithm, message: new Uint8Array(message), digest }))!);
  }

  /** RsaPrivateKey.decrypt: CryptoError when the ciphertext does not decrypt. The plaintext is a view of the posted bytes (one copy: the caller wipes it). */
  async decrypt(key: RsaPrivateKey, algorithm: RsaEncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    return bufferView((await this.#run(key, { op: "decrypt", algorithm, ciphertext: new Uint8Array(ciphertext) }))!);
  }

  close(): void {
    this.#thread.close();
  }

  /** A thread that is not up holds no key: nothing to forget (and no thread started for it, as at shutdown). */
  #forget(keyNumber: number): void {
    if (this.#thread.running) this.#thread.run({ op: "forget", keyNumber }).catch(() => undefined);
  }

  /** Names the key by its number, sending the key along the first time, and again if the thread has lost it (it restarted). */
  async #run(key: RsaPrivateKey, job: Job): Promise<Uint8Array | null> {
    const known = this.#numbers.get(key);
    if (known === undefined) {
      const keyNumber = this.#next++;
      this.#numbers.set(key, keyNumber);
      key.onDestroy(() => this.#forget(keyNumber));
      return this.#thread.run({ ...job, keyNumber, key: key.keyObject });
    }
    try {
      return await this.#thread.run({ ...job, keyNumber: known });
    } catch (e) {
      if (!(e instanceof UnknownKey)) throw e;
      return this.#thread.run({ ...job, keyNumber: known, key: key.keyObject });
    }
  }
}
