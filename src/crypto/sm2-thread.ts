// The worker thread behind Sm2Thread (sm2-worker.ts): SM2 signing, verification by the private
// scalar and decryption, each a few hundred microseconds of OpenSSL and BigInt work that would
// otherwise hold the server's event loop. Started by sm2-worker.ts, never imported.

import { CryptoError } from "./errors.js";
import { answerJobs, bufferView as view } from "./job-worker.js";
import { sm2Decrypt, sm2Sign, sm2SignDigest, sm2VerifyDigestWithPrivateKey, sm2VerifyWithPrivateKey } from "./sm2.js";

/** `digest`: the message is already e = SM3(Z_A || M) (Tencent's MessageType DIGEST). */
export type Sm2Request =
  | { job: number; op: "sign"; privateKey: Uint8Array; message: Uint8Array; digest: boolean }
  | { job: number; op: "verify"; privateKey: Uint8Array; message: Uint8Array; digest: boolean; signature: Uint8Array }
  | { job: number; op: "decrypt"; privateKey: Uint8Array; ciphertext: Uint8Array };

export type Sm2Value = Uint8Array | boolean;

function run(req: Sm2Request): Sm2Value {
  const d = view(req.privateKey);
  switch (req.op) {
    case "sign":
      return req.digest ? sm2SignDigest(d, view(req.message)) : sm2Sign(d, view(req.message));
    case "verify":
      return req.digest ? sm2VerifyDigestWithPrivateKey(d, view(req.message), view(req.signature)) : sm2VerifyWithPrivateKey(d, view(req.message), view(req.signature));
    case "decrypt":
      return sm2Decrypt(d, view(req.ciphertext));
  }
}

function kindOf(e: unknown): string {
  if (e instanceof CryptoError) return "crypto";
  return e instanceof RangeError ? "range" : "error";
}

// The private scalar is a copy made for this job.
answerJobs<Sm2Request, Sm2Value>(run, kindOf, (req) => view(req.privateKey).fill(0));
