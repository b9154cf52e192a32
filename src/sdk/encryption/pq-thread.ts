// The Encryption SDK's post-quantum work off the event loop: the hybrid encapsulation of the
// post-quantum keyring (3 ms of JavaScript for X-Wing on a quiet machine, up to 14 ms for
// MLKEM1024-P384 on a loaded one) and the ML-DSA key, signature and verification of each message
// of the ML-DSA suite run in one shared worker thread, started on first use and keeping the
// process alive only while it has work (crypto/job-thread.ts).

import { PqThread } from "../../crypto/pq-worker.js";

let shared: PqThread | undefined;

export function pqThread(): PqThread {
  shared ??= new PqThread();
  return shared;
}
