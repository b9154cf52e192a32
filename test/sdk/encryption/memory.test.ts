// Constant memory: 256 MiB through encryptStream and decryptStream stays under 200 MiB of peak
// resident memory. The 4 GiB version of the same check is memory-4gib.test.ts (slow, opt-in).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { measureStreamMemory } from "../../helpers/encryption-memory.js";

describe("streaming memory", () => {
  it("256 MiB round trip with peak RSS under 200 MiB", { timeout: 120_000 }, async () => {
    const report = await measureStreamMemory(256 * 1024 * 1024, "AES_256_GCM_HKDF_SHA512_COMMIT", 110_000);
    assert.equal(report.decryptedBytes, 256 * 1024 * 1024);
    assert.equal(report.decryptedSha256, report.plaintextSha256);
    assert.ok(report.maxRssMiB < 200, `peak RSS ${report.maxRssMiB} MiB`);
  });
});
