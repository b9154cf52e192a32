// The AWS door through the official AWS SDK for JavaScript v3 (@aws-sdk/client-kms): key
// management and symmetric cryptography, identifiers (key id, key ARN, alias, alias ARN), paging,
// and the errors AWS names for each failure.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  ListKeysCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateKeyDescriptionCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient } from "./helpers.js";

/** The error name the SDK gives a failed call. */
async function errorName(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return (e as Error).name;
  }
  assert.fail("the call succeeded");
}

describe("AWS door: keys and symmetric crypto through @aws-sdk/client-kms", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  let arnPrefix: string;

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1" });
    kms = awsClient(server);
    arnPrefix = `arn:aws:kms:eu-test-1:${server.caller.uin}:key/`;
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
  });

  it("CreateKey makes an AES-256 (SYMMETRIC_DEFAULT) key and DescribeKey reads it by id and by ARN", async () => {
    const created = await kms.send(new CreateKeyCommand({ Description: "orders", Tags: [{ TagKey: "team", TagValue: "a" }] }));
    const meta = created.KeyMetadata!;
    assert.equal(meta.KeySpec, "SYMMETRIC_DEFAULT");
    assert.equal(meta.KeyUsage, "ENCRYPT_DECRYPT");
    assert.equal(meta.KeyState, "Enabled");
    assert.equal(meta.Enabled, true);
    assert.equal(meta.Arn, `${arnPrefix}${meta.KeyId}`);
    assert.equal(meta.AWSAccountId, server.caller.uin);
    assert.ok(meta.CreationDate instanceof Date);
    const core = await server.service.describeKey(server.caller, meta.KeyId!);
    assert.equal(core.keySpec, "AES_256");
    const byArn = await kms.send(new DescribeKeyCommand({ KeyId: meta.Arn }));
    assert.equal(byArn.KeyMetadata?.Description, "orders");
  });

  it("CreateKey with the SM4 key spec extension makes an SM4 key", async () => {
    const created = await kms.send(new CreateKeyCommand({ KeySpec: "SM4" as "SYMMETRIC_DEFAULT" }));
    assert.equal(created.KeyMetadata?.KeySpec, "SM4");
    const enc = await kms.send(new EncryptCommand({ KeyId: created.KeyMetadata!.KeyId, Plaintext: Buffer.from("sm4") }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
    assert.equal(Buffer.from(dec.Plaintext!).toString(), "sm4");
  });

  it("Encrypt/Decrypt with an EncryptionContext map; KeyId in answers is the key ARN; a wrong context is InvalidCiphertextException", async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const keyId = KeyMetadata!.KeyId!;
    const context = { tenant: "t1", purpose: "test" };
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("hello aws"), EncryptionContext: context }));
    assert.equal(enc.KeyId, `${arnPrefix}${keyId}`);
    assert.equal(enc.EncryptionAlgorithm, "SYMMETRIC_DEFAULT");
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { purpose: "test", tenant: "t1" } }));
    assert.equal(Buffer.from(dec.Plaintext!).toString(), "hello aws");
    assert.equal(dec.KeyId, `${arnPrefix}${keyId}`);
    const withKey = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context, KeyId: `${arnPrefix}${keyId}` }));
    assert.equal(Buffer.from(withKey.Plaintext!).toString(), "hello aws");
    assert.equal(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { tenant: "t2", purpose: "test" } }))), "InvalidCiphertextException");
    assert.equal(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))), "InvalidCiphertextException");
  });

  it("ReEncrypt moves a ciphertext to another key and context", async () => {
    const a = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const b = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const enc = await kms.send(new EncryptCommand({ KeyId: a, Plaintext: Buffer.from("move me"), EncryptionContext: { v: "1" } }));
    const re = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: { v: "1" }, DestinationKeyId: `${arnPrefix}${b}`, DestinationEncryptionContext: { v: "2" } }));
    assert.equal(re.SourceKeyId, `${arnPrefix}${a}`);
    assert.equal(re.KeyId, `${arnPrefix}${b}`);
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { v: "2" } }));
    assert.equal(Buffer.from(dec.Plaintext!).toString(), "move me");
    assert.equal(dec.KeyId, `${arnPrefix}${b}`);
  });

  it("GenerateDataKey (NumberOfBytes or KeySpec) and GenerateDataKeyWithoutPlaintext; the blob decrypts to the data key", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32, EncryptionContext: { f: "x" } }));
    assert.equal(dk.Plaintext?.length, 32);
    assert.equal(dk.KeyId, `${arnPrefix}${keyId}`);
    const back = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { f: "x" } }));
    assert.deepEqual(Buffer.from(back.Plaintext!), Buffer.from(dk.Plaintext!));
    const aes128 = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_128" }));
    assert.equal(aes128.Plaintext?.length, 16);
    const without = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: "AES_256" }));
    assert.equal(without.KeyId, `${arnPrefix}${keyId}`);
    assert.equal((without as { Plaintext?: unknown }).Plaintext, undefined);
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: without.CiphertextBlob }));
    assert.equal(opened.Plaintext?.length, 32);
    assert.equal(await errorName(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256", NumberOfBytes: 32 }))), "ValidationException");
    assert.equal(await errorName(kms.send(new GenerateDataKeyCommand({ KeyId: keyId }))), "ValidationException");
  });

  it("GenerateRandom gives the bytes asked for", async () => {
    const r = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 64 }));
    assert.equal(r.Plaintext?.length, 64);
    assert.equal(await errorName(kms.send(new GenerateRandomCommand({ NumberOfBytes: 1025 }))), "ValidationException");
  });

  it("DisableKey: DisabledException for Encrypt; EnableKey restores it; UpdateKeyDescription changes the description", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "Disabled");
    assert.equal(await errorName(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))), "DisabledException");
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    await kms.send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: "renamed" }));
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.equal(meta.KeyState, "Enabled");
    assert.equal(meta.Description, "renamed");
  });

  it("ScheduleKeyDeletion of an Enabled key: PendingDeletion, KMSInvalidStateException for use; CancelKeyDeletion returns it Disabled", async () => {
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }));
    // As in AWS (unlike the Tencent door), an Enabled key is scheduled without being disabled first.
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    assert.equal(scheduled.KeyId, `${arnPrefix}${keyId}`);
    assert.equal(scheduled.KeyState, "PendingDeletion");
    assert.equal(scheduled.PendingWindowInDays, 7);
    assert.ok(Math.abs(scheduled.DeletionDate!.getTime() - (server.clock.now() + 7 * 86_400_000)) < 2000);
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    assert.equal(meta.KeyState, "PendingDeletion");
    assert.equal(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))), "KMSInvalidStateException");
    assert.equal(await errorName(kms.send(new EnableKeyCommand({ KeyId: keyId }))), "KMSInvalidStateException");
    assert.equal(await errorName(kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 31 }))), "ValidationException");
    assert.equal(await errorName(kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))), "KMSInvalidStateException");
    const cancelled = await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    assert.equal(cancelled.KeyId, `${arnPrefix}${keyId}`);
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, "Disabled");
    assert.equal(await errorName(kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }))), "KMSInvalidStateException");
  });

  it("unknown keys are NotFoundException: an unknown id, another account's or region's ARN, an unknown alias, a malformed id", async () => {
    const unknown = "0f0e0d0c-0b0a-4998-8776-655443322110";
    assert.equal(await errorName(kms.send(new DescribeKeyCommand({ KeyId: unknown }))), "NotFoundException");
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    assert.equal(await errorName(kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:eu-test-2:${server.caller.uin}:key/${keyId}` }))), "NotFoundException");
    assert.equal(await errorName(kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:eu-test-1:999999:key/${keyId}` }))), "NotFoundException");
    assert.equal(await errorName(kms.send(new EncryptCommand({ KeyId: "alias/nothing-here", Plaintext: Buffer.from("x") }))), "NotFoundException");
    // A key without an alias carries its own id as its Tencent alias: that is no AWS alias.
    assert.equal(await errorName(kms.send(new DescribeKeyCommand({ KeyId: `alias/${keyId}` }))), "NotFoundException");
    assert.equal(await errorName(kms.send(new DescribeKeyCommand({ KeyId: "not a key" }))), "NotFoundException");
  });

  it("a key named by its Tencent alias is found as alias/<name> and as an alias ARN", async () => {
    const key = await server.service.createKey(server.caller, { alias: "billing", description: "", keyUsage: "ENCRYPT_DECRYPT", keySpec: "AES_256", tags: [] });
    const byAlias = await kms.send(new DescribeKeyCommand({ KeyId: "alias/billing" }));
    assert.equal(byAlias.KeyMetadata?.KeyId, key.keyId);
    const byAliasArn = await kms.send(new EncryptCommand({ KeyId: `arn:aws:kms:eu-test-1:${server.caller.uin}:alias/billing`, Plaintext: Buffer.from("x") }));
    assert.equal(byAliasArn.KeyId, `${arnPrefix}${key.keyId}`);
  });

  it("ListKeys pages with Limit 1 and Marker through every key exactly once", async () => {
    const total = (await server.service.listKeys(server.caller, { offset: 0, limit: 200, role: 0 })).totalCount;
    const seen: string[] = [];
    let marker: string | undefined;
    for (let page = 0; page <= total; page++) {
      const r = await kms.send(new ListKeysCommand({ Limit: 1, ...(marker ? { Marker: marker } : {}) }));
      assert.equal(r.Keys?.length, 1);
      assert.equal(r.Keys![0]!.KeyArn, `${arnPrefix}${r.Keys![0]!.KeyId}`);
      seen.push(r.Keys![0]!.KeyId!);
      if (!r.Truncated) break;
      marker = r.NextMarker;
    }
    assert.equal(seen.length, total);
    assert.equal(new Set(seen).size, total);
    assert.equal(await errorName(kms.send(new ListKeysCommand({ Marker: "junk" }))), "ValidationException");
  });
});
