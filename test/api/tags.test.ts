// A key's tags read back through the Tencent door (Tresor's ListResourceTags), with the official
// tencentcloud-sdk-nodejs client's generic request and with tresor/sdk: the tags CreateKey set,
// then TagResource and UntagResource's changes. A bad KeyId is named in the error; an unknown key
// and another account's key get DescribeKey's answer; the permission is kms:ListResourceTags (the
// read-only preset has it, the crypto preset does not), and a refusal is audited.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { KmsClient } from "tresor/sdk";
import { officialClient, type OfficialCall, type ServerTarget } from "../helpers/official-client.js";
import { startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

async function rejectsWith(promise: Promise<unknown>, code: string, mention?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: { code?: string; message?: string }) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (mention) assert.match(e.message ?? "", mention);
    return true;
  });
}

describe("ListResourceTags through the Tencent door", () => {
  let s: InProcessServer;
  let admin: { kms: OfficialCall; cam: OfficialCall; audit: OfficialCall };
  let keyId: string;
  let startTime: number;

  const target = (secretId: string, secretKey: string): ServerTarget => ({ url: s.url, secretId, secretKey, region: s.region });

  /** A sub-user with preset policy `policyId`, and its official kms client. */
  async function userWithPreset(name: string, policyId: number): Promise<OfficialCall> {
    const user = await admin.cam("AddUser", { Name: name, UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId: policyId, AttachUin: user.Uin });
    return officialClient("kms", target(user.SecretId, user.SecretKey));
  }

  before(async () => {
    s = await startInProcessServer();
    startTime = Math.floor(Date.now() / 1000) - 60;
    const t = target(s.secretId, s.secretKey);
    admin = { kms: officialClient("kms", t), cam: officialClient("cam", t), audit: officialClient("cloudaudit", t) };
    const created = await admin.kms("CreateKey", { Alias: "tagged", Tags: [{ TagKey: "team", TagValue: "cards" }, { TagKey: "tier", TagValue: "" }] });
    keyId = created.KeyId;
  });

  after(async () => {
    await s?.stop();
  });

  it("gives the tags CreateKey set, then TagResource's and UntagResource's changes, sorted by tag key", async () => {
    const first = await admin.kms("ListResourceTags", { KeyId: keyId });
    assert.equal(first.KeyId, keyId);
    assert.deepEqual(first.Tags, [{ TagKey: "team", TagValue: "cards" }, { TagKey: "tier", TagValue: "" }]);

    await admin.kms("TagResource", { KeyId: keyId, Tags: [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "ledger" }] });
    const tagged = await admin.kms("ListResourceTags", { KeyId: keyId });
    assert.deepEqual(tagged.Tags, [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "ledger" }, { TagKey: "tier", TagValue: "" }]);

    await admin.kms("UntagResource", { KeyId: keyId, TagKeys: ["tier", "absent"] });
    assert.deepEqual((await admin.kms("ListResourceTags", { KeyId: keyId })).Tags, [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "ledger" }]);
  });

  it("answers an empty list for a key without tags, and reads a PendingDelete key's tags", async () => {
    const bare = (await admin.kms("CreateKey", { Alias: "bare" })).KeyId;
    assert.deepEqual((await admin.kms("ListResourceTags", { KeyId: bare })).Tags, []);
    await admin.kms("TagResource", { KeyId: bare, Tags: [{ TagKey: "gone", TagValue: "soon" }] });
    await admin.kms("DisableKey", { KeyId: bare });
    await admin.kms("ScheduleKeyDeletion", { KeyId: bare, PendingWindowInDays: 7 });
    assert.deepEqual((await admin.kms("ListResourceTags", { KeyId: bare })).Tags, [{ TagKey: "gone", TagValue: "soon" }]);
  });

  it("is a typed method of tresor/sdk", async () => {
    const kms = new KmsClient({ endpoint: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region });
    try {
      const res = await kms.listResourceTags({ KeyId: keyId });
      assert.equal(res.KeyId, keyId);
      assert.deepEqual(res.Tags, [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "ledger" }]);
      assert.equal(typeof res.RequestId, "string");
    } finally {
      kms.close();
    }
  });

  it("names a missing or malformed KeyId, and answers an unknown key and another account's key as DescribeKey does", async () => {
    await rejectsWith(admin.kms("ListResourceTags", {}), "MissingParameter", /"KeyId"/);
    await rejectsWith(admin.kms("ListResourceTags", { KeyId: "not-a-key" }), "InvalidParameterValue.InvalidKeyId", /"KeyId"/);
    await rejectsWith(admin.kms("ListResourceTags", { KeyId: 7 }), "InvalidParameter", /"KeyId"/);
    await rejectsWith(admin.kms("ListResourceTags", { KeyId: "a".repeat(10_000) }), "InvalidParameterValue.InvalidKeyId", /"KeyId"/);
    await rejectsWith(admin.kms("ListResourceTags", { KeyId: keyId, Extra: 1 }), "UnknownParameter", /"Extra"/);

    const unknown = "00000000-0000-4000-8000-000000000000";
    const describeRefusal = await admin.kms("DescribeKey", { KeyId: unknown }).catch((e: { code: string }) => e.code);
    assert.equal(describeRefusal, "ResourceUnavailable.CmkNotFound");
    await rejectsWith(admin.kms("ListResourceTags", { KeyId: unknown }), describeRefusal, new RegExp(unknown));

    const other = await s.service.access.createRootAccessKey("200000000002");
    const otherKms = officialClient("kms", target(other.secretId, other.secretKey));
    await rejectsWith(otherKms("DescribeKey", { KeyId: keyId }), "ResourceUnavailable.CmkNotFound");
    await rejectsWith(otherKms("ListResourceTags", { KeyId: keyId }), "ResourceUnavailable.CmkNotFound");
  });

  it("needs kms:ListResourceTags: the read-only preset grants it, the crypto preset does not, and the refusal is audited", async () => {
    const reader = await userWithPreset("tag-reader", 2);
    assert.deepEqual((await reader("ListResourceTags", { KeyId: keyId })).Tags, [{ TagKey: "env", TagValue: "prod" }, { TagKey: "team", TagValue: "ledger" }]);
    await rejectsWith(reader("TagResource", { KeyId: keyId, Tags: [{ TagKey: "x", TagValue: "1" }] }), "UnauthorizedOperation");

    const crypto = await userWithPreset("crypto-only", 3);
    await crypto("DescribeKey", { KeyId: keyId });
    await rejectsWith(crypto("ListResourceTags", { KeyId: keyId }), "UnauthorizedOperation", /kms:ListResourceTags/);

    const found = await admin.audit("LookUpEvents", {
      StartTime: startTime,
      EndTime: Math.floor(Date.now() / 1000) + 60,
      LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "crypto-only" }, { AttributeKey: "EventName", AttributeValue: "ListResourceTags" }],
      MaxResults: 50,
    });
    assert.equal(found.Events.length, 1, JSON.stringify(found.Events));
    const event = found.Events[0];
    assert.equal(event.ErrorCode, 1);
    assert.equal(event.Resources.ResourceName, keyId);
    const details = JSON.parse(event.CloudAuditEvent);
    assert.equal(details.errorCode, "UnauthorizedOperation");
    assert.equal(details.readOnly, true);
  });
});
