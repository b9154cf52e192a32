// End to end: a real `tresor serve` process on an ephemeral port, driven through the official
// tencentcloud-sdk-nodejs KMS client and through tresor/sdk, every action of the foundation.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { KmsClient, KmsClientError } from "tresor/sdk";
import { startServer, type TestServer } from "../helpers/server.js";
import { officialKmsClient, type OfficialCall } from "../helpers/official-client.js";


type Call = OfficialCall;


function tresorClient(server: TestServer): { call: Call; client: KmsClient } {
  const client = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
  const camel = (action: string) => action[0]!.toLowerCase() + action.slice(1);
  const call: Call = (action, params = {}) => {
    const method = (client as unknown as Record<string, (p: object) => Promise<Record<string, any>>>)[camel(action)];
    assert.ok(method, `tresor/sdk has a method for ${action}`);
    return method.call(client, params);
  };
  return { call, client };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    const got = (e as { code?: unknown }).code;
    assert.equal(got, code, `expected error ${code}, got ${String(got)}: ${(e as Error).message}`);
    return true;
  });
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

/** Distinctive values that must never reach the server's log. */
const secrets: string[] = [];
function secretPlaintext(label: string): string {
  const value = `tresor-e2e-${label}-${randomBytes(12).toString("hex")}`;
  secrets.push(value, b64(value));
  return value;
}

describe("end to end", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    secrets.push(server.secretKey);
  });
  after(async () => {
    await server.stop();
  });

  for (const driver of ["tencentcloud-sdk-nodejs", "tresor/sdk"] as const) {
    describe(`through ${driver}`, () => {
      let call: Call;
      let close = () => {};
      const tag = driver === "tresor/sdk" ? "own" : "tc";
      before(() => {
        if (driver === "tresor/sdk") {
          const t = tresorClient(server);
          call = t.call;
          close = () => t.client.close();
        } else {
          call = officialKmsClient(server);
        }
      });
      after(() => close());

      let sm4Key: string;
      let aesKey: string;

      it("CreateKey makes SM4 keys by default and AES-256 keys on request", async () => {
        const created = await call("CreateKey", { Alias: `${tag}-sm4`, Description: "first key", Tags: [{ TagKey: "team", TagValue: "pay" }] });
        assert.match(created.KeyId, /^[0-9a-f-]{36}$/);
        assert.equal(created.Alias, `${tag}-sm4`);
        assert.equal(created.KeyState, "Enabled");
        assert.equal(created.KeyUsage, "ENCRYPT_DECRYPT");
        assert.equal(created.Description, "first key");
        assert.equal(typeof created.RequestId, "string");
        sm4Key = created.KeyId;
        const aes = await call("CreateKey", { Alias: `${tag}-aes`, KeySpec: "AES_256" });
        aesKey = aes.KeyId;

        const sm4Meta = (await call("DescribeKey", { KeyId: sm4Key })).KeyMetadata;
        assert.equal(sm4Meta.Type, 4);
        assert.equal(sm4Meta.KeySpec, "SM4");
        assert.equal(sm4Meta.Origin, "TENCENT_KMS");
        assert.equal(sm4Meta.ResourceId, `creatorUin/${sm4Meta.CreatorUin}/${sm4Key}`);
        const aesMeta = (await call("DescribeKey", { KeyId: aesKey })).KeyMetadata;
        assert.equal(aesMeta.Type, 2);
        assert.equal(aesMeta.KeySpec, "AES_256");
        await rejectsWith(call("CreateKey", { Alias: `${tag}-sm4` }), "InvalidParameterValue.AliasAlreadyExists");
      });

      it("Encrypt and Decrypt round-trip under both specs, binding the encryption context", async () => {
        for (const keyId of [sm4Key, aesKey]) {
          const plaintext = secretPlaintext("encrypt");
          const context = JSON.stringify({ purpose: "e2e", tenant: tag });
          const enc = await call("Encrypt", { KeyId: keyId, Plaintext: b64(plaintext), EncryptionContext: context });
          assert.equal(enc.KeyId, keyId);
          const dec = await call("Decrypt", { CiphertextBlob: enc.CiphertextBlob, EncryptionContext: JSON.stringify({ tenant: tag, purpose: "e2e" }) });
          assert.equal(dec.KeyId, keyId);
          assert.equal(Buffer.from(dec.Plaintext, "base64").toString(), plaintext);
          await rejectsWith(call("Decrypt", { CiphertextBlob: enc.CiphertextBlob }), "InvalidParameterValue.InvalidCiphertext");
          await rejectsWith(
            call("Decrypt", { CiphertextBlob: enc.CiphertextBlob, EncryptionContext: JSON.stringify({ purpose: "other", tenant: tag }) }),
            "InvalidParameterValue.InvalidCiphertext",
          );
        }
        const max = randomBytes(4096);
        const enc = await call("Encrypt", { KeyId: sm4Key, Plaintext: max.toString("base64") });
        const dec = await call("Decrypt", { CiphertextBlob: enc.CiphertextBlob });
        assert.deepEqual(Buffer.from(dec.Plaintext, "base64"), max);
        await rejectsWith(call("Encrypt", { KeyId: sm4Key, Plaintext: randomBytes(4097).toString("base64") }), "InvalidParameterValue.InvalidPlaintext");
      });

      it("ReEncrypt moves a ciphertext to another key, and leaves an unchanged one alone", async () => {
        const plaintext = secretPlaintext("reencrypt");
        const enc = await call("Encrypt", { KeyId: sm4Key, Plaintext: b64(plaintext), EncryptionContext: '{"a":"1"}' });
        const same = await call("ReEncrypt", { CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: '{"a":"1"}', DestinationEncryptionContext: '{"a":"1"}' });
        assert.equal(same.ReEncrypted, false);
        assert.equal(same.CiphertextBlob, enc.CiphertextBlob);
        assert.equal(same.SourceKeyId, sm4Key);
        const moved = await call("ReEncrypt", {
          CiphertextBlob: enc.CiphertextBlob,
          DestinationKeyId: aesKey,
          SourceEncryptionContext: '{"a":"1"}',
          DestinationEncryptionContext: '{"b":"2"}',
        });
        assert.equal(moved.ReEncrypted, true);
        assert.equal(moved.KeyId, aesKey);
        assert.equal(moved.SourceKeyId, sm4Key);
        const dec = await call("Decrypt", { CiphertextBlob: moved.CiphertextBlob, EncryptionContext: '{"b":"2"}' });
        assert.equal(dec.KeyId, aesKey);
        assert.equal(Buffer.from(dec.Plaintext, "base64").toString(), plaintext);
        await rejectsWith(call("ReEncrypt", { CiphertextBlob: enc.CiphertextBlob }), "InvalidParameterValue.InvalidCiphertext");
      });

      it("GenerateDataKey returns a data key and its ciphertext under the CMK", async () => {
        for (const [params, length] of [
          [{ KeySpec: "AES_128" }, 16],
          [{ KeySpec: "AES_256" }, 32],
          [{ NumberOfBytes: 1024 }, 1024],
          [{ KeySpec: "AES_128", NumberOfBytes: 7 }, 7],
        ] as const) {
          const dk = await call("GenerateDataKey", { KeyId: aesKey, EncryptionContext: '{"f":"x"}', ...params });
          secrets.push(dk.Plaintext);
          assert.equal(dk.KeyId, aesKey);
          assert.equal(Buffer.from(dk.Plaintext, "base64").length, length);
          const dec = await call("Decrypt", { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: '{"f":"x"}' });
          assert.equal(dec.Plaintext, dk.Plaintext);
        }
        await rejectsWith(call("GenerateDataKey", { KeyId: aesKey }), "MissingParameter");
      });

      it("GenerateRandom returns the requested number of bytes", async () => {
        for (const n of [1, 32, 1024]) {
          const r = await call("GenerateRandom", { NumberOfBytes: n });
          secrets.push(r.Plaintext);
          assert.equal(Buffer.from(r.Plaintext, "base64").length, n);
        }
        const a = await call("GenerateRandom", { NumberOfBytes: 32 });
        const b = await call("GenerateRandom", { NumberOfBytes: 32 });
        assert.notEqual(a.Plaintext, b.Plaintext);
        await rejectsWith(call("GenerateRandom", { NumberOfBytes: 1025 }), "InvalidParameterValue");
      });

      it("DisableKey stops use, EnableKey restores it; the batch forms are all or nothing", async () => {
        const enc = await call("Encrypt", { KeyId: sm4Key, Plaintext: b64("x") });
        await call("DisableKey", { KeyId: sm4Key });
        assert.equal((await call("DescribeKey", { KeyId: sm4Key })).KeyMetadata.KeyState, "Disabled");
        await rejectsWith(call("Encrypt", { KeyId: sm4Key, Plaintext: b64("x") }), "ResourceUnavailable.CmkDisabled");
        await rejectsWith(call("Decrypt", { CiphertextBlob: enc.CiphertextBlob }), "ResourceUnavailable.CmkDisabled");
        await rejectsWith(call("GenerateDataKey", { KeyId: sm4Key, KeySpec: "AES_256" }), "ResourceUnavailable.CmkDisabled");
        await call("EnableKey", { KeyId: sm4Key });
        await call("Decrypt", { CiphertextBlob: enc.CiphertextBlob });

        await call("DisableKeys", { KeyIds: [sm4Key, aesKey] });
        const both = await call("DescribeKeys", { KeyIds: [sm4Key, aesKey] });
        assert.deepEqual(both.KeyMetadatas.map((m: { KeyState: string }) => m.KeyState), ["Disabled", "Disabled"]);
        const missing = "00000000-0000-4000-8000-000000000000";
        await rejectsWith(call("EnableKeys", { KeyIds: [sm4Key, missing] }), "ResourceUnavailable.CmkNotFound");
        assert.equal((await call("DescribeKey", { KeyId: sm4Key })).KeyMetadata.KeyState, "Disabled", "a failed batch changes nothing");
        await call("EnableKeys", { KeyIds: [sm4Key, aesKey] });
        const again = await call("DescribeKeys", { KeyIds: [sm4Key, aesKey] });
        assert.deepEqual(again.KeyMetadatas.map((m: { KeyState: string }) => m.KeyState), ["Enabled", "Enabled"]);
        await rejectsWith(call("DescribeKeys", { KeyIds: [sm4Key, sm4Key] }), "InvalidParameterValue.DuplicatedKeyId");
      });

      it("UpdateAlias and UpdateKeyDescription change the metadata", async () => {
        await call("UpdateAlias", { KeyId: aesKey, Alias: `${tag}-aes-renamed` });
        await call("UpdateKeyDescription", { KeyId: aesKey, Description: "described again ✓" });
        const meta = (await call("DescribeKey", { KeyId: aesKey })).KeyMetadata;
        assert.equal(meta.Alias, `${tag}-aes-renamed`);
        assert.equal(meta.Description, "described again ✓");
        await rejectsWith(call("UpdateAlias", { KeyId: aesKey, Alias: `${tag}-sm4` }), "InvalidParameterValue.AliasAlreadyExists");
        await rejectsWith(call("UpdateAlias", { KeyId: aesKey, Alias: "-bad" }), "InvalidParameterValue.InvalidAlias");
      });

      it("ListKeys and ListKeyDetail page, order and filter", async () => {
        const extra: string[] = [];
        for (let i = 0; i < 3; i++) extra.push((await call("CreateKey", { Alias: `${tag}-list-${i}`, Tags: [{ TagKey: `batch-${tag}`, TagValue: `v${i}` }] })).KeyId);
        await call("DisableKey", { KeyId: extra[1] });

        const all = await call("ListKeys", { Limit: 200 });
        for (const id of [sm4Key, aesKey, ...extra]) assert.ok(all.Keys.some((k: { KeyId: string }) => k.KeyId === id), `ListKeys includes ${id}`);
        assert.equal(all.TotalCount, all.Keys.length);
        const page = await call("ListKeys", { Offset: 1, Limit: 2 });
        assert.equal(page.Keys.length, 2);
        assert.equal(page.TotalCount, all.TotalCount);
        assert.deepEqual(page.Keys, all.Keys.slice(1, 3));

        const mine = await call("ListKeyDetail", { SearchKeyAlias: `${tag}-list-`, Limit: 10, OrderType: 1 });
        assert.deepEqual(mine.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId), extra, "ascending creation order");
        assert.equal(mine.TotalCount, 3);
        const desc = await call("ListKeyDetail", { SearchKeyAlias: `${tag}-list-`, Limit: 10, OrderType: 0 });
        assert.deepEqual(desc.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId), [...extra].reverse());
        const disabled = await call("ListKeyDetail", { SearchKeyAlias: `${tag}-list-`, KeyState: 2 });
        assert.deepEqual(disabled.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId), [extra[1]]);
        const tagged = await call("ListKeyDetail", { TagFilters: [{ TagKey: `batch-${tag}`, TagValue: ["v0", "v2"] }], Limit: 10 });
        assert.deepEqual(tagged.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId).sort(), [extra[0], extra[2]].sort());
        const byId = await call("ListKeyDetail", { SearchKeyAlias: sm4Key.slice(0, 13) });
        assert.ok(byId.KeyMetadatas.some((m: { KeyId: string }) => m.KeyId === sm4Key), "search matches key ids too");
        const external = await call("ListKeyDetail", { Origin: "EXTERNAL" });
        assert.equal(external.TotalCount, 0);
        const everyUsage = await call("ListKeyDetail", { KeyUsage: "ALL", Limit: 200 });
        assert.ok(everyUsage.TotalCount >= 5);
        const cloudProducts = await call("ListKeyDetail", { Role: 1 });
        assert.equal(cloudProducts.TotalCount, 0);
        const paged = await call("ListKeyDetail", { SearchKeyAlias: `${tag}-list-`, Offset: 2, Limit: 1, OrderType: 1 });
        assert.deepEqual(paged.KeyMetadatas.map((m: { KeyId: string }) => m.KeyId), [extra[2]]);
        assert.equal(paged.TotalCount, 3);
      });

      it("GetServiceStatus, ListAlgorithms and GetRegions describe the service", async () => {
        const status = await call("GetServiceStatus");
        assert.equal(status.ServiceEnabled, true);
        assert.ok(status.CmkUserCount >= 5);
        assert.ok(status.CmkLimit >= status.CmkUserCount);
        const algorithms = await call("ListAlgorithms");
        assert.deepEqual(
          algorithms.SymmetricAlgorithms.filter((a: { KeyUsage: string }) => a.KeyUsage === "ENCRYPT_DECRYPT").map((a: { Algorithm: string }) => a.Algorithm).sort(),
          ["AES_256", "SM4"],
        );
        assert.deepEqual((await call("GetRegions")).Regions, [server.region]);
      });

      it("errors carry Tencent's codes and a request id", async () => {
        await rejectsWith(call("DescribeKey", { KeyId: "00000000-0000-4000-8000-000000000000" }), "ResourceUnavailable.CmkNotFound");
        await rejectsWith(call("DescribeKey", { KeyId: "not-a-key" }), "InvalidParameterValue.InvalidKeyId");
        try {
          await call("DescribeKey", { KeyId: "not-a-key" });
          assert.fail("expected an error");
        } catch (e) {
          assert.match(String((e as { requestId?: unknown }).requestId), /^[0-9a-f-]{36}$/);
          assert.match((e as Error).message, /"KeyId"/);
        }
      });
    });
  }

  it("the official client gets UnsupportedRegion for another region", async () => {
    await rejectsWith(officialKmsClient(server, { region: "ap-guangzhou" })("GetRegions"), "UnsupportedRegion");
  });

  it("a wrong SecretKey is refused, and tresor/sdk surfaces it as KmsClientError", async () => {
    const client = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: "x".repeat(40), region: server.region });
    try {
      await assert.rejects(client.getRegions(), (e: unknown) => e instanceof KmsClientError && e.code === "AuthFailure.SignatureFailure");
    } finally {
      client.close();
    }
  });

  it("GET /healthz answers without authentication", async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });

  it("logs one structured line per request and never a secret, plaintext or data key", async () => {
    const lines = server
      .logs()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === "request");
    assert.ok(requests.length > 50, `expected many request lines, got ${requests.length}`);
    for (const r of requests) {
      assert.match(String(r.requestId), /^[0-9a-f-]{36}$/);
      assert.equal(typeof r.action, "string");
      assert.equal(typeof r.code, "string");
      assert.equal(typeof r.latencyMs, "number");
      for (const forbidden of ["Plaintext", "CiphertextBlob", "EncryptionContext", "params", "body", "headers"]) {
        assert.ok(!(forbidden in r), `a request line has no ${forbidden}`);
      }
    }
    assert.ok(requests.some((r) => r.action === "Encrypt" && r.code === "Success"));
    assert.ok(requests.some((r) => r.code === "ResourceUnavailable.CmkDisabled"));
    const text = server.logs();
    assert.ok(secrets.length > 20);
    for (const secret of secrets) assert.ok(!text.includes(secret), "the server log contains a secret, plaintext or data key");
  });
});
