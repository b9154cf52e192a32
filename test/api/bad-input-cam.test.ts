// Hostile and malformed requests to the CAM, STS and CloudAudit actions: each gets a clear error
// naming the parameter, and nothing changes (no user, policy or role appears).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startInProcessServer, type InProcessServer, type RawResponse } from "./helpers-inprocess.js";

const CAM = { version: "2019-01-16" };
const STS = { version: "2018-08-13" };
const AUDIT = { version: "2019-03-19" };

describe("bad input to CAM, STS and CloudAudit", () => {
  let s: InProcessServer;

  before(async () => {
    s = await startInProcessServer();
  });

  after(async () => {
    await s?.stop();
  });

  /** What the account holds, to compare before and after a refused request. */
  async function snapshot(): Promise<string> {
    const store = s.dataDir.store;
    const account = s.dataDir.accountUin;
    const users = await store.listPrincipals(account, "user", 0, 1000);
    const roles = await store.listPrincipals(account, "role", 0, 1000);
    const policies = await store.listPolicies(account, 0, 1000);
    return JSON.stringify({ users, roles, policies });
  }

  async function refused(send: () => Promise<RawResponse>, code: string, mention?: RegExp): Promise<void> {
    const before = await snapshot();
    const r = await send();
    assert.equal(r.status, 200);
    assert.equal(r.error?.Code, code, `expected ${code}, got ${JSON.stringify(r.error)}`);
    if (mention) assert.match(r.error!.Message, mention);
    assert.equal(await snapshot(), before, "a refused request changed something");
  }

  const policy = (statement: object[]) => JSON.stringify({ version: "2.0", statement });

  it("names unknown, missing and mistyped parameters", async () => {
    await refused(() => s.raw("AddUser", { Name: "x", Admin: true }, CAM), "UnknownParameter", /"Admin"/);
    await refused(() => s.raw("AddUser", {}, CAM), "MissingParameter", /"Name"/);
    await refused(() => s.raw("AddUser", { Name: 7 }, CAM), "InvalidParameter", /"Name"/);
    await refused(() => s.raw("AttachUserPolicy", { PolicyId: "1", AttachUin: 1 }, CAM), "InvalidParameter", /"PolicyId"/);
    await refused(() => s.raw("DeletePolicy", { PolicyId: 1 }, CAM), "InvalidParameter", /"PolicyId"/);
    await refused(() => s.raw("UpdateAccessKey", { AccessKeyId: "AKIDx", Status: "Enabled" }, CAM), "InvalidParameterValue", /"Status"/);
    await refused(() => s.raw("AssumeRole", { RoleArn: "arn:aws:iam::1:role/x", RoleSessionName: "s1" }, STS), "InvalidParameterValue", /"RoleArn"/);
    await refused(() => s.raw("AssumeRole", { RoleArn: `qcs::cam::uin/1:roleName/x`, RoleSessionName: "s1", DurationSeconds: 60 }, STS), "InvalidParameterValue", /"DurationSeconds"/);
    await refused(() => s.raw("LookUpEvents", { StartTime: 10, EndTime: 5 }, AUDIT), "InvalidParameterValue", /StartTime|EndTime/);
    await refused(() => s.raw("LookUpEvents", { StartTime: 1, EndTime: 2, NextToken: "!!" }, AUDIT), "InvalidParameterValue", /"NextToken"/);
    await refused(() => s.raw("LookUpEvents", { StartTime: 1, EndTime: 2, LookupAttributes: [{ AttributeKey: "Password", AttributeValue: "x" }] }, AUDIT), "InvalidParameterValue", /Password/);
  });

  it("refuses names outside the allowed characters and lengths", async () => {
    await refused(() => s.raw("AddUser", { Name: "a b" }, CAM), "InvalidParameterValue", /"Name"/);
    await refused(() => s.raw("AddUser", { Name: "x".repeat(65) }, CAM), "InvalidParameterValue", /"Name"/);
    await refused(() => s.raw("AddUser", { Name: "名字" }, CAM), "InvalidParameterValue", /"Name"/);
    await refused(() => s.raw("CreatePolicy", { PolicyName: "../etc", PolicyDocument: policy([{ effect: "allow", action: "name/kms:Encrypt", resource: "*" }]) }, CAM), "InvalidParameterValue", /"PolicyName"/);
    await refused(() => s.raw("CreateRole", { RoleName: "r\u0000", PolicyDocument: "{}" }, CAM), "InvalidParameterValue", /"RoleName"/);
  });

  it("refuses oversized, malformed and hostile policy documents, naming the place", async () => {
    const big = policy(Array.from({ length: 200 }, (_, i) => ({ effect: "allow", action: "name/kms:Encrypt", resource: `qcs::kms:local:uin/1:key/creatorUin/1/${i}` })));
    await refused(() => s.raw("CreatePolicy", { PolicyName: "big", PolicyDocument: big }, CAM), "InvalidParameterValue", /"PolicyDocument"/);
    await refused(() => s.raw("CreatePolicy", { PolicyName: "notjson", PolicyDocument: "{version" }, CAM), "InvalidParameter.PolicyDocumentError", /"PolicyDocument"/);
    await refused(
      () => s.raw("CreatePolicy", { PolicyName: "proto", PolicyDocument: '{"version":"2.0","statement":[{"effect":"allow","action":"name/kms:Encrypt","resource":"*","__proto__":{"x":1}}]}' }, CAM),
      "InvalidParameter.PolicyDocumentError",
      /statement\[0\]/,
    );
    const deep = `{"version":"2.0","statement":[{"effect":"allow","action":"name/kms:Encrypt","resource":"*","condition":${"[".repeat(2000)}${"]".repeat(2000)}}]}`;
    await refused(() => s.raw("CreatePolicy", { PolicyName: "deep", PolicyDocument: deep }, CAM), "InvalidParameter.PolicyDocumentError", /statement\[0\]\.condition/);
    const slowGlob = policy([{ effect: "allow", action: "name/kms:Encrypt", resource: `qcs::kms:local:uin/1:key/${"*a".repeat(40)}c` }]);
    const started = Date.now();
    const r = await s.raw("CreatePolicy", { PolicyName: "globby", PolicyDocument: slowGlob }, CAM);
    assert.ok(Date.now() - started < 2000, "a pathological wildcard pattern is cheap");
    assert.ok(r.error === undefined || r.error.Code.startsWith("InvalidParameter"));
    // A trust policy that grants anything but AssumeRole is refused.
    const trust = policy([{ effect: "allow", action: "name/kms:*", principal: { qcs: ["qcs::cam::uin/1:root"] } }]);
    await refused(() => s.raw("CreateRole", { RoleName: "wide", PolicyDocument: trust }, CAM), "InvalidParameter.PolicyDocumentError", /statement\[0\]\.action/);
  });

  it("answers a request to an unknown product version or action without touching anything", async () => {
    await refused(() => s.raw("AddUser", { Name: "v" }, { version: "2017-03-12" }), "NoSuchVersion", /2019-01-16 \(cam\)/);
    await refused(() => s.raw("CreateUser", { Name: "v" }, CAM), "InvalidAction", /CreateUser/);
    await refused(() => s.raw("Encrypt", { KeyId: "x", Plaintext: "aGk=" }, CAM), "InvalidAction", /Encrypt/);
  });
});
