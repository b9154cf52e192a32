// FrameCipher.sealParts / openParts (the streams' path: a frame handled in the pieces it arrived
// in, never joined) give exactly seal()'s ciphertext and tag and open()'s plaintext, for every
// suite and any split, and openParts refuses a wrong tag.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { deriveMessageKeys, SUITE_NAMES, SUITES } from "../../../src/sdk/encryption/suites.js";
import { seededRandom } from "../../helpers/wait.js";

describe("FrameCipher.sealParts and openParts", () => {
  it("equals seal() for every suite and random splits", () => {
    const { seed, next: random } = seededRandom("frame splits");
    for (const name of SUITE_NAMES) {
      const suite = SUITES[name];
      const dataKey = randomBytes(32);
      const messageId = randomBytes(32);
      const a = deriveMessageKeys(suite, dataKey, messageId).cipher;
      const b = deriveMessageKeys(suite, dataKey, messageId).cipher;
      for (const length of [1, 15, 16, 17, 4095, 100_003]) {
        const plaintext = randomBytes(length);
        const aad = randomBytes(45);
        const cuts = [...new Set(Array.from({ length: 4 }, () => Math.floor(random() * length)))].sort((x, y) => x - y);
        const parts: Buffer[] = [];
        let at = 0;
        for (const c of [...cuts, length]) {
          if (c > at) parts.push(plaintext.subarray(at, c));
          at = Math.max(at, c);
        }
        const whole = a.seal(7, aad, plaintext);
        const split = b.sealParts(7, aad, parts);
        assert.deepEqual(Buffer.concat(split.ciphertext), whole.ciphertext, `${name} length ${length} cuts ${cuts.join(",")} seed ${seed}`);
        assert.deepEqual(split.tag, whole.tag, `${name} length ${length}`);
        assert.deepEqual(a.open(7, aad, whole.ciphertext, whole.tag), plaintext);
        assert.deepEqual(Buffer.concat(b.openParts(7, aad, split.ciphertext, split.tag)), plaintext);
        const badTag = Buffer.from(split.tag);
        badTag[0]! ^= 1;
        assert.throws(() => b.openParts(7, aad, split.ciphertext, badTag), /authentication failed/);
      }
      a.destroy();
      b.destroy();
    }
  });
});
