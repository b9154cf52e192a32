// Asymmetric keys through the AWS door with @aws-sdk/client-kms: CreateKey with AWS key specs and
// usages, GetPublicKey (SPKI DER), Sign/Verify with AWS's algorithm names in RAW and DIGEST mode,
// each signature checked independently with node:crypto, KMSInvalidSignatureException for a bad
// one, RSA Decrypt of a ciphertext made locally with the public key, and a Tencent-made signature
// verified through AWS Verify.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { constants, createHash, createPrivateKey, createPublicKey, publicEncrypt, sign, verify } from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GetPublicKeyCommand,
  SignCommand,
  VerifyCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { officialKmsClient } from "../../helpers/official-client.js";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient } from "./helpers.js";

describe("AWS door: asymmetric keys through @aws-sdk/client-kms", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  const message = Buffer.from("sign this exact message");

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1" });
    kms = awsClient(server);
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
  });

  async function createKey(KeySpec: string, KeyUsage: string): Promise<string> {
    const meta = (await kms.send(new CreateKeyCommand({ KeySpec: KeySpec as "RSA_2048", KeyUsage: KeyUsage as "SIGN_VERIFY" }))).KeyMetadata!;
    assert.equal(meta.KeySpec, KeySpec);
    assert.equal(meta.KeyUsage, KeyUsage);
    return meta.KeyId!;
  }

  async function publicKeyOf(keyId: string) {
    const r = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    return { key: createPublicKey({ key: Buffer.from(r.PublicKey!), format: "der", type: "spki" }), answer: r };
  }

  it("RSA_2048 SIGN_VERIFY: RSASSA_PSS_SHA_256 and RSASSA_PKCS1_V1_5_SHA_256, RAW and DIGEST, verified by node:crypto", async () => {
    const keyId = await createKey("RSA_2048", "SIGN_VERIFY");
    const { key, answer } = await publicKeyOf(keyId);
    assert.deepEqual(answer.SigningAlgorithms, ["RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"]);
    assert.equal(answer.KeyUsage, "SIGN_VERIFY");
    assert.equal(answer.KeyId, `arn:aws:kms:eu-test-1:${server.caller.uin}:key/${keyId}`);
    const pss = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: "RSASSA_PSS_SHA_256" }));
    assert.equal(pss.SigningAlgorithm, "RSASSA_PSS_SHA_256");
    assert.ok(verify("sha256", message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(pss.Signature!)));
    const digest = createHash("sha256").update(message).digest();
    const pkcs1 = await kms.send(new SignCommand({ KeyId: keyId, Message: digest, MessageType: "DIGEST", SigningAlgorithm: "RSASSA_PKCS1_V1_5_SHA_256" }));
    assert.ok(verify("sha256", message, { key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(pkcs1.Signature!)));
    const ok = await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature: pkcs1.Signature, SigningAlgorithm: "RSASSA_PKCS1_V1_5_SHA_256" }));
    assert.equal(ok.SignatureValid, true);
    const forged = Buffer.from(pkcs1.Signature!);
    forged[10]! ^= 1;
    await assert.rejects(kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature: forged, SigningAlgorithm: "RSASSA_PKCS1_V1_5_SHA_256" })), {
      name: "KMSInvalidSignatureException",
    });
  });

  it("ECC_NIST_P256 (ECDSA_SHA_256) and ECC_NIST_P384 (ECDSA_SHA_384): DER signatures node:crypto verifies", async () => {
    for (const [spec, algorithm, hash] of [
      ["ECC_NIST_P256", "ECDSA_SHA_256", "sha256"],
      ["ECC_NIST_P384", "ECDSA_SHA_384", "sha384"],
    ] as const) {
      const keyId = await createKey(spec, "SIGN_VERIFY");
      const { key } = await publicKeyOf(keyId);
      const signed = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: algorithm }));
      assert.ok(verify(hash, message, key, Buffer.from(signed.Signature!)), spec);
      const verified = await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature: signed.Signature, SigningAlgorithm: algorithm }));
      assert.equal(verified.SignatureValid, true);
    }
  });

  it("SM2 SIGN_VERIFY signs with SM2DSA; an ECC key is no ENCRYPT_DECRYPT key", async () => {
    const keyId = await createKey("SM2", "SIGN_VERIFY");
    const signed = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: "SM2DSA" }));
    const verified = await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature: signed.Signature, SigningAlgorithm: "SM2DSA" }));
    assert.equal(verified.SignatureValid, true);
    await assert.rejects(kms.send(new CreateKeyCommand({ KeySpec: "ECC_NIST_P256", KeyUsage: "ENCRYPT_DECRYPT" })), { name: "InvalidKeyUsageException" });
    await assert.rejects(kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: "RSASSA_PSS_SHA_512" as "SM2DSA" })), { name: "ValidationException" });
  });

  it("RSA_2048 ENCRYPT_DECRYPT: a ciphertext made with the public key (OAEP SHA-256) decrypts with KeyId and EncryptionAlgorithm", async () => {
    const keyId = await createKey("RSA_2048", "ENCRYPT_DECRYPT");
    const { key, answer } = await publicKeyOf(keyId);
    assert.deepEqual(answer.EncryptionAlgorithms, ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]);
    const ciphertext = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.from("rsa secret"));
    const dec = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: "RSAES_OAEP_SHA_256" }));
    assert.equal(Buffer.from(dec.Plaintext!).toString(), "rsa secret");
    assert.equal(dec.EncryptionAlgorithm, "RSAES_OAEP_SHA_256");
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionAlgorithm: "RSAES_OAEP_SHA_256" })), { name: "ValidationException" });
    // Encrypt with the RSA key through the door; the private key (Decrypt) opens it.
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("to the rsa key"), EncryptionAlgorithm: "RSAES_OAEP_SHA_1" }));
    assert.equal(enc.EncryptionAlgorithm, "RSAES_OAEP_SHA_1");
    assert.equal(Buffer.from(enc.CiphertextBlob!).length, 256);
    const back = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: "RSAES_OAEP_SHA_1" }));
    assert.equal(Buffer.from(back.Plaintext!).toString(), "to the rsa key");
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(191), EncryptionAlgorithm: "RSAES_OAEP_SHA_256" })), { name: "ValidationException" });
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })), { name: "InvalidKeyUsageException" });
    await assert.rejects(
      kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: "RSAES_OAEP_SHA_1", EncryptionContext: { a: "b" } })),
      (e: Error) => e.name === "ValidationException" && /EncryptionContext/.test(e.message),
    );
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.equal(meta.KeyUsage, "ENCRYPT_DECRYPT");
    assert.equal(meta.KeySpec, "RSA_2048");
  });

  it("a signature made through the Tencent door verifies through AWS Verify", async () => {
    const tencent = officialKmsClient({ url: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
    const { KeyId } = await tencent("CreateKey", { Alias: "tencent-signer", KeyUsage: "ASYMMETRIC_SIGN_VERIFY_ECC" });
    const { Signature } = await tencent("SignByAsymmetricKey", { KeyId, Algorithm: "ECC_P256_R1", Message: message.toString("base64"), MessageType: "RAW" });
    const verified = await kms.send(new VerifyCommand({ KeyId: "alias/tencent-signer", Message: message, Signature: Buffer.from(Signature, "base64"), SigningAlgorithm: "ECDSA_SHA_256" }));
    assert.equal(verified.SignatureValid, true);
  });

  it("GenerateDataKeyPair: a PKCS#8 private key that matches the public key and decrypts from its blob; WithoutPlaintext gives no private key", async () => {
    const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const pair = await kms.send(new GenerateDataKeyPairCommand({ KeyId: symmetric, KeyPairSpec: "ECC_NIST_P256", EncryptionContext: { use: "pair" } }));
    assert.equal(pair.KeyId, `arn:aws:kms:eu-test-1:${server.caller.uin}:key/${symmetric}`);
    assert.equal(pair.KeyPairSpec, "ECC_NIST_P256");
    const privateKey = createPrivateKey({ key: Buffer.from(pair.PrivateKeyPlaintext!), format: "der", type: "pkcs8" });
    const publicKey = createPublicKey({ key: Buffer.from(pair.PublicKey!), format: "der", type: "spki" });
    assert.ok(verify("sha256", message, publicKey, sign("sha256", message, privateKey)));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { use: "pair" } }));
    assert.deepEqual(Buffer.from(opened.Plaintext!), Buffer.from(pair.PrivateKeyPlaintext!));
    const without = await kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: symmetric, KeyPairSpec: "RSA_2048" }));
    assert.equal((without as { PrivateKeyPlaintext?: unknown }).PrivateKeyPlaintext, undefined);
    const rsaPrivate = createPrivateKey({ key: Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: without.PrivateKeyCiphertextBlob }))).Plaintext!), format: "der", type: "pkcs8" });
    assert.equal(rsaPrivate.asymmetricKeyDetails?.modulusLength, 2048);
    await assert.rejects(kms.send(new GenerateDataKeyPairCommand({ KeyId: symmetric, KeyPairSpec: "SM2" })), { name: "ValidationException" });
  });
});
