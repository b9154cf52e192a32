// ML-KEM (FIPS 203), ML-DSA (FIPS 204) and the hybrid KEMs: NIST ACVP vectors (keyGen,
// decapsulation, sigVer), the hybrid drafts' vectors, RFC 9881 public keys, and liboqs (WebAssembly,
// an independent implementation) both ways: keys Tresor makes verify and decapsulate there, and
// the reverse.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { createMLDSA44, createMLDSA65, createMLDSA87, createMLKEM1024, createMLKEM768 } from "@oqs/liboqs-js";
import { ml_kem1024, ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { hybridKemDecapsulate, hybridKemEncapsulate, hybridKemGenerateKeyPair, hybridKemPublicKey, type HybridKem } from "../../src/crypto/hybrid-kem.js";
import { PqThread } from "../../src/crypto/pq-worker.js";
import {
  mlDsaGenerateKeyPair,
  mlDsaKeyPairFromSeed,
  mlDsaMuHash,
  mlDsaPublicKeyFromSpki,
  mlDsaPublicKeyToSpki,
  mlDsaSign,
  mlDsaSignMu,
  mlDsaVerify,
  mlDsaVerifyMu,
  type MlDsaParameterSet,
} from "../../src/crypto/ml-dsa.js";

const vectors = (name: string) => JSON.parse(readFileSync(new URL(`../../../test/vectors/${name}`, import.meta.url), "utf8"));
const kemVectors = vectors("nist-acvp-ml-kem.json") as {
  keyGen: { tcId: number; parameterSet: string; d: string; z: string; ek: string; dk: string }[];
  decapsulation: { tcId: number; parameterSet: string; dk: string; c: string; k: string }[];
};
const dsaVectors = vectors("nist-acvp-ml-dsa.json") as {
  keyGen: { tcId: number; parameterSet: MlDsaParameterSet; seed: string; pk: string; sk: string }[];
  sigVer: { tcId: number; parameterSet: MlDsaParameterSet; pk: string; message: string; context: string; signature: string; testPassed: boolean }[];
};
const hybridVectors = vectors("hybrid-kem.json") as Record<HybridKem, { seed: string; pk: string; sk: string; ct: string; ss: string }[]>;
const hex = (s: string) => Buffer.from(s, "hex");
const KEMS = { "ML-KEM-768": ml_kem768, "ML-KEM-1024": ml_kem1024 } as const;
const OQS_DSA = { "ML-DSA-44": createMLDSA44, "ML-DSA-65": createMLDSA65, "ML-DSA-87": createMLDSA87 } as const;

describe("ML-KEM (NIST ACVP, FIPS 203)", () => {
  for (const v of kemVectors.keyGen) {
    it(`keyGen tcId ${v.tcId} (${v.parameterSet})`, () => {
      const pair = KEMS[v.parameterSet as keyof typeof KEMS].keygen(Buffer.concat([hex(v.d), hex(v.z)]));
      assert.equal(Buffer.from(pair.publicKey).toString("hex"), v.ek.toLowerCase());
      assert.equal(Buffer.from(pair.secretKey).toString("hex"), v.dk.toLowerCase());
    });
  }
  for (const v of kemVectors.decapsulation) {
    it(`decapsulation tcId ${v.tcId} (${v.parameterSet})`, () => {
      const k = KEMS[v.parameterSet as keyof typeof KEMS].decapsulate(hex(v.c), hex(v.dk));
      assert.equal(Buffer.from(k).toString("hex"), v.k.toLowerCase());
    });
  }

  it("interoperates with liboqs both ways", async () => {
    for (const [kem, oqs] of [[ml_kem768, await createMLKEM768()], [ml_kem1024, await createMLKEM1024()]] as const) {
      const ours = kem.keygen();
      const toOurs = oqs.encapsulate(ours.publicKey);
      assert.deepEqual(Buffer.from(kem.decapsulate(toOurs.ciphertext, ours.secretKey)), Buffer.from(toOurs.sharedSecret));
      const theirs = oqs.generateKeyPair();
      const toTheirs = kem.encapsulate(theirs.publicKey);
      assert.deepEqual(Buffer.from(oqs.decapsulate(toTheirs.cipherText, theirs.secretKey)), Buffer.from(toTheirs.sharedSecret));
      oqs.destroy();
    }
  });
});

describe("hybrid KEMs (X-Wing, MLKEM1024-P384)", () => {
  for (const kem of ["X-Wing", "MLKEM1024-P384"] as const) {
    hybridVectors[kem].forEach((v, i) => {
      it(`${kem} reproduces the draft's vector ${i + 1}: public key from seed, shared secret of the ciphertext`, () => {
        assert.equal(hybridKemPublicKey(kem, hex(v.seed)).toString("hex"), v.pk);
        assert.equal(hybridKemDecapsulate(kem, hex(v.sk), hex(v.ct)).toString("hex"), v.ss);
      });
    });

    it(`${kem}: a round trip agrees, a changed ciphertext gives another secret, a bad length is refused`, () => {
      const { seed, publicKey } = hybridKemGenerateKeyPair(kem);
      const { ciphertext, sharedSecret } = hybridKemEncapsulate(kem, publicKey);
      assert.deepEqual(hybridKemDecapsulate(kem, seed, ciphertext), sharedSecret);
      const changed = Buffer.from(ciphertext);
      changed[0]! ^= 1;
      assert.notDeepEqual(hybridKemDecapsulate(kem, seed, changed), sharedSecret);
      assert.throws(() => hybridKemEncapsulate(kem, publicKey.subarray(1)), { name: "RangeError", message: /"publicKey"/ });
      assert.throws(() => hybridKemDecapsulate(kem, seed, ciphertext.subarray(1)), { name: "RangeError", message: /"ciphertext"/ });
    });
  }
});

describe("ML-DSA (NIST ACVP, FIPS 204)", () => {
  for (const v of dsaVectors.keyGen) {
    it(`keyGen tcId ${v.tcId} (${v.parameterSet})`, () => {
      const pair = mlDsaKeyPairFromSeed(v.parameterSet, hex(v.seed));
      assert.equal(pair.publicKey.toString("hex"), v.pk.toLowerCase());
      assert.equal(pair.secretKey.toString("hex"), v.sk.toLowerCase());
    });
  }
  for (const v of dsaVectors.sigVer) {
    it(`sigVer tcId ${v.tcId} (${v.parameterSet}, pure, external): ${v.testPassed ? "valid" : "invalid"}`, () => {
      assert.equal(mlDsaVerify(v.parameterSet, hex(v.pk), hex(v.message), hex(v.signature), hex(v.context)), v.testPassed);
    });
  }

  for (const set of ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] as const) {
    it(`${set}: keys made here verify in liboqs, and liboqs's signatures verify here`, async () => {
      const oqs = await OQS_DSA[set]();
      // liboqs takes plain Uint8Arrays only.
      const message = new Uint8Array(Buffer.from(`a message for ${set}`));
      const { seed, publicKey: spki } = mlDsaGenerateKeyPair(set);
      const raw = mlDsaPublicKeyFromSpki(set, spki);
      const { secretKey } = mlDsaKeyPairFromSeed(set, seed);
      // liboqs signs and verifies with an empty context.
      assert.equal(oqs.verify(message, new Uint8Array(mlDsaSign(set, secretKey, message, Buffer.alloc(0))), new Uint8Array(raw)), true);
      const theirs = oqs.generateKeyPair();
      const signature = Buffer.from(oqs.sign(message, theirs.secretKey));
      assert.equal(mlDsaVerify(set, theirs.publicKey, message, signature, Buffer.alloc(0)), true);
      assert.equal(mlDsaVerify(set, theirs.publicKey, message, signature, Buffer.from("ctx")), false, "another context");
      oqs.destroy();
    });
  }

  it("external μ (the Encryption SDK's streaming signer): the ACVP sigVer vectors give the same verdicts through a running μ hash", () => {
    for (const v of dsaVectors.sigVer) {
      const message = hex(v.message);
      // Fed in two pieces, as a stream would.
      const mu = mlDsaMuHash(v.parameterSet, hex(v.pk), hex(v.context)).update(message.subarray(0, 7)).update(message.subarray(7)).digest();
      assert.equal(mlDsaVerifyMu(v.parameterSet, hex(v.pk), mu, hex(v.signature)), v.testPassed, `tcId ${v.tcId}`);
    }
  });

  it("external μ: a signature of μ is the pure signature of the message, both ways, context bound", () => {
    for (const set of ["ML-DSA-44", "ML-DSA-65"] as const) {
      const { publicKey, secretKey } = mlDsaKeyPairFromSeed(set, mlDsaGenerateKeyPair(set).seed);
      const message = Buffer.from(`a long message for ${set}`.repeat(50));
      const mu = mlDsaMuHash(set, publicKey, Buffer.from("ctx")).update(message).digest();
      assert.equal(mlDsaVerify(set, publicKey, message, mlDsaSignMu(set, secretKey, mu), Buffer.from("ctx")), true);
      assert.equal(mlDsaVerifyMu(set, publicKey, mu, mlDsaSign(set, secretKey, message, Buffer.from("ctx"))), true);
      const otherContext = mlDsaMuHash(set, publicKey, Buffer.alloc(0)).update(message).digest();
      assert.equal(mlDsaVerifyMu(set, publicKey, otherContext, mlDsaSignMu(set, secretKey, mu)), false);
      assert.throws(() => mlDsaSignMu(set, secretKey, mu.subarray(1)), { name: "RangeError", message: /"mu"/ });
    }
  });

  it("binds the context string and refuses one over 255 bytes", () => {
    const { seed } = mlDsaGenerateKeyPair("ML-DSA-44");
    const { publicKey, secretKey } = mlDsaKeyPairFromSeed("ML-DSA-44", seed);
    const message = Buffer.from("m");
    const signature = mlDsaSign("ML-DSA-44", secretKey, message, Buffer.from("context"));
    assert.equal(mlDsaVerify("ML-DSA-44", publicKey, message, signature, Buffer.from("context")), true);
    assert.equal(mlDsaVerify("ML-DSA-44", publicKey, message, signature, Buffer.alloc(0)), false);
    assert.throws(() => mlDsaSign("ML-DSA-44", secretKey, message, Buffer.alloc(256)), { name: "RangeError", message: /"context"/ });
  });

  it("writes and reads RFC 9881 public keys, refusing another parameter set's", () => {
    const { publicKey } = mlDsaGenerateKeyPair("ML-DSA-65");
    // SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.3.18 }, BIT STRING (no unused bits) }: the OID's last byte is 0x12.
    assert.equal(publicKey.subarray(0, 22).toString("hex"), "308207b2300b0609608648016503040312038207a100");
    const raw = mlDsaPublicKeyFromSpki("ML-DSA-65", publicKey);
    assert.deepEqual(mlDsaPublicKeyToSpki("ML-DSA-65", raw), publicKey);
    assert.throws(() => mlDsaPublicKeyFromSpki("ML-DSA-44", publicKey), { name: "RangeError", message: /ML-DSA-44/ });
  });
});

describe("PqThread (the post-quantum worker thread)", () => {
  it("signs, verifies, encapsulates and decapsulates as the primitives do, and refuses a bad public key", async () => {
    const thread = new PqThread();
    try {
      const { seed } = mlDsaGenerateKeyPair("ML-DSA-44");
      const { publicKey, secretKey } = mlDsaKeyPairFromSeed("ML-DSA-44", seed);
      const message = Buffer.from("off the event loop");
      const signature = await thread.sign("ML-DSA-44", secretKey, message, Buffer.from("ctx"));
      assert.equal(mlDsaVerify("ML-DSA-44", publicKey, message, signature, Buffer.from("ctx")), true);
      assert.equal(await thread.verify("ML-DSA-44", publicKey, message, signature, Buffer.from("ctx")), true);
      assert.equal(await thread.verify("ML-DSA-44", publicKey, message, signature, Buffer.alloc(0)), false);
      assert.notDeepEqual(secretKey, Buffer.alloc(secretKey.length), "the caller's key is not the thread's copy");
      const kem = hybridKemGenerateKeyPair("X-Wing");
      const { ciphertext, sharedSecret } = await thread.encapsulate("X-Wing", kem.publicKey);
      assert.deepEqual(hybridKemDecapsulate("X-Wing", kem.seed, ciphertext), sharedSecret);
      assert.deepEqual(await thread.decapsulate("X-Wing", kem.seed, ciphertext), sharedSecret);
      await assert.rejects(thread.encapsulate("X-Wing", kem.publicKey.subarray(1)), RangeError);
    } finally {
      thread.close();
    }
  });
});
