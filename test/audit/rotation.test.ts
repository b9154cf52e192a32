// Root key rotation rewraps the audit secrets with the service secrets: after it, the store's
// audit keys are on the new generation and load to the same keys, without the old root key.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AUDIT_SECRET_NAMES, loadAuditKeys } from "../../src/audit/keys.js";
import { initDataDir, openDataDir, rotateDataDirRootKey } from "../../src/node/data-dir.js";
import { wrappedGeneration } from "../../src/rootkey/ring.js";

describe("audit keys and root key rotation", () => {
  it("rotation rewraps the audit signing and HMAC keys; they load the same afterwards", async () => {
    const base = await mkdtemp(join(tmpdir(), "tresor-audit-rotation-"));
    const dir = join(base, "d");
    try {
      await initDataDir(dir, "local");
      const first = await openDataDir(dir);
      const before = await loadAuditKeys(first.store, first.rootOfTrust);
      for (const name of AUDIT_SECRET_NAMES) assert.equal(wrappedGeneration(Buffer.from((await first.store.getMeta(name))!, "base64")), 0);
      await first.close();

      await rotateDataDirRootKey(dir, { graceMs: 0 });
      await rm(join(dir, "root.key.old"));
      const second = await openDataDir(dir);
      try {
        for (const name of AUDIT_SECRET_NAMES) assert.equal(wrappedGeneration(Buffer.from((await second.store.getMeta(name))!, "base64")), 1, name);
        const after = await loadAuditKeys(second.store, second.rootOfTrust);
        assert.ok(after.publicKey.equals(before.publicKey));
        assert.ok(after.hmacKey.equals(before.hmacKey));
        const data = Buffer.from("checkpoint bytes");
        assert.ok(after.signer.sign(data).equals(before.signer.sign(data)), "Ed25519 signatures are deterministic: the same private key");
      } finally {
        await second.close();
      }
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
