// Sm4GcmKey's GHASH table size (expectedMessageLength) changes speed only: every size gives the
// tags and ciphertexts of the one-shot sm4GcmEncrypt, which is checked against RFC 8998.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Sm4GcmKey, sm4GcmEncrypt } from "../../src/crypto/sm4-gcm.js";

describe("Sm4GcmKey table sizes", () => {
  it("agree with sm4GcmEncrypt for every window size", () => {
    const key = randomBytes(16);
    for (const hint of [16, 4096, 65537, 1 << 20]) {
      const prepared = new Sm4GcmKey(key, hint);
      for (const length of [0, 1, 15, 16, 17, 1000, 70_000]) {
        const iv = randomBytes(12);
        const aad = randomBytes(length % 50);
        const plaintext = randomBytes(length);
        const a = prepared.encrypt(iv, plaintext, aad);
        const b = sm4GcmEncrypt(key, iv, plaintext, aad);
        assert.deepEqual(a, b, `hint ${hint}, length ${length}`);
        assert.deepEqual(prepared.decrypt(iv, a.ciphertext, a.tag, aad), plaintext);
      }
      prepared.destroy();
    }
  });
});
