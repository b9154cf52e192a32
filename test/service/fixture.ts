// A KmsService over a fresh temporary SQLite store and root key file, with a clock the test moves.
// Calls are awaited whether the store answers synchronously or not.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { KeyRecord, KeySpec } from "../../src/keys/key.js";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { KmsError, type ErrorCode } from "../../src/service/errors.js";
import { rootCaller, type Caller } from "../../src/service/access-control.js";
import { KmsService } from "../../src/service/kms-service.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { ManualClock } from "../api/helpers-inprocess.js";

export interface ServiceFixture {
  service: KmsService;
  store: SqliteStore;
  clock: ManualClock;
  caller: Caller;
  /** Creates an Enabled key with a fresh alias. */
  createKey(overrides?: { alias?: string; keySpec?: KeySpec; description?: string }): Promise<KeyRecord>;
  /** Puts a key into `state` through the store, as transitions that arrive later would. */
  setState(keyId: string, state: KeyRecord["state"]): Promise<KeyRecord>;
  close(): Promise<void>;
}

let aliasCounter = 0;

export async function openService(options: { cmkLimit?: number; materialCache?: { maxEntries: number; ttlMs: number } } = {}): Promise<ServiceFixture> {
  const dir = await mkdtemp(path.join(tmpdir(), "tresor-service-"));
  const rootOfTrust = await FileRootOfTrust.create(path.join(dir, "root.key"));
  const store = await SqliteStore.open(path.join(dir, "tresor.db"));
  const clock = new ManualClock(Date.UTC(2025, 0, 15, 12, 0, 0));
  const service = new KmsService({
    store,
    rootOfTrust,
    clock,
    region: "local",
    defaultKeySpec: "SM4",
    cmkLimit: options.cmkLimit ?? 10_000,
    ...(options.materialCache ? { materialCache: options.materialCache } : {}),
  });
  const caller = rootCaller("100000000001");
  return {
    service,
    store,
    clock,
    caller,
    async createKey(o = {}) {
      const input = { alias: o.alias ?? `fixture-${++aliasCounter}`, description: o.description ?? "", keyUsage: "ENCRYPT_DECRYPT" as const, tags: [] };
      return service.createKey(caller, o.keySpec ? { ...input, keySpec: o.keySpec } : input);
    },
    async setState(keyId, state) {
      const key = await store.getKey(keyId);
      if (!key) throw new Error(`no key ${keyId}`);
      const updated: KeyRecord = { ...key, state, deletionDate: state === "PendingDelete" ? Math.floor(clock.now() / 1000) + 7 * 86_400 : 0 };
      await store.updateKey(updated);
      return updated;
    },
    async close() {
      service.close();
      await store.close();
      await rootOfTrust.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** For assert.rejects: a KmsError with exactly this code. */
export function kmsError(code: ErrorCode): (e: unknown) => boolean {
  return (e) => {
    if (!(e instanceof KmsError)) throw new Error(`expected KmsError ${code}, got ${String(e)}`);
    if (e.code !== code) throw new Error(`expected KmsError ${code}, got ${e.code}: ${e.message}`);
    return true;
  };
}
