// Durability of a commit without blocking the event loop. The store's connection runs with
// synchronous=NORMAL, so SQLite's COMMIT writes the transaction's frames into the WAL file but does
// not fsync; the writer then waits for an fdatasync of the WAL file, run on libuv's thread pool,
// that began after its commit. Once that returns the frames (commit marker included) are on stable
// storage: the same guarantee synchronous=FULL gives (whose fsync per COMMIT would hold the one
// thread that serves every request for the whole flush). Syncs are grouped: every commit made
// while one runs is covered by the next, so the number of fsyncs per second stays bounded by the
// disk, not by the request rate. Checkpoints (SQLite's own) still sync the WAL and the database.

import { fdatasync, open, close } from "node:fs";

export class WalSync {
  readonly #path: string;
  #fd: Promise<number> | undefined;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  /** fdatasync calls that completed, for tests and metrics. */
  syncs = 0;

  constructor(walPath: string) {
    this.#path = walPath;
  }

  /**
   * Resolves once an fdatasync of the WAL that began after this call has completed; rejects when it
   * failed (the caller's commit may not be durable: fail closed).
   */
  after(): Promise<void> {
    if (this.#running === undefined) return this.#start();
    // One is running and may have begun before the caller's commit: the next one covers it.
    this.#next ??= this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  /**
   * Resolves (never rejects) when a commit made then would start the next sync at once: now when
   * no sync runs or a commit already waits for the next one, else when the running one ends. A
   * commit made while a sync runs waits for the next one anyway, so a writer that waits here first
   * loses no time and commits everything that arrived meanwhile at once.
   */
  idle(): Promise<void> {
    if (this.#running === undefined || this.#next !== undefined) return Promise.resolve();
    return this.#running.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Waits for the syncs in flight, then closes the file. */
  async close(): Promise<void> {
    await Promise.allSettled([this.#running, this.#next]);
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) {
      const n = await fd.catch(() => undefined);
      if (n !== undefined) await new Promise<void>((resolve) => close(n, () => resolve()));
    }
  }

  #startNext(): Promise<void> {
    this.#next = undefined;
    return this.#start();
  }

  #start(): Promise<void> {
    const run = this.#sync().finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #sync(): Promise<void> {
    // Opened on first use: SQLite makes the WAL file on the connection's first write. It is never
    // deleted while the store's connection is open (only the last connection to close removes it).
    this.#fd ??= new Promise<number>((resolve, reject) => open(this.#path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
    let fd: number;
    try {
      fd = await this.#fd;
    } catch (err) {
      this.#fd = undefined;
      throw err;
    }
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    this.syncs++;
  }
}
