// The background job runner: every interval it asks the service to run the key jobs that are due
// (rotation, deletion at the end of the window, expiry of imported material). What is due is read
// from the store against the service's Clock, so a run after downtime catches up on everything
// missed, and jobs claimed through the store's transactions run once across several servers.

import type { JobReport, KmsService, ServiceLogger } from "./kms-service.js";

export interface SchedulerOptions {
  /** Time between the end of one run and the start of the next (ms). */
  intervalMs: number;
  logger?: ServiceLogger & { info?(fields: Record<string, unknown>, message: string): void };
}

export class Scheduler {
  readonly #service: KmsService;
  readonly #intervalMs: number;
  readonly #logger: SchedulerOptions["logger"];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<JobReport | undefined> | undefined;
  #started = false;

  constructor(service: KmsService, options: SchedulerOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) throw new RangeError(`"intervalMs" must be a positive number, got ${options.intervalMs}`);
    this.#service = service;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  /** Runs once at once (catching up), then every interval until stop(). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule(0);
  }

  /** Stops the timer and waits for a run in progress to finish. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One run now, unless one is already going (then that one's result). Never rejects: failures are logged. */
  runOnce(): Promise<JobReport | undefined> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<JobReport | undefined> {
    try {
      const report = await this.#service.runDueJobs();
      const { rotated, deleted, expired, failed } = report;
      if (rotated.length + deleted.length + expired.length + failed.length > 0) {
        this.#logger?.info?.({ rotated, deleted, expired, failed }, "scheduled key jobs ran");
      }
      return report;
    } catch (e) {
      // The store unreachable, say: the jobs stay due and the next run tries again.
      this.#logger?.error({ err: { name: (e as Error).name, code: (e as { code?: unknown }).code } }, "scheduled key jobs could not run");
      return undefined;
    }
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      void this.runOnce().finally(() => {
        if (this.#started) this.#schedule(this.#intervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }
}
