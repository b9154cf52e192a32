// Audit records are durable before the answer leaves: a server killed with SIGKILL right after its
// last acknowledged response still has the record of every request it answered.

import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import path from "node:path";
import { it } from "node:test";
import { KmsClient } from "../../src/sdk/index.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { startServer } from "../helpers/server.js";
import { allAuditRecords } from "../helpers/audit-fixtures.js";

it("keeps the record of every answered request across kill -9", async () => {
  const server = await startServer({ keepDataDir: true });
  const client = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, maxRetries: 0 });
  const answered: string[] = [];
  try {
    const created = await client.createKey({ Alias: "durable-audit" });
    answered.push(created.RequestId);
    const keyId = created.KeyId!;
    const toggled = await client.createKey({ Alias: "durable-audit-toggled" });
    answered.push(toggled.RequestId);
    // Concurrent requests, so records share group commits.
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        i % 8 === 0 ? client.disableKey({ KeyId: toggled.KeyId! }).then((r) => client.enableKey({ KeyId: toggled.KeyId! }).then((r2) => [r.RequestId, r2.RequestId])) : client.encrypt({ KeyId: keyId, Plaintext: "aGk=" }).then((r) => [r.RequestId]),
      ),
    );
    for (const ids of results) answered.push(...ids);
    const failed = await client.describeKey({ KeyId: "00000000-0000-4000-8000-000000000000" }).then(
      () => undefined,
      (e: { requestId?: string }) => e.requestId,
    );
    assert.ok(failed);
    answered.push(failed);
  } finally {
    client.close();
    server.kill("SIGKILL");
    await server.stop();
  }
  const store = SqliteStore.open(path.join(server.dataDir, "tresor.db"));
  try {
    const kept = new Set((await allAuditRecords(store)).map((r) => r.requestId));
    const missing = answered.filter((id) => !kept.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered requests have no record`);
  } finally {
    await store.close();
    await rm(path.dirname(server.dataDir), { recursive: true, force: true });
  }
});
