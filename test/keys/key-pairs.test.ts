// generateKeyPair (keys/asymmetric.ts), which the server calls for CreateKey and
// GetParametersForImport: every spec's pair is made off the event loop and works: the private half
// signs what the stored public key verifies. RSA-3072 and RSA-4096 take the same path as RSA-2048
// with a longer prime search; test/api/event-loop.test.ts creates RSA-4096 keys.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AsymmetricPrivateKey, generateKeyPair, verifySignature } from "../../src/keys/asymmetric.js";
import type { AsymmetricKeySpec } from "../../src/keys/key.js";
import type { SigningAlgorithm } from "../../src/keys/specs.js";

const SIGNING: readonly (readonly [AsymmetricKeySpec, SigningAlgorithm])[] = [
  ["RSA_2048", "RSA_PSS_SHA_256"],
  ["ECC_P256", "ECC_P256_R1"],
  ["ECC_P384", "ECDSA_P384_SHA_384"],
  ["ECC_P521", "ECDSA_P521_SHA_512"],
  ["SM2", "SM2DSA"],
];

describe("generateKeyPair", () => {
  for (const [spec, algorithm] of SIGNING) {
    it(`makes a working ${spec} pair, asynchronously`, async () => {
      const pending = generateKeyPair(spec);
      assert.ok(pending instanceof Promise, "a promise: the pair is made off the event loop");
      const pairs = await Promise.all([pending, generateKeyPair(spec), generateKeyPair(spec)]);
      assert.equal(new Set(pairs.map((p) => p.publicKey.toString("hex"))).size, 3, "three different pairs");
      for (const { privateMaterial, publicKey } of pairs) {
        const key = new AsymmetricPrivateKey(spec, privateMaterial);
        const message = Buffer.from(`signed by a fresh ${spec} key`);
        const signature = key.sign(algorithm, message, "RAW");
        key.destroy();
        assert.equal(verifySignature(spec, publicKey, algorithm, message, "RAW", signature), true);
        assert.equal(verifySignature(spec, publicKey, algorithm, Buffer.from("another message"), "RAW", signature), false);
      }
    });
  }

  it("gives an SM2 private key as 32 bytes with 1 <= d <= n-2", async () => {
    const n = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
    for (let i = 0; i < 8; i++) {
      const { privateMaterial } = await generateKeyPair("SM2");
      assert.equal(privateMaterial.length, 32);
      const d = BigInt(`0x${privateMaterial.toString("hex")}`);
      assert.ok(d >= 1n && d <= n - 2n);
    }
  });
});
