// The scheduler's jobs: destroying keys at the end of their deletion window, deleting imported
// material whose ValidTo has passed, rotating keys whose rotation is due, and housekeeping
// (expired import tokens and role sessions, token objects of deleted HSM keys).

import type { ServiceContext } from "./context.js";
import type { KeyRotation } from "./rotation.js";

/** What one run of the scheduler did. */
export interface JobReport {
  rotated: string[];
  deleted: string[];
  expired: string[];
  /** Keys whose job failed this run (logged); they stay due and are tried again next run. */
  failed: string[];
}

const JOB_BATCH = 100;

export class KeyJobs {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly rotation: KeyRotation,
  ) {}

  /**
   * Runs every job due now. Each job re-reads its key inside its own store transaction and does
   * nothing unless the work is still due, so a job runs once however many nodes run the scheduler
   * against one store (the store's serializable transactions let only one of them commit), a rerun
   * is harmless, and a crash leaves either all of a job's effect or none. Jobs missed while no
   * server ran are simply due now.
   */
  async runDueJobs(): Promise<JobReport> {
    const ctx = this.ctx;
    const report: JobReport = { rotated: [], deleted: [], expired: [], failed: [] };
    const tried = new Set<string>();
    for (;;) {
      const now = ctx.now();
      const due = (await ctx.store.listDueKeys(now, JOB_BATCH)).filter((k) => !tried.has(k.keyId));
      if (due.length === 0) break;
      for (const key of due) {
        tried.add(key.keyId);
        try {
          if (key.state === "PendingDelete" && key.deletionDate <= now) {
            if (await this.#destroyKey(key.keyId, now)) report.deleted.push(key.keyId);
          } else if (key.validTo > 0 && key.validTo <= now && key.state !== "PendingImport") {
            if (await this.#expireMaterial(key.keyId, now)) report.expired.push(key.keyId);
          } else if (await this.rotation.rotate(key, "scheduled")) {
            report.rotated.push(key.keyId);
          }
        } catch (e) {
          report.failed.push(key.keyId);
          ctx.logger.error({ keyId: key.keyId, err: { name: (e as Error).name, code: (e as { code?: unknown }).code } }, "scheduled key job failed");
        }
      }
    }
    const now = ctx.now();
    await ctx.store.deleteExpiredImportTokens(now);
    await ctx.access.deleteExpiredSessions();
    await ctx.materials.destroyRetired();
    return report;
  }

  /** Removes the key and all its versions' material for good. */
  async #destroyKey(keyId: string, now: number): Promise<boolean> {
    const done = await this.ctx.store.transaction(async (tx) => {
      const key = await tx.getKey(keyId);
      if (!key || key.state !== "PendingDelete" || key.deletionDate > now) return false;
      await this.ctx.materials.for(key).retire(tx, keyId);
      return tx.deleteKey(keyId);
    });
    this.ctx.materials.forget(keyId);
    if (done) await this.ctx.materials.destroyRetired();
    return done;
  }

  /** Deletes the imported material whose ValidTo has passed; the key waits in PendingImport (or stays PendingDelete). */
  async #expireMaterial(keyId: string, now: number): Promise<boolean> {
    const done = await this.ctx.store.transaction(async (tx) => {
      const key = await tx.getKey(keyId);
      if (!key || key.validTo === 0 || key.validTo > now || key.state === "PendingImport") return false;
      await tx.deleteKeyVersions(keyId);
      await tx.updateKey({ ...key, state: key.state === "PendingDelete" ? "PendingDelete" : "PendingImport", validTo: 0 });
      return true;
    });
    this.ctx.materials.forget(keyId);
    return done;
  }
}
