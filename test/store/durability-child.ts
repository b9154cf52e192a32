// Child process for the kill -9 durability test in sqlite.test.ts: inserts keys until killed and
// prints each key id only after insertKey has resolved, i.e. after the commit was acknowledged.
// Does nothing unless started by that test (the test runner also loads every file under test/).

import { randomUUID } from "node:crypto";
import { writeSync } from "node:fs";
import { KEY_LIFECYCLE_DEFAULTS } from "../../src/keys/key.js";
import { SqliteStore } from "../../src/store/sqlite.js";

const path = process.argv[2];
if (process.env["TRESOR_DURABILITY_CHILD"] === "1" && path !== undefined) {
  const store = SqliteStore.open(path);
  for (let i = 0; ; i++) {
    const keyId = randomUUID();
    await store.insertKey(
      {
        keyId,
        alias: `durable-${i}`,
        description: "",
        keyUsage: "ENCRYPT_DECRYPT",
        keySpec: "SM4",
        origin: "TENCENT_KMS",
        state: "Enabled",
        creatorUin: "1",
        owner: "1",
        createTime: 1_700_000_000 + i,
        deletionDate: 0,
        currentVersion: 1,
        tags: [{ key: "n", value: String(i) }],
        ...KEY_LIFECYCLE_DEFAULTS,
      },
      { keyId, version: 1, wrappedMaterial: Buffer.from(keyId), publicKey: null, createTime: 1_700_000_000 + i },
    );
    // writeSync: the line reaches the pipe before the next insert starts, never buffered behind it.
    writeSync(1, `${keyId}\n`);
  }
}
