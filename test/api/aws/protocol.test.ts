// The AWS door's protocol: SigV4 verification (bad signature, unknown access key, wrong region or
// service, stale X-Amz-Date, body changed after signing, unsigned target), AWS JSON errors for
// hostile input (oversized, malformed or mistyped bodies, unknown targets and parameters) with
// nothing changed, and the audit record, rate limit and metrics every request shares with the
// Tencent door.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CreateKeyCommand, DescribeKeyCommand, EncryptCommand, type KMSClient } from "@aws-sdk/client-kms";
import { allAuditRecords } from "../../helpers/audit-fixtures.js";
import { snapshotKeys, startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient, awsRaw, type AwsRawResponse } from "./helpers.js";

function assertAwsError(r: AwsRawResponse, type: string, mention?: RegExp): void {
  assert.ok(r.status >= 400, `status ${r.status}: ${r.text}`);
  assert.equal(r.json?.__type, type, r.text);
  assert.equal(typeof r.json?.message, "string");
  if (mention) assert.match(String(r.json?.message), mention);
}

describe("AWS door: SigV4 and hostile input", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  let keyId: string;

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1", bodyLimit: 16 * 1024 });
    kms = awsClient(server);
    keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
  });

  it("a request signed by the SDK's signer succeeds, with the request id in x-amzn-requestid", async () => {
    const r = await awsRaw(server, "DescribeKey", { KeyId: keyId });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.json?.KeyMetadata as { KeyId: string }).KeyId, keyId);
    assert.match(String(r.headers["x-amzn-requestid"]), /^[0-9a-f-]{36}$/);
    assert.match(String(r.headers["content-type"]), /^application\/x-amz-json-1\.1/);
  });

  it("a wrong secret is InvalidSignatureException (the SDK's error name too)", async () => {
    assertAwsError(await awsRaw(server, "DescribeKey", { KeyId: keyId }, { secretKey: "wrong" }), "InvalidSignatureException", /signature/);
    const bad = awsClient(server, { secretKey: "wrong" });
    await assert.rejects(bad.send(new DescribeKeyCommand({ KeyId: keyId })), { name: "InvalidSignatureException" });
    bad.destroy();
  });

  it("an unknown access key id is UnrecognizedClientException", async () => {
    const other = awsClient({ ...server, secretId: "AKIDunknown0000000000000000000000000" });
    await assert.rejects(other.send(new DescribeKeyCommand({ KeyId: keyId })), { name: "UnrecognizedClientException" });
    other.destroy();
  });

  it("a credential scope of another region is InvalidSignatureException naming the region", async () => {
    const other = awsClient(server, { region: "us-east-1" });
    await assert.rejects(other.send(new DescribeKeyCommand({ KeyId: keyId })), (e: Error) => e.name === "InvalidSignatureException" && /eu-test-1/.test(e.message));
    other.destroy();
  });

  it("a body changed after signing is InvalidSignatureException", async () => {
    const r = await awsRaw(server, "Encrypt", { KeyId: keyId, Plaintext: "AAAA" }, { signedBody: JSON.stringify({ KeyId: keyId, Plaintext: "BBBB" }) });
    assertAwsError(r, "InvalidSignatureException");
  });

  it("an X-Amz-Date more than 5 minutes away is InvalidSignatureException (Signature expired)", async () => {
    const now = server.clock.now();
    try {
      // Signed at the clock's time, which then moves six minutes on before the request arrives.
      const pending = awsRaw(server, "DescribeKey", { KeyId: keyId });
      server.clock.advance(6 * 60_000);
      assertAwsError(await pending, "InvalidSignatureException", /expired/);
    } finally {
      server.clock.set(now);
    }
  });

  it("no Authorization header is IncompleteSignatureException; a target outside the signature is refused", async () => {
    assertAwsError(await awsRaw(server, "DescribeKey", { KeyId: keyId }, { unsigned: true }), "IncompleteSignatureException");
    // The signed target was DescribeKey; the one sent is ScheduleKeyDeletion.
    const swapped = await awsRaw(server, "DescribeKey", { KeyId: keyId }, { headers: { "x-amz-target": "TrentService.DisableKey" } });
    assertAwsError(swapped, "InvalidSignatureException");
    assert.equal((await server.service.describeKey(server.caller, keyId)).state, "Enabled");
  });

  it("hostile bodies get AWS-shaped errors naming the problem, and change nothing", async () => {
    const before = await snapshotKeys(server.service, server.caller);
    assertAwsError(await awsRaw(server, "CreateKey", "{not json"), "SerializationException", /JSON/);
    assertAwsError(await awsRaw(server, "CreateKey", "[1,2]"), "SerializationException", /object/);
    assertAwsError(await awsRaw(server, "CreateKey", { Description: 5 }), "SerializationException", /"Description" must be a string/);
    assertAwsError(await awsRaw(server, "CreateKey", { MultiRegion: "yes" }), "SerializationException", /"MultiRegion" must be a boolean/);
    assertAwsError(await awsRaw(server, "CreateKey", { Bogus: 1 }), "ValidationException", /"Bogus"/);
    assertAwsError(await awsRaw(server, "CreateKey", { KeyUsage: "SING" }), "InvalidKeyUsageException", /"KeyUsage"/);
    assertAwsError(await awsRaw(server, "CreateKey", { Tags: [{ TagKey: "a", TagValue: "1" }, { TagKey: "a", TagValue: "2" }] }), "TagException");
    assertAwsError(await awsRaw(server, "CreateKey", { Policy: "{}" }), "UnsupportedOperationException", /"Policy"/);
    assertAwsError(await awsRaw(server, "Encrypt", { KeyId: keyId, Plaintext: "not base64!" }), "ValidationException", /"Plaintext"/);
    assertAwsError(await awsRaw(server, "Encrypt", { KeyId: keyId, Plaintext: "AAAA", EncryptionContext: "a=b" }), "SerializationException", /"EncryptionContext"/);
    assertAwsError(await awsRaw(server, "Encrypt", { KeyId: keyId, Plaintext: "AAAA", EncryptionContext: { a: 1 } }), "SerializationException", /"EncryptionContext"/);
    assertAwsError(await awsRaw(server, "Encrypt", { KeyId: keyId, Plaintext: Buffer.alloc(4097).toString("base64") }), "ValidationException", /4096/);
    assertAwsError(await awsRaw(server, "Decrypt", { CiphertextBlob: Buffer.alloc(40, 7).toString("base64") }), "InvalidCiphertextException");
    assertAwsError(await awsRaw(server, "DisableKey", { KeyId: "" }), "NotFoundException");
    assertAwsError(await awsRaw(server, "ScheduleKeyDeletion", { KeyId: keyId, PendingWindowInDays: 1.5 }), "SerializationException");
    const tooLarge = await awsRaw(server, "CreateKey", { Description: "x".repeat(20_000) });
    assertAwsError(tooLarge, "RequestEntityTooLargeException");
    assert.equal(tooLarge.status, 413);
    assert.match(String(tooLarge.headers["content-type"]), /^application\/x-amz-json-1\.1/);
    assertAwsError(await awsRaw(server, "CreateKey", {}, { contentType: "application/json" }), "ValidationException", /Content-Type/);
    assert.equal(await snapshotKeys(server.service, server.caller), before);
  });

  it("unknown operations are UnknownOperationException, signed or not", async () => {
    assertAwsError(await awsRaw(server, "DeleteEverything", {}), "UnknownOperationException", /DeleteEverything/);
    assertAwsError(await awsRaw(server, "DynamoDB_20120810.ListTables", {}), "UnknownOperationException");
    assertAwsError(await awsRaw(server, "__proto__", {}), "UnknownOperationException");
  });

  it("every AWS request leaves one audit record with the AWS action, flagged aws-protocol", async () => {
    await server.auditor.flush();
    const before = (await allAuditRecords(server.dataDir.store)).length;
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("audited") }));
    assert.ok(enc.CiphertextBlob);
    await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: "alias/missing" })), { name: "NotFoundException" });
    await server.auditor.flush();
    const records = (await allAuditRecords(server.dataDir.store)).slice(before) as unknown as Record<string, unknown>[];
    assert.equal(records.length, 2, JSON.stringify(records.map((r) => r.action)));
    const [encrypt, describeMissing] = records as [Record<string, unknown>, Record<string, unknown>];
    assert.equal(encrypt.action, "Encrypt");
    assert.equal(encrypt.result, "Success");
    assert.equal(encrypt.service, "kms");
    assert.equal(encrypt.region, "eu-test-1");
    assert.equal(encrypt.accessKeyId, server.secretId);
    assert.equal(encrypt.resourceName, keyId);
    assert.equal(encrypt.readOnly, true);
    assert.ok((encrypt.flags as string[]).includes("aws-protocol"));
    assert.equal(describeMissing.action, "DescribeKey");
    assert.equal(describeMissing.result, "ResourceUnavailable.CmkNotFound");
    const secretText = Buffer.from("audited").toString("base64");
    assert.ok(!JSON.stringify(records).includes(secretText));
    // Neither the plaintext, the ciphertext nor the secret key reaches the log.
    const logs = server.logs.text();
    assert.ok(logs.includes(String(encrypt.requestId)), "the request is logged");
    for (const hidden of [secretText, Buffer.from(enc.CiphertextBlob!).toString("base64"), server.secretKey]) assert.ok(!logs.includes(hidden));
  });
});

describe("AWS door: the rate limit and metrics are the Tencent door's", () => {
  let server: InProcessServer;

  before(async () => {
    server = await startInProcessServer({ limits: { rateLimit: 3 } });
  });
  after(async () => {
    await server?.stop();
  });

  it("requests of both doors draw on one bucket per account; the fourth is ThrottlingException", async () => {
    // The test's clock stands still, so the bucket does not refill.
    await server.call("GetRegions");
    assert.equal((await awsRaw(server, "GenerateRandom", { NumberOfBytes: 8 })).status, 200);
    assert.equal((await awsRaw(server, "GenerateRandom", { NumberOfBytes: 8 })).status, 200);
    assertAwsError(await awsRaw(server, "GenerateRandom", { NumberOfBytes: 8 }), "ThrottlingException", /retry later/);
    const tencent = await server.raw("GetRegions");
    assert.equal(tencent.error?.Code, "RequestLimitExceeded");
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /tresor_requests_total\{node="inproc-test",action="GenerateRandom",code="Success"\} 2/);
    assert.match(metrics, /tresor_requests_total\{node="inproc-test",action="GenerateRandom",code="RequestLimitExceeded"\} 1/);
  });
});
