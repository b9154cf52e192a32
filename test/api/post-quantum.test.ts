// Post-quantum keys end to end through the official tencentcloud-sdk-nodejs client's
// PostQuantumCryptoEncrypt/Decrypt/Sign/Verify methods: round trips with every key usage, every
// tampered byte of a ciphertext and of a signature refused, wrong-usage keys and oversize inputs
// refused with nothing changed, GetPublicKey's RFC 9881 key verified by liboqs (an independent
// ML-DSA), and EncryptionPublicKey on PostQuantumCryptoDecrypt.
import assert from "node:assert/strict";
import { constants, generateKeyPairSync, privateDecrypt } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createMLDSA65 } from "@oqs/liboqs-js";
import { mlDsaPublicKeyFromSpki } from "../../src/crypto/ml-dsa.js";
import { officialKmsClient, type OfficialCall } from "../helpers/official-client.js";
import { refusedWithoutChange, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

let s: InProcessServer;
let call: OfficialCall;
const keys: Record<string, string> = {};
const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64");

const USAGES = {
  kem768: "ASYMMETRIC_DECRYPT_ML_KEM_768",
  kem1024: "ASYMMETRIC_DECRYPT_ML_KEM_1024",
  dsa44: "ASYMMETRIC_SIGN_VERIFY_ML_DSA_44",
  dsa65: "ASYMMETRIC_SIGN_VERIFY_ML_DSA_65",
  dsa87: "ASYMMETRIC_SIGN_VERIFY_ML_DSA_87",
  ecc: "ASYMMETRIC_SIGN_VERIFY_ECC",
  symmetric: "ENCRYPT_DECRYPT",
} as const;

before(async () => {
  s = await startInProcessServer();
  call = officialKmsClient(s, { reqTimeout: 30 });
  for (const [name, usage] of Object.entries(USAGES)) keys[name] = (await call("CreateKey", { Alias: `pq-${name}`, KeyUsage: usage })).KeyId;
});

after(async () => {
  await s.stop();
});

const refused = (action: string, params: object, code: string, mention?: string): Promise<void> => refusedWithoutChange(s, call, action, params, code, mention);

/** Runs `task` over `items`, `width` at a time. */
async function inBatches<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(task));
}

describe("PostQuantumCryptoEncrypt / PostQuantumCryptoDecrypt", () => {
  for (const name of ["kem768", "kem1024"] as const) {
    it(`${USAGES[name]}: 1 and 4096 bytes round-trip; each ciphertext is new`, async () => {
      for (const length of [1, 4096]) {
        const plaintext = Buffer.alloc(length, length & 0xff);
        const a = await call("PostQuantumCryptoEncrypt", { KeyId: keys[name], PlainText: b64(plaintext) });
        const b = await call("PostQuantumCryptoEncrypt", { KeyId: keys[name], PlainText: b64(plaintext) });
        assert.equal(a.KeyId, keys[name]);
        assert.notEqual(a.CiphertextBlob, b.CiphertextBlob);
        const opened = await call("PostQuantumCryptoDecrypt", { CiphertextBlob: a.CiphertextBlob });
        assert.equal(opened.KeyId, keys[name]);
        assert.deepEqual(unb64(opened.PlainText), plaintext);
      }
    });
  }

  it("refuses changed bytes in every part of an X-Wing ciphertext, and a truncated or extended one", async () => {
    const blob = unb64((await call("PostQuantumCryptoEncrypt", { KeyId: keys.kem768, PlainText: b64("x") })).CiphertextBlob);
    assert.equal(blob.length, 22 + 1120 + 1 + 16);
    // Through the SDK: every byte of the header, the AEAD ciphertext and the tag, and every 32nd
    // byte of the KEM ciphertext (test/crypto/pq-ciphertext.test.ts changes every byte, without HTTP).
    const positions = [...blob.keys()].filter((i) => i < 22 || i >= 22 + 1120 || (i - 22) % 32 === 0 || i === 22 + 1119);
    await inBatches(positions, 8, async (i) => {
      const bad = Buffer.from(blob);
      bad[i]! ^= 0x01;
      await assert.rejects(call("PostQuantumCryptoDecrypt", { CiphertextBlob: b64(bad) }), (e: { code?: string }) => e.code === "InvalidParameterValue.InvalidCiphertext", `byte ${i}`);
    });
    for (const bad of [blob.subarray(0, blob.length - 1), Buffer.concat([blob, Buffer.of(0)])]) {
      await refused("PostQuantumCryptoDecrypt", { CiphertextBlob: b64(bad) }, "InvalidParameterValue.InvalidCiphertext");
    }
  });

  it("answers with the plaintext encrypted to EncryptionPublicKey", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const blob = (await call("PostQuantumCryptoEncrypt", { KeyId: keys.kem1024, PlainText: b64("for the caller only") })).CiphertextBlob;
    const pem = publicKey.export({ format: "pem", type: "spki" }).toString();
    const r = await call("PostQuantumCryptoDecrypt", { CiphertextBlob: blob, EncryptionPublicKey: pem, EncryptionAlgorithm: "RSAES_OAEP_SHA_256" });
    assert.equal(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, unb64(r.PlainText)).toString(), "for the caller only");
  });

  it("refuses keys of other usages, ciphertexts of other actions, and oversize input", async () => {
    for (const name of ["dsa44", "ecc", "symmetric"] as const) {
      await refused("PostQuantumCryptoEncrypt", { KeyId: keys[name], PlainText: b64("x") }, "InvalidParameterValue.InvalidKeyUsage", keys[name]);
    }
    const symmetricBlob = (await call("Encrypt", { KeyId: keys.symmetric, Plaintext: b64("x") })).CiphertextBlob;
    await refused("PostQuantumCryptoDecrypt", { CiphertextBlob: symmetricBlob }, "InvalidParameterValue.InvalidCiphertext");
    const pqBlob = (await call("PostQuantumCryptoEncrypt", { KeyId: keys.kem768, PlainText: b64("x") })).CiphertextBlob;
    await refused("Decrypt", { CiphertextBlob: pqBlob }, "InvalidParameterValue.InvalidCiphertext");
    await refused("PostQuantumCryptoEncrypt", { KeyId: keys.kem768, PlainText: b64(Buffer.alloc(4097)) }, "InvalidParameterValue.InvalidPlaintext", "PlainText");
    await refused("PostQuantumCryptoDecrypt", { CiphertextBlob: b64(Buffer.alloc(5800)) }, "InvalidParameterValue.InvalidCiphertext", "CiphertextBlob");
  });

  it("gives the raw hybrid encapsulation key, with no PEM", async () => {
    const r768 = await call("GetPublicKey", { KeyId: keys.kem768 });
    assert.equal(unb64(r768.PublicKey).length, 1216);
    assert.equal(r768.PublicKeyPem, "");
    assert.equal(unb64((await call("GetPublicKey", { KeyId: keys.kem1024 })).PublicKey).length, 1665);
  });
});

describe("PostQuantumCryptoSign / PostQuantumCryptoVerify", () => {
  for (const [name, length] of [["dsa44", 2420], ["dsa65", 3309], ["dsa87", 4627]] as const) {
    it(`${USAGES[name]}: signs 4096 bytes, verifies, and binds the context`, async () => {
      const message = b64(Buffer.alloc(4096, 7));
      const { Signature } = await call("PostQuantumCryptoSign", { KeyId: keys[name], Message: message });
      assert.equal(unb64(Signature).length, length);
      assert.equal((await call("PostQuantumCryptoVerify", { KeyId: keys[name], Message: message, SignatureValue: Signature })).SignatureValid, true);
      const withContext = (await call("PostQuantumCryptoSign", { KeyId: keys[name], Message: message, Context: b64("app-v1") })).Signature;
      assert.equal((await call("PostQuantumCryptoVerify", { KeyId: keys[name], Message: message, SignatureValue: withContext, Context: b64("app-v1") })).SignatureValid, true);
      assert.equal((await call("PostQuantumCryptoVerify", { KeyId: keys[name], Message: message, SignatureValue: withContext })).SignatureValid, false);
    });
  }

  it("answers SignatureValid false for changed bytes all along an ML-DSA-44 signature, and for every changed byte of the message", async () => {
    const message = Buffer.from("sign me");
    const signature = unb64((await call("PostQuantumCryptoSign", { KeyId: keys.dsa44, Message: b64(message) })).Signature);
    // Through the SDK every 48th byte and the last 16 (test/crypto/pq-ciphertext.test.ts changes every byte, without HTTP).
    const positions = [...signature.keys()].filter((i) => i % 48 === 0 || i >= signature.length - 16);
    await inBatches(positions, 8, async (i) => {
      const bad = Buffer.from(signature);
      bad[i]! ^= 0x01;
      const r = await call("PostQuantumCryptoVerify", { KeyId: keys.dsa44, Message: b64(message), SignatureValue: b64(bad) });
      assert.equal(r.SignatureValid, false, `byte ${i}`);
    });
    for (let i = 0; i < message.length; i++) {
      const bad = Buffer.from(message);
      bad[i]! ^= 0x01;
      assert.equal((await call("PostQuantumCryptoVerify", { KeyId: keys.dsa44, Message: b64(bad), SignatureValue: b64(signature) })).SignatureValid, false);
    }
  });

  it("signs what liboqs verifies with GetPublicKey's RFC 9881 key", async () => {
    const oqs = await createMLDSA65();
    try {
      const message = Buffer.from("checked elsewhere");
      const signature = unb64((await call("PostQuantumCryptoSign", { KeyId: keys.dsa65, Message: b64(message) })).Signature);
      const spki = unb64((await call("GetPublicKey", { KeyId: keys.dsa65 })).PublicKey);
      assert.equal(oqs.verify(new Uint8Array(message), new Uint8Array(signature), new Uint8Array(mlDsaPublicKeyFromSpki("ML-DSA-65", spki))), true);
    } finally {
      oqs.destroy();
    }
  });

  it("refuses keys of other usages and oversize input", async () => {
    for (const name of ["kem768", "ecc", "symmetric"] as const) {
      await refused("PostQuantumCryptoSign", { KeyId: keys[name], Message: b64("m") }, "InvalidParameterValue.InvalidKeyUsage", keys[name]);
      await refused("PostQuantumCryptoVerify", { KeyId: keys[name], Message: b64("m"), SignatureValue: b64("s") }, "InvalidParameterValue.InvalidKeyUsage");
    }
    await refused("SignByAsymmetricKey", { KeyId: keys.dsa44, Algorithm: "ECC_P256_R1", Message: b64("m") }, "InvalidParameterValue.InvalidKeyUsage");
    await refused("PostQuantumCryptoSign", { KeyId: keys.dsa44, Message: b64(Buffer.alloc(4097)) }, "InvalidParameterValue", "Message");
    await refused("PostQuantumCryptoSign", { KeyId: keys.dsa44, Message: b64("m"), Context: b64(Buffer.alloc(256)) }, "InvalidParameterValue", "Context");
    await refused("PostQuantumCryptoVerify", { KeyId: keys.dsa44, Message: b64("m"), SignatureValue: b64(Buffer.alloc(4628)) }, "InvalidParameterValue", "SignatureValue");
  });

  it("refuses a disabled key with CmkStateNotSupport", async () => {
    const keyId = (await call("CreateKey", { Alias: "pq-disabled", KeyUsage: USAGES.dsa44 })).KeyId;
    await call("DisableKey", { KeyId: keyId });
    await refused("PostQuantumCryptoSign", { KeyId: keyId, Message: b64("m") }, "ResourceUnavailable.CmkStateNotSupport");
  });

  it("lists the post-quantum usages in ListAlgorithms", async () => {
    const r = await call("ListAlgorithms", {});
    const signUsages = r.AsymmetricSignVerifyAlgorithms.map((a: { KeyUsage: string }) => a.KeyUsage);
    const decryptUsages = r.AsymmetricAlgorithms.map((a: { KeyUsage: string }) => a.KeyUsage);
    for (const usage of [USAGES.dsa44, USAGES.dsa65, USAGES.dsa87, "ASYMMETRIC_SIGN_VERIFY_ED25519"]) assert.ok(signUsages.includes(usage), usage);
    for (const usage of [USAGES.kem768, USAGES.kem1024]) assert.ok(decryptUsages.includes(usage), usage);
  });
});
