// SM2 against the GM/T 0003.5 / GB/T 32918.5 recommended-curve examples, its own round trips, and
// hostile inputs. Cross-checks with openssl and sm-crypto are in sm2-interop.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, sign as nodeSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { CryptoError } from "../../src/crypto/errors.js";
import { seededRandom } from "../helpers/wait.js";
import {
  _sm2EncryptWithK,
  _sm2SignDigestWithK,
  SM2_DEFAULT_ID,
  sm2CiphertextFromRaw,
  sm2CiphertextToRaw,
  sm2Decrypt,
  sm2Digest,
  sm2Encrypt,
  sm2GenerateKeyPair,
  sm2PrivateKeyToPkcs8,
  sm2PublicKeyFromPrivate,
  sm2PublicKeyFromSpki,
  sm2PublicKeyToSpki,
  sm2Sign,
  sm2SignDigest,
  sm2Verify,
  sm2VerifyDigest,
  sm2VerifyDigestWithPrivateKey,
  sm2VerifyWithPrivateKey,
} from "../../src/crypto/sm2.js";

const vectors = JSON.parse(readFileSync(new URL("../../../test/vectors/gmt-0003-sm2.json", import.meta.url), "utf8")) as {
  source: string;
  signature: Record<"privateKey" | "publicKeyX" | "publicKeyY" | "id" | "message" | "z" | "e" | "k" | "x1" | "r" | "s", string>;
  encryption: Record<"privateKey" | "message" | "k" | "c1X" | "c1Y" | "c3" | "c2" | "der", string>;
};
const hex = (s: string): Buffer => Buffer.from(s, "hex");
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const field = (x: bigint): Buffer => Buffer.from(x.toString(16).padStart(64, "0"), "hex");

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  for (b %= m; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}
/** The curve point with the smallest x (so that x + p still fits 32 bytes); p = 3 mod 4 gives the root. */
function smallPoint(): { x: bigint; y: bigint } {
  const a = P - 3n;
  const b = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
  for (let x = 0n; ; x++) {
    const rhs = (((x * x + a) * x + b) % P + P) % P;
    const y = modPow(rhs, (P + 1n) / 4n, P);
    if ((y * y) % P === rhs) return { x, y };
  }
}

/** DER SEQUENCE { INTEGER r, INTEGER s } built by hand, so tests can encode values sm2Sign never would. */
function derInt(v: bigint): Buffer {
  let h = v.toString(16);
  if (h.length % 2) h = `0${h}`;
  let c = Buffer.from(h, "hex");
  if (c[0]! & 0x80) c = Buffer.concat([Buffer.from([0]), c]);
  return Buffer.concat([Buffer.from([0x02, c.length]), c]);
}
function derSig(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInt(r), derInt(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
function parseSig(sig: Buffer): { r: bigint; s: bigint } {
  let o = 2;
  const read = (): bigint => {
    assert.equal(sig[o], 0x02);
    const len = sig[o + 1]!;
    const v = BigInt(`0x${sig.subarray(o + 2, o + 2 + len).toString("hex")}`);
    o += 2 + len;
    return v;
  };
  return { r: read(), s: read() };
}

const sigV = vectors.signature;
const encV = vectors.encryption;
const exampleKey = hex(sigV.privateKey);
const examplePub = Buffer.concat([Buffer.from([4]), hex(sigV.publicKeyX), hex(sigV.publicKeyY)]);

describe("SM2 published examples (GM/T 0003.5 / GB/T 32918.5, recommended curve)", () => {
  it("names its source", () => assert.match(vectors.source, /GM\/T 0003\.5/));

  it("derives the example public key from d", () => {
    assert.deepEqual(sm2PublicKeyFromPrivate(exampleKey), examplePub);
  });

  it("computes Z_A and e = SM3(Z_A || M) of the signature example", () => {
    const e = sm2Digest(examplePub, Buffer.from(sigV.message), sigV.id);
    assert.equal(e.toString("hex"), sigV.e);
    assert.deepEqual(sm2Digest(examplePub, Buffer.from(sigV.message)), e, "the default identity is the example's");
    assert.deepEqual(sm2Digest(examplePub, Buffer.from(sigV.message), Buffer.from(sigV.id)), e);
    assert.equal(sigV.id, SM2_DEFAULT_ID);
  });

  it("signs the example with the given k to exactly (r, s), and verifies it", () => {
    const sig = _sm2SignDigestWithK(exampleKey, hex(sigV.e), hex(sigV.k));
    assert.deepEqual(parseSig(sig), { r: BigInt(`0x${sigV.r}`), s: BigInt(`0x${sigV.s}`) });
    assert.deepEqual(sig, derSig(BigInt(`0x${sigV.r}`), BigInt(`0x${sigV.s}`)));
    assert.equal(sm2Verify(examplePub, Buffer.from(sigV.message), sig), true);
    assert.equal(sm2Verify(examplePub, Buffer.from(sigV.message), sig, { id: sigV.id }), true);
    assert.equal(sm2VerifyDigest(examplePub, hex(sigV.e), sig), true);
    assert.equal(sm2Verify(examplePub, Buffer.from(sigV.message), sig, { id: "ALICE123@YAHOO.COM" }), false, "another identity");
    assert.equal(sm2VerifyWithPrivateKey(exampleKey, Buffer.from(sigV.message), sig), true, "by the private scalar");
    assert.equal(sm2VerifyDigestWithPrivateKey(exampleKey, hex(sigV.e), sig), true, "a digest, by the private scalar");
    assert.equal(sm2VerifyWithPrivateKey(exampleKey, Buffer.from(sigV.message), sig, { id: "ALICE123@YAHOO.COM" }), false, "another identity, by the private scalar");
  });

  it("encrypts the example with the given k to exactly C1, C3, C2 and decrypts it", () => {
    const pub = sm2PublicKeyFromPrivate(hex(encV.privateKey));
    const ct = _sm2EncryptWithK(pub, Buffer.from(encV.message), hex(encV.k));
    assert.equal(ct.toString("hex"), encV.der);
    const raw = sm2CiphertextToRaw(ct);
    assert.equal(raw.toString("hex"), `04${encV.c1X}${encV.c1Y}${encV.c3}${encV.c2}`);
    assert.deepEqual(sm2CiphertextFromRaw(raw), ct);
    assert.equal(sm2Decrypt(hex(encV.privateKey), ct).toString(), encV.message);
    assert.equal(sm2Decrypt(hex(encV.privateKey), sm2CiphertextFromRaw(raw)).toString(), encV.message);
  });
});

describe("SM2 round trips", () => {
  it("generates valid key pairs whose public key matches the private key", () => {
    for (let i = 0; i < 8; i++) {
      const { privateKey, publicKey } = sm2GenerateKeyPair();
      assert.equal(privateKey.length, 32);
      assert.equal(publicKey.length, 65);
      assert.equal(publicKey[0], 4);
      const d = BigInt(`0x${privateKey.toString("hex")}`);
      assert.ok(d >= 1n && d <= N - 2n);
      assert.deepEqual(sm2PublicKeyFromPrivate(privateKey), publicKey);
    }
  });

  it("signs and verifies messages of many lengths; signatures are randomized", () => {
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    for (const len of [0, 1, 31, 32, 33, 64, 1000, 4096]) {
      const msg = randomBytes(len);
      const a = sm2Sign(privateKey, msg);
      const b = sm2Sign(privateKey, msg);
      assert.notDeepEqual(a, b);
      assert.equal(sm2Verify(publicKey, msg, a), true);
      assert.equal(sm2Verify(publicKey, msg, b), true);
      assert.equal(sm2VerifyDigest(publicKey, sm2Digest(publicKey, msg), a), true);
      if (len > 0) assert.equal(sm2Verify(publicKey, msg.subarray(1), a), false);
    }
    const other = sm2GenerateKeyPair();
    assert.equal(sm2Verify(other.publicKey, Buffer.from("m"), sm2Sign(privateKey, Buffer.from("m"))), false);
  });

  it("verifies under several keys in turn (each with its window table kept), and never under another key", () => {
    const keys = Array.from({ length: 3 }, () => sm2GenerateKeyPair());
    const msg = Buffer.from("the same message under three keys");
    const signatures = keys.map((k) => sm2Sign(k.privateKey, msg));
    for (let round = 0; round < 3; round++) {
      keys.forEach((k, i) => {
        signatures.forEach((sig, j) => assert.equal(sm2Verify(k.publicKey, msg, sig), i === j, `key ${i}, signature ${j}, round ${round}`));
      });
    }
    // A copy of a key's bytes (another Buffer) finds the same kept point and verifies alike.
    assert.equal(sm2Verify(Buffer.from(keys[0]!.publicKey), msg, signatures[0]!), true);
  });

  it("honours a custom identity, string or bytes, and the empty identity", () => {
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    const msg = Buffer.from("hello");
    const sig = sm2Sign(privateKey, msg, { id: "alice@example.com" });
    assert.equal(sm2Verify(publicKey, msg, sig, { id: Buffer.from("alice@example.com") }), true);
    assert.equal(sm2Verify(publicKey, msg, sig), false);
    const empty = sm2Sign(privateKey, msg, { id: "" });
    assert.equal(sm2Verify(publicKey, msg, empty, { id: Buffer.alloc(0) }), true);
    assert.equal(sm2Verify(publicKey, msg, empty), false);
  });

  it("verifies by the private scalar exactly as by the public key: valid, altered, foreign and random signatures, 200 seeded cases", () => {
    const keys = [sm2GenerateKeyPair(), sm2GenerateKeyPair()];
    const { next } = seededRandom("SM2 verification by the private scalar");
    const random = (length: number): Buffer => Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
    for (let i = 0; i < 200; i++) {
      const [own, other] = i % 2 === 0 ? [keys[0]!, keys[1]!] : [keys[1]!, keys[0]!];
      const message = random(1 + (i % 97));
      const valid = sm2Sign(own.privateKey, message);
      const { r, s } = parseSig(valid);
      const candidates = [valid, sm2Sign(other.privateKey, message), derSig(r, N - s), derSig(s, r), derSig(BigInt(`0x${random(32).toString("hex")}`) % N || 1n, s)];
      for (const [j, signature] of candidates.entries()) {
        const byPublicKey = sm2Verify(own.publicKey, message, signature);
        assert.equal(byPublicKey, j === 0, `case ${i}, candidate ${j}`);
        assert.equal(sm2VerifyWithPrivateKey(own.privateKey, message, signature), byPublicKey, `case ${i}, candidate ${j}`);
        const digest = sm2Digest(own.publicKey, message);
        assert.equal(sm2VerifyDigestWithPrivateKey(own.privateKey, digest, signature), byPublicKey, `digest, case ${i}, candidate ${j}`);
      }
    }
  });

  it("signDigest signs e directly", () => {
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    const e = sm2Digest(publicKey, Buffer.from("abc"));
    const sig = sm2SignDigest(privateKey, e);
    assert.equal(sm2Verify(publicKey, Buffer.from("abc"), sig), true);
    assert.equal(sm2VerifyDigest(publicKey, e, sig), true);
  });

  it("encrypts and decrypts plaintexts of many lengths, randomized", () => {
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    for (const len of [1, 31, 32, 33, 64, 100, 4096]) {
      const m = randomBytes(len);
      const a = sm2Encrypt(publicKey, m);
      const b = sm2Encrypt(publicKey, m);
      assert.notDeepEqual(a, b);
      assert.deepEqual(sm2Decrypt(privateKey, a), m);
      assert.deepEqual(sm2Decrypt(privateKey, sm2CiphertextFromRaw(sm2CiphertextToRaw(b))), m);
      assert.equal(sm2CiphertextToRaw(a).length, 65 + 32 + len);
    }
    assert.throws(() => sm2Decrypt(sm2GenerateKeyPair().privateKey, sm2Encrypt(publicKey, Buffer.from("x"))), CryptoError);
  });

  it("decrypts when C1 = G or C1 = -G (k = 1, k = n-1: the edge cases of the y recovery), checked by sm-crypto too", async () => {
    const { default: smCrypto } = await import("sm-crypto");
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    const m = Buffer.from("edge of the group");
    for (const k of [1n, 2n, N - 1n, N - 2n]) {
      const ct = _sm2EncryptWithK(publicKey, m, field(k));
      const raw = sm2CiphertextToRaw(ct);
      const c1 = raw.subarray(0, 65);
      if (k === 1n) assert.equal(c1.toString("hex").slice(2, 66), "32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7");
      assert.deepEqual(sm2Decrypt(privateKey, ct), m, `k = ${k}`);
      const theirs = smCrypto.sm2.doDecrypt(raw.subarray(1).toString("hex"), privateKey.toString("hex"), 1, { output: "array" });
      assert.deepEqual(Buffer.from(theirs), m, `sm-crypto, k = ${k}`);
    }
  });

  it("round-trips public keys through SubjectPublicKeyInfo", () => {
    const { publicKey } = sm2GenerateKeyPair();
    const spki = sm2PublicKeyToSpki(publicKey);
    assert.equal(spki.length, 91);
    assert.deepEqual(sm2PublicKeyFromSpki(spki), publicKey);
  });

  it("writes PKCS#8 that node:crypto loads as an SM2-curve key with the same public key", async () => {
    const { createPrivateKey, createPublicKey } = await import("node:crypto");
    const { privateKey, publicKey } = sm2GenerateKeyPair();
    const key = createPrivateKey({ key: sm2PrivateKeyToPkcs8(privateKey), format: "der", type: "pkcs8" });
    const spki = createPublicKey(key).export({ format: "der", type: "spki" });
    assert.deepEqual(sm2PublicKeyFromSpki(spki), publicKey);
  });
});

describe("SM2 hostile inputs", () => {
  const { privateKey, publicKey } = sm2GenerateKeyPair();
  const msg = Buffer.from("the message");
  const sig = sm2Sign(privateKey, msg);
  // Both verifications, by the public key and by the private scalar, must give the same answer.
  const verifyBoth = (signature: Buffer): boolean => {
    const byPublicKey = sm2Verify(publicKey, msg, signature);
    assert.equal(sm2VerifyWithPrivateKey(privateKey, msg, signature), byPublicKey, "the two verifications disagree");
    return byPublicKey;
  };

  it("rejects every single-byte change of a signature", () => {
    for (let i = 0; i < sig.length; i++) {
      for (const delta of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(sig);
        bad[i]! ^= delta;
        assert.equal(verifyBoth(bad), false, `byte ${i} ^ ${delta}`);
      }
    }
  });

  it("rejects truncated, extended and non-minimal DER, and r or s out of [1, n-1]", () => {
    const { r, s } = parseSig(sig);
    for (let len = 0; len < sig.length; len++) assert.equal(verifyBoth(sig.subarray(0, len)), false, `truncated to ${len}`);
    assert.equal(verifyBoth(Buffer.concat([sig, Buffer.from([0])])), false, "trailing byte");
    assert.equal(verifyBoth(derSig(r, s)), true, "the hand encoder agrees");
    // A superfluous leading zero in r.
    const rBytes = Buffer.concat([Buffer.from([0, 0]), field(r)]);
    const padded = Buffer.concat([Buffer.from([0x02, rBytes.length]), rBytes, derInt(s)]);
    assert.equal(verifyBoth(Buffer.concat([Buffer.from([0x30, padded.length]), padded])), false, "non-minimal r");
    // A long-form length where the short form fits.
    const body = sig.subarray(2);
    assert.equal(verifyBoth(Buffer.concat([Buffer.from([0x30, 0x81, body.length]), body])), false, "long-form length");
    for (const [rr, ss] of [
      [0n, s],
      [r, 0n],
      [r + N, s],
      [r, s + N],
      [N, s],
      [r, N],
    ] as const) {
      assert.equal(verifyBoth(derSig(rr, ss)), false, `r=${rr.toString(16)} s=${ss.toString(16)}`);
    }
    // s' = n - s with r kept: well-formed, wrong.
    assert.equal(verifyBoth(derSig(r, N - s)), false);
    // r + s = n makes t = 0.
    assert.equal(verifyBoth(derSig(r, N - r)), false);
  });

  it("rejects every single-byte change of a ciphertext with CryptoError", () => {
    const ct = sm2Encrypt(publicKey, randomBytes(40));
    for (let i = 0; i < ct.length; i++) {
      const bad = Buffer.from(ct);
      bad[i]! ^= 0x01 << i % 8;
      assert.throws(() => sm2Decrypt(privateKey, bad), { name: "CryptoError", message: "decryption failed" }, `byte ${i}`);
    }
    for (let len = 0; len < ct.length; len++) {
      assert.throws(() => sm2Decrypt(privateKey, ct.subarray(0, len)), { name: "CryptoError", message: "decryption failed" });
    }
    assert.throws(() => sm2Decrypt(privateKey, Buffer.concat([ct, Buffer.from([0])])), { name: "CryptoError" });
  });

  it("rejects ciphertexts with C1 off the curve, at infinity, coordinates >= p, or the negated C1", () => {
    const m = Buffer.from("secret");
    const raw = sm2CiphertextToRaw(sm2Encrypt(publicKey, m));
    const x = BigInt(`0x${raw.subarray(1, 33).toString("hex")}`);
    const y = BigInt(`0x${raw.subarray(33, 65).toString("hex")}`);
    const tail = raw.subarray(65);
    const withC1 = (cx: Buffer, cy: Buffer): Buffer => sm2CiphertextFromRaw(Buffer.concat([Buffer.from([4]), cx, cy, tail]));
    const fail = { name: "CryptoError", message: "decryption failed" };
    assert.throws(() => sm2Decrypt(privateKey, withC1(Buffer.alloc(32), Buffer.alloc(32))), fail, "(0, 0) for infinity");
    assert.throws(() => sm2Decrypt(privateKey, withC1(field(x), field(y ^ 1n))), fail, "off the curve");
    const small = smallPoint();
    assert.throws(() => sm2Decrypt(privateKey, withC1(field(small.x + P), field(small.y))), fail, "x + p");
    // (x, -y) is on the curve: d·(-C1) has the same x2 and the opposite y2, so C3 must catch it.
    assert.throws(() => sm2Decrypt(privateKey, withC1(field(x), field(P - y))), fail, "negated C1");
    assert.deepEqual(sm2Decrypt(privateKey, withC1(field(x), field(y))), m);
    // A C3 of the wrong length, and an empty C2.
    assert.throws(() => sm2Decrypt(privateKey, sm2CiphertextFromRaw(raw).subarray(0, 10)), fail);
  });

  it("rejects malformed keys and arguments, naming the parameter", () => {
    const zero = Buffer.alloc(32);
    const nMinus1 = field(N - 1n);
    assert.throws(() => sm2Sign(zero, msg), { name: "RangeError", message: /^"privateKey" must be an integer in \[1, n-2\]/ });
    assert.throws(() => sm2Sign(nMinus1, msg), { name: "RangeError", message: /^"privateKey"/ });
    assert.throws(() => sm2Sign(field(N), msg), { name: "RangeError", message: /^"privateKey"/ });
    assert.throws(() => sm2Sign(Buffer.alloc(33, 1), msg), { name: "RangeError", message: /^"privateKey" must be 32 bytes/ });
    assert.throws(() => sm2Sign(Buffer.alloc(31, 1), msg), { name: "RangeError", message: /^"privateKey" must be 32 bytes/ });
    assert.throws(() => sm2Sign("key" as unknown as Buffer, msg), { name: "TypeError", message: /^"privateKey"/ });
    assert.throws(() => sm2PublicKeyFromPrivate(zero), { name: "RangeError", message: /^"privateKey"/ });
    assert.throws(() => sm2Decrypt(zero, sm2Encrypt(publicKey, msg)), { name: "RangeError", message: /^"privateKey"/ });
    assert.throws(() => sm2PrivateKeyToPkcs8(nMinus1), { name: "RangeError", message: /^"privateKey"/ });
    assert.deepEqual(sm2PublicKeyFromPrivate(field(N - 2n)).length, 65, "n-2 is the largest valid d");

    const offCurve = Buffer.from(publicKey);
    offCurve[64]! ^= 1;
    const wrongPrefix = Buffer.from(publicKey);
    wrongPrefix[0] = 0x02;
    const infinity = Buffer.concat([Buffer.from([4]), Buffer.alloc(64)]);
    // The same point with x written as x + p: the curve equation holds mod p, the encoding is not canonical.
    const small = smallPoint();
    assert.deepEqual(sm2PublicKeyToSpki(Buffer.concat([Buffer.from([4]), field(small.x), field(small.y)])).length, 91, "the point itself is valid");
    const bigX = Buffer.concat([Buffer.from([4]), field(small.x + P), field(small.y)]);
    for (const [bad, re] of [
      [offCurve, /^"publicKey" is not a point on the SM2 curve/],
      [infinity, /^"publicKey" is not a point on the SM2 curve/],
      [bigX, /^"publicKey" is not a point on the SM2 curve/],
      [wrongPrefix, /^"publicKey" must be an uncompressed point/],
      [Buffer.from([0]), /^"publicKey" must be 65 bytes/],
      [publicKey.subarray(1), /^"publicKey" must be 65 bytes/],
    ] as const) {
      assert.throws(() => sm2Verify(bad, msg, sig), { name: "RangeError", message: re });
      assert.throws(() => sm2Encrypt(bad, msg), { name: "RangeError", message: re });
      assert.throws(() => sm2Digest(bad, msg), { name: "RangeError", message: re });
      assert.throws(() => sm2PublicKeyToSpki(bad), { name: "RangeError", message: re });
    }
    assert.throws(() => sm2SignDigest(privateKey, Buffer.alloc(31)), { name: "RangeError", message: /^"digest" must be 32 bytes/ });
    assert.throws(() => sm2VerifyDigest(publicKey, Buffer.alloc(33), sig), { name: "RangeError", message: /^"digest" must be 32 bytes/ });
    assert.throws(() => sm2Verify(publicKey, "m" as unknown as Buffer, sig), { name: "TypeError", message: /^"message"/ });
    assert.throws(() => sm2Verify(publicKey, msg, "sig" as unknown as Buffer), { name: "TypeError", message: /^"signature"/ });
    assert.throws(() => sm2Sign(privateKey, msg, { id: 5 as unknown as string }), { name: "TypeError", message: /^"id"/ });
    assert.throws(() => sm2Sign(privateKey, msg, { id: Buffer.alloc(8192) }), { name: "RangeError", message: /^"id" must be at most 8191 bytes/ });
    assert.throws(() => sm2Encrypt(publicKey, Buffer.alloc(0)), { name: "RangeError", message: /^"plaintext" must not be empty/ });
    assert.throws(() => sm2Decrypt(privateKey, "ct" as unknown as Buffer), { name: "TypeError", message: /^"ciphertext"/ });
    assert.throws(() => sm2CiphertextFromRaw(Buffer.alloc(97, 4)), { name: "RangeError", message: /^"raw" must be at least 98 bytes/ });
    assert.throws(() => sm2CiphertextFromRaw(Buffer.alloc(120, 2)), { name: "RangeError", message: /^"raw" must start with 04/ });
    assert.throws(() => sm2CiphertextToRaw(Buffer.from("3000", "hex")), { name: "RangeError", message: /^"der" is not a GM\/T 0009 SM2 ciphertext/ });
  });

  it("rejects SubjectPublicKeyInfo of another curve, with trailing bytes, or with an invalid point", () => {
    const spki = sm2PublicKeyToSpki(publicKey);
    const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ format: "der", type: "spki" });
    assert.throws(() => sm2PublicKeyFromSpki(p256), { name: "RangeError", message: /^"spki" is not a DER SubjectPublicKeyInfo of an SM2 public key/ });
    assert.throws(() => sm2PublicKeyFromSpki(Buffer.concat([spki, Buffer.from([0])])), { name: "RangeError", message: /^"spki"/ });
    const bad = Buffer.from(spki);
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => sm2PublicKeyFromSpki(bad), { name: "RangeError", message: /^"spki" is not a point on the SM2 curve/ });
    for (let len = 0; len < spki.length; len++) assert.throws(() => sm2PublicKeyFromSpki(spki.subarray(0, len)), RangeError);
  });

  it("does not accept node:crypto's ECDSA-over-the-SM2-curve signatures (the pitfall in reference/measured.md)", async () => {
    const { createPrivateKey } = await import("node:crypto");
    const generated = generateKeyPairSync("ec", { namedCurve: "SM2" });
    // No JWK for SM2 in node:crypto: take d from the ECPrivateKey's "020101 0420 d" and the point from the SPKI's tail.
    const pkcs8 = generated.privateKey.export({ format: "der", type: "pkcs8" });
    const at = pkcs8.indexOf(Buffer.from("0201010420", "hex"));
    assert.ok(at > 0);
    const d = pkcs8.subarray(at + 5, at + 37);
    const pub = generated.publicKey.export({ format: "der", type: "spki" }).subarray(-65);
    assert.deepEqual(sm2PublicKeyFromPrivate(d), pub);
    for (const algorithm of ["sm3", "sha256"]) {
      const ecdsa = nodeSign(algorithm, msg, generated.privateKey);
      assert.equal(sm2Verify(pub, msg, ecdsa), false, `ECDSA with ${algorithm}`);
      assert.equal(sm2Verify(pub, msg, ecdsa, { id: "" }), false, `ECDSA with ${algorithm}, empty identity`);
    }
    // A key loaded from PKCS#8 signs real SM2 but with the empty identity, so it verifies only with id "".
    const loaded = createPrivateKey({ key: sm2PrivateKeyToPkcs8(d), format: "der", type: "pkcs8" });
    const fromPem = nodeSign("sm3", msg, loaded);
    assert.equal(sm2Verify(pub, msg, fromPem), false, "default identity");
    assert.equal(sm2Verify(pub, msg, fromPem, { id: "" }), true, "empty identity");
  });
});
