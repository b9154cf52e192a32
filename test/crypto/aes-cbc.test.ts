// AES-CBC: NIST SP 800-38A Appendix F.2 vectors (CBC-AES128 and CBC-AES256), and the openssl
// command line as the independent implementation for PKCS#7 padding.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { aesCbcDecrypt, aesCbcEncrypt } from "../../src/crypto/aes-cbc.js";
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
