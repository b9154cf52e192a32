// /readyz reports each dependency on its own (issue 21): with the store down, the root key file
// is still "ok". Before, the root-of-trust probe wrapped through the key ring, which asks the store
// for its current generation, so a store outage showed as a root of trust outage too.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { RootKeyRing } from "../../src/rootkey/ring.js";
import { HealthCheck } from "../../src/service/availability.js";
import { PostgresStoreError } from "../../src/store/postgres.js";
import type { Store } from "../../src/store/store.js";

/** A store whose server is gone: every call fails as the PostgreSQL store fails when it cannot connect. */
function unreachableStore(): Store {
  const down = async (): Promise<never> => {
    throw new PostgresStoreError("connection refused", undefined);
  };
  return { getMeta: down, setMeta: down } as unknown as Store;
}

describe("HealthCheck", () => {
  it("reports the store unavailable and the root key file ok when only the store is down", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tresor-ready-"));
    const file = await FileRootOfTrust.create(path.join(dir, "root.key"));
    const ring = new RootKeyRing(0, file, {
      load: async () => file,
      currentGeneration: async () => {
        throw new PostgresStoreError("connection refused", undefined);
      },
      currentTtlMs: 0,
    });
    try {
      const health = await new HealthCheck(unreachableStore(), ring, () => Date.now(), { cacheMs: 0 }).check();
      assert.deepEqual(health, { ready: false, store: "unavailable", rootOfTrust: "ok" });
    } finally {
      await ring.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
