// SM4 against GB/T 32907-2016 appendix A, the openssl command line and sm-crypto.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import smCrypto from "sm-crypto";
import { Sm4BlockEncryptor, sm4CtrXor, sm4EncryptBlock, sm4EncryptBlocks } from "../../src/crypto/sm4.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

interface Sm4Vector {
  name: string;
  key: string;
  plaintext: string;
  iterations: number;
  ciphertext: string;
}

const file = JSON.parse(readFileSync(new URL("../../../test/vectors/gbt-32907-sm4.json", import.meta.url), "utf8")) as {
  source: string;
  vectors: Sm4Vector[];
};
const hex = (s: string): Buffer => Buffer.from(s, "hex");

function vector(iterations: number): Sm4Vector {
  const v = file.vectors.find((x) => x.iterations === iterations);
  assert.ok(v, `no vector with ${iterations} iterations in gbt-32907-sm4.json`);
  return v;
}


function opensslSm4Ecb(key: Buffer, data: Buffer): Buffer {
  return execFileSync("openssl", ["enc", "-sm4-ecb", "-nopad", "-K", key.toString("hex")], { input: data });
}

describe("SM4 block (GB/T 32907-2016)", () => {
  it("reproduces appendix A example 1", () => {
    const v = vector(1);
    assert.equal(sm4EncryptBlock(hex(v.key), hex(v.plaintext)).toString("hex"), v.ciphertext);
    assert.equal(sm4EncryptBlocks(hex(v.key), hex(v.plaintext)).toString("hex"), v.ciphertext);
    assert.equal(new Sm4BlockEncryptor(hex(v.key)).encryptBlock(hex(v.plaintext)).toString("hex"), v.ciphertext);
  });

  it("encrypts several blocks independently (ECB), matching the single-block function", () => {
    const key = randomBytes(16);
    const blocks = randomBytes(16 * 5);
    const out = sm4EncryptBlocks(key, blocks);
    for (let i = 0; i < 5; i++) {
      const expected = sm4EncryptBlock(key, blocks.subarray(16 * i, 16 * i + 16));
      assert.deepEqual(out.subarray(16 * i, 16 * i + 16), expected, `block ${i}`);
    }
  });

  it("agrees with `openssl enc -sm4-ecb` on random keys and blocks", { skip: opensslSkip }, () => {
    requireOpenssl();
    for (let i = 0; i < 8; i++) {
      const key = randomBytes(16);
      const data = randomBytes(16 * (1 + i));
      const expected = opensslSm4Ecb(key, data);
      assert.deepEqual(sm4EncryptBlocks(key, data), expected, `key ${key.toString("hex")}`);
      const first = data.subarray(0, 16);
      assert.deepEqual(sm4EncryptBlock(key, first), expected.subarray(0, 16));
    }
  });

  it("agrees with sm-crypto's sm4 on random keys and blocks", () => {
    for (let i = 0; i < 32; i++) {
      const key = randomBytes(16);
      const block = randomBytes(16);
      const expected = smCrypto.sm4.encrypt(Array.from(block), Array.from(key), { padding: "none", output: "array" });
      assert.deepEqual(sm4EncryptBlock(key, block), Buffer.from(expected), `key ${key.toString("hex")}`);
    }
  });

  it("rejects bad arguments, naming the parameter", () => {
    const key = Buffer.alloc(16);
    const block = Buffer.alloc(16);
    assert.throws(() => sm4EncryptBlock(Buffer.alloc(15), block), { name: "RangeError", message: /^"key" must be 16 bytes/ });
    assert.throws(() => sm4EncryptBlock(Buffer.alloc(32), block), { name: "RangeError", message: /^"key" must be 16 bytes/ });
    assert.throws(() => sm4EncryptBlock(key, Buffer.alloc(17)), { name: "RangeError", message: /^"block" must be 16 bytes/ });
    assert.throws(() => sm4EncryptBlock(key, Buffer.alloc(0)), { name: "RangeError", message: /^"block" must be 16 bytes/ });
    assert.throws(() => sm4EncryptBlock("0123456789abcdef" as unknown as Buffer, block), { name: "TypeError", message: /^"key"/ });
    assert.throws(() => sm4EncryptBlocks(key, Buffer.alloc(20)), { name: "RangeError", message: /^"blocks" must be a multiple of 16/ });
    assert.throws(() => new Sm4BlockEncryptor(Buffer.alloc(8)), { name: "RangeError", message: /^"key" must be 16 bytes/ });
    assert.throws(() => new Sm4BlockEncryptor(key).encryptBlock(Buffer.alloc(32)), { name: "RangeError", message: /^"block"/ });
    assert.throws(() => sm4CtrXor(key, Buffer.alloc(12), Buffer.alloc(1)), { name: "RangeError", message: /^"counter" must be 16 bytes/ });
  });
});

describe("SM4-CTR keystream", () => {
  it("is E_K(ctr), E_K(ctr+1), … with the counter incremented over all 128 bits", () => {
    const key = randomBytes(16);
    // Start three blocks below 2^128 so the carry runs through every byte and wraps to zero.
    const start = hex("fffffffffffffffffffffffffffffffe");
    const counters = ["fffffffffffffffffffffffffffffffe", "ffffffffffffffffffffffffffffffff", "00000000000000000000000000000000"];
    const keystream = sm4CtrXor(key, start, Buffer.alloc(48));
    counters.forEach((c, i) => {
      assert.deepEqual(keystream.subarray(16 * i, 16 * i + 16), sm4EncryptBlock(key, hex(c)), `counter ${c}`);
    });
    // A carry out of the low 32 bits reaches bit 32 (GCM's inc32 would not; see sm4-gcm.ts).
    const low = sm4CtrXor(key, hex("000000000000000000000000ffffffff"), Buffer.alloc(32));
    assert.deepEqual(low.subarray(16), sm4EncryptBlock(key, hex("00000000000000000000000100000000")));
  });

  it("agrees with `openssl enc -sm4-ctr` on random keys, counters and lengths", { skip: opensslSkip }, () => {
    requireOpenssl();
    for (const length of [1, 15, 16, 17, 100]) {
      const key = randomBytes(16);
      const counter = randomBytes(16);
      const data = randomBytes(length);
      const expected = execFileSync("openssl", ["enc", "-sm4-ctr", "-K", key.toString("hex"), "-iv", counter.toString("hex")], {
        input: data,
      });
      assert.deepEqual(sm4CtrXor(key, counter, data), expected, `length ${length}`);
    }
  });

  it("returns an empty buffer for empty data", () => {
    assert.equal(sm4CtrXor(Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(0)).length, 0);
  });
});

describe("slow", () => {
  it("reproduces GB/T 32907 appendix A example 2 (1,000,000 encryptions)", () => {
    const v = vector(1_000_000);
    const sm4 = new Sm4BlockEncryptor(hex(v.key));
    let block = hex(v.plaintext);
    for (let i = 0; i < v.iterations; i++) block = sm4.encryptBlock(block);
    assert.equal(block.toString("hex"), v.ciphertext);
  });
});
