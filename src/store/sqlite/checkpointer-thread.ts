// The body of the store's checkpoint thread (./checkpointer.ts): a connection of its own that
// copies the WAL back into the database file with PASSIVE checkpoints on a timer. A checkpoint
// fsyncs the WAL and the database file; in this thread those waits never hold the event loop.

import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new Database(path, { fileMustExist: true });
// FULL: the checkpoint syncs the WAL before it copies and the database file after.
db.pragma("synchronous = FULL");
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");

const timer = setInterval(() => {
  try {
    checkpoint.get();
  } catch (err) {
    // PASSIVE waits for nobody; a failure is reported, and the store takes checkpoints back.
    parentPort?.postMessage({ failed: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    clearInterval(timer);
    db.close();
  }
}, intervalMs);

parentPort?.on("message", (message: unknown) => {
  if (message !== "stop") return;
  clearInterval(timer);
  if (db.open) db.close();
  parentPort?.close();
});
