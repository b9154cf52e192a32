// The signature footers verify with independent implementations: SM2 footers with sm-crypto
// (SM3 with Z_A and the default identity, DER), ECDSA P-384 footers with node:crypto's verify over
// the whole message; and sm2IdentityDigest gives the Z_A that sm2Sign uses.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import smCrypto from "sm-crypto";
import { sm2GenerateKeyPair, sm2IdentityDigest, sm2PublicKeyFromSpki, sm2Sign, sm2VerifyDigest } from "../../../src/crypto/sm2.js";
import { FIXTURES_FILE, type Fixture } from "../../helpers/encryption-fixtures.js";

const { sm2 } = smCrypto;
const { fixtures } = JSON.parse(readFileSync(FIXTURES_FILE, "utf8")) as { fixtures: Fixture[] };

/** The message without its footer, the signature, and the public key from the context. */
function split(f: Fixture): { signed: Buffer; signature: Buffer; spki: Buffer } {
  const m = Buffer.from(f.messageHex, "hex");
  // The footer is uint16 length + DER; DER signatures here are under 128 bytes, so scan from the end.
  for (let len = 60; len < 120; len++) {
    const at = m.length - 2 - len;
    if (m.readUInt16BE(at) === len && m[at + 2] === 0x30) {
      return { signed: m.subarray(0, at), signature: m.subarray(at + 2), spki: spkiOf(m) };
    }
  }
  throw new Error("no footer found");
}

/** The base64 SPKI stored under tresor:public-key in the header's context. */
function spkiOf(m: Buffer): Buffer {
  let off = 39;
  const pairs = m.readUInt16BE(off);
  off += 2;
  for (let i = 0; i < pairs; i++) {
    const kl = m.readUInt16BE(off);
    const key = m.subarray(off + 2, off + 2 + kl).toString("utf8");
    off += 2 + kl;
    const vl = m.readUInt16BE(off);
    const value = m.subarray(off + 2, off + 2 + vl).toString("utf8");
    off += 2 + vl;
    if (key === "tresor:public-key") return Buffer.from(value, "base64");
  }
  throw new Error("no public key in the context");
}

describe("signature footers against independent verifiers", () => {
  for (const f of fixtures.filter((x) => x.suite.endsWith("_SM2"))) {
    it(`${f.suite} ${f.case}: sm-crypto verifies the SM2 footer`, () => {
      const { signed, signature, spki } = split(f);
      const pubHex = sm2PublicKeyFromSpki(spki).toString("hex");
      assert.equal(sm2.doVerifySignature(Array.from(signed), signature.toString("hex"), pubHex, { der: true, hash: true }), true);
      const altered = Buffer.from(signed);
      altered[altered.length - 1]! ^= 1;
      assert.equal(sm2.doVerifySignature(Array.from(altered), signature.toString("hex"), pubHex, { der: true, hash: true }), false);
    });
  }
  for (const f of fixtures.filter((x) => x.suite.endsWith("_ECDSA_P384"))) {
    it(`${f.suite} ${f.case}: node:crypto verifies the ECDSA P-384 footer over SHA-384`, () => {
      const { signed, signature, spki } = split(f);
      const key = createPublicKey({ key: spki, format: "der", type: "spki" });
      assert.equal(verify("sha384", signed, { key, dsaEncoding: "der" }, signature), true);
    });
  }

  it("sm2IdentityDigest is the Z_A of sm2Sign", () => {
    const pair = sm2GenerateKeyPair();
    const message = Buffer.from("streamed in pieces");
    const sig = sm2Sign(pair.privateKey, message);
    const e = createHash("sm3").update(sm2IdentityDigest(pair.publicKey)).update(message.subarray(0, 5)).update(message.subarray(5)).digest();
    assert.equal(sm2VerifyDigest(pair.publicKey, e, sig), true);
  });
});
