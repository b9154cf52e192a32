// The AEAD registry: every entry round-trips, authenticates, and refuses keys of the wrong length.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { AEADS, type AeadName } from "../../src/crypto/aead.js";
import { CryptoError } from "../../src/crypto/errors.js";

const EXPECTED_KEY_LENGTH: Record<AeadName, number> = { "SM4-GCM": 16, "AES-256-GCM": 32 };

describe("AEADS", () => {
  it("holds exactly SM4-GCM and AES-256-GCM, each under its own name", () => {
    assert.deepEqual(Object.keys(AEADS).sort(), ["AES-256-GCM", "SM4-GCM"]);
    for (const [name, aead] of Object.entries(AEADS)) assert.equal(aead.name, name);
  });

  it("is frozen, entries included", () => {
    assert.ok(Object.isFrozen(AEADS));
    for (const aead of Object.values(AEADS)) assert.ok(Object.isFrozen(aead), aead.name);
  });

  for (const aead of Object.values(AEADS)) {
    describe(aead.name, () => {
      it("declares its key, IV and tag lengths", () => {
        assert.equal(aead.keyLength, EXPECTED_KEY_LENGTH[aead.name]);
        assert.equal(aead.ivLength, 12);
        assert.equal(aead.tagLength, 16);
      });

      it("round-trips, with and without AAD and plaintext", () => {
        for (const [ptLength, aadLength] of [[0, 0], [0, 9], [1, 0], [37, 21], [4096, 64]] as const) {
          const key = randomBytes(aead.keyLength);
          const iv = randomBytes(aead.ivLength);
          const plaintext = randomBytes(ptLength);
          const aad = randomBytes(aadLength);
          const { ciphertext, tag } = aead.encrypt(key, iv, plaintext, aad);
          assert.equal(ciphertext.length, ptLength);
          assert.equal(tag.length, aead.tagLength);
          // A 1-byte ciphertext equals its plaintext once in 256 runs; longer ones practically never.
          if (ptLength >= 16) assert.notDeepEqual(ciphertext, plaintext);
          assert.deepEqual(aead.decrypt(key, iv, ciphertext, tag, aad), plaintext);
        }
      });

      it("fails with CryptoError when the tag does not authenticate", () => {
        const key = randomBytes(aead.keyLength);
        const iv = randomBytes(aead.ivLength);
        const aad = Buffer.from("context");
        const { ciphertext, tag } = aead.encrypt(key, iv, Buffer.from("secret"), aad);
        const bad = Buffer.from(tag);
        bad[0]! ^= 0x80;
        assert.throws(() => aead.decrypt(key, iv, ciphertext, bad, aad), (err: unknown) => err instanceof CryptoError);
        assert.throws(() => aead.decrypt(key, iv, ciphertext, tag, Buffer.from("Context")), (err: unknown) => err instanceof CryptoError);
      });

      it("rejects keys of the wrong length on encrypt and decrypt, naming the parameter", () => {
        const iv = randomBytes(aead.ivLength);
        const wrong = new Set([0, 16, 24, 32, aead.keyLength - 1, aead.keyLength + 1]);
        wrong.delete(aead.keyLength);
        for (const length of wrong) {
          const key = randomBytes(length);
          assert.throws(() => aead.encrypt(key, iv, Buffer.alloc(3), Buffer.alloc(0)), { name: "RangeError", message: /^"key" must be/ }, `${length}`);
          assert.throws(() => aead.decrypt(key, iv, Buffer.alloc(3), Buffer.alloc(16), Buffer.alloc(0)), { name: "RangeError", message: /^"key" must be/ }, `${length}`);
        }
      });
    });
  }
});
