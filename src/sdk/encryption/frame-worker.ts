// A worker thread that seals and opens frames, so that a stream's frames run on every core. The
// main thread keeps the order, the stream and the signature; a worker holds each message's derived
// keys between "begin" and "end" (then wipes them). Started by ./parallel.ts, never imported.

import { parentPort } from "node:worker_threads";
import { bufferView as view } from "../../crypto/job-worker.js";
import { EncryptionSdkError } from "./errors.js";
import { deriveMessageKeys, suiteById, type FrameCipher } from "./suites.js";

export type WorkerRequest =
  | { kind: "begin"; message: number; suiteId: number; dataKey: Uint8Array; messageId: Uint8Array }
  | { kind: "end"; message: number }
  | { kind: "seal"; job: number; message: number; seq: number; aad: Uint8Array; data: Uint8Array }
  | { kind: "open"; job: number; message: number; seq: number; aad: Uint8Array; data: Uint8Array; tag: Uint8Array };

export type WorkerReply =
  | { job: number; ok: true; data: Uint8Array; tag: Uint8Array | undefined }
  | { job: number; ok: false; code: string; message: string };

if (parentPort) {
  const port = parentPort;
  const ciphers = new Map<number, FrameCipher>();
  port.on("message", (req: WorkerRequest) => {
    switch (req.kind) {
      case "begin": {
        const suite = suiteById(req.suiteId)!;
        const dataKey = view(req.dataKey);
        ciphers.set(req.message, deriveMessageKeys(suite, dataKey, view(req.messageId)).cipher);
        dataKey.fill(0);
        return;
      }
      case "end":
        ciphers.get(req.message)?.destroy();
        ciphers.delete(req.message);
        return;
      case "seal":
      case "open": {
        const cipher = ciphers.get(req.message);
        try {
          if (cipher === undefined) throw new Error("unknown message");
          // The result goes back in the request's own buffer (same length for CTR and GCM), so one
          // buffer per frame crosses the threads and no second one piles up as garbage here.
          const data = view(req.data);
          let tag: Uint8Array | undefined;
          if (req.kind === "seal") {
            const sealed = cipher.seal(req.seq, view(req.aad), data);
            sealed.ciphertext.copy(data);
            tag = sealed.tag;
          } else {
            const plaintext = cipher.open(req.seq, view(req.aad), data, view(req.tag));
            plaintext.copy(data);
            plaintext.fill(0);
          }
          port.postMessage({ job: req.job, ok: true, data: req.data, tag } satisfies WorkerReply, [req.data.buffer as ArrayBuffer]);
        } catch (err) {
          port.postMessage({
            job: req.job,
            ok: false,
            code: err instanceof EncryptionSdkError ? err.code : "InvalidMessage",
            message: err instanceof Error ? err.message : String(err),
          } satisfies WorkerReply);
        }
        return;
      }
    }
  });
}
