// AES-CBC: NIST SP 800-38A Appendix F.2 vectors (CBC-AES128 and CBC-AES256), and the openssl
// command line as the independent implementation for PKCS#7 padding; SM4-CBC against its published
// example and a CBC chained by hand over Tresor's own SM4 block function.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { aesCbcDecrypt, aesCbcEncrypt, sm4CbcDecrypt, sm4CbcEncrypt } from "../../src/crypto/aes-cbc.js";
import { sm4EncryptBlock } from "../../src/crypto/sm4.js";
import { CryptoError } from "../../src/crypto/errors.js";
import { opensslSkip } from "../helpers/openssl.js";

const h = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");
const PLAINTEXT = h("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710");
const IV = h("000102030405060708090a0b0c0d0e0f");
const VECTORS = [
  {
    name: "F.2.1 CBC-AES128",
    key: h("2b7e151628aed2a6abf7158809cf4f3c"),
    ciphertext: h("7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7"),
  },
  {
    name: "F.2.5 CBC-AES256",
    key: h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
    ciphertext: h("f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d 39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b"),
  },
];

describe("AES-CBC", () => {
  for (const v of VECTORS) {
    it(`matches NIST SP 800-38A ${v.name} both ways (no padding)`, () => {
      assert.deepEqual(aesCbcEncrypt(v.key, IV, PLAINTEXT, false), v.ciphertext);
      assert.deepEqual(aesCbcDecrypt(v.key, IV, v.ciphertext, false), PLAINTEXT);
    });
  }

  it("pads with PKCS#7 as the openssl command does, and round-trips", { skip: opensslSkip }, () => {
    const key = VECTORS[1]!.key;
    for (const length of [0, 1, 15, 16, 17, 45]) {
      const message = Buffer.alloc(length, 0x61 + length);
      const ours = aesCbcEncrypt(key, IV, message, true);
      const theirs = execFileSync("openssl", ["enc", "-aes-256-cbc", "-K", key.toString("hex"), "-iv", IV.toString("hex")], { input: message });
      assert.deepEqual(ours, theirs, `length ${length}`);
      assert.deepEqual(aesCbcDecrypt(key, IV, ours, true), message);
    }
  });

  it("refuses a bad padding, partial blocks and wrong IV lengths", () => {
    const key = VECTORS[0]!.key;
    const c = aesCbcEncrypt(key, IV, Buffer.from("x"), true);
    const altered = Buffer.from(c);
    altered[15] = altered[15]! ^ 0x01;
    assert.throws(() => aesCbcDecrypt(key, IV, altered, true), CryptoError);
    assert.throws(() => aesCbcDecrypt(key, IV, c.subarray(0, 8), true), CryptoError);
    assert.throws(() => aesCbcEncrypt(key, IV.subarray(0, 12), Buffer.from("x"), true), RangeError);
    assert.throws(() => aesCbcEncrypt(key, IV, Buffer.from("x"), false), RangeError);
  });
});

describe("SM4-CBC", () => {
  const key = h("0123456789abcdeffedcba9876543210");
  const plaintext = h("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb");

  it("matches the SM4 block cipher's CBC example (draft-ribose-cfrg-sm4, A.2.2.1) both ways", () => {
    const ciphertext = h("78ebb11cc40b0a48312aaeb2040244cb 4cb7016951909226979b0d15dc6a8f6d");
    assert.deepEqual(sm4CbcEncrypt(key, IV, plaintext, false), ciphertext);
    assert.deepEqual(sm4CbcDecrypt(key, IV, ciphertext, false), plaintext);
  });

  it("chains and pads as Tresor's own SM4 block function (GB/T 32907) does", () => {
    // CBC by hand over src/crypto/sm4.ts, an implementation apart from OpenSSL's.
    const message = Buffer.from("a message of thirty-seven characters!", "utf8");
    const pad = 16 - (message.length % 16);
    const padded = Buffer.concat([message, Buffer.alloc(pad, pad)]);
    const blocks: Buffer[] = [];
    let previous: Buffer = IV;
    for (let at = 0; at < padded.length; at += 16) {
      const x = Buffer.from(padded.subarray(at, at + 16));
      for (let i = 0; i < 16; i++) x[i]! ^= previous[i]!;
      previous = sm4EncryptBlock(key, x);
      blocks.push(previous);
    }
    const expected = Buffer.concat(blocks);
    assert.deepEqual(sm4CbcEncrypt(key, IV, message, true), expected);
    assert.deepEqual(sm4CbcDecrypt(key, IV, expected, true), message);
    expected[expected.length - 1]! ^= 0x55;
    assert.throws(() => sm4CbcDecrypt(key, IV, expected, true), CryptoError);
    assert.throws(() => sm4CbcEncrypt(Buffer.alloc(32), IV, message, true), RangeError);
  });
});
