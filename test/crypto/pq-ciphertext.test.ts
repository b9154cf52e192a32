// The post-quantum ciphertext (docs/formats.md "Post-quantum ciphertext"): its layout, and every
// changed byte refused; every changed byte of an ML-DSA signature refused too.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CryptoError } from "../../src/crypto/errors.js";
import { hybridKemGenerateKeyPair } from "../../src/crypto/hybrid-kem.js";
import { mlDsaGenerateKeyPair, mlDsaKeyPairFromSeed, mlDsaSign, mlDsaVerify } from "../../src/crypto/ml-dsa.js";
import { BlobFormatError } from "../../src/crypto/errors.js";
import { decodePqBlob, pqBlobMaxLength, pqOpen, pqSeal } from "../../src/crypto/pq-ciphertext.js";

const KEY_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff";

describe("post-quantum ciphertext", () => {
  const { seed, publicKey } = hybridKemGenerateKeyPair("X-Wing");
  const header = { algorithm: "ML_KEM_768_X25519_AES_256_GCM", keyId: KEY_ID, keyVersion: 3 } as const;

  it("lays out format, algorithm, key id, version, KEM ciphertext, AEAD ciphertext and tag", async () => {
    const blob = await pqSeal(header, publicKey, Buffer.from("hello"));
    assert.equal(blob.length, 22 + 1120 + 5 + 16);
    assert.equal(blob[0], 0x02);
    assert.equal(blob[1], 0x10);
    assert.equal(blob.subarray(2, 18).toString("hex"), KEY_ID.replaceAll("-", ""));
    assert.equal(blob.readUInt32BE(18), 3);
    const parsed = decodePqBlob(blob);
    assert.deepEqual({ algorithm: parsed.algorithm, keyId: parsed.keyId, keyVersion: parsed.keyVersion }, header);
    assert.equal((await pqOpen(parsed, seed)).toString(), "hello");
    assert.equal(pqBlobMaxLength(4096), 22 + 1665 + 4096 + 16);
  });

  it("refuses every changed byte, a truncation and an extension", async () => {
    const blob = await pqSeal(header, publicKey, Buffer.from("x"));
    for (let i = 0; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i]! ^= 0x01;
      await assert.rejects(
        // A changed key id or version names another key: the service refuses it; here the AEAD must.
        async () => pqOpen(decodePqBlob(bad), seed),
        (e: unknown) => e instanceof CryptoError || e instanceof BlobFormatError,
        `byte ${i}`,
      );
    }
    await assert.rejects(pqOpen(decodePqBlob(blob.subarray(0, blob.length - 1)), seed), CryptoError);
    await assert.rejects(pqOpen(decodePqBlob(Buffer.concat([blob, Buffer.of(0)])), seed), CryptoError);
    assert.throws(() => decodePqBlob(blob.subarray(0, 40)), BlobFormatError);
  });

  it("does not open under another key's seed", async () => {
    const blob = await pqSeal(header, publicKey, Buffer.from("x"));
    await assert.rejects(pqOpen(decodePqBlob(blob), hybridKemGenerateKeyPair("X-Wing").seed), CryptoError);
  });
});

describe("ML-DSA signature", () => {
  it("refuses every changed byte of an ML-DSA-44 signature", () => {
    const { seed } = mlDsaGenerateKeyPair("ML-DSA-44");
    const { publicKey, secretKey } = mlDsaKeyPairFromSeed("ML-DSA-44", seed);
    const message = Buffer.from("m");
    const signature = mlDsaSign("ML-DSA-44", secretKey, message, Buffer.alloc(0));
    for (let i = 0; i < signature.length; i++) {
      const bad = Buffer.from(signature);
      bad[i]! ^= 0x01;
      assert.equal(mlDsaVerify("ML-DSA-44", publicKey, message, bad, Buffer.alloc(0)), false, `byte ${i}`);
    }
  });
});
