// The AWS actions over what Tresor models its own way, through @aws-sdk/client-kms: aliases (one
// per key: CreateAlias, UpdateAlias moving it, DeleteAlias, ListAliases), key policies and grants
// answered truthfully (the effective default policy, no grants), tags, and rotation
// (Enable/Disable/GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  ListAliasesCommand,
  ListGrantsCommand,
  ListKeyPoliciesCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { snapshotKeys, startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";
import { awsClient } from "./helpers.js";

describe("AWS door: aliases, policies, grants, tags and rotation", () => {
  let server: InProcessServer;
  let kms: KMSClient;
  let arn: (keyId: string) => string;

  before(async () => {
    server = await startInProcessServer({ region: "eu-test-1" });
    kms = awsClient(server);
    arn = (keyId) => `arn:aws:kms:eu-test-1:${server.caller.uin}:key/${keyId}`;
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
  });

  const newKey = async (tags: { TagKey: string; TagValue: string }[] = []) => (await kms.send(new CreateKeyCommand({ Tags: tags }))).KeyMetadata!.KeyId!;

  it("CreateAlias names a key; UpdateAlias moves the name; DeleteAlias frees it; ListAliases shows each", async () => {
    const a = await newKey();
    const b = await newKey();
    await kms.send(new CreateAliasCommand({ AliasName: "alias/app-key", TargetKeyId: a }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: "alias/app-key" }))).KeyMetadata?.KeyId, a);
    const listed = await kms.send(new ListAliasesCommand({ KeyId: a }));
    assert.deepEqual(listed.Aliases?.map((x) => [x.AliasName, x.AliasArn, x.TargetKeyId]), [["alias/app-key", `arn:aws:kms:eu-test-1:${server.caller.uin}:alias/app-key`, a]]);
    // The Tencent door sees the same alias.
    assert.equal((await server.service.describeKey(server.caller, a)).alias, "app-key");

    await assert.rejects(kms.send(new CreateAliasCommand({ AliasName: "alias/app-key", TargetKeyId: b })), { name: "AlreadyExistsException" });
    await assert.rejects(kms.send(new CreateAliasCommand({ AliasName: "alias/second", TargetKeyId: a })), (e: Error) => e.name === "AlreadyExistsException" && /one alias/.test(e.message));
    await assert.rejects(kms.send(new CreateAliasCommand({ AliasName: "alias/aws/s3", TargetKeyId: b })), { name: "InvalidAliasNameException" });
    await assert.rejects(kms.send(new CreateAliasCommand({ AliasName: "no-prefix", TargetKeyId: b })), { name: "InvalidAliasNameException" });

    const blob = (await kms.send(new EncryptCommand({ KeyId: "alias/app-key", Plaintext: Buffer.from("x") }))).CiphertextBlob;
    await kms.send(new UpdateAliasCommand({ AliasName: "alias/app-key", TargetKeyId: b }));
    assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: "alias/app-key" }))).KeyMetadata?.KeyId, b);
    assert.deepEqual((await kms.send(new ListAliasesCommand({ KeyId: a }))).Aliases, []);
    // Ciphertexts name their key, not its alias.
    assert.equal((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).KeyId, arn(a));

    const all = [];
    let marker: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await kms.send(new ListAliasesCommand({ Limit: 1, ...(marker ? { Marker: marker } : {}) }));
      all.push(...(page.Aliases ?? []));
      if (!page.Truncated) break;
      marker = page.NextMarker;
    }
    assert.deepEqual(all.map((x) => x.AliasName), ["alias/app-key"]);

    await kms.send(new DeleteAliasCommand({ AliasName: "alias/app-key" }));
    await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: "alias/app-key" })), { name: "NotFoundException" });
    await assert.rejects(kms.send(new DeleteAliasCommand({ AliasName: "alias/app-key" })), { name: "NotFoundException" });
    await kms.send(new CreateAliasCommand({ AliasName: "alias/second", TargetKeyId: a }));
  });

  it("GetKeyPolicy and ListKeyPolicies answer the one effective policy; PutKeyPolicy is refused and changes nothing", async () => {
    const keyId = await newKey();
    const policies = await kms.send(new ListKeyPoliciesCommand({ KeyId: keyId }));
    assert.deepEqual(policies.PolicyNames, ["default"]);
    const { Policy, PolicyName } = await kms.send(new GetKeyPolicyCommand({ KeyId: arn(keyId), PolicyName: "default" }));
    assert.equal(PolicyName, "default");
    const doc = JSON.parse(Policy!);
    assert.equal(doc.Statement[0].Principal.AWS, `arn:aws:iam::${server.caller.uin}:root`);
    assert.equal(doc.Statement[0].Action, "kms:*");
    await assert.rejects(kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: "other" })), { name: "NotFoundException" });
    const before = await snapshotKeys(server.service, server.caller);
    await assert.rejects(kms.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: Policy! })), { name: "UnsupportedOperationException" });
    assert.equal(await snapshotKeys(server.service, server.caller), before);
  });

  it("TagResource adds and changes tags, UntagResource removes them; the Tencent door sees the same tags", async () => {
    const keyId = await newKey([{ TagKey: "team", TagValue: "a" }]);
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: "team", TagValue: "b" }, { TagKey: "env", TagValue: "prod" }] }));
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags!;
    assert.deepEqual(Object.fromEntries(tags.map((t) => [t.TagKey, t.TagValue])), { team: "b", env: "prod" });
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ["team", "absent"] }));
    assert.deepEqual((await server.service.describeKey(server.caller, keyId)).tags, [{ key: "env", value: "prod" }]);
    await assert.rejects(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: "x", TagValue: "1" }, { TagKey: "x", TagValue: "2" }] })), { name: "TagException" });
    const many = Array.from({ length: 50 }, (_, i) => ({ TagKey: `k${i}`, TagValue: "v" }));
    await assert.rejects(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: many })), (e: Error) => e.name === "ValidationException" && /at most 50/.test(e.message));
    assert.deepEqual((await server.service.describeKey(server.caller, keyId)).tags, [{ key: "env", value: "prod" }]);
  });

  it("ListGrants answers no grants; CreateGrant is refused; ListResourceTags gives the key's tags", async () => {
    const keyId = await newKey([{ TagKey: "team", TagValue: "payments" }]);
    const grants = await kms.send(new ListGrantsCommand({ KeyId: keyId }));
    assert.deepEqual(grants.Grants, []);
    assert.equal(grants.Truncated, false);
    await assert.rejects(kms.send(new ListGrantsCommand({ KeyId: "0f0e0d0c-0b0a-4998-8776-655443322110" })), { name: "NotFoundException" });
    await assert.rejects(kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: "arn:aws:iam::1:role/x", Operations: ["Decrypt"] })), { name: "UnsupportedOperationException" });
    const tags = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    assert.deepEqual(tags.Tags, [{ TagKey: "team", TagValue: "payments" }]);
  });

  it("EnableKeyRotation with RotationPeriodInDays, GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, DisableKeyRotation", async () => {
    const keyId = await newKey();
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled, false);
    await assert.rejects(kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 400 })), { name: "ValidationException" });
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 120 }));
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 120);
    assert.equal(status.KeyId, arn(keyId));
    assert.ok(Math.abs(status.NextRotationDate!.getTime() - (server.clock.now() + 120 * 86_400_000)) < 2000);
    const old = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("before rotation") }))).CiphertextBlob;
    assert.deepEqual((await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations, []);
    assert.equal((await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }))).KeyId, arn(keyId));
    const rotations = (await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations!;
    assert.equal(rotations.length, 1);
    assert.equal(rotations[0]!.KeyId, arn(keyId));
    assert.equal(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: old }))).Plaintext!).toString(), "before rotation");
    await kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    assert.equal((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled, false);
  });
});
