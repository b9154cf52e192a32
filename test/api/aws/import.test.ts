// Key import through the AWS door with @aws-sdk/client-kms: an EXTERNAL key, the wrapping public
// key of GetParametersForImport used by node:crypto (RSAES_OAEP_SHA_256), ImportKeyMaterial,
// cryptography under the imported material, DeleteImportedKeyMaterial and a re-import of the same
// material (old ciphertexts decrypt again), a different material refused; RSA_AES_KEY_WRAP_SHA_256.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { constants, createHash, createPublicKey, publicEncrypt } from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { aeskwp } from "@noble/ciphers/aes.js";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient } from "./helpers.js";

describe("AWS door: key import through @aws-sdk/client-kms", () => {
  let server: InProcessServer;
  let kms: KMSClient;

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1" });
    kms = awsClient(server);
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
  });

  /** GetParametersForImport, then ImportKeyMaterial of `material` wrapped with RSAES_OAEP_SHA_256. */
  async function importMaterial(keyId: string, material: Buffer, extra: { ValidTo?: Date } = {}) {
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" }));
    assert.equal(params.KeyId, `arn:aws:kms:eu-test-1:${server.caller.uin}:key/${keyId}`);
    assert.ok(params.ParametersValidTo instanceof Date);
    const wrappingKey = createPublicKey({ key: Buffer.from(params.PublicKey!), format: "der", type: "spki" });
    const wrapped = publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, material);
    return kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ...extra }));
  }

  it("imports material into an EXTERNAL key, deletes it, and takes the same material back", async () => {
    const meta = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!;
    assert.equal(meta.Origin, "EXTERNAL");
    assert.equal(meta.KeyState, "PendingImport");
    const keyId = meta.KeyId!;
    await assert.rejects(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })), { name: "KMSInvalidStateException" });

    // Deterministic material for the test, not randomness: the test needs the same bytes twice.
    const material = createHash("sha256").update("aws-import-test-material").digest();
    const imported = await importMaterial(keyId, material);
    assert.equal(imported.KeyId, `arn:aws:kms:eu-test-1:${server.caller.uin}:key/${keyId}`);
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "Enabled");
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("under imported material") }))).CiphertextBlob;

    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "PendingImport");
    await assert.rejects(kms.send(new DecryptCommand({ CiphertextBlob: blob })), { name: "KMSInvalidStateException" });

    const other = createHash("sha256").update("other material").digest();
    await assert.rejects(importMaterial(keyId, other), { name: "IncorrectKeyMaterialException" });
    const validTo = new Date(server.clock.now() + 86_400_000);
    await importMaterial(keyId, material, { ValidTo: validTo });
    const described = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.equal(described.ValidTo?.getTime(), Math.floor(validTo.getTime() / 1000) * 1000);
    assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), "under imported material");
  });

  it("imports material wrapped with RSA_AES_KEY_WRAP_SHA_256 (RSA-OAEP of a one-time AES key, then AES-KWP by @noble/ciphers)", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: "RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec: "RSA_2048" }));
    const wrappingKey = createPublicKey({ key: Buffer.from(params.PublicKey!), format: "der", type: "spki" });
    const material = createHash("sha256").update("aws-import-kwp-material").digest();
    const oneTimeKey = createHash("sha256").update("aws-import-kwp-one-time-key").digest();
    const wrapped = Buffer.concat([
      publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, oneTimeKey),
      Buffer.from(aeskwp(oneTimeKey).encrypt(material)),
    ]);
    // A wrapping whose AES part was altered does not unwrap, and changes nothing.
    const altered = Buffer.from(wrapped);
    altered[altered.length - 1]! ^= 1;
    await assert.rejects(kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: altered })), { name: "InvalidCiphertextException" });
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "PendingImport");
    await kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped }));
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("kwp") }))).CiphertextBlob;
    assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), "kwp");
  });

  it("refuses wrapping algorithms and parameters it does not offer, by name", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    await assert.rejects(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: "RSAES_PKCS1_V1_5", WrappingKeySpec: "RSA_2048" })), {
      name: "ValidationException",
    });
    await assert.rejects(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_4096" })), { name: "ValidationException" });
    await assert.rejects(
      kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: Buffer.from("t"), EncryptedKeyMaterial: Buffer.from("m"), ExpirationModel: "KEY_MATERIAL_EXPIRES" })),
      (e: Error) => e.name === "ValidationException" && /ValidTo/.test(e.message),
    );
    await assert.rejects(kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: Buffer.from("not a token"), EncryptedKeyMaterial: Buffer.alloc(256, 1) })));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "PendingImport");
  });
});
