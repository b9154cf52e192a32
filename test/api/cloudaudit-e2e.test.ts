// The audit log searched end to end through the official tencentcloud-sdk-nodejs cloudaudit
// client: an administrator makes a user who may only encrypt with one key; the user encrypts with
// it and is refused another; LookUpEvents then finds what happened by user, by action and by key,
// page by page. A user without the cloudaudit permission is refused, and another account sees
// none of it.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { officialClient, type OfficialCall, type ServerTarget } from "../helpers/official-client.js";
import { startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

async function rejectsWith(promise: Promise<unknown>, code: string, mention?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: { code?: string; message?: string }) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (mention) assert.match(e.message ?? "", mention);
    return true;
  });
}

type Event = Record<string, any>;

describe("CloudAudit LookUpEvents and DescribeEvents through the official SDK", () => {
  let s: InProcessServer;
  let admin: { kms: OfficialCall; cam: OfficialCall; audit: OfficialCall };
  let alice: { kms: OfficialCall; audit: OfficialCall; secretId: string; secretKey: string };
  let keyK: string;
  let otherKey: string;
  let accountUin: string;
  let startTime: number;
  const plaintext = Buffer.from("the audit log must never hold this").toString("base64");

  const target = (secretId: string, secretKey: string): ServerTarget => ({ url: s.url, secretId, secretKey, region: s.region });
  const window = () => ({ StartTime: startTime, EndTime: Math.floor(Date.now() / 1000) + 60 });

  /** Every event LookUpEvents gives for these attributes, following NextToken. */
  async function lookUpAll(call: OfficialCall, attributes: Record<string, string>, maxResults = 50): Promise<Event[]> {
    const events: Event[] = [];
    let token: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const res = await call("LookUpEvents", {
        ...window(),
        LookupAttributes: Object.entries(attributes).map(([AttributeKey, AttributeValue]) => ({ AttributeKey, AttributeValue })),
        MaxResults: maxResults,
        ...(token === undefined ? {} : { NextToken: token }),
      });
      events.push(...(res.Events as Event[]));
      if (res.ListOver) return events;
      token = res.NextToken;
      assert.equal(typeof token, "string");
    }
    throw new Error("LookUpEvents did not end");
  }

  before(async () => {
    s = await startInProcessServer();
    startTime = Math.floor(Date.now() / 1000) - 60;
    accountUin = s.dataDir.accountUin;
    const adminTarget = target(s.secretId, s.secretKey);
    admin = { kms: officialClient("kms", adminTarget), cam: officialClient("cam", adminTarget), audit: officialClient("cloudaudit", adminTarget) };
    keyK = (await admin.kms("CreateKey", { Alias: "audited-key" })).KeyId;
    otherKey = (await admin.kms("CreateKey", { Alias: "not-alices" })).KeyId;

    const policy = {
      version: "2.0",
      statement: [{ effect: "allow", action: ["name/kms:Encrypt"], resource: [`qcs::kms:${s.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${keyK}`] }],
    };
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "encrypt-only", PolicyDocument: JSON.stringify(policy) });
    const user = await admin.cam("AddUser", { Name: "alice", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    const t = target(user.SecretId, user.SecretKey);
    alice = { kms: officialClient("kms", t), audit: officialClient("cloudaudit", t), secretId: user.SecretId, secretKey: user.SecretKey };

    // The scripted session.
    await alice.kms("Encrypt", { KeyId: keyK, Plaintext: plaintext });
    await rejectsWith(alice.kms("Encrypt", { KeyId: otherKey, Plaintext: plaintext }), "UnauthorizedOperation");
  });

  after(async () => {
    await s?.stop();
  });

  it("finds the user's requests by Username, with the event fields of the official model", async () => {
    const events = await lookUpAll(admin.audit, { Username: "alice" });
    const encrypts = events.filter((e) => e.EventName === "Encrypt");
    assert.equal(encrypts.length, 2, JSON.stringify(events.map((e) => [e.EventName, e.Resources])));
    const refused = encrypts[0]!; // newest first
    const allowed = encrypts[1]!;
    assert.equal(allowed.Username, "alice");
    assert.equal(allowed.ErrorCode, 0);
    assert.equal(allowed.SecretId, alice.secretId);
    assert.equal(allowed.EventSource, "kms.tencentcloudapi.com");
    assert.equal(allowed.AccountID, Number(accountUin));
    assert.deepEqual(allowed.Resources.ResourceName, keyK);
    assert.match(allowed.EventId, /^\d+$/);
    assert.match(allowed.EventTime, /^\d+$/);
    assert.ok(Number(allowed.EventTime) >= startTime);
    assert.equal(typeof allowed.RequestID, "string");
    assert.notEqual(allowed.RequestID, "");
    const details = JSON.parse(allowed.CloudAuditEvent);
    assert.equal(details.eventName, "Encrypt");
    assert.equal(details.userIdentity.userName, "alice");
    assert.equal(details.result, "Success");
    for (const chainField of ["seq", "prevHash", "hash"]) assert.equal(chainField in details, false, `no ${chainField}: the chain spans every account`);

    assert.equal(refused.ErrorCode, 1);
    const refusal = JSON.parse(refused.CloudAuditEvent);
    assert.equal(refusal.errorCode, "UnauthorizedOperation");
    assert.ok(refusal.flags.includes("policy-denied"), `flags: ${JSON.stringify(refusal.flags)}`);
    assert.ok(Number(refused.EventId) > Number(allowed.EventId), "newest first");
    for (const e of events) assert.equal(e.Username, "alice");
  });

  it("finds them by EventName and by ResourceName, and narrows by both", async () => {
    const encrypts = await lookUpAll(admin.audit, { EventName: "Encrypt" });
    assert.ok(encrypts.length >= 2);
    assert.ok(encrypts.every((e) => e.EventName === "Encrypt"));
    assert.ok(encrypts.some((e) => e.Username === "alice" && e.Resources.ResourceName === keyK && e.ErrorCode === 0));

    const onK = await lookUpAll(admin.audit, { ResourceName: keyK });
    assert.ok(onK.some((e) => e.EventName === "Encrypt" && e.Username === "alice"));
    assert.ok(onK.every((e) => e.Resources.ResourceName.split(",").includes(keyK)));
    assert.ok(!onK.some((e) => e.Resources.ResourceName.split(",").includes(otherKey) && !e.Resources.ResourceName.split(",").includes(keyK)));

    const both = await lookUpAll(admin.audit, { ResourceName: keyK, Username: "alice", EventName: "Encrypt" });
    assert.equal(both.length, 1);
    const byId = await lookUpAll(admin.audit, { EventId: both[0]!.EventId });
    assert.deepEqual(byId, both);
    const byRequest = await lookUpAll(admin.audit, { RequestId: both[0]!.RequestID });
    assert.deepEqual(byRequest, both);
    const reads = await lookUpAll(admin.audit, { ActionType: "Read", Username: "alice" });
    const writes = await lookUpAll(admin.audit, { ReadOnly: "false", Username: "alice" });
    const all = await lookUpAll(admin.audit, { Username: "alice" });
    assert.equal(reads.length + writes.length, all.length, "reads and writes are all of them");
    assert.ok(reads.every((e) => JSON.parse(e.CloudAuditEvent).readOnly === true));
    assert.ok(writes.every((e) => JSON.parse(e.CloudAuditEvent).readOnly === false));
  });

  it("pages one event at a time with NextToken, and DescribeEvents with a numeric one", async () => {
    const whole = await lookUpAll(admin.audit, { Username: "alice" });
    const paged = await lookUpAll(admin.audit, { Username: "alice" }, 1);
    assert.deepEqual(paged, whole);
    const first = await admin.audit("DescribeEvents", { ...window(), MaxResults: 1, LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "alice" }] });
    assert.equal(first.ListOver, false);
    assert.equal(typeof first.NextToken, "number");
    const second = await admin.audit("DescribeEvents", { ...window(), MaxResults: 1, NextToken: first.NextToken, LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "alice" }] });
    assert.deepEqual([...first.Events, ...second.Events], whole.slice(0, 2));
  });

  it("never answers with the plaintext or a secret", async () => {
    const res = await admin.audit("LookUpEvents", { ...window(), MaxResults: 50 });
    const text = JSON.stringify(res);
    assert.ok(!text.includes(plaintext), "the plaintext");
    assert.ok(!text.includes(alice.secretKey), "alice's SecretKey");
    assert.ok(!text.includes(s.secretKey), "the admin's SecretKey");
  });

  it("refuses bad input, naming it", async () => {
    await rejectsWith(admin.audit("LookUpEvents", { ...window(), LookupAttributes: [{ AttributeKey: "Tags", AttributeValue: "x" }] }), "InvalidParameterValue", /Tags/);
    await rejectsWith(admin.audit("LookUpEvents", { ...window(), NextToken: "not-a-token!" }), "InvalidParameterValue", /NextToken/);
    await rejectsWith(admin.audit("LookUpEvents", { StartTime: startTime, EndTime: startTime - 1 }), "InvalidParameterValue", /EndTime/);
    await rejectsWith(admin.audit("LookUpEvents", { StartTime: startTime, EndTime: startTime + 31 * 86_400 }), "InvalidParameterValue", /30 days/);
  });

  it("refuses a user without the cloudaudit permission, and the refusal is itself on record", async () => {
    await rejectsWith(alice.audit("LookUpEvents", window()), "UnauthorizedOperation", /cloudaudit:LookUpEvents/);
    await rejectsWith(alice.audit("DescribeEvents", window()), "UnauthorizedOperation", /cloudaudit:DescribeEvents/);
    const tries = await lookUpAll(admin.audit, { Username: "alice", EventName: "LookUpEvents" });
    assert.equal(tries.length, 1);
    assert.equal(tries[0]!.EventSource, "cloudaudit.tencentcloudapi.com");
    assert.equal(tries[0]!.ErrorCode, 1);
  });

  it("lets a user with only cloudaudit:LookUpEvents search the account, and not DescribeEvents", async () => {
    const policy = { version: "2.0", statement: [{ effect: "allow", action: ["name/cloudaudit:LookUpEvents"], resource: ["*"] }] };
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "audit-reader", PolicyDocument: JSON.stringify(policy) });
    const user = await admin.cam("AddUser", { Name: "auditor", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    const auditor = officialClient("cloudaudit", target(user.SecretId, user.SecretKey));
    const found = await lookUpAll(auditor, { Username: "alice", EventName: "Encrypt" });
    assert.equal(found.length, 2);
    await rejectsWith(auditor("DescribeEvents", window()), "UnauthorizedOperation");
  });

  it("keeps accounts apart: another account's root finds none of these events", async () => {
    const other = await s.service.access.createRootAccessKey("200000000002");
    const audit = officialClient("cloudaudit", target(other.secretId, other.secretKey));
    assert.deepEqual(await lookUpAll(audit, { Username: "alice" }), []);
    assert.deepEqual(await lookUpAll(audit, { ResourceName: keyK }), []);
    const mine = await lookUpAll(audit, {});
    assert.ok(mine.every((e) => e.AccountID === 200000000002), "only its own requests (this search)");
  });

  // Issue 13: EventId was the installation-wide seq and events carried prevHash/hash, so account B
  // saw gaps where account A's records were, and A's hashes: A's volume and timing.
  it("shows an account nothing of another's activity between its own records: EventIds number its own records, no chain fields", async () => {
    const accountB = "200000000003";
    const b = await s.service.access.createRootAccessKey(accountB);
    const bKms = officialClient("kms", target(b.secretId, b.secretKey));
    const bAudit = officialClient("cloudaudit", target(b.secretId, b.secretKey));
    // The server's clock (a ManualClock, still at its start) stamps the records.
    const since = s.clock.seconds() - 1;
    const bView = async () => {
      const res = await bAudit("DescribeEvents", { StartTime: since, EndTime: Math.floor(Date.now() / 1000) + 60, MaxResults: 50, LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "ListKeys" }] });
      return res.Events as Event[];
    };
    await bKms("ListKeys", {});
    const quiet = await bView();
    // A busy account A between B's records (and B's own searches, which are records too).
    for (let i = 0; i < 25; i++) await admin.kms("ListKeys", {});
    await bKms("ListKeys", {});
    const busy = await bView();
    assert.equal(quiet.length, 1);
    assert.equal(busy.length, 2);
    // Records are stamped with the request's arrival on the test's still clock, so two records of
    // one second may come in either order: tell them apart by EventId.
    const [older, newer] = [...busy].sort((a, b) => Number(a.EventId) - Number(b.EventId)) as [Event, Event];
    assert.equal(older.EventId, quiet[0]!.EventId, "the same event keeps its EventId");
    // B's records so far: ListKeys, DescribeEvents, ListKeys: numbered 1, 2, 3 whatever A did meanwhile.
    assert.deepEqual([Number(older.EventId), Number(newer.EventId)], [1, 3]);
    for (const e of busy) {
      assert.equal(e.AccountID, Number(accountB));
      const details = JSON.parse(e.CloudAuditEvent);
      assert.equal(details.eventId, e.EventId);
      for (const chainField of ["seq", "prevHash", "hash"]) assert.equal(chainField in details, false, chainField);
      assert.ok(!JSON.stringify(e).includes(accountUin), "nothing of account A");
    }
    // The numeric cursor is B's own number too.
    const paged = await bAudit("DescribeEvents", { StartTime: since, EndTime: Math.floor(Date.now() / 1000) + 60, MaxResults: 1 });
    assert.equal(paged.ListOver, false);
    assert.ok(paged.NextToken <= 5, `DescribeEvents' NextToken counts B's records only: ${paged.NextToken}`);
    // The operator's chain, offline, still holds every record of both accounts in one sequence.
    const chain = await s.dataDir.store.listAuditRecords({ order: "desc", limit: 40 });
    assert.ok(chain.some((r) => r.accountUin === accountUin) && chain.some((r) => r.accountUin === accountB));
  });
});
