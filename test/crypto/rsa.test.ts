// RSA against the openssl command line: signatures made here (over a message and over a digest)
// verify with `openssl pkeyutl -verify`, openssl's signatures verify here, and ciphertexts made by
// `openssl pkeyutl -encrypt` (OAEP SHA-1, OAEP SHA-256, PKCS#1 v1.5) decrypt here, and the other way.
// PKCS#1 v1.5 decryption uses implicit rejection: a bad padding gives a deterministic substitute.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CryptoError } from "../../src/crypto/errors.js";
import {
  RSA_SIGNATURE_ALGORITHMS,
  RsaPrivateKey,
  rsaEncrypt,
  rsaGenerateKeyPair,
  rsaGenerateKeyPairAsync,
  rsaMaxPlaintext,
  rsaPublicKey,
  rsaVerify,
  rsaVerifyDigest,
  type RsaEncryptionAlgorithm,
  type RsaSignatureAlgorithm,
} from "../../src/crypto/rsa.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

let dir: string;
const pair = rsaGenerateKeyPair(2048);
const priv = new RsaPrivateKey(pair.privateKey);
const pub = rsaPublicKey(pair.publicKey);
let privPem: string;
let pubPem: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "tresor-rsa-"));
  privPem = path.join(dir, "priv.pem");
  pubPem = path.join(dir, "pub.pem");
  writeFileSync(privPem, createPrivateKey({ key: pair.privateKey, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }));
  writeFileSync(pubPem, createPublicKey({ key: pair.publicKey, format: "der", type: "spki" }).export({ type: "spki", format: "pem" }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] });
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();

function signOpts(algorithm: RsaSignatureAlgorithm): string[] {
  return algorithm === "RSA_PSS_SHA_256"
    ? ["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32", "-pkeyopt", "rsa_mgf1_md:sha256"]
    : ["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_padding_mode:pkcs1"];
}

/** `openssl pkeyutl -verify` over a SHA-256 digest: true when openssl says "Signature Verified Successfully". */
function opensslVerifies(algorithm: RsaSignatureAlgorithm, digest: Buffer, signature: Buffer): boolean {
  const d = path.join(dir, "digest.bin");
  const s = path.join(dir, "sig.bin");
  writeFileSync(d, digest);
  writeFileSync(s, signature);
  try {
    openssl(["pkeyutl", "-verify", "-pubin", "-inkey", pubPem, "-in", d, "-sigfile", s, ...signOpts(algorithm)]);
    return true;
  } catch {
    return false;
  }
}

function encOpts(algorithm: RsaEncryptionAlgorithm): string[] {
  switch (algorithm) {
    case "RSAES_OAEP_SHA_1":
      return ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"];
    case "RSAES_OAEP_SHA_256":
      return ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"];
    case "RSAES_PKCS1_V1_5":
      return ["-pkeyopt", "rsa_padding_mode:pkcs1"];
  }
}

describe("RSA signatures", { skip: opensslSkip }, () => {
  before(requireOpenssl);
  for (const algorithm of RSA_SIGNATURE_ALGORITHMS) {
    it(`${algorithm}: sign and signDigest verify with openssl, with each other's verifier, and fail when altered`, () => {
      const message = randomBytes(300);
      const digest = sha256(message);
      for (const signature of [priv.sign(algorithm, message), priv.signDigest(algorithm, digest)]) {
        assert.equal(signature.length, 256);
        assert.ok(opensslVerifies(algorithm, digest, signature), "openssl verifies");
        assert.ok(rsaVerify(pub, algorithm, message, signature));
        assert.ok(rsaVerifyDigest(pub, algorithm, digest, signature));
        const tampered = Buffer.from(signature);
        tampered[100] = tampered[100]! ^ 1;
        assert.equal(opensslVerifies(algorithm, digest, tampered), false, "openssl rejects the altered signature (the check can fail)");
        assert.equal(rsaVerify(pub, algorithm, message, tampered), false);
        assert.equal(rsaVerifyDigest(pub, algorithm, digest, tampered), false);
        assert.equal(rsaVerifyDigest(pub, algorithm, sha256(Buffer.from("other")), signature), false);
        assert.equal(rsaVerify(pub, algorithm, message, signature.subarray(1)), false);
        assert.equal(rsaVerifyDigest(pub, algorithm, digest, Buffer.alloc(256, 0xff)), false, "not below the modulus");
      }
    });

    it(`${algorithm}: openssl's signatures verify here`, () => {
      const digest = sha256(randomBytes(64));
      const d = path.join(dir, "digest-in.bin");
      writeFileSync(d, digest);
      const signature = openssl(["pkeyutl", "-sign", "-inkey", privPem, "-in", d, ...signOpts(algorithm)]);
      assert.ok(rsaVerifyDigest(pub, algorithm, digest, signature));
    });
  }

  it("the two algorithms do not accept each other's signatures", () => {
    const digest = sha256(Buffer.from("x"));
    assert.equal(rsaVerifyDigest(pub, "RSA_PSS_SHA_256", digest, priv.signDigest("RSA_PKCS1_SHA_256", digest)), false);
    assert.equal(rsaVerifyDigest(pub, "RSA_PKCS1_SHA_256", digest, priv.signDigest("RSA_PSS_SHA_256", digest)), false);
  });

  it("signDigest refuses a digest that is not 32 bytes", () => {
    assert.throws(() => priv.signDigest("RSA_PSS_SHA_256", Buffer.alloc(31)), RangeError);
  });

  it("3072- and 4096-bit keys sign over a digest too", () => {
    for (const bits of [3072, 4096] as const) {
      const p = rsaGenerateKeyPair(bits);
      const k = new RsaPrivateKey(p.privateKey);
      const digest = sha256(Buffer.from(`bits ${bits}`));
      for (const a of RSA_SIGNATURE_ALGORITHMS) {
        const signature = k.signDigest(a, digest);
        assert.equal(signature.length, bits / 8);
        assert.ok(rsaVerify(rsaPublicKey(p.publicKey), a, Buffer.from(`bits ${bits}`), signature), `${bits} ${a}`);
      }
    }
  });
});

describe("RSA encryption", { skip: opensslSkip }, () => {
  before(requireOpenssl);
  const algorithms: RsaEncryptionAlgorithm[] = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"];
  for (const algorithm of algorithms) {
    it(`${algorithm}: openssl's ciphertexts decrypt here, and ours decrypt with openssl`, () => {
      const max = rsaMaxPlaintext(algorithm, 256);
      for (const plaintext of [Buffer.from("a"), randomBytes(32), randomBytes(max)]) {
        const ct = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", pubPem, ...encOpts(algorithm)], plaintext);
        assert.deepEqual(priv.decrypt(algorithm, ct), plaintext);
        const ours = rsaEncrypt(pub, algorithm, plaintext);
        assert.deepEqual(openssl(["pkeyutl", "-decrypt", "-inkey", privPem, ...encOpts(algorithm)], ours), plaintext);
      }
      assert.throws(() => rsaEncrypt(pub, algorithm, randomBytes(max + 1)), RangeError);
    });
  }

  it("OAEP refuses an altered ciphertext, the wrong hash, and a wrong length with CryptoError", () => {
    const ct = rsaEncrypt(pub, "RSAES_OAEP_SHA_256", Buffer.from("secret"));
    const bad = Buffer.from(ct);
    bad[10] = bad[10]! ^ 1;
    assert.throws(() => priv.decrypt("RSAES_OAEP_SHA_256", bad), CryptoError);
    assert.throws(() => priv.decrypt("RSAES_OAEP_SHA_1", ct), CryptoError);
    assert.throws(() => priv.decrypt("RSAES_OAEP_SHA_256", ct.subarray(1)), CryptoError);
    assert.throws(() => priv.decrypt("RSAES_OAEP_SHA_256", Buffer.alloc(256, 0xff)), CryptoError);
  });

  it("PKCS#1 v1.5 with a bad padding answers a deterministic substitute, never an error", () => {
    const plaintext = Buffer.from("the real message");
    const ct = rsaEncrypt(pub, "RSAES_PKCS1_V1_5", plaintext);
    const lengths = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const bad = Buffer.from(ct);
      bad[200 - i] = bad[200 - i]! ^ 0x40;
      const first = priv.decrypt("RSAES_PKCS1_V1_5", bad);
      const second = priv.decrypt("RSAES_PKCS1_V1_5", bad);
      assert.deepEqual(first, second, "the same ciphertext gives the same substitute");
      assert.notDeepEqual(first, plaintext);
      assert.ok(first.length <= 256 - 11);
      lengths.add(first.length);
    }
    assert.ok(lengths.size > 5, "substitute lengths vary with the ciphertext");
    // An OAEP ciphertext given as PKCS#1 v1.5 is a bad padding too.
    const oaep = rsaEncrypt(pub, "RSAES_OAEP_SHA_1", plaintext);
    assert.notDeepEqual(priv.decrypt("RSAES_PKCS1_V1_5", oaep), plaintext);
    // Another key's substitute differs: it depends on the private key.
    // The probe's top byte is zero so it is below both moduli (ct itself may exceed the other one).
    const other = new RsaPrivateKey(rsaGenerateKeyPair(2048).privateKey);
    const probe = Buffer.concat([Buffer.alloc(1), randomBytes(255)]);
    assert.notDeepEqual(other.decrypt("RSAES_PKCS1_V1_5", probe), priv.decrypt("RSAES_PKCS1_V1_5", probe));
  });

  it("a destroyed key refuses to work", () => {
    const k = new RsaPrivateKey(pair.privateKey);
    k.destroy();
    assert.throws(() => k.sign("RSA_PKCS1_SHA_256", Buffer.from("x")), /destroy/);
  });
});


describe("rsaGenerateKeyPairAsync", () => {
  it("makes a working 2048-bit pair off the event loop, and refuses other sizes", async () => {
    const p = await rsaGenerateKeyPairAsync(2048);
    assert.equal(createPublicKey({ key: p.publicKey, format: "der", type: "spki" }).asymmetricKeyDetails?.modulusLength, 2048);
    const message = randomBytes(32);
    const key = new RsaPrivateKey(p.privateKey);
    assert.deepEqual(key.decrypt("RSAES_OAEP_SHA_256", rsaEncrypt(rsaPublicKey(p.publicKey), "RSAES_OAEP_SHA_256", message)), message);
    key.destroy();
    await assert.rejects(rsaGenerateKeyPairAsync(1024 as 2048), RangeError);
  });
});
