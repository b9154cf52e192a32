// Sm4GcmKey (the flat GHASH table of ../../src/crypto/ghash.ts, one per key) gives the tags and
// ciphertexts of the one-shot sm4GcmEncrypt (noble's GHASH, checked against RFC 8998), at every
// length around the block and table boundaries, and across many messages under one key.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Sm4GcmKey, sm4GcmEncrypt } from "../../src/crypto/sm4-gcm.js";

describe("Sm4GcmKey's table", () => {
  it("agrees with sm4GcmEncrypt (noble's GHASH) for every length, message after message", () => {
    const key = randomBytes(16);
    const prepared = new Sm4GcmKey(key);
    for (const length of [0, 1, 15, 16, 17, 1000, 1024, 4096, 70_000]) {
      for (let round = 0; round < 3; round++) {
        const iv = randomBytes(12);
        const aad = randomBytes((length + round) % 50);
        const plaintext = randomBytes(length);
        const a = prepared.encrypt(iv, plaintext, aad);
        const b = sm4GcmEncrypt(key, iv, plaintext, aad);
        assert.deepEqual(a, b, `length ${length}, round ${round}`);
        assert.deepEqual(prepared.decrypt(iv, a.ciphertext, a.tag, aad), plaintext);
      }
    }
    prepared.destroy();
  });
});
