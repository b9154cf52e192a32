// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside a COMMIT once the
// WAL passes 1000 pages, with two fsyncs (WAL, then database file) on the thread that commits:
// every request waits for them. Once a store has written enough to need checkpoints, a worker
// thread with its own connection takes them (PASSIVE, so it never waits for the store's writers)
// and the store's connection stops checkpointing on its own. If the thread fails, the store's
// connection takes its automatic checkpoints back.

import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";

/** Writes before the thread starts: a store that has written this little needs no checkpoints yet. */
export const CHECKPOINTER_AFTER_WRITES = 2000;
const INTERVAL_MS = 250;
/** WAL frames (16 MiB at 4 KiB pages) from which the thread has the WAL started over (see checkpointer-thread.ts). */
const RESTART_FRAMES = 4096;
/** How long a RESTART checkpoint waits (in its thread) for a moment with no writer before it tries again at the next tick. */
const RESTART_WAIT_MS = 1000;
/** The store's journal_size_limit: the first commit after the WAL starts over cuts a larger file back to this. */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

export class Checkpointer {
  readonly #db: Database.Database;
  #worker: Worker | undefined;
  #stopped = false;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  get running(): boolean {
    return this.#worker !== undefined;
  }

  /** Starts the thread, once. */
  start(): void {
    if (this.#worker !== undefined || this.#stopped) return;
    const worker = new Worker(new URL("./checkpointer-thread.js", import.meta.url), {
      workerData: { path: this.#db.name, intervalMs: INTERVAL_MS, restartFrames: RESTART_FRAMES, restartWaitMs: RESTART_WAIT_MS },
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
    });
    worker.unref();
    this.#worker = worker;
    this.#db.pragma("wal_autocheckpoint = 0");
    const takeBack = () => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    };
    worker.on("message", (m: { failed?: string }) => m.failed !== undefined && takeBack());
    worker.on("error", takeBack);
    worker.on("exit", takeBack);
  }

  /** Stops the thread and waits for it, so its connection is closed before the store's. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const worker = this.#worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    // Unref'd while it works; while we wait for it to finish, it must keep the process up.
    worker.ref();
    worker.postMessage("stop");
    await exited;
  }
}
