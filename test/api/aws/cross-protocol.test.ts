// One core behind two doors: a ciphertext made through the Tencent door (official
// tencentcloud-sdk-nodejs) decrypts through AWS Decrypt (official @aws-sdk/client-kms) and the
// reverse; a key made through either is used through the other; one CAM policy with a deny on
// kms:Decrypt blocks both doors; both doors' requests are found by LookUpEvents (the official
// cloudaudit client); AssumeRole's temporary credentials sign AWS requests with their session token.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, type KMSClient } from "@aws-sdk/client-kms";
import { officialClient, type OfficialCall, type ServerTarget } from "../../helpers/official-client.js";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient } from "./helpers.js";

describe("AWS and Tencent doors over one core", () => {
  let s: InProcessServer;
  let admin: { kms: OfficialCall; cam: OfficialCall; sts: OfficialCall; audit: OfficialCall };
  let aws: KMSClient;
  let accountUin: string;
  let startTime: number;

  const target = (secretId: string, secretKey: string): ServerTarget => ({ url: s.url, secretId, secretKey, region: s.region });

  before(async () => {
    s = await startInProcessServer({ region: "ap-test" });
    startTime = s.clock.seconds() - 60;
    accountUin = s.dataDir.accountUin;
    const t = target(s.secretId, s.secretKey);
    admin = { kms: officialClient("kms", t), cam: officialClient("cam", t), sts: officialClient("sts", t), audit: officialClient("cloudaudit", t) };
    aws = awsClient(s);
  });
  after(async () => {
    aws?.destroy();
    await s?.stop();
  });

  it("a Tencent-made ciphertext decrypts through AWS Decrypt, and an AWS-made one through Tencent Decrypt", async () => {
    const { KeyId } = await admin.kms("CreateKey", { Alias: "shared", KeySpec: "AES_256" });
    const context = { app: "billing", tenant: "t-7" };
    const tencentBlob = (await admin.kms("Encrypt", { KeyId, Plaintext: Buffer.from("from tencent").toString("base64"), EncryptionContext: JSON.stringify(context) })).CiphertextBlob;
    const viaAws = await aws.send(new DecryptCommand({ CiphertextBlob: Buffer.from(tencentBlob, "base64"), EncryptionContext: context }));
    assert.equal(Buffer.from(viaAws.Plaintext!).toString(), "from tencent");
    assert.equal(viaAws.KeyId, `arn:aws:kms:ap-test:${accountUin}:key/${KeyId}`);

    const awsBlob = (await aws.send(new EncryptCommand({ KeyId: "alias/shared", Plaintext: Buffer.from("from aws"), EncryptionContext: context }))).CiphertextBlob!;
    const viaTencent = await admin.kms("Decrypt", { CiphertextBlob: Buffer.from(awsBlob).toString("base64"), EncryptionContext: JSON.stringify({ tenant: "t-7", app: "billing" }) });
    assert.equal(Buffer.from(viaTencent.Plaintext, "base64").toString(), "from aws");
    assert.equal(viaTencent.KeyId, KeyId);
  });

  it("a key made through the AWS door is a Tencent key (its alias is its id until it gets one), and the reverse", async () => {
    const meta = (await aws.send(new CreateKeyCommand({ Description: "made by aws" }))).KeyMetadata!;
    const described = (await admin.kms("DescribeKey", { KeyId: meta.KeyId })).KeyMetadata;
    assert.equal(described.Description, "made by aws");
    assert.equal(described.KeySpec, "AES_256");
    assert.equal(described.Alias, meta.KeyId);
    const { KeyId } = await admin.kms("CreateKey", { Alias: "tencent-made" });
    const viaAws = (await aws.send(new DescribeKeyCommand({ KeyId: "alias/tencent-made" }))).KeyMetadata!;
    assert.equal(viaAws.KeyId, KeyId);
    assert.equal(viaAws.KeySpec, "SM4");
  });

  it("one CAM policy governs both doors: a deny on kms:Decrypt blocks Decrypt through each; both refusals are in LookUpEvents", async () => {
    const { KeyId } = await admin.kms("CreateKey", { Alias: "guarded", KeySpec: "AES_256" });
    const resource = `qcs::kms:${s.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${KeyId}`;
    const policy = {
      version: "2.0",
      statement: [
        { effect: "allow", action: ["name/kms:Encrypt", "name/kms:Decrypt", "name/kms:DescribeKey"], resource: [resource] },
        { effect: "deny", action: ["name/kms:Decrypt"], resource: [resource] },
      ],
    };
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "no-decrypt", PolicyDocument: JSON.stringify(policy) });
    const user = await admin.cam("AddUser", { Name: "bob", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    const bobTencent = officialClient("kms", target(user.SecretId, user.SecretKey));
    const bobAws = awsClient({ ...s, secretId: user.SecretId, secretKey: user.SecretKey });

    const blob = (await bobAws.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from("sealed") }))).CiphertextBlob!;
    await assert.rejects(bobAws.send(new DecryptCommand({ CiphertextBlob: blob })), (e: Error) => e.name === "AccessDeniedException" && /kms:Decrypt/.test(e.message));
    // The server's clock stands still unless moved: a record's time is that clock less the
    // request's own latency, so without a step the two refusals' order would follow their latencies.
    s.clock.advance(1000);
    await assert.rejects(bobTencent("Decrypt", { CiphertextBlob: Buffer.from(blob).toString("base64") }), (e: { code?: string }) => e.code === "UnauthorizedOperation");
    // kms:Encrypt is the same permission through both doors: allowed on this key, refused on another.
    const other = (await aws.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await assert.rejects(bobAws.send(new EncryptCommand({ KeyId: other, Plaintext: Buffer.from("x") })), { name: "AccessDeniedException" });
    bobAws.destroy();

    await s.auditor.flush();
    const res = await admin.audit("LookUpEvents", {
      StartTime: startTime,
      EndTime: s.clock.seconds() + 60,
      LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "bob" }],
      MaxResults: 50,
    });
    const decrypts = (res.Events as Record<string, any>[]).filter((e) => e.EventName === "Decrypt");
    assert.equal(decrypts.length, 2, JSON.stringify(res.Events.map((e: Record<string, unknown>) => e.EventName)));
    const details = decrypts.map((e) => JSON.parse(e.CloudAuditEvent) as { errorCode: string; flags: string[] });
    for (const d of details) {
      assert.equal(d.errorCode, "UnauthorizedOperation");
      assert.ok(d.flags.includes("policy-denied"));
    }
    // Newest first: the Tencent refusal, then the AWS one.
    assert.deepEqual(details.map((d) => d.flags.includes("aws-protocol")), [false, true]);
    for (const e of decrypts) assert.equal(e.Resources.ResourceName, KeyId);
  });

  it("AssumeRole's temporary credentials sign AWS requests with X-Amz-Security-Token; a wrong token is UnrecognizedClientException", async () => {
    const trust = { version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] };
    await admin.cam("CreateRole", { RoleName: "aws-reader", PolicyDocument: JSON.stringify(trust) });
    await admin.cam("AttachRolePolicy", { PolicyName: "QcloudKMSCryptoAccess", AttachRoleName: "aws-reader" });
    const session = await admin.sts("AssumeRole", { RoleArn: `qcs::cam::uin/${accountUin}:roleName/aws-reader`, RoleSessionName: "s1" });
    const { TmpSecretId, TmpSecretKey, Token } = session.Credentials;
    const keyId = (await aws.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const role = awsClient({ ...s, secretId: TmpSecretId, secretKey: TmpSecretKey, token: Token });
    const blob = (await role.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("role") }))).CiphertextBlob!;
    assert.equal(Buffer.from((await role.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), "role");
    await assert.rejects(role.send(new CreateKeyCommand({})), { name: "AccessDeniedException" });
    role.destroy();
    const forged = awsClient({ ...s, secretId: TmpSecretId, secretKey: TmpSecretKey, token: `${Token}x` });
    await assert.rejects(forged.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })), { name: "UnrecognizedClientException" });
    forged.destroy();
  });
});
