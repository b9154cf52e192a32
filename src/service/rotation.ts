// Rotation: its settings, RotateKey, the versions of a key, and the one way a key gains a version
// (on demand or by the scheduler).

import { randomUUID } from "node:crypto";
import { MAC_USAGE, type KeyRecord } from "../keys/key.js";
import type { Caller } from "./permissions.js";
import { checkKeyState, CURRENT_VERSION_ERRORS, DAY_SECONDS, usingMaterial, type ServiceContext } from "./context.js";
import { needs } from "./errors.js";
import { auditedTransaction, type RequestAudit } from "./request-audit.js";
import { StoreConflictError } from "../store/store.js";

/** Tencent: RotateKey at most once per 24 h. */
export const ROTATE_KEY_INTERVAL_SECONDS = DAY_SECONDS;

export class KeyRotation {
  constructor(private readonly ctx: ServiceContext) {}

  async enableKeyRotation(caller: Caller, keyId: string, rotateDays: number): Promise<void> {
    needs(Number.isInteger(rotateDays) && rotateDays >= 7 && rotateDays <= 365, "InvalidParameterValue", `"RotateDays" must be between 7 and 365`);
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "EnableKeyRotation", keyId);
      rotatable(key);
      await tx.updateKey({ ...key, rotationEnabled: true, rotateDays, nextRotateTime: this.ctx.now() + rotateDays * DAY_SECONDS });
    });
  }

  disableKeyRotation(caller: Caller, keyId: string): Promise<void> {
    return this.ctx.transaction(caller, async (tx) => {
      const key = await this.ctx.keyFor(tx, caller, "DisableKeyRotation", keyId);
      rotatable(key);
      await tx.updateKey({ ...key, rotationEnabled: false, nextRotateTime: 0 });
    });
  }

  async getKeyRotationStatus(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.ctx.keyFor(this.ctx.store, caller, "GetKeyRotationStatus", keyId);
  }

  /**
   * Rotates now (Tencent: the key must have rotation enabled; at most once per 24 h). The
   * automatic schedule is left as it was. Returns a task id, as Tencent does; the rotation has
   * already happened when it returns.
   */
  async rotateKey(caller: Caller, keyId: string): Promise<{ taskId: string }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "RotateKey", keyId);
    rotatable(key);
    needs(key.rotationEnabled, "RotateNotSupported", `key ${keyId} does not have rotation enabled: call EnableKeyRotation first`);
    checkRotateRate(key, this.ctx.now());
    await this.rotate(key, "manual", caller.audit);
    return { taskId: randomUUID() };
  }

  /** Every version with its creation time; never material. */
  async listKeyVersions(caller: Caller, keyId: string): Promise<{ key: KeyRecord; versions: { version: number; createTime: number }[] }> {
    const key = await this.ctx.keyFor(this.ctx.store, caller, "ListKeyVersions", keyId);
    const versions = await this.ctx.store.listKeyVersions(keyId);
    return { key, versions: versions.map((v) => ({ version: v.version, createTime: v.createTime })) };
  }

  /**
   * Adds version currentVersion+1. The material is made before the transaction (which may run more
   * than once); inside, the key is read again and nothing is written unless it is still at the
   * version the material was made for and the rotation is still due or allowed. `audit`: the
   * RotateKey request's record, committed with the new version (none for scheduled rotations).
   */
  async rotate(key: KeyRecord, kind: "manual" | "scheduled", audit?: RequestAudit): Promise<boolean> {
    const version = key.currentVersion + 1;
    const material = this.ctx.materials.for(key);
    const made = await usingMaterial(() => material.generate(key, version), CURRENT_VERSION_ERRORS);
    // Discarded only when the store says for certain that it was not recorded: after an error the
    // commit may have happened (a connection lost during COMMIT), so an HSM object is left as an orphan.
    const committed = await this.#commitRotation(key, kind, version, made.stored, audit);
    if (!committed) await material.discard(key.keyId, made.stored);
    return committed;
  }

  #commitRotation(key: KeyRecord, kind: "manual" | "scheduled", version: number, wrappedMaterial: Buffer, audit: RequestAudit | undefined): Promise<boolean> {
    const now = this.ctx.now();
    return auditedTransaction(this.ctx.store, this.ctx.auditor, audit, async (tx) => {
      const current = await tx.getKey(key.keyId);
      if (kind === "scheduled") {
        const due = current?.rotationEnabled && current.state === "Enabled" && current.nextRotateTime <= now;
        if (!current || !due || current.currentVersion !== key.currentVersion) return false;
      } else {
        needs(current, "CmkNotFound", `key ${key.keyId} does not exist`);
        checkKeyState("RotateKey", current);
        checkRotateRate(current, now);
        // A scheduled rotation between our read and now: it already gave the key a new version.
        if (current.currentVersion !== key.currentVersion) return false;
      }
      try {
        await tx.insertKeyVersion({ keyId: key.keyId, version, wrappedMaterial, publicKey: null, createTime: now });
      } catch (e) {
        // Another node's rotation committed this version first (PostgreSQL reports the unique
        // violation rather than a serialization failure): the work is done.
        if (e instanceof StoreConflictError && e.field === "keyVersion") return false;
        throw e;
      }
      await tx.updateKey({
        ...current,
        currentVersion: version,
        lastRotateTime: now,
        nextRotateTime: kind === "scheduled" ? now + current.rotateDays * DAY_SECONDS : current.nextRotateTime,
      });
      return true;
    });
  }
}

/** Only symmetric keys with generated material rotate. */
function rotatable(key: KeyRecord): void {
  needs(key.origin !== "EXTERNAL", "ExternalCmkCanNotRotate", `key ${key.keyId} holds imported (EXTERNAL) material, which cannot rotate`);
  needs(
    key.keyUsage === "ENCRYPT_DECRYPT" || key.keyUsage === MAC_USAGE,
    "RotateNotSupported",
    `key ${key.keyId} has usage ${key.keyUsage}: only ENCRYPT_DECRYPT and ${MAC_USAGE} keys rotate`,
  );
}

function checkRotateRate(key: KeyRecord, now: number): void {
  const next = key.lastRotateTime + ROTATE_KEY_INTERVAL_SECONDS;
  needs(key.lastRotateTime === 0 || now >= next, "RotateRateLimited", `key ${key.keyId} rotated at ${key.lastRotateTime}: RotateKey is allowed once per 24 hours, next from ${next}`);
}
