// SM3 against GB/T 32905-2016 appendix A; SM3 and HMAC-SM3 against the openssl command line and sm-crypto.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import smCrypto from "sm-crypto";
import { hmacSm3, sm3 } from "../../src/crypto/sm3.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

interface Sm3Vector {
  name: string;
  ascii: string;
  message: string;
  digest: string;
}

const file = JSON.parse(readFileSync(new URL("../../../test/vectors/gbt-32905-sm3.json", import.meta.url), "utf8")) as {
  source: string;
  vectors: Sm3Vector[];
};


// Lengths around SM3's 64-byte block and its 9-byte padding minimum (55/56, 63/64/65, 119/120).
const LENGTHS = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096 + 7];

describe("SM3 (GB/T 32905-2016)", () => {
  it("has both appendix A examples", () => {
    assert.equal(file.vectors.length, 2);
  });

  for (const v of file.vectors) {
    it(`reproduces ${v.name}`, () => {
      assert.equal(Buffer.from(v.message, "hex").toString("latin1"), v.ascii);
      assert.equal(sm3(Buffer.from(v.message, "hex")).toString("hex"), v.digest);
    });
  }

  it("agrees with `openssl dgst -sm3` on random inputs", { skip: opensslSkip }, () => {
    requireOpenssl();
    for (const length of LENGTHS) {
      const data = randomBytes(length);
      const expected = execFileSync("openssl", ["dgst", "-sm3", "-binary"], { input: data });
      assert.deepEqual(sm3(data), expected, `length ${length}`);
    }
  });

  it("agrees with sm-crypto's sm3 on random inputs", () => {
    for (const length of LENGTHS) {
      const data = randomBytes(length);
      assert.equal(sm3(data).toString("hex"), smCrypto.sm3(Array.from(data)), `length ${length}`);
    }
  });

  it("rejects a string, naming the parameter", () => {
    assert.throws(() => sm3("abc" as unknown as Buffer), { name: "TypeError", message: /^"data"/ });
  });
});

describe("HMAC-SM3", () => {
  // Key lengths below, at and above SM3's 64-byte block (a longer key is hashed first).
  const KEY_LENGTHS = [1, 16, 32, 63, 64, 65, 100];

  it("agrees with `openssl dgst -sm3 -mac HMAC` on random keys and inputs", { skip: opensslSkip }, () => {
    requireOpenssl();
    for (const keyLength of KEY_LENGTHS) {
      const key = randomBytes(keyLength);
      const data = randomBytes(keyLength * 3);
      const expected = execFileSync("openssl", ["dgst", "-sm3", "-mac", "HMAC", "-macopt", `hexkey:${key.toString("hex")}`, "-binary"], {
        input: data,
      });
      assert.deepEqual(hmacSm3(key, data), expected, `key length ${keyLength}`);
    }
  });

  it("agrees with sm-crypto's HMAC-SM3 on random keys and inputs", () => {
    for (const keyLength of [0, ...KEY_LENGTHS]) {
      const key = randomBytes(keyLength);
      const data = randomBytes(97);
      const expected = smCrypto.sm3(Array.from(data), { key: Array.from(key), mode: "hmac" });
      assert.equal(hmacSm3(key, data).toString("hex"), expected, `key length ${keyLength}`);
    }
  });

  it("depends on the key", () => {
    const data = randomBytes(32);
    const key = randomBytes(32);
    const other = Buffer.from(key);
    other[31]! ^= 1;
    assert.notDeepEqual(hmacSm3(key, data), hmacSm3(other, data));
  });

  it("rejects non-bytes, naming the parameter", () => {
    assert.throws(() => hmacSm3("k" as unknown as Buffer, Buffer.alloc(1)), { name: "TypeError", message: /^"key"/ });
    assert.throws(() => hmacSm3(Buffer.alloc(1), "d" as unknown as Buffer), { name: "TypeError", message: /^"data"/ });
  });
});
