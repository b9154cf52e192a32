// AES Key Wrap with Padding (src/crypto/aes-kwp.ts) against RFC 5649 §6's two published examples
// and against an independent implementation (@noble/ciphers' aeskwp) over seeded random keys.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { aeskwp } from "@noble/ciphers/aes.js";
import { aesKeyUnwrapPad, aesKeyWrapPad } from "../../src/crypto/aes-kwp.js";
import { CryptoError } from "../../src/crypto/errors.js";

const KEK = Buffer.from("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "hex");

describe("AES-KWP (RFC 5649)", () => {
  it("wraps and unwraps RFC 5649 §6's 20-octet example", () => {
    const key = Buffer.from("c37b7e6492584340bed12207808941155068f738", "hex");
    const wrapped = aesKeyWrapPad(KEK, key);
    assert.equal(wrapped.toString("hex"), "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    assert.deepEqual(aesKeyUnwrapPad(KEK, wrapped), key);
  });

  it("wraps and unwraps RFC 5649 §6's 7-octet example", () => {
    const key = Buffer.from("466f7250617369", "hex");
    const wrapped = aesKeyWrapPad(KEK, key);
    assert.equal(wrapped.toString("hex"), "afbeb0f07dfbf5419200f2ccb50bb24f");
    assert.deepEqual(aesKeyUnwrapPad(KEK, wrapped), key);
  });

  it("refuses an altered or truncated wrapping with CryptoError", () => {
    const wrapped = aesKeyWrapPad(KEK, Buffer.alloc(32, 9));
    for (let i = 0; i < wrapped.length; i += 7) {
      const altered = Buffer.from(wrapped);
      altered[i]! ^= 0x01;
      assert.throws(() => aesKeyUnwrapPad(KEK, altered), CryptoError, `byte ${i}`);
    }
    assert.throws(() => aesKeyUnwrapPad(KEK, wrapped.subarray(0, 24)), CryptoError);
    assert.throws(() => aesKeyUnwrapPad(KEK, wrapped.subarray(0, 13)), CryptoError);
  });

  it("agrees with @noble/ciphers' aeskwp for 256-bit KEKs and keys of 1 to 64 bytes", () => {
    const seed = process.env.TRESOR_TEST_SEED ?? "aes-kwp";
    for (let n = 1; n <= 64; n++) {
      const kek = createHash("sha256").update(`${seed}:kek:${n}`).digest();
      const key = createHash("sha512").update(`${seed}:key:${n}`).digest().subarray(0, n);
      const ours = aesKeyWrapPad(kek, key);
      assert.equal(ours.toString("hex"), Buffer.from(aeskwp(kek).encrypt(key)).toString("hex"), `seed ${seed}, ${n} bytes`);
      assert.deepEqual(aesKeyUnwrapPad(kek, Buffer.from(aeskwp(kek).encrypt(key))), key);
    }
  });
});
