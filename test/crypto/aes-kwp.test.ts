// AES Key Wrap with Padding (src/crypto/aes-kwp.ts) against RFC 5649 §6's two published examples
// and against an independent implementation (@noble/ciphers' aeskwp) over seeded random keys; AES
// Key Wrap (RFC 3394) against RFC 3394 §4's examples and @noble/ciphers' aeskw.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { aeskw, aeskwp } from "@noble/ciphers/aes.js";
import { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from "../../src/crypto/aes-kwp.js";
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

describe("AES-KW (RFC 3394)", () => {
  const kek = (bytes: number) => Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".slice(0, bytes * 2), "hex");
  const data = (bytes: number) => Buffer.from("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f".slice(0, bytes * 2), "hex");
  // RFC 3394 §4.1 (128-bit data, 128-bit KEK), §4.3 (128-bit data, 256-bit KEK), §4.6 (256-bit data, 256-bit KEK).
  const examples = [
    { section: "4.1", kek: 16, data: 16, wrapped: "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5" },
    { section: "4.3", kek: 32, data: 16, wrapped: "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7" },
    { section: "4.6", kek: 32, data: 32, wrapped: "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21" },
  ];
  for (const e of examples) {
    it(`wraps and unwraps RFC 3394 §${e.section}'s example`, () => {
      const wrapped = aesKeyWrap(kek(e.kek), data(e.data));
      assert.equal(wrapped.toString("hex"), e.wrapped);
      assert.deepEqual(aesKeyUnwrap(kek(e.kek), wrapped), data(e.data));
    });
  }

  it("refuses keys that are not whole 8-byte blocks of 16 bytes or more, and an altered wrapping", () => {
    assert.throws(() => aesKeyWrap(kek(32), Buffer.alloc(20)), RangeError);
    assert.throws(() => aesKeyWrap(kek(32), Buffer.alloc(8)), RangeError);
    const wrapped = aesKeyWrap(kek(32), data(32));
    wrapped[5]! ^= 1;
    assert.throws(() => aesKeyUnwrap(kek(32), wrapped), CryptoError);
  });

  it("agrees with @noble/ciphers' aeskw for 128- and 256-bit KEKs and keys of 16 to 64 bytes", () => {
    const seed = process.env.TRESOR_TEST_SEED ?? "aes-kw";
    for (const kekBytes of [16, 32]) {
      for (let n = 16; n <= 64; n += 8) {
        const k = createHash("sha256").update(`${seed}:kek:${kekBytes}:${n}`).digest().subarray(0, kekBytes);
        const key = createHash("sha512").update(`${seed}:key:${n}`).digest().subarray(0, n);
        assert.equal(aesKeyWrap(k, key).toString("hex"), Buffer.from(aeskw(k).encrypt(key)).toString("hex"), `seed ${seed}, ${kekBytes}-byte KEK, ${n} bytes`);
      }
    }
  });
});
