// SM4-GCM against RFC 8998 appendix A.1, the openssl command line (CTR part) and a spec-literal model.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { ghash } from "@noble/ciphers/_polyval.js";
import smCrypto from "sm-crypto";
import { CryptoError } from "../../src/crypto/errors.js";
import { SM4_GCM_MAX_PLAINTEXT_LENGTH, Sm4GcmKey, sm4GcmDecrypt, sm4GcmEncrypt } from "../../src/crypto/sm4-gcm.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

interface GcmVector {
  name: string;
  key: string;
  iv: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
}

const file = JSON.parse(readFileSync(new URL("../../../test/vectors/rfc8998-sm4-gcm.json", import.meta.url), "utf8")) as {
  source: string;
  vectors: GcmVector[];
};
const hex = (s: string): Buffer => Buffer.from(s, "hex");
const rfc = file.vectors[0]!;


const authFailed = (err: unknown): boolean => err instanceof CryptoError && err.message === "authentication failed";

function flipBit(b: Buffer, index: number): Buffer {
  const copy = Buffer.from(b);
  copy[index]! ^= 0x01;
  return copy;
}

/**
 * SP 800-38D §7.1 written out literally, with SM4 from sm-crypto (not node:crypto) and inc32
 * counting in JS: an independent model for lengths the RFC vector does not cover.
 */
function modelSm4Gcm(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const e = (block: Buffer): Buffer =>
    Buffer.from(smCrypto.sm4.encrypt(Array.from(block), Array.from(key), { padding: "none", output: "array" }));
  const h = e(Buffer.alloc(16));
  const j0 = Buffer.concat([iv, hex("00000001")]);
  const ciphertext = Buffer.alloc(plaintext.length);
  const cb = Buffer.from(j0);
  for (let off = 0; off < plaintext.length; off += 16) {
    cb.writeUInt32BE((cb.readUInt32BE(12) + 1) >>> 0, 12); // inc32
    const ks = e(cb);
    for (let i = off; i < Math.min(off + 16, plaintext.length); i++) ciphertext[i] = plaintext[i]! ^ ks[i - off]!;
  }
  const pad = (n: number): Buffer => Buffer.alloc((16 - (n % 16)) % 16);
  const lengths = Buffer.alloc(16);
  lengths.writeBigUInt64BE(BigInt(aad.length * 8), 0);
  lengths.writeBigUInt64BE(BigInt(ciphertext.length * 8), 8);
  const s = Buffer.from(ghash(Buffer.concat([aad, pad(aad.length), ciphertext, pad(ciphertext.length), lengths]), h));
  const ej0 = e(j0);
  const tag = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) tag[i] = s[i]! ^ ej0[i]!;
  return { ciphertext, tag };
}

describe("SM4-GCM (RFC 8998)", () => {
  it("encrypts the appendix A.1 vector", () => {
    const { ciphertext, tag } = sm4GcmEncrypt(hex(rfc.key), hex(rfc.iv), hex(rfc.plaintext), hex(rfc.aad));
    assert.equal(ciphertext.toString("hex"), rfc.ciphertext);
    assert.equal(tag.toString("hex"), rfc.tag);
  });

  it("decrypts the appendix A.1 vector", () => {
    const plaintext = sm4GcmDecrypt(hex(rfc.key), hex(rfc.iv), hex(rfc.ciphertext), hex(rfc.tag), hex(rfc.aad));
    assert.equal(plaintext.toString("hex"), rfc.plaintext);
  });

  it("has the A.1 keystream of `openssl enc -sm4-ctr` started at inc32(J0)", { skip: opensslSkip }, () => {
    requireOpenssl();
    const counter = Buffer.concat([hex(rfc.iv), hex("00000002")]);
    const ctr = execFileSync("openssl", ["enc", "-sm4-ctr", "-K", rfc.key, "-iv", counter.toString("hex")], {
      input: hex(rfc.plaintext),
    });
    assert.equal(ctr.toString("hex"), rfc.ciphertext);
  });

  it("matches the spec-literal model (sm-crypto SM4, JS inc32) for lengths around block boundaries", () => {
    for (const length of [0, 1, 15, 16, 17, 31, 32, 33, 100, 257]) {
      for (const aadLength of [0, 1, 16, 20, 45]) {
        const key = randomBytes(16);
        const iv = randomBytes(12);
        const plaintext = randomBytes(length);
        const aad = randomBytes(aadLength);
        const expected = modelSm4Gcm(key, iv, plaintext, aad);
        const actual = sm4GcmEncrypt(key, iv, plaintext, aad);
        assert.deepEqual(actual, expected, `plaintext ${length} bytes, aad ${aadLength} bytes`);
        assert.deepEqual(sm4GcmDecrypt(key, iv, actual.ciphertext, actual.tag, aad), plaintext);
      }
    }
  });

  it("works with empty plaintext, empty AAD, and both empty", () => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const cases: Array<[Buffer, Buffer]> = [
      [Buffer.alloc(0), randomBytes(20)],
      [randomBytes(20), Buffer.alloc(0)],
      [Buffer.alloc(0), Buffer.alloc(0)],
    ];
    for (const [plaintext, aad] of cases) {
      const { ciphertext, tag } = sm4GcmEncrypt(key, iv, plaintext, aad);
      assert.equal(ciphertext.length, plaintext.length);
      assert.equal(tag.length, 16);
      assert.deepEqual(sm4GcmDecrypt(key, iv, ciphertext, tag, aad), plaintext);
      assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, flipBit(tag, 0), aad), authFailed);
    }
  });
});

describe("SM4-GCM decryption refuses tampering", () => {
  const key = hex(rfc.key);
  const iv = hex(rfc.iv);
  const ciphertext = hex(rfc.ciphertext);
  const tag = hex(rfc.tag);
  const aad = hex(rfc.aad);

  it("accepts the untouched input (control)", () => {
    assert.equal(sm4GcmDecrypt(key, iv, ciphertext, tag, aad).toString("hex"), rfc.plaintext);
  });

  it("a flipped bit in the ciphertext (first, middle, last byte)", () => {
    for (const i of [0, 31, ciphertext.length - 1]) {
      assert.throws(() => sm4GcmDecrypt(key, iv, flipBit(ciphertext, i), tag, aad), authFailed, `byte ${i}`);
    }
  });

  it("a flipped bit in the tag", () => {
    for (const i of [0, 15]) assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, flipBit(tag, i), aad), authFailed);
  });

  it("a flipped bit in the AAD, and AAD removed or extended", () => {
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, tag, flipBit(aad, aad.length - 1)), authFailed);
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, tag, Buffer.alloc(0)), authFailed);
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, tag, Buffer.concat([aad, Buffer.alloc(1)])), authFailed);
  });

  it("a flipped bit in the IV", () => {
    for (const i of [0, 11]) assert.throws(() => sm4GcmDecrypt(key, flipBit(iv, i), ciphertext, tag, aad), authFailed);
  });

  it("a truncated or extended tag", () => {
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, tag.subarray(0, 12), aad), authFailed);
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, tag.subarray(0, 0), aad), authFailed);
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext, Buffer.concat([tag, Buffer.alloc(1)]), aad), authFailed);
  });

  it("a truncated ciphertext", () => {
    assert.throws(() => sm4GcmDecrypt(key, iv, ciphertext.subarray(0, 48), tag, aad), authFailed);
  });

  it("a wrong key", () => {
    assert.throws(() => sm4GcmDecrypt(flipBit(key, 0), iv, ciphertext, tag, aad), authFailed);
    assert.throws(() => sm4GcmDecrypt(randomBytes(16), iv, ciphertext, tag, aad), authFailed);
  });
});

describe("SM4-GCM argument checks", () => {
  const key = Buffer.alloc(16);
  const iv = Buffer.alloc(12);
  const empty = Buffer.alloc(0);
  const tag = Buffer.alloc(16);

  it("rejects keys that are not 16 bytes", () => {
    for (const length of [0, 15, 17, 32]) {
      assert.throws(() => sm4GcmEncrypt(Buffer.alloc(length), iv, empty, empty), { name: "RangeError", message: /^"key" must be 16 bytes/ });
      assert.throws(() => sm4GcmDecrypt(Buffer.alloc(length), iv, empty, tag, empty), { name: "RangeError", message: /^"key" must be 16 bytes/ });
    }
  });

  it("rejects IVs that are not 12 bytes", () => {
    for (const length of [0, 8, 11, 13, 16]) {
      assert.throws(() => sm4GcmEncrypt(key, Buffer.alloc(length), empty, empty), { name: "RangeError", message: /^"iv" must be 12 bytes/ });
      assert.throws(() => sm4GcmDecrypt(key, Buffer.alloc(length), empty, tag, empty), { name: "RangeError", message: /^"iv" must be 12 bytes/ });
    }
  });

  it("rejects arguments that are not bytes", () => {
    const s = "x" as unknown as Buffer;
    assert.throws(() => sm4GcmEncrypt(s, iv, empty, empty), { name: "TypeError", message: /^"key"/ });
    assert.throws(() => sm4GcmEncrypt(key, s, empty, empty), { name: "TypeError", message: /^"iv"/ });
    assert.throws(() => sm4GcmEncrypt(key, iv, s, empty), { name: "TypeError", message: /^"plaintext"/ });
    assert.throws(() => sm4GcmEncrypt(key, iv, empty, s), { name: "TypeError", message: /^"aad"/ });
    assert.throws(() => sm4GcmDecrypt(key, iv, s, tag, empty), { name: "TypeError", message: /^"ciphertext"/ });
    assert.throws(() => sm4GcmDecrypt(key, iv, empty, s, empty), { name: "TypeError", message: /^"tag"/ });
  });

  it("rejects a plaintext or ciphertext longer than the maximum", () => {
    const tooLong = Buffer.allocUnsafe(SM4_GCM_MAX_PLAINTEXT_LENGTH + 1);
    assert.throws(() => sm4GcmEncrypt(key, iv, tooLong, empty), { name: "RangeError", message: /^"plaintext" must be at most 67108864 bytes/ });
    assert.throws(() => sm4GcmDecrypt(key, iv, tooLong, tag, empty), { name: "RangeError", message: /^"ciphertext" must be at most 67108864 bytes/ });
  });
});

describe("slow", () => {
  it("round-trips a plaintext of exactly the maximum length", () => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const plaintext = randomBytes(SM4_GCM_MAX_PLAINTEXT_LENGTH);
    const { ciphertext, tag } = sm4GcmEncrypt(key, iv, plaintext, Buffer.alloc(0));
    assert.ok(sm4GcmDecrypt(key, iv, ciphertext, tag, Buffer.alloc(0)).equals(plaintext));
  });
});

describe("Sm4GcmKey (one key prepared for many messages)", () => {
  it("reproduces RFC 8998 A.1 and decrypts it", () => {
    const key = new Sm4GcmKey(hex(rfc.key));
    try {
      const out = key.encrypt(hex(rfc.iv), hex(rfc.plaintext), hex(rfc.aad));
      assert.equal(out.ciphertext.toString("hex"), rfc.ciphertext);
      assert.equal(out.tag.toString("hex"), rfc.tag);
      assert.equal(key.decrypt(hex(rfc.iv), out.ciphertext, out.tag, hex(rfc.aad)).toString("hex"), rfc.plaintext);
    } finally {
      key.destroy();
    }
  });

  it("agrees with the independent model and the one-shot functions over many messages on one key", () => {
    const raw = randomBytes(16);
    const key = new Sm4GcmKey(raw);
    try {
      for (const [ptLen, aadLen] of [[0, 0], [1, 0], [15, 3], [16, 16], [17, 50], [1024, 40], [4096, 100], [5000, 0]] as const) {
        const iv = randomBytes(12);
        const pt = randomBytes(ptLen);
        const aad = randomBytes(aadLen);
        const prepared = key.encrypt(iv, pt, aad);
        assert.deepEqual(prepared, modelSm4Gcm(raw, iv, pt, aad), `model, ${ptLen}/${aadLen}`);
        assert.deepEqual(prepared, sm4GcmEncrypt(raw, iv, pt, aad), `one-shot, ${ptLen}/${aadLen}`);
        assert.deepEqual(key.decrypt(iv, prepared.ciphertext, prepared.tag, aad), pt);
        assert.throws(() => key.decrypt(iv, prepared.ciphertext, flipBit(prepared.tag, 0), aad), authFailed);
      }
    } finally {
      key.destroy();
    }
  });

  it("keeps its own copy of the key, and refuses use after destroy", () => {
    const raw = randomBytes(16);
    const key = new Sm4GcmKey(raw);
    const iv = randomBytes(12);
    const expected = sm4GcmEncrypt(raw, iv, Buffer.from("x"), Buffer.alloc(0));
    raw.fill(0);
    assert.deepEqual(key.encrypt(iv, Buffer.from("x"), Buffer.alloc(0)), expected);
    key.destroy();
    assert.throws(() => key.encrypt(iv, Buffer.from("x"), Buffer.alloc(0)), /after destroy/);
    assert.throws(() => new Sm4GcmKey(Buffer.alloc(15)), /"key" must be 16 bytes/);
  });
});
