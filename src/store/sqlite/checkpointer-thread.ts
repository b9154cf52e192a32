// The body of the store's checkpoint thread (./checkpointer.ts): a connection of its own that
// copies the WAL back into the database file with PASSIVE checkpoints on a timer. A checkpoint
// fsyncs the WAL and the database file; in this thread those waits never hold the event loop.
//
// A PASSIVE checkpoint never waits for the writers, so under steady writes it never catches up
// with the end of the WAL, and SQLite starts the WAL over from its beginning only after a
// checkpoint that did: the file grew without bound (120 MiB after six seconds of Encrypt at one
// connection, 222 MiB after twenty). Once the WAL holds `restartFrames` frames, a RESTART
// checkpoint waits (in this thread, its busy timeout) for a moment with no writer, holds off new
// ones while it copies the rest (they retry, src/store/sqlite.ts), and has the next writer start
// the WAL over; that writer's commit cuts a file grown larger than the store's journal_size_limit
// (64 MiB, after a burst) back to it. Not TRUNCATE: a file
// cut to nothing grows again with every commit, and each of those fdatasyncs must then also commit
// the file's new size (at one connection: a fifth fewer requests per second).

import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, intervalMs, restartFrames, restartWaitMs } = workerData as { path: string; intervalMs: number; restartFrames: number; restartWaitMs: number };
const db = new Database(path, { fileMustExist: true });
// FULL: the checkpoint syncs the WAL before it copies and the database file after.
db.pragma("synchronous = FULL");
// Only RESTART calls the busy handler; PASSIVE waits for nobody.
db.pragma(`busy_timeout = ${restartWaitMs}`);
const passive = db.prepare<[], { busy: number; log: number; checkpointed: number }>("PRAGMA wal_checkpoint(PASSIVE)");
const restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");

let timer: NodeJS.Timeout | undefined;

function checkpoint(): void {
  try {
    // A RESTART that could not finish in time (busy) is tried again at the next tick.
    if ((passive.get()?.log ?? 0) >= restartFrames) restart.get();
  } catch (err) {
    // Neither throws for a busy database; a failure is reported, and the store takes checkpoints back.
    parentPort?.postMessage({ failed: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    clearInterval(timer);
    db.close();
  }
}

// The store turned its own automatic checkpoints off when it started this thread: the first at once.
checkpoint();
if (db.open) timer = setInterval(checkpoint, intervalMs);

parentPort?.on("message", (message: unknown) => {
  if (message !== "stop") return;
  clearInterval(timer);
  if (db.open) db.close();
  parentPort?.close();
});
