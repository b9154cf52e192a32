// Access control end to end through the official tencentcloud-sdk-nodejs kms, cam and sts clients:
// an administrator makes a user who may only encrypt and decrypt with one key; that user is refused
// everything else; a role assumed through STS works until its token expires or the role goes; and
// a second account sees none of the first one's keys.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ACTIONS } from "../../src/api/tencent/actions.js";
import { CAM_ACTIONS, STS_ACTIONS } from "../../src/api/tencent/cam.js";
import { kmsSampleRequests } from "../helpers/kms-samples.js";
import { officialClient, type OfficialCall, type ServerTarget } from "../helpers/official-client.js";
import { snapshotKeys, startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

async function rejectsWith(promise: Promise<unknown>, code: string, mention?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: { code?: string; message?: string }) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (mention) assert.match(e.message ?? "", mention);
    return true;
  });
}

describe("access control through the official SDK", () => {
  let s: InProcessServer;
  let admin: { kms: OfficialCall; cam: OfficialCall; sts: OfficialCall };
  let alice: { kms: OfficialCall; cam: OfficialCall; sts: OfficialCall; uin: number; target: ServerTarget };
  let allowedKey: string;
  let otherKey: string;
  let otherBlob: string;
  let accountUin: string;

  const clients = (target: ServerTarget) => ({ kms: officialClient("kms", target), cam: officialClient("cam", target), sts: officialClient("sts", target) });

  before(async () => {
    s = await startInProcessServer();
    accountUin = s.dataDir.accountUin;
    admin = clients({ url: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region });
    allowedKey = (await admin.kms("CreateKey", { Alias: "alice-key" })).KeyId;
    otherKey = (await admin.kms("CreateKey", { Alias: "not-alices", Tags: [{ TagKey: "team", TagValue: "payments" }] })).KeyId;
    otherBlob = (await admin.kms("Encrypt", { KeyId: otherKey, Plaintext: Buffer.from("payroll").toString("base64") })).CiphertextBlob;
    await admin.kms("CreateTangServer", { Name: "not-alices" });

    const policy = {
      version: "2.0",
      statement: [
        {
          effect: "allow",
          action: ["name/kms:Encrypt", "name/kms:Decrypt"],
          resource: [`qcs::kms:${s.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${allowedKey}`],
        },
      ],
    };
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "encrypt-with-alice-key", PolicyDocument: JSON.stringify(policy), Description: "one key" });
    const user = await admin.cam("AddUser", { Name: "alice", Remark: "encrypt only", UseApi: 1 });
    assert.match(user.SecretId, /^AKID/);
    assert.equal(typeof user.SecretKey, "string");
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    const target = { url: s.url, secretId: user.SecretId, secretKey: user.SecretKey, region: s.region };
    alice = { ...clients(target), uin: user.Uin, target };
  });

  after(async () => {
    await s?.stop();
  });

  it("lets the user encrypt and decrypt with the one key", async () => {
    const { CiphertextBlob } = await alice.kms("Encrypt", { KeyId: allowedKey, Plaintext: Buffer.from("hello").toString("base64") });
    const { Plaintext } = await alice.kms("Decrypt", { CiphertextBlob });
    assert.equal(Buffer.from(Plaintext, "base64").toString(), "hello");
  });

  it("refuses the user every other key, naming the action and the resource", async () => {
    await rejectsWith(alice.kms("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" }), "UnauthorizedOperation", new RegExp(`kms:Encrypt.*${otherKey}`));
    await rejectsWith(alice.kms("Decrypt", { CiphertextBlob: otherBlob }), "UnauthorizedOperation", /kms:Decrypt/);
    await rejectsWith(alice.kms("GenerateDataKey", { KeyId: allowedKey, KeySpec: "AES_256" }), "UnauthorizedOperation", /kms:GenerateDataKey/);
  });

  it("refuses the user every management action, in KMS and in CAM and STS", async () => {
    await rejectsWith(alice.kms("CreateKey", { Alias: "alices-own" }), "UnauthorizedOperation", /kms:CreateKey/);
    await rejectsWith(alice.kms("ListKeys", {}), "UnauthorizedOperation");
    await rejectsWith(alice.kms("DisableKey", { KeyId: allowedKey }), "UnauthorizedOperation");
    await rejectsWith(alice.kms("ScheduleKeyDeletion", { KeyId: allowedKey, PendingWindowInDays: 7 }), "UnauthorizedOperation");
    await rejectsWith(alice.cam("AddUser", { Name: "mallory", UseApi: 1 }), "UnauthorizedOperation", /cam:AddUser/);
    await rejectsWith(alice.cam("CreatePolicy", { PolicyName: "all", PolicyDocument: '{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}' }), "UnauthorizedOperation");
    await rejectsWith(alice.cam("AttachUserPolicy", { PolicyId: 1, AttachUin: alice.uin }), "UnauthorizedOperation");
    await rejectsWith(alice.cam("CreateAccessKey", {}), "UnauthorizedOperation");
    await rejectsWith(alice.cam("ListUsers", {}), "UnauthorizedOperation");
    await rejectsWith(alice.sts("AssumeRole", { RoleArn: `qcs::cam::uin/${accountUin}:roleName/none`, RoleSessionName: "x1" }), "UnauthorizedOperation");
  });

  it("authorizes every KMS action: a user without policies is refused each one and nothing changes", async () => {
    const bob = await admin.cam("AddUser", { Name: "bob", UseApi: 1 });
    const kms = officialClient("kms", { url: s.url, secretId: bob.SecretId, secretKey: bob.SecretKey, region: s.region });
    const before = await snapshotKeys(s.service, s.caller);
    const blob = otherBlob;
    const samples = kmsSampleRequests(otherKey, blob, "bobs", "not-alices");
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(ACTIONS).sort(), "every action has a sample request");
    for (const [action, params] of Object.entries(samples)) {
      await rejectsWith(kms(action, params), "UnauthorizedOperation", new RegExp(`kms:${action}`));
    }
    assert.equal(await snapshotKeys(s.service, s.caller), before);
  });

  it("authorizes every CAM and STS action: a user without policies is refused each one", async () => {
    const dave = await admin.cam("AddUser", { Name: "dave", UseApi: 1 });
    const target = { url: s.url, secretId: dave.SecretId, secretKey: dave.SecretKey, region: s.region };
    const cam = officialClient("cam", target);
    const sts = officialClient("sts", target);
    const doc = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/kms:Encrypt", resource: "*" }] });
    const trust = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] });
    const samples: Record<string, object> = {
      AddUser: { Name: "eve" },
      GetUser: { Name: "alice" },
      ListUsers: {},
      DeleteUser: { Name: "alice" },
      CreateAccessKey: { TargetUin: alice.uin },
      ListAccessKeys: { TargetUin: alice.uin },
      UpdateAccessKey: { AccessKeyId: alice.target.secretId, Status: "Inactive", TargetUin: alice.uin },
      DeleteAccessKey: { AccessKeyId: alice.target.secretId, TargetUin: alice.uin },
      CreatePolicy: { PolicyName: "daves", PolicyDocument: doc },
      GetPolicy: { PolicyId: 1 },
      ListPolicies: {},
      DeletePolicy: { PolicyId: [1] },
      AttachUserPolicy: { PolicyId: 1, AttachUin: dave.Uin },
      DetachUserPolicy: { PolicyId: 1, DetachUin: alice.uin },
      ListAttachedUserPolicies: { TargetUin: alice.uin },
      CreateRole: { RoleName: "daves", PolicyDocument: trust },
      GetRole: { RoleName: "daves" },
      AttachRolePolicy: { PolicyId: 1, AttachRoleName: "daves" },
      DetachRolePolicy: { PolicyId: 1, DetachRoleName: "daves" },
      DeleteRole: { RoleName: "daves" },
      ListAttachedRolePolicies: { Page: 1, Rp: 10, RoleName: "daves" },
      SimulatePrincipalPolicy: { UserName: "alice", Action: "kms:Encrypt", Resource: "*" },
      // Refused before the certificate is read: any text stands in for one.
      AddKmipClient: { UserName: "alice", Certificate: "-----BEGIN CERTIFICATE-----" },
      ListKmipClients: {},
      DeleteKmipClient: { Fingerprint: "0".repeat(64) },
    };
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(CAM_ACTIONS).sort(), "every CAM action has a sample request");
    for (const [action, params] of Object.entries(samples)) await rejectsWith(cam(action, params), "UnauthorizedOperation", new RegExp(`cam:${action}`));
    assert.deepEqual(Object.keys(STS_ACTIONS), ["AssumeRole"]);
    await rejectsWith(sts("AssumeRole", { RoleArn: `qcs::cam::uin/${accountUin}:roleName/daves`, RoleSessionName: "s1" }), "UnauthorizedOperation", /sts:AssumeRole/);
    // Nothing happened: alice and her key are as they were.
    assert.equal((await admin.cam("GetUser", { Name: "alice" })).Name, "alice");
    assert.equal((await admin.cam("ListAccessKeys", { TargetUin: alice.uin })).AccessKeys[0].Status, "Active");
  });

  it("issues temporary credentials through STS that work until the role is deleted", async () => {
    const trust = { version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:uin/${alice.uin}`] } }] };
    const { RoleId } = await admin.cam("CreateRole", { RoleName: "encryptor", PolicyDocument: JSON.stringify(trust), SessionDuration: 3600 });
    await admin.cam("AttachRolePolicy", { PolicyName: "QcloudKMSCryptoAccess", AttachRoleId: RoleId });
    const roleArn = `qcs::cam::uin/${accountUin}:roleName/encryptor`;

    // The trust policy names alice, but her own policies must also allow sts:AssumeRole.
    await rejectsWith(alice.sts("AssumeRole", { RoleArn: roleArn, RoleSessionName: "batch-1" }), "UnauthorizedOperation");
    const assume = { version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", resource: `qcs::cam::uin/${accountUin}:roleName/encryptor` }] };
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: "assume-encryptor", PolicyDocument: JSON.stringify(assume) });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: alice.uin });
    // Changes made through this node apply to its next request at once.

    const session = await alice.sts("AssumeRole", { RoleArn: roleArn, RoleSessionName: "batch-1", DurationSeconds: 900 });
    assert.equal(session.ExpiredTime, s.clock.seconds() + 900);
    const { TmpSecretId, TmpSecretKey, Token } = session.Credentials;
    const role = officialClient("kms", { url: s.url, secretId: TmpSecretId, secretKey: TmpSecretKey, token: Token, region: s.region });
    const { CiphertextBlob } = await role("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" });
    assert.equal((await role("Decrypt", { CiphertextBlob })).Plaintext, "aGk=");
    await rejectsWith(role("CreateKey", { Alias: "role-made" }), "UnauthorizedOperation");

    // Without its token, or with another, the temporary SecretId is nothing.
    await rejectsWith(officialClient("kms", { url: s.url, secretId: TmpSecretId, secretKey: TmpSecretKey, region: s.region })("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" }), "AuthFailure.SecretIdNotFound");
    await rejectsWith(officialClient("kms", { url: s.url, secretId: TmpSecretId, secretKey: TmpSecretKey, token: `${Token}x`, region: s.region })("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" }), "AuthFailure.TokenFailure");

    await admin.cam("DeleteRole", { RoleName: "encryptor" });
    await rejectsWith(role("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" }), "AuthFailure.TokenFailure");
  });

  it("refuses temporary credentials once their token has expired", async () => {
    const trust = { version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] };
    await admin.cam("CreateRole", { RoleName: "short", PolicyDocument: JSON.stringify(trust), SessionDuration: 900 });
    await admin.cam("AttachRolePolicy", { PolicyName: "QcloudKMSReadOnlyAccess", AttachRoleName: "short" });
    const session = await admin.sts("AssumeRole", { RoleArn: `qcs::cam::uin/${accountUin}:roleName/short`, RoleSessionName: "reader" });
    const { TmpSecretId, TmpSecretKey, Token } = session.Credentials;
    const raw = (action: string, body: object) => s.raw(action, body, { secretId: TmpSecretId, secretKey: TmpSecretKey, headers: { "x-tc-token": Token } });
    assert.equal((await raw("DescribeKey", { KeyId: otherKey })).error, undefined);
    s.clock.advance(899_000);
    assert.equal((await raw("DescribeKey", { KeyId: otherKey })).error, undefined);
    s.clock.advance(1_000);
    const expired = await raw("DescribeKey", { KeyId: otherKey });
    assert.equal(expired.error?.Code, "AuthFailure.TokenFailure");
    assert.match(expired.error?.Message ?? "", /expired/);
    s.clock.advance(-900_000);
  });

  it("keeps accounts apart: another account cannot see, use or even detect the first one's keys", async () => {
    const otherUin = "200000000002";
    const other = await s.service.access.createRootAccessKey(otherUin);
    const kms = officialClient("kms", { url: s.url, secretId: other.secretId, secretKey: other.secretKey, region: s.region });
    const cam = officialClient("cam", { url: s.url, secretId: other.secretId, secretKey: other.secretKey, region: s.region });
    const missing = "0b4bdbb8-1111-4b6b-8f07-000000000000";
    const answerFor = async (keyId: string) => {
      try {
        await kms("DescribeKey", { KeyId: keyId });
        return "found";
      } catch (e) {
        return `${(e as { code: string }).code}: ${(e as Error).message.replace(keyId, "<id>")}`;
      }
    };
    assert.equal(await answerFor(otherKey), await answerFor(missing), "a foreign key answers exactly as a missing one");
    await rejectsWith(kms("Encrypt", { KeyId: otherKey, Plaintext: "aGk=" }), "ResourceUnavailable.CmkNotFound");
    await rejectsWith(kms("Decrypt", { CiphertextBlob: otherBlob }), "InvalidParameterValue.InvalidCiphertext");
    assert.equal((await kms("ListKeys", {})).TotalCount, 0);
    assert.equal((await kms("GetServiceStatus", {})).CmkUserCount, 0);
    await rejectsWith(cam("GetUser", { Name: "alice" }), "ResourceNotFound.UserNotExist");
    await rejectsWith(cam("ListAttachedUserPolicies", { TargetUin: alice.uin }), "ResourceNotFound.UserNotExist");
    // A key of its own works as usual.
    const own = (await kms("CreateKey", { Alias: "alice-key-2" })).KeyId;
    assert.equal((await kms("ListKeys", {})).Keys.length, 1);
    assert.equal((await kms("Encrypt", { KeyId: own, Plaintext: "aGk=" })).KeyId, own);
  });

  it("manages access keys: at most two per user, disable, enable, delete, secret shown once", async () => {
    const carol = await admin.cam("AddUser", { Name: "carol", UseApi: 1 });
    const second = await admin.cam("CreateAccessKey", { TargetUin: carol.Uin });
    assert.match(second.AccessKey.SecretAccessKey, /^[A-Za-z0-9]{40}$/);
    await rejectsWith(admin.cam("CreateAccessKey", { TargetUin: carol.Uin }), "OperationDenied.AccessKeyOverLimit");
    const listed = await admin.cam("ListAccessKeys", { TargetUin: carol.Uin });
    assert.equal(listed.AccessKeys.length, 2);
    assert.ok(listed.AccessKeys.every((k: Record<string, unknown>) => !("SecretAccessKey" in k) && k.Status === "Active"));
    await admin.cam("UpdateAccessKey", { AccessKeyId: carol.SecretId, Status: "Inactive", TargetUin: carol.Uin });
    const carolKms = officialClient("kms", { url: s.url, secretId: carol.SecretId, secretKey: carol.SecretKey, region: s.region });
    await rejectsWith(carolKms("ListKeys", {}), "AuthFailure.SecretIdNotFound");
    await admin.cam("UpdateAccessKey", { AccessKeyId: carol.SecretId, Status: "Active", TargetUin: carol.Uin });
    await rejectsWith(carolKms("ListKeys", {}), "UnauthorizedOperation");
    await rejectsWith(admin.cam("DeleteUser", { Name: "carol" }), "OperationDenied.UserHasAccessKey");
    await admin.cam("DeleteAccessKey", { AccessKeyId: second.AccessKey.AccessKeyId, TargetUin: carol.Uin });
    await admin.cam("DeleteUser", { Name: "carol", Force: 1 });
    await rejectsWith(admin.cam("GetUser", { Name: "carol" }), "ResourceNotFound.UserNotExist");
  });

  it("validates policy documents on save, naming the place at fault", async () => {
    const bad = { version: "2.0", statement: [{ effect: "allow", action: ["name/kms:Encrpyt"], resource: "*" }] };
    await rejectsWith(admin.cam("CreatePolicy", { PolicyName: "typo", PolicyDocument: JSON.stringify(bad) }), "InvalidParameter.PolicyDocumentError", /statement\[0\]\.action\[0\]/);
    const unknownField = { version: "2.0", statement: [{ effect: "allow", action: "name/kms:Encrypt", resource: "*", when: "always" }] };
    await rejectsWith(admin.cam("CreatePolicy", { PolicyName: "odd", PolicyDocument: JSON.stringify(unknownField) }), "InvalidParameter.PolicyDocumentError", /statement\[0\].*when/);
    const page = await admin.cam("ListPolicies", { Scope: "Local" });
    assert.ok(page.List.every((p: { PolicyName: string }) => p.PolicyName !== "typo" && p.PolicyName !== "odd"));
  });
  // Issue 13, policy edges. Each of these passed on the old code in the attacker's favour.

  /** A user (with an access key) whose only policy is `statements`, and its kms client. */
  async function userWith(name: string, statements: unknown[]): Promise<OfficialCall> {
    const document = JSON.stringify({ version: "2.0", statement: statements });
    const { PolicyId } = await admin.cam("CreatePolicy", { PolicyName: `${name}-policy`, PolicyDocument: document });
    const user = await admin.cam("AddUser", { Name: name, UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId, AttachUin: user.Uin });
    return officialClient("kms", { url: s.url, secretId: user.SecretId, secretKey: user.SecretKey, region: s.region });
  }
  const keyName = (keyId: string): string => `qcs::kms:${s.region}:uin/${accountUin}:key/creatorUin/${accountUin}/${keyId}`;

  it("refuses ReEncrypt out of a key whose Decrypt is denied: a deny on kms:Decrypt cannot be bypassed through another key", async () => {
    const k1 = (await admin.kms("CreateKey", { Alias: "reencrypt-k1" })).KeyId;
    const k2 = (await admin.kms("CreateKey", { Alias: "reencrypt-k2" })).KeyId;
    const secretUnderK2 = (await admin.kms("Encrypt", { KeyId: k2, Plaintext: Buffer.from("k2 secret").toString("base64") })).CiphertextBlob;
    const mallory = await userWith("mallory", [
      { effect: "allow", action: "name/kms:*", resource: "*" },
      { effect: "deny", action: "name/kms:Decrypt", resource: keyName(k2) },
    ]);
    await rejectsWith(mallory("Decrypt", { CiphertextBlob: secretUnderK2 }), "UnauthorizedOperation", /kms:Decrypt/);
    // Old code: ReEncrypt K2 -> K1 needed only kms:ReEncrypt, then Decrypt under K1 gave the plaintext.
    await rejectsWith(mallory("ReEncrypt", { CiphertextBlob: secretUnderK2, DestinationKeyId: k1 }), "UnauthorizedOperation", new RegExp(`kms:Decrypt.*${k2}`));
    // Within K1, where mallory may decrypt, ReEncrypt still works.
    const underK1 = (await mallory("Encrypt", { KeyId: k1, Plaintext: Buffer.from("k1 data").toString("base64") })).CiphertextBlob;
    const moved = await mallory("ReEncrypt", { CiphertextBlob: underK1, DestinationKeyId: k1 });
    assert.equal(Buffer.from((await mallory("Decrypt", { CiphertextBlob: moved.CiphertextBlob })).Plaintext, "base64").toString(), "k1 data");
  });

  it("asks kms:Decrypt on the source and kms:Encrypt on the destination of a ReEncrypt, besides kms:ReEncrypt on both", async () => {
    const src = (await admin.kms("CreateKey", { Alias: "reencrypt-src" })).KeyId;
    const dst = (await admin.kms("CreateKey", { Alias: "reencrypt-dst" })).KeyId;
    const blob = (await admin.kms("Encrypt", { KeyId: src, Plaintext: "aGk=" })).CiphertextBlob;
    const onlyReEncrypt = await userWith("erin", [{ effect: "allow", action: "name/kms:ReEncrypt", resource: [keyName(src), keyName(dst)] }]);
    await rejectsWith(onlyReEncrypt("ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: dst }), "UnauthorizedOperation", new RegExp(`kms:Decrypt.*${src}`));
    const noEncrypt = await userWith("frank", [
      { effect: "allow", action: ["name/kms:ReEncrypt", "name/kms:Decrypt"], resource: keyName(src) },
      { effect: "allow", action: "name/kms:ReEncrypt", resource: keyName(dst) },
    ]);
    await rejectsWith(noEncrypt("ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: dst }), "UnauthorizedOperation", new RegExp(`kms:Encrypt.*${dst}`));
    const noReEncrypt = await userWith("grace", [{ effect: "allow", action: ["name/kms:Decrypt", "name/kms:Encrypt"], resource: [keyName(src), keyName(dst)] }]);
    await rejectsWith(noReEncrypt("ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: dst }), "UnauthorizedOperation", /kms:ReEncrypt/);
    const all = await userWith("heidi", [
      { effect: "allow", action: ["name/kms:ReEncrypt", "name/kms:Decrypt"], resource: keyName(src) },
      { effect: "allow", action: ["name/kms:ReEncrypt", "name/kms:Encrypt"], resource: keyName(dst) },
    ]);
    assert.equal((await all("ReEncrypt", { CiphertextBlob: blob, DestinationKeyId: dst })).KeyId, dst);
  });

  it("refuses a policy naming a key id in upper case, naming the resource; one stored before the rule denies as meant", async () => {
    const k = (await admin.kms("CreateKey", { Alias: "upper-case-deny" })).KeyId;
    const blob = (await admin.kms("Encrypt", { KeyId: k, Plaintext: "aGk=" })).CiphertextBlob;
    const upper = keyName(k.toUpperCase());
    const document = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/kms:*", resource: "*" }, { effect: "deny", action: "name/kms:Decrypt", resource: upper }] });
    await rejectsWith(admin.cam("CreatePolicy", { PolicyName: "upper-deny", PolicyDocument: document }), "InvalidParameter.PolicyDocumentError", new RegExp(`statement\\[1\\]\\.resource.*${k.toUpperCase()}.*lower-case.*${k}`));
    // A document saved by an older version, straight into the store: its deny now applies to the key.
    const policyId = 100_000_777;
    await s.dataDir.store.insertPolicy({ policyId, accountUin, name: "upper-deny-stored", description: "", document, createTime: 0, updateTime: 0 });
    const ivan = await admin.cam("AddUser", { Name: "ivan", UseApi: 1 });
    await admin.cam("AttachUserPolicy", { PolicyId: policyId, AttachUin: ivan.Uin });
    const ivanKms = officialClient("kms", { url: s.url, secretId: ivan.SecretId, secretKey: ivan.SecretKey, region: s.region });
    await rejectsWith(ivanKms("Decrypt", { CiphertextBlob: blob }), "UnauthorizedOperation", /kms:Decrypt/);
    assert.equal((await ivanKms("DescribeKey", { KeyId: k })).KeyMetadata.KeyId, k);
  });

  it("refuses sub-users named root (in any case) or with no letter or digit, naming the parameter; a user named so earlier keeps working", async () => {
    for (const name of ["root", "Root", "ROOT", "-", "..."]) {
      await rejectsWith(admin.cam("AddUser", { Name: name, UseApi: 1 }), "InvalidParameterValue", /"Name"/);
    }
    assert.ok((await admin.cam("ListUsers", {})).Data.every((u: { Name: string }) => u.Name.toLowerCase() !== "root" && u.Name !== "-"));
    await s.dataDir.store.insertPrincipal({ principalId: "300000000003", accountUin, kind: "user", name: "root", remark: "before the rule", trustPolicy: null, maxSessionSeconds: 0, createTime: 0 });
    assert.equal((await admin.cam("GetUser", { Name: "root" })).Uin, 300000000003);
    await admin.cam("DeleteUser", { Name: "root" });
    await rejectsWith(admin.cam("GetUser", { Name: "root" }), "ResourceNotFound.UserNotExist");
    // A role may be named root: its sessions are recorded as "root/<session>", which no user name can equal.
    const trust = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${accountUin}:root`] } }] });
    await admin.cam("CreateRole", { RoleName: "root", PolicyDocument: trust });
    await admin.cam("DeleteRole", { RoleName: "root" });
  });
});
