// The worker thread behind PqThread (pq-worker.ts): ML-DSA key expansion, signing and verification and the
// hybrid KEMs' encapsulation and decapsulation, JavaScript that takes milliseconds each, so that
// it never runs on the server's event loop. Started by pq-worker.ts, never imported.

import { hybridKemDecapsulate, hybridKemEncapsulate, type HybridKem } from "./hybrid-kem.js";
import { answerJobs, bufferView as view } from "./job-worker.js";
import { mlDsaKeyPairFromSeed, mlDsaSign, mlDsaSignMu, mlDsaVerify, mlDsaVerifyMu, type MlDsaParameterSet } from "./ml-dsa.js";

export type PqRequest =
  | { job: number; op: "sign"; set: MlDsaParameterSet; secretKey: Uint8Array; message: Uint8Array; context: Uint8Array }
  | { job: number; op: "verify"; set: MlDsaParameterSet; publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array; context: Uint8Array }
  | { job: number; op: "dsaPublicKey"; set: MlDsaParameterSet; seed: Uint8Array }
  | { job: number; op: "signMu"; set: MlDsaParameterSet; seed: Uint8Array; mu: Uint8Array }
  | { job: number; op: "verifyMu"; set: MlDsaParameterSet; publicKey: Uint8Array; mu: Uint8Array; signature: Uint8Array }
  | { job: number; op: "encapsulate"; kem: HybridKem; publicKey: Uint8Array }
  | { job: number; op: "decapsulate"; kem: HybridKem; seed: Uint8Array; ciphertext: Uint8Array };

export type PqValue = Uint8Array | boolean | { ciphertext: Uint8Array; sharedSecret: Uint8Array };

function run(req: PqRequest): PqValue {
  switch (req.op) {
    case "sign":
      return mlDsaSign(req.set, req.secretKey, req.message, req.context);
    case "verify":
      return mlDsaVerify(req.set, req.publicKey, req.message, req.signature, req.context);
    case "dsaPublicKey": {
      const { publicKey, secretKey } = mlDsaKeyPairFromSeed(req.set, req.seed);
      secretKey.fill(0);
      return publicKey;
    }
    case "signMu": {
      const { secretKey } = mlDsaKeyPairFromSeed(req.set, req.seed);
      try {
        return mlDsaSignMu(req.set, secretKey, req.mu);
      } finally {
        secretKey.fill(0);
      }
    }
    case "verifyMu":
      return mlDsaVerifyMu(req.set, req.publicKey, req.mu, req.signature);
    case "encapsulate":
      return hybridKemEncapsulate(req.kem, req.publicKey);
    case "decapsulate":
      return hybridKemDecapsulate(req.kem, req.seed, req.ciphertext);
  }
}

answerJobs<PqRequest, PqValue>(
  run,
  (e) => (e instanceof RangeError ? "range" : "error"),
  (req) => {
    // The secret halves were copies made for this job.
    if (req.op === "sign") view(req.secretKey).fill(0);
    if (req.op === "decapsulate" || req.op === "dsaPublicKey" || req.op === "signMu") view(req.seed).fill(0);
  },
);
