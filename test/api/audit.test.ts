// The audit log end to end: exactly one record per request (allowed or denied, successful or not,
// including bad signatures and malformed requests) with the right fields; no secret or plaintext
// of the session anywhere in the store or an export; a store that refuses audit writes makes
// requests fail with nothing changed; the chain verifies.

import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ACTIONS } from "../../src/api/tencent/actions.js";
import type { AuditRecord } from "../../src/audit/record.js";
import { exportAudit } from "../../src/audit/export.js";
import { loadAuditKeys } from "../../src/audit/keys.js";
import { verifyAudit } from "../../src/audit/verify.js";
import { initDataDir } from "../../src/node/data-dir.js";
import { startNode } from "../../src/node/node.js";
import { rootCaller } from "../../src/service/access-control.js";
import type { KeyRecord, KeyVersionRecord } from "../../src/keys/key.js";
import type { Store, StoreOperations } from "../../src/store/store.js";
import { kmsSampleRequests } from "../helpers/kms-samples.js";
import { officialClient } from "../helpers/official-client.js";
import { ManualClock, startInProcessServer, type InProcessServer, type RawResponse } from "./helpers-inprocess.js";
import { allAuditRecords } from "../helpers/audit-fixtures.js";

function requestIdOf(r: RawResponse): string {
  return String((r.json as { Response: { RequestId: string } }).Response.RequestId);
}

describe("audit records", () => {
  let s: InProcessServer;
  let keyId: string;
  let blob: string;

  before(async () => {
    s = await startInProcessServer();
    keyId = String((await s.call("CreateKey", { Alias: "audited" })).KeyId);
    blob = String((await s.call("Encrypt", { KeyId: keyId, Plaintext: "aGk=" })).CiphertextBlob);
  });

  after(async () => {
    await s?.stop();
  });

  /** Sends the request and returns the one record that has its RequestId (failing unless exactly one). */
  async function recordOf(send: () => Promise<RawResponse>): Promise<{ response: RawResponse; record: AuditRecord }> {
    const response = await send();
    const id = requestIdOf(response);
    const matching = (await allAuditRecords(s.dataDir.store)).filter((r) => r.requestId === id);
    assert.equal(matching.length, 1, `exactly one record for request ${id}`);
    return { response, record: matching[0]! };
  }

  it("writes one record for every KMS action, with the result the caller got", async () => {
    const samples = kmsSampleRequests(keyId, blob, "audit-created");
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(ACTIONS).sort());
    const results = new Set<string>();
    for (const [action, params] of Object.entries(samples)) {
      const { response, record } = await recordOf(() => s.raw(action, params));
      const result = response.error?.Code ?? "Success";
      results.add(result);
      assert.equal(record.action, action);
      assert.equal(record.result, result, `${action}: the record's result is the answer's`);
      assert.equal(record.service, "kms");
      assert.equal(record.accountUin, s.dataDir.accountUin);
      assert.equal(record.principalName, "root");
      assert.equal(record.accessKeyId, s.secretId);
      assert.equal(record.sourceIp, "127.0.0.1");
      assert.equal(record.region, s.region);
      assert.equal(record.nodeId, "inproc-test");
      assert.match(record.paramsDigest, /^[0-9a-f]{64}$/);
      assert.ok(record.latencyMs >= 0);
      if ("KeyId" in params || "KeyIds" in params || action === "Decrypt" || action === "ReEncrypt") {
        if (result === "Success") assert.match(record.resourceName, new RegExp(keyId), `${action} names the key it acted on`);
      }
      const writes = ["CreateKey", "EnableKey", "DisableKey", "EnableKeys", "DisableKeys", "UpdateAlias", "UpdateKeyDescription", "ArchiveKey", "CancelKeyArchive"];
      if (writes.includes(action)) assert.equal(record.readOnly, false, `${action} is a write`);
      if (["DescribeKey", "ListKeys", "Encrypt", "Decrypt", "GetRegions"].includes(action)) assert.equal(record.readOnly, true, `${action} reads`);
    }
    assert.ok(results.has("Success") && results.size > 2, "both successes and failures were recorded");
  });

  it("writes one record for auth failures, malformed and unknown requests, naming what it can", async () => {
    const badSignature = await recordOf(() => s.raw("ListKeys", {}, { secretKey: "not-the-secret" }));
    assert.equal(badSignature.record.result, "AuthFailure.SignatureFailure");
    assert.equal(badSignature.record.accessKeyId, s.secretId, "the claimed SecretId");
    assert.equal(badSignature.record.accountUin, "", "no account: the request proved nothing");

    const unknownKey = await recordOf(() => s.raw("ListKeys", {}, { secretId: "AKIDunknownunknown", secretKey: "x" }));
    assert.equal(unknownKey.record.result, "AuthFailure.SecretIdNotFound");

    const expired = await recordOf(() => s.raw("ListKeys", {}, { timestamp: s.clock.seconds() - 3600 }));
    assert.equal(expired.record.result, "AuthFailure.SignatureExpire");

    const malformed = await recordOf(() => s.raw("Encrypt", "{not json"));
    assert.equal(malformed.record.result, "InvalidParameter");
    assert.equal(malformed.record.paramsDigest, "", "nothing parsed, nothing digested");

    const unknownAction = await recordOf(() => s.raw("StealKeys", {}));
    assert.equal(unknownAction.record.result, "InvalidAction");
    assert.equal(unknownAction.record.action, "StealKeys");

    const noAction = await recordOf(() => s.raw(undefined, {}));
    assert.equal(noAction.record.result, "MissingParameter");
    assert.equal(noAction.record.action, "");

    const tooLarge = await recordOf(() => s.raw("Encrypt", { KeyId: keyId, Plaintext: "A".repeat(80 * 1024) }));
    assert.equal(tooLarge.record.result, "RequestSizeLimitExceeded");

    const get = await recordOf(() => s.raw("ListKeys", {}, { method: "GET" }));
    assert.equal(get.record.result, "UnsupportedProtocol");
  });

  it("flags repeated signature failures, policy denials and uses of a key pending deletion", async () => {
    const failures: AuditRecord[] = [];
    for (let i = 0; i < 3; i++) failures.push((await recordOf(() => s.raw("ListKeys", {}, { secretId: "AKIDguessing", secretKey: `guess-${i}` }))).record);
    assert.deepEqual(
      failures.map((r) => r.flags.includes("signature-failures")),
      [false, false, true],
    );

    const cam = (action: string, params: object) => s.raw(action, params, { version: "2019-01-16" });
    const user = (await cam("AddUser", { Name: "flagged", UseApi: 1 })).response as { SecretId: string; SecretKey: string; Uin: number };
    const denied = await recordOf(() => s.raw("Encrypt", { KeyId: keyId, Plaintext: "aGk=" }, { secretId: user.SecretId, secretKey: user.SecretKey }));
    assert.equal(denied.record.result, "UnauthorizedOperation");
    assert.ok(denied.record.flags.includes("policy-denied"));
    assert.equal(denied.record.principalName, "flagged");
    assert.equal(denied.record.principalUin, String(user.Uin));
    const camRecord = await recordOf(() => cam("GetUser", { Name: "flagged" }));
    assert.equal(camRecord.record.service, "cam");
    assert.equal(camRecord.record.result, "Success");

    const doomed = String((await s.call("CreateKey", { Alias: "doomed" })).KeyId);
    await s.call("DisableKey", { KeyId: doomed });
    await s.call("ScheduleKeyDeletion", { KeyId: doomed, PendingWindowInDays: 7 });
    const use = await recordOf(() => s.raw("Encrypt", { KeyId: doomed, Plaintext: "aGk=" }));
    assert.notEqual(use.record.result, "Success");
    assert.ok(use.record.flags.includes("pending-delete-key-use"));
    assert.equal(use.record.resourceName, doomed);
  });

  it("verifies: the chain of everything written so far is intact", async () => {
    const keys = await loadAuditKeys(s.dataDir.store, s.dataDir.rootOfTrust);
    await s.auditor.checkpoint();
    const report = await verifyAudit(await allAuditRecords(s.dataDir.store), await s.dataDir.store.listAuditCheckpoints({ order: "asc" }), keys.publicKey);
    assert.equal(report.ok, true, JSON.stringify(report.firstBad));
    assert.ok(report.records > 40);
  });
});

describe("audit: nothing secret is kept", () => {
  it("keeps no secret key, token, plaintext, data key, ciphertext or signature of a session in the store or an export", async () => {
    const s = await startInProcessServer();
    try {
      const secrets = new Set<string>([s.secretKey]);
      const plaintext = Buffer.from("TRESOR-AUDIT-PLAINTEXT-MARKER-7f3a9c");
      secrets.add(plaintext.toString("base64"));
      const keyId = String((await s.call("CreateKey", { Alias: "grep" })).KeyId);
      const { CiphertextBlob } = await s.call("Encrypt", { KeyId: keyId, Plaintext: plaintext.toString("base64"), EncryptionContext: '{"purpose":"grep-test"}' });
      secrets.add(String(CiphertextBlob));
      const decrypted = await s.call("Decrypt", { CiphertextBlob, EncryptionContext: '{"purpose":"grep-test"}' });
      assert.equal(decrypted.Plaintext, plaintext.toString("base64"));
      const dataKey = await s.call("GenerateDataKey", { KeyId: keyId, KeySpec: "AES_256" });
      secrets.add(String(dataKey.Plaintext));
      secrets.add(String(dataKey.CiphertextBlob));
      const random = await s.call("GenerateRandom", { NumberOfBytes: 32 });
      secrets.add(String(random.Plaintext));

      const target = { url: s.url, secretId: s.secretId, secretKey: s.secretKey, region: s.region };
      const cam = officialClient("cam", target);
      const sts = officialClient("sts", target);
      const user = await cam("AddUser", { Name: "grep-user", UseApi: 1 });
      secrets.add(user.SecretKey);
      const second = await cam("CreateAccessKey", { TargetUin: user.Uin });
      secrets.add(second.AccessKey.SecretAccessKey);
      const trust = { version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${s.dataDir.accountUin}:root`] } }] };
      await cam("CreateRole", { RoleName: "grep-role", PolicyDocument: JSON.stringify(trust) });
      await cam("AttachRolePolicy", { PolicyName: "QcloudKMSCryptoAccess", AttachRoleName: "grep-role" });
      const session = await sts("AssumeRole", { RoleArn: `qcs::cam::uin/${s.dataDir.accountUin}:roleName/grep-role`, RoleSessionName: "grep" });
      secrets.add(session.Credentials.TmpSecretKey);
      secrets.add(session.Credentials.Token);
      const roleKms = officialClient("kms", { ...target, secretId: session.Credentials.TmpSecretId, secretKey: session.Credentials.TmpSecretKey, token: session.Credentials.Token });
      const roleBlob = await roleKms("Encrypt", { KeyId: keyId, Plaintext: plaintext.toString("base64") });
      secrets.add(roleBlob.CiphertextBlob);
      // A request's signature: the raw helper signs with the admin key; its Authorization is not kept.
      const signed = await s.raw("ListKeys", {});
      assert.equal(signed.error, undefined);

      await s.auditor.flush();
      const keys = await loadAuditKeys(s.dataDir.store, s.dataDir.rootOfTrust);
      const work = await mkdtemp(path.join(tmpdir(), "tresor-audit-grep-"));
      try {
        const exported = path.join(work, "audit.jsonl");
        await exportAudit(s.dataDir.store, exported, keys.publicKey);
        const records = await allAuditRecords(s.dataDir.store);
        assert.ok(records.length >= 12, "the session was recorded");
        const haystacks: [string, Buffer][] = [["export", await readFile(exported)], ["records", Buffer.from(JSON.stringify(records))]];
        // The whole database, WAL included: audit rows live there beside everything else.
        for (const name of await readdir(s.dataDir.path)) {
          if (name.startsWith("tresor.db")) haystacks.push([name, await readFile(path.join(s.dataDir.path, name))]);
        }
        for (const secret of secrets) {
          assert.ok(secret.length >= 16, "a secret long enough to be unique");
          for (const [where, bytes] of haystacks) assert.equal(bytes.includes(secret), false, `a secret of the session appears in ${where}`);
        }
        for (const [where, bytes] of haystacks) assert.equal(bytes.includes(plaintext), false, `the plaintext appears in ${where}`);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    } finally {
      await s.stop();
    }
  });
});

describe("audit: fail closed", () => {
  it("refuses every request with InternalError, and changes nothing, while the audit log cannot be written", async () => {
    const parent = await mkdtemp(path.join(tmpdir(), "tresor-audit-closed-"));
    const dir = path.join(parent, "data");
    const credentials = await initDataDir(dir, "local");
    let broken = false;
    const refuse = (ops: StoreOperations): StoreOperations =>
      new Proxy(ops, {
        get(target, name, receiver) {
          if (name === "appendAuditRecords" && broken) return async () => Promise.reject(new Error("disk full"));
          const value = Reflect.get(target, name, receiver) as unknown;
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const failingAppends = (store: Store): Store =>
      new Proxy(store, {
        get(target, name, receiver) {
          if (name === "transaction") return <T>(fn: (tx: StoreOperations) => Promise<T>) => target.transaction((tx) => fn(refuse(tx)));
          if (name === "insertKeyWithinLimit") {
            return (key: KeyRecord, first: KeyVersionRecord | null, max: number, also?: (tx: StoreOperations) => Promise<void>) =>
              target.insertKeyWithinLimit(key, first, max, also && ((tx) => also(refuse(tx))));
          }
          if (name === "appendAuditRecords" && broken) return async () => Promise.reject(new Error("disk full"));
          const value = Reflect.get(target, name, receiver) as unknown;
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const clock = new ManualClock();
    const node = await startNode(
      { dataDir: dir, nodeId: "closed", defaultKeySpec: "SM4", cmkLimit: 100, audit: { pruneIntervalMs: 0 } },
      { clock, wrapStore: failingAppends },
    );
    const { url, service, dataDir } = node;
    const kms = officialClient("kms", { url, secretId: credentials.secretId, secretKey: credentials.secretKey, region: "local" });
    try {
      const keyId = (await kms("CreateKey", { Alias: "before-the-outage" })).KeyId;
      const recordsBefore = (await allAuditRecords(dataDir.store)).length;
      broken = true;
      const refused = async (action: string, params: object) =>
        assert.rejects(kms(action, params), (e: { code?: string }) => e.code === "InternalError");
      await refused("CreateKey", { Alias: "during-the-outage" });
      await refused("DisableKey", { KeyId: keyId });
      await refused("Encrypt", { KeyId: keyId, Plaintext: "aGk=" });
      await refused("ListKeys", {});
      await refused("CreatePolicy", {});
      const caller = rootCaller(dataDir.accountUin);
      const { keys } = await service.listKeyDetail(caller, { offset: 0, limit: 10, role: 0, order: "asc" });
      assert.deepEqual(
        keys.map((k) => [k.alias, k.state]),
        [["before-the-outage", "Enabled"]],
        "no key made, none disabled",
      );
      assert.equal((await allAuditRecords(dataDir.store)).length, recordsBefore);
      broken = false;
      assert.equal((await kms("Encrypt", { KeyId: keyId, Plaintext: "aGk=" })).KeyId, keyId, "back to normal once the log can be written");
    } finally {
      await node.close();
      await rm(parent, { recursive: true, force: true });
    }
  });
});
