// AES-256-GCM against the McGrew–Viega GCM test cases and NIST CAVP gcmEncryptExtIV256, through
// aes.ts and through the AEAD registry entry the key layer uses.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { AEADS } from "../../src/crypto/aead.js";
import { aesGcmDecrypt, aesGcmEncrypt } from "../../src/crypto/aes.js";
import { CryptoError } from "../../src/crypto/errors.js";

interface GcmVector {
  name: string;
  source: string;
  key: string;
  iv: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
}

const file = JSON.parse(readFileSync(new URL("../../../test/vectors/nist-gcm-aes.json", import.meta.url), "utf8")) as {
  source: string;
  vectors: GcmVector[];
};
const hex = (s: string): Buffer => Buffer.from(s, "hex");
const authFailed = (err: unknown): boolean => err instanceof CryptoError && err.message === "authentication failed";

function flipBit(b: Buffer, index: number): Buffer {
  const copy = Buffer.from(b);
  copy[index]! ^= 0x01;
  return copy;
}

const implementations = [
  { label: "aes.ts", encrypt: aesGcmEncrypt, decrypt: aesGcmDecrypt },
  { label: 'AEADS["AES-256-GCM"]', encrypt: AEADS["AES-256-GCM"].encrypt, decrypt: AEADS["AES-256-GCM"].decrypt },
];

describe("AES-256-GCM published vectors", () => {
  it("cover empty plaintext, AAD, and AAD with empty plaintext", () => {
    assert.ok(file.vectors.some((v) => v.plaintext === "" && v.aad === ""));
    assert.ok(file.vectors.some((v) => v.plaintext === "" && v.aad !== ""));
    assert.ok(file.vectors.some((v) => v.plaintext !== "" && v.aad !== ""));
    for (const v of file.vectors) {
      assert.equal(v.key.length, 64, v.name);
      assert.equal(v.iv.length, 24, v.name);
      assert.equal(v.tag.length, 32, v.name);
    }
  });

  for (const impl of implementations) {
    for (const v of file.vectors) {
      it(`${impl.label}: ${v.name}`, () => {
        const { ciphertext, tag } = impl.encrypt(hex(v.key), hex(v.iv), hex(v.plaintext), hex(v.aad));
        assert.equal(ciphertext.toString("hex"), v.ciphertext);
        assert.equal(tag.toString("hex"), v.tag);
        assert.equal(impl.decrypt(hex(v.key), hex(v.iv), hex(v.ciphertext), hex(v.tag), hex(v.aad)).toString("hex"), v.plaintext);
      });
    }
  }
});

describe("AES-256-GCM decryption refuses tampering", () => {
  // Test case 16: 60-byte plaintext and 20-byte AAD, so every field has something to flip.
  const v = file.vectors.find((x) => x.plaintext.length > 0 && x.aad.length > 0 && x.plaintext.length % 32 !== 0);
  assert.ok(v, "a vector with a partial final block and AAD");
  const key = hex(v.key);
  const iv = hex(v.iv);
  const ciphertext = hex(v.ciphertext);
  const tag = hex(v.tag);
  const aad = hex(v.aad);

  for (const impl of implementations) {
    describe(impl.label, () => {
      it("accepts the untouched input (control)", () => {
        assert.equal(impl.decrypt(key, iv, ciphertext, tag, aad).toString("hex"), v.plaintext);
      });

      it("a flipped bit in the ciphertext", () => {
        for (const i of [0, ciphertext.length - 1]) {
          assert.throws(() => impl.decrypt(key, iv, flipBit(ciphertext, i), tag, aad), authFailed, `byte ${i}`);
        }
      });

      it("a flipped bit in the tag", () => {
        for (const i of [0, 15]) assert.throws(() => impl.decrypt(key, iv, ciphertext, flipBit(tag, i), aad), authFailed);
      });

      it("a flipped bit in the AAD, and AAD removed", () => {
        assert.throws(() => impl.decrypt(key, iv, ciphertext, tag, flipBit(aad, 0)), authFailed);
        assert.throws(() => impl.decrypt(key, iv, ciphertext, tag, Buffer.alloc(0)), authFailed);
      });

      it("a flipped bit in the IV", () => {
        assert.throws(() => impl.decrypt(key, flipBit(iv, 11), ciphertext, tag, aad), authFailed);
      });

      it("a truncated or extended tag", () => {
        assert.throws(() => impl.decrypt(key, iv, ciphertext, tag.subarray(0, 12), aad), authFailed);
        assert.throws(() => impl.decrypt(key, iv, ciphertext, tag.subarray(0, 4), aad), authFailed);
        assert.throws(() => impl.decrypt(key, iv, ciphertext, Buffer.concat([tag, Buffer.alloc(1)]), aad), authFailed);
      });

      it("a truncated ciphertext", () => {
        assert.throws(() => impl.decrypt(key, iv, ciphertext.subarray(0, 48), tag, aad), authFailed);
      });

      it("a wrong key", () => {
        assert.throws(() => impl.decrypt(flipBit(key, 31), iv, ciphertext, tag, aad), authFailed);
        assert.throws(() => impl.decrypt(randomBytes(32), iv, ciphertext, tag, aad), authFailed);
      });

      it("rejects IVs that are not 12 bytes, naming the parameter", () => {
        assert.throws(() => impl.encrypt(key, Buffer.alloc(16), Buffer.alloc(1), aad), { name: "RangeError", message: /^"iv" must be 12 bytes/ });
        assert.throws(() => impl.decrypt(key, Buffer.alloc(8), ciphertext, tag, aad), { name: "RangeError", message: /^"iv" must be 12 bytes/ });
      });
    });
  }
});
