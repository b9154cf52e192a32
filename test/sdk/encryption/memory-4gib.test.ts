// The acceptance check of issue 9: a 4 GiB stream encrypts and decrypts with peak resident memory
// under 200 MiB. Slow (minutes), so opt-in: TRESOR_SLOW_TESTS=1 node --test dist/test/sdk/encryption/memory-4gib.test.js
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { measureStreamMemory } from "../../helpers/encryption-memory.js";
import type { SuiteName } from "../../../src/sdk/encryption/index.js";

const slow = process.env["TRESOR_SLOW_TESTS"] === "1";
const GiB4 = 4 * 1024 * 1024 * 1024;

describe("streaming memory, 4 GiB", { skip: slow ? false : "slow: set TRESOR_SLOW_TESTS=1" }, () => {
  const suites: SuiteName[] = ["AES_256_GCM_HKDF_SHA512_COMMIT_ECDSA_P384", "SM4_CTR_HMAC_SM3"];
  for (const suite of suites) {
    it(`${suite}: 4 GiB round trip with peak RSS under 200 MiB`, { timeout: 1_800_000 }, async () => {
      const report = await measureStreamMemory(GiB4, suite, 1_790_000);
      process.stdout.write(`# ${suite}: ${JSON.stringify(report)}\n`);
      assert.equal(report.decryptedBytes, GiB4);
      assert.equal(report.decryptedSha256, report.plaintextSha256);
      assert.ok(report.maxRssMiB < 200, `peak RSS ${report.maxRssMiB} MiB`);
    });
  }
});
