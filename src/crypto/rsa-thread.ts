// The worker thread behind RsaThread (rsa-worker.ts): RSA private-key signing and decryption, 0.3 ms
// (2048 bits) to 4 ms (4096 bits) of OpenSSL each, which would otherwise hold the server's event
// loop. Each key arrives once, as a KeyObject (a clone of the caller's OpenSSL key: no key bytes in
// the message), and is kept under the caller's number until the caller says to forget it: a fresh
// clone per job would cost OpenSSL its per-key setup again (measured: +1 ms per RSA-4096 signature).
// Started by rsa-worker.ts, never imported.

import type { KeyObject } from "node:crypto";
import { CryptoError } from "./errors.js";
import { answerJobs, bufferView as view } from "./job-worker.js";
import { RsaPrivateKey, type RsaEncryptionAlgorithm, type RsaSignatureAlgorithm } from "./rsa.js";

/** A job names its key by number, and carries the key itself the first time. */
interface KeyRef {
  job: number;
  keyNumber: number;
  key?: KeyObject;
}

export type RsaRequest =
  | (KeyRef & { op: "sign"; algorithm: RsaSignatureAlgorithm; message: Uint8Array; digest: boolean })
  | (KeyRef & { op: "decrypt"; algorithm: RsaEncryptionAlgorithm; ciphertext: Uint8Array })
  | (KeyRef & { op: "forget" });

/** The failure kind of a job whose key this thread does not hold (a restarted thread): send it again. */
export const UNKNOWN_KEY = "unknown-key";

class UnknownKeyError extends Error {}

const keys = new Map<number, RsaPrivateKey>();

function run(req: RsaRequest): Uint8Array | null {
  if (req.op === "forget") {
    keys.get(req.keyNumber)?.destroy();
    keys.delete(req.keyNumber);
    return null;
  }
  if (req.key !== undefined && !keys.has(req.keyNumber)) keys.set(req.keyNumber, new RsaPrivateKey(req.key));
  const rsa = keys.get(req.keyNumber);
  if (rsa === undefined) throw new UnknownKeyError(`key ${req.keyNumber} is not held here`);
  if (req.op === "decrypt") return rsa.decrypt(req.algorithm, view(req.ciphertext));
  return req.digest ? rsa.signDigest(req.algorithm, view(req.message)) : rsa.sign(req.algorithm, view(req.message));
}

function kindOf(e: unknown): string {
  if (e instanceof UnknownKeyError) return UNKNOWN_KEY;
  if (e instanceof CryptoError) return "crypto";
  if (e instanceof RangeError) return "range";
  return e instanceof TypeError ? "type" : "error";
}

// A decrypted plaintext is the caller's to wipe; the job's ciphertext and message are not secret.
answerJobs<RsaRequest, Uint8Array | null>(run, kindOf, () => undefined);
