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
import { p256, p384 } from "@noble/curves/nist.js";
import { _ecdsaSignDigestWithK, ECDSA_CURVES, EcdsaPrivateKey, ecGenerateKeyPair, ecPublicKeyFromSpki, ecdsaDigestLength, ecdsaHash, ecdsaVerify, ecdsaVerifyDigest } from "../../src/crypto/ecc.js";
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

    it("signDigest's signatures over many digests all verify with openssl", () => {
      for (let i = 0; i < 10; i++) {
        const digest = createHash(hash).update(randomBytes(40)).digest();
        const signature = priv.signDigest(digest);
        assert.ok(opensslVerifies(digest, signature), `signature ${i}`);
        assert.ok(ecdsaVerifyDigest(pub, curve, digest, signature), `signature ${i}`);
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

// RFC 6979 appendix A.2.5 (P-256, SHA-256) and A.2.6 (P-384, SHA-384): with the RFC's k, the
// digest signature is the RFC's (r, s), read back by @noble/curves' DER parser.
describe("ECDSA over a digest, RFC 6979's examples with their k", () => {
  const vectors = [
    {
      curve: "P-256",
      noble: p256,
      x: "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
      message: "sample",
      k: "A6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60",
      r: "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
      s: "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    },
    {
      curve: "P-256",
      noble: p256,
      x: "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
      message: "test",
      k: "D16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0",
      r: "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
      s: "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
    },
    {
      curve: "P-384",
      noble: p384,
      x: "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
      message: "sample",
      k: "94ED910D1A099DAD3254E9242AE85ABDE4BA15168EAF0CA87A555FD56D10FBCA2907E3E83BA95368623B8C4686915CF9",
      r: "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
      s: "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8",
    },
  ] as const;
  for (const v of vectors) {
    it(`${v.curve}, "${v.message}"`, () => {
      const digest = createHash(ecdsaHash(v.curve)).update(v.message).digest();
      const der = _ecdsaSignDigestWithK(v.curve, Buffer.from(v.x, "hex"), digest, Buffer.from(v.k, "hex"));
      const signature = v.noble.Signature.fromBytes(der, "der");
      assert.equal(signature.r, BigInt(`0x${v.r}`));
      assert.equal(signature.s, BigInt(`0x${v.s}`));
    });
  }
});

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
