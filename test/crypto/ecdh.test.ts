// ECDH on P-256, P-384 and the SM2 curve: the shared secret agrees with `openssl pkeyutl -derive`
// both ways, and a peer public key off the curve, at infinity, of another curve or malformed is
// refused before any multiplication.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ecdhNist, ecdhPeerKey, ecdhSm2, EcdhPublicKeyError, type EcdhCurve } from "../../src/crypto/ecdh.js";
import { EcdsaPrivateKey } from "../../src/crypto/ecc.js";
import { weierstrass } from "@noble/curves/abstract/weierstrass.js";
import { sm2GenerateKeyPair, sm2PublicKeyToSpki } from "../../src/crypto/sm2.js";
import { opensslSkip, requireOpenssl } from "../helpers/openssl.js";

const dir = mkdtempSync(path.join(tmpdir(), "tresor-ecdh-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const OPENSSL_NAMES = { "P-256": "prime256v1", "P-384": "secp384r1" } as const;

function derive(privatePem: string, peerPem: string): Buffer {
  writeFileSync(path.join(dir, "priv.pem"), privatePem);
  writeFileSync(path.join(dir, "peer.pem"), peerPem);
  return execFileSync("openssl", ["pkeyutl", "-derive", "-inkey", path.join(dir, "priv.pem"), "-peerkey", path.join(dir, "peer.pem")]);
}

/** A SubjectPublicKeyInfo of `curve` (id-ecPublicKey) holding the given point bytes, valid or not. */
function spkiWithPoint(curve: "P-256" | "P-384", point: Buffer): Buffer {
  const template = generateKeyPairSync("ec", { namedCurve: OPENSSL_NAMES[curve] }).publicKey.export({ format: "der", type: "spki" });
  const length = curve === "P-256" ? 65 : 97;
  return Buffer.concat([template.subarray(0, template.length - length), point]);
}

describe("ECDH", () => {
  for (const curve of ["P-256", "P-384"] as const) {
    it(`${curve}: the secret is openssl's, both ways`, { skip: opensslSkip }, () => {
      requireOpenssl();
      const ours = generateKeyPairSync("ec", { namedCurve: OPENSSL_NAMES[curve] });
      const theirs = generateKeyPairSync("ec", { namedCurve: OPENSSL_NAMES[curve] });
      const key = new EcdsaPrivateKey(ours.privateKey.export({ format: "der", type: "pkcs8" }), curve);
      const secret = key.deriveSharedSecret(ecdhPeerKey(curve, theirs.publicKey.export({ format: "der", type: "spki" })));
      assert.equal(secret.length, curve === "P-256" ? 32 : 48);
      const pem = (k: typeof ours.privateKey) => k.export({ format: "pem", type: k.type === "private" ? "pkcs8" : "spki" }).toString();
      assert.deepEqual(derive(pem(theirs.privateKey), pem(ours.publicKey)), secret);
      assert.deepEqual(ecdhNist(ours.privateKey, ecdhPeerKey(curve, theirs.publicKey.export({ format: "der", type: "spki" }))), secret);
    });
  }

  it("SM2 curve: OpenSSL's secret is d·Q computed by noble's curve arithmetic with GB/T 32918.5's parameters", () => {
    // `openssl pkeyutl -derive` refuses SM2 keys, so the reference is @noble/curves (not OpenSSL,
    // which ecdhSm2 uses) over the curve built here from the standard's published parameters.
    const curve = weierstrass({
      p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
      n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
      h: 1n,
      a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
      b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
      Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
      Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
    });
    for (let i = 0; i < 3; i++) {
      const ours = sm2GenerateKeyPair();
      const theirs = sm2GenerateKeyPair();
      const secret = ecdhSm2(ours.privateKey, ecdhPeerKey("SM2", sm2PublicKeyToSpki(theirs.publicKey)));
      const expected = curve.fromBytes(theirs.publicKey).multiply(BigInt(`0x${ours.privateKey.toString("hex")}`)).toBytes(false).subarray(1, 33);
      assert.deepEqual(secret, Buffer.from(expected));
      assert.deepEqual(ecdhSm2(theirs.privateKey, ecdhPeerKey("SM2", sm2PublicKeyToSpki(ours.publicKey))), secret);
    }
  });

  it("refuses a point off the curve, the identity, another curve's key and garbage", () => {
    const refuses = (curve: EcdhCurve, spki: Buffer, pattern: RegExp) => assert.throws(() => ecdhPeerKey(curve, spki), (e: unknown) => e instanceof EcdhPublicKeyError && pattern.test(e.message));
    const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ format: "der", type: "spki" });
    const offCurve = Buffer.from(p256.subarray(p256.length - 65));
    offCurve[64]! ^= 1;
    refuses("P-256", spkiWithPoint("P-256", offCurve), /point|SubjectPublicKeyInfo/);
    refuses("P-256", spkiWithPoint("P-256", Buffer.concat([Buffer.of(4), Buffer.alloc(64)])), /point|SubjectPublicKeyInfo/);
    // The identity (point at infinity) as SEC 1 encodes it: the single byte 0x00.
    const algorithm = p256.subarray(2, 23);
    refuses("P-256", Buffer.concat([Buffer.of(0x30, algorithm.length + 4), algorithm, Buffer.of(0x03, 0x02, 0x00, 0x00)]), /point|identity|SubjectPublicKeyInfo/);
    refuses("P-384", p256, /P-384/);
    refuses("SM2", p256, /SM2/);
    refuses("P-256", sm2PublicKeyToSpki(sm2GenerateKeyPair().publicKey), /P-256|SubjectPublicKeyInfo/);
    refuses("P-256", generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }), /P-256/);
    refuses("P-256", Buffer.from("not a key"), /SubjectPublicKeyInfo/);
    const sm2Spki = sm2PublicKeyToSpki(sm2GenerateKeyPair().publicKey);
    sm2Spki[sm2Spki.length - 1]! ^= 1;
    refuses("SM2", sm2Spki, /SM2|point/);
  });
});
