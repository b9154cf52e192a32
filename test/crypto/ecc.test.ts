// ECDSA P-256/SHA-256, P-384/SHA-384 and P-521/SHA-512 against the openssl command line: DER signatures made here,
// over a message and over a digest, verify with `openssl pkeyutl -verify`; openssl's verify here;
// altered signatures, digests of the wrong length and another curve's keys are refused.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ECDSA_CURVES, EcdsaPrivateKey, ecGenerateKeyPair, ecPublicKeyFromSpki, ecdsaDigestLength, ecdsaHash, ecdsaVerify, ecdsaVerifyDigest } from "../../src/crypto/ecc.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

let dir: string;
before(() => (dir = mkdtempSync(path.join(tmpdir(), "tresor-ecc-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const curve of ECDSA_CURVES) {
  describe(`ECDSA ${curve}`, { skip: opensslSkip }, () => {
    before(requireOpenssl);
    const hash = ecdsaHash(curve);
    const pair = ecGenerateKeyPair(curve);
    const priv = new EcdsaPrivateKey(pair.privateKey, curve);
    const pub = ecPublicKeyFromSpki(pair.publicKey, curve);
    const pem = (name: string, text: string | Buffer) => {
      const file = path.join(dir, `${curve}-${name}`);
      writeFileSync(file, text);
      return file;
    };
    const opensslVerifies = (digest: Buffer, signature: Buffer): boolean => {
      const pubPem = pem("pub.pem", createPublicKey({ key: pair.publicKey, format: "der", type: "spki" }).export({ type: "spki", format: "pem" }));
      try {
        execFileSync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pubPem, "-in", pem("d.bin", digest), "-sigfile", pem("s.bin", signature)], { stdio: "pipe" });
        return true;
      } catch {
        return false;
      }
    };

    it("sign and signDigest give DER signatures that openssl and both verifiers accept", () => {
      const message = randomBytes(500);
      const digest = createHash(hash).update(message).digest();
      assert.equal(digest.length, ecdsaDigestLength(curve));
      for (const signature of [priv.sign(message), priv.signDigest(digest)]) {
        assert.equal(signature[0], 0x30, "a DER SEQUENCE");
        assert.ok(opensslVerifies(digest, signature));
        assert.ok(ecdsaVerify(pub, curve, message, signature));
        assert.ok(ecdsaVerifyDigest(pub, curve, digest, signature));
        const tampered = Buffer.from(signature);
        tampered[tampered.length - 3] = tampered[tampered.length - 3]! ^ 1;
        assert.equal(opensslVerifies(digest, tampered), false);
        assert.equal(ecdsaVerify(pub, curve, message, tampered), false);
        assert.equal(ecdsaVerifyDigest(pub, curve, digest, tampered), false);
        assert.equal(ecdsaVerify(pub, curve, message, Buffer.from("not der")), false);
        assert.equal(ecdsaVerifyDigest(pub, curve, digest, Buffer.alloc(0)), false);
      }
    });

    it("openssl's signatures over a digest verify here", () => {
      const digest = createHash(hash).update(randomBytes(20)).digest();
      const privPem = pem("priv.pem", createPrivateKey({ key: pair.privateKey, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }));
      const signature = execFileSync("openssl", ["pkeyutl", "-sign", "-inkey", privPem, "-in", pem("d2.bin", digest)], { stdio: "pipe" });
      assert.ok(ecdsaVerifyDigest(pub, curve, digest, signature));
    });

    it("refuses digests of the wrong length and keys of the other curve", () => {
      assert.throws(() => priv.signDigest(Buffer.alloc(ecdsaDigestLength(curve) + 1)), RangeError);
      const other = curve === "P-256" ? "P-384" : "P-256";
      assert.throws(() => ecPublicKeyFromSpki(pair.publicKey, other), TypeError);
      assert.throws(() => new EcdsaPrivateKey(pair.privateKey, other), TypeError);
    });
  });
}

describe("a caller's EC public key", () => {
  // Node 20 aborts the process (an assertion, not an exception) when it reads the details of such
  // a key: if ecPublicKeyFromSpki let it through, this file would crash instead of failing.
  it("is refused with a TypeError when it is the point at infinity, on every curve", () => {
    const curveOids = { "P-256": "06082a8648ce3d030107", "P-384": "06052b81040022", "P-521": "06052b81040023" } as const;
    for (const [curve, oid] of Object.entries(curveOids)) {
      const algorithm = Buffer.from(`06072a8648ce3d0201${oid}`, "hex");
      const spki = Buffer.concat([Buffer.from([0x30, algorithm.length + 6, 0x30, algorithm.length]), algorithm, Buffer.from([0x03, 0x02, 0x00, 0x00])]);
      assert.throws(() => ecPublicKeyFromSpki(spki, curve as (typeof ECDSA_CURVES)[number]), /point at infinity/, curve);
    }
  });
});
