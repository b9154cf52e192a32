// Hostile and malformed requests at the protocol and authentication layers. Each answer is HTTP 200
// with the exact Tencent error code and a message naming what was wrong, and nothing changes.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertError, snapshotKeys, startInProcessServer, type InProcessServer, type RawOptions } from "./helpers-inprocess.js";

let s: InProcessServer;
let keyId: string;

before(async () => {
  s = await startInProcessServer();
  keyId = (await s.call("CreateKey", { Alias: "protocol-key", Description: "kept as it is" })).KeyId as string;
});

after(async () => {
  await s.stop();
});

/** Sends the request, checks the error and that no key record changed. */
async function refused(action: string | undefined, body: string | Buffer | object, code: string, mentions: string[], options: RawOptions = {}) {
  const before = (await snapshotKeys(s.service, s.caller));
  const r = await s.raw(action, body, options);
  assertError(r, code, ...mentions);
  assert.equal((await snapshotKeys(s.service, s.caller)), before, "a refused request changed the keys");
  return r;
}

describe("protocol", () => {
  it("accepts a well-formed request (the baseline the cases below break)", async () => {
    const r = await s.raw("DescribeKey", { KeyId: keyId });
    assert.equal(r.status, 200);
    assert.equal(r.error, undefined, r.text);
    assert.equal((r.response.KeyMetadata as { KeyId: string }).KeyId, keyId);
  });

  it("refuses an unknown X-TC-Action with InvalidAction", async () => {
    await refused("DeleteEverything", { KeyId: keyId }, "InvalidAction", ["DeleteEverything"]);
  });

  it("refuses action names that are Object.prototype members with InvalidAction", async () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
      await refused(name, {}, "InvalidAction", [name]);
    }
  });

  it("matches action names exactly (case-sensitive)", async () => {
    await refused("describekey", { KeyId: keyId }, "InvalidAction", ["describekey"]);
  });

  it("refuses a request without X-TC-Action, naming the header", async () => {
    // Tencent answers a missing Action with MissingParameter (InvalidAction is for names that do not exist).
    await refused(undefined, { KeyId: keyId }, "MissingParameter", ["X-TC-Action"]);
  });

  it("refuses another X-TC-Version with NoSuchVersion", async () => {
    await refused("DescribeKey", { KeyId: keyId }, "NoSuchVersion", ["X-TC-Version"], { version: "2017-03-12" });
  });

  it("refuses a request without X-TC-Version", async () => {
    await refused("DescribeKey", { KeyId: keyId }, "MissingParameter", ["X-TC-Version"], { omit: ["x-tc-version"] });
  });

  it("refuses another region with UnsupportedRegion", async () => {
    await refused("DescribeKey", { KeyId: keyId }, "UnsupportedRegion", ["X-TC-Region", "ap-guangzhou"], { region: "ap-guangzhou" });
  });

  it("serves a request without X-TC-Region (the SDK omits it when none is set)", async () => {
    const r = await s.raw("DescribeKey", { KeyId: keyId }, { region: null });
    assert.equal(r.error, undefined, r.text);
  });

  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    it(`answers ${method} / with UnsupportedProtocol`, async () => {
      await refused("DescribeKey", method === "GET" ? "" : { KeyId: keyId }, "UnsupportedProtocol", [method], { method });
    });
  }

  for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "application/json-patch+json"]) {
    it(`refuses Content-Type ${contentType} with UnsupportedProtocol`, async () => {
      await refused("CreateKey", { Alias: "never-created" }, "UnsupportedProtocol", ["Content-Type"], { contentType });
    });
  }

  it("refuses a request without Content-Type", async () => {
    await refused("CreateKey", { Alias: "never-created" }, "UnsupportedProtocol", ["Content-Type"], { omit: ["content-type"] });
  });

  it("accepts application/json; charset=utf-8", async () => {
    const r = await s.raw("DescribeKey", { KeyId: keyId }, { contentType: "application/json; charset=utf-8" });
    assert.equal(r.error, undefined, r.text);
  });

  for (const [label, body] of [
    ["truncated JSON", '{"Alias":"x"'],
    ["a trailing comma", '{"Alias":"x",}'],
    ["single quotes", "{'Alias':'x'}"],
    ["a bare word", "CreateKey"],
    ["two objects", '{"Alias":"a"}{"Alias":"b"}'],
    ["NaN", '{"Alias":NaN}'],
    ["a byte-order mark", '\ufeff{"Alias":"x"}'],
  ] as const) {
    it(`refuses a body with ${label} with InvalidParameter`, async () => {
      await refused("CreateKey", body, "InvalidParameter", ["JSON"]);
    });
  }

  for (const [label, body] of [
    ["an array", '[{"Alias":"x"}]'],
    ["a number", "42"],
    ["a string", '"Alias"'],
    ["null", "null"],
    ["true", "true"],
  ] as const) {
    it(`refuses a JSON body that is ${label} with InvalidParameter`, async () => {
      await refused("CreateKey", body, "InvalidParameter", ["JSON object"]);
    });
  }

  it("refuses a body over 64 KiB with RequestSizeLimitExceeded", async () => {
    const body = JSON.stringify({ Alias: "too-big", Description: "d".repeat(64 * 1024) });
    await refused("CreateKey", body, "RequestSizeLimitExceeded", ["65536"]);
  });

  it("takes a body of exactly 64 KiB past the size check", async () => {
    const prefix = '{"Alias":"exact-limit","Description":"';
    const body = prefix + "d".repeat(64 * 1024 - prefix.length - 2) + '"}';
    assert.equal(Buffer.byteLength(body), 64 * 1024);
    // Within the limit, so the next check answers: the description is too long.
    await refused("CreateKey", body, "InvalidParameterValue", ["Description"]);
  });

  it("refuses a 5 MB body and stays up", async () => {
    const body = JSON.stringify({ Alias: "huge", Description: "d".repeat(5 * 1024 * 1024) });
    await refused("CreateKey", body, "RequestSizeLimitExceeded", []);
    const r = await s.raw("DescribeKey", { KeyId: keyId });
    assert.equal(r.error, undefined, r.text);
  });

  it("refuses __proto__ in the body as an unknown parameter, without polluting prototypes", async () => {
    await refused("CreateKey", '{"Alias":"proto-1","__proto__":{"polluted":"yes"}}', "UnknownParameter", ["__proto__"]);
    await refused("CreateKey", '{"Alias":"proto-2","Tags":[{"TagKey":"a","TagValue":"b","__proto__":{"polluted":"yes"}}]}', "UnknownParameter", [
      "Tags.0.__proto__",
    ]);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    assert.equal((Object.prototype as { polluted?: unknown }).polluted, undefined);
  });

  it("refuses constructor.prototype in the body as an unknown parameter, without polluting prototypes", async () => {
    await refused("CreateKey", '{"Alias":"ctor-1","constructor":{"prototype":{"polluted":"yes"}}}', "UnknownParameter", ["constructor"]);
    await refused("ListKeys", '{"constructor":{"prototype":{"polluted":"yes"}}}', "UnknownParameter", ["constructor"]);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
  });

  it("keeps __proto__ inside an EncryptionContext as data, without polluting prototypes", async () => {
    await refused("Encrypt", { KeyId: keyId, Plaintext: "AAAA", EncryptionContext: '{"__proto__":{"polluted":"yes"}}' }, "InvalidParameterValue", ["EncryptionContext"]);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
  });

  it("refuses deeply nested JSON in a parameter without crashing", async () => {
    const depth = 30_000;
    await refused("CreateKey", `{"Alias":${"[".repeat(depth)}${"]".repeat(depth)}}`, "InvalidParameter", ["Alias"]);
    await refused("CreateKey", `{"Alias":"deep","Deep":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`, "UnknownParameter", ["Deep"]);
    const r = await s.raw("DescribeKey", { KeyId: keyId });
    assert.equal(r.error, undefined, r.text);
  });

  it("names an unknown parameter spelled in other scripts", async () => {
    await refused("CreateKey", { Alias: "unicode-param", "别名": "x" }, "UnknownParameter", ["别名"]);
  });

  it("refuses an alias with non-ASCII letters", async () => {
    await refused("CreateKey", { Alias: "ключ" }, "InvalidParameterValue.InvalidAlias", ["Alias"]);
    await refused("CreateKey", { Alias: "key\u0000" }, "InvalidParameterValue.InvalidAlias", ["Alias"]);
  });

  it("stores and returns a multi-script description exactly", async () => {
    const description = "密钥 🔑 ключ é\u0301 \u202e";
    const created = await s.call("CreateKey", { Alias: "unicode-description", Description: description });
    const r = await s.call("DescribeKey", { KeyId: created.KeyId as string });
    assert.equal((r.KeyMetadata as { Description: string }).Description, description);
  });

  it("does not store a description that is not well-formed UTF-16 (lone surrogate) as something else", async () => {
    const created = await s.call("CreateKey", { Alias: "surrogate-target", Description: "before" });
    const id = created.KeyId as string;
    const before = (await snapshotKeys(s.service, s.caller));
    // JSON can carry a lone surrogate that no UTF-8 string can hold.
    const r = await s.raw("UpdateKeyDescription", `{"KeyId":"${id}","Description":"x\\ud800y"}`);
    if (r.error) {
      assertError(r, "InvalidParameterValue", "Description");
      assert.equal((await snapshotKeys(s.service, s.caller)), before);
    } else {
      // Accepted: then it must read back as sent, not silently turned into replacement characters.
      assert.equal((await s.service.describeKey(s.caller, id)).description, "x\ud800y", "the stored description differs from the accepted one");
    }
  });

  it("refuses a body that is not valid UTF-8 rather than storing replacement characters", async () => {
    const created = await s.call("CreateKey", { Alias: "utf8-target", Description: "before" });
    const body = Buffer.concat([Buffer.from(`{"KeyId":"${created.KeyId as string}","Description":"x`), Buffer.from([0xff, 0xfe]), Buffer.from('y"}')]);
    await refused("UpdateKeyDescription", body, "InvalidParameter", ["body"]);
  });

  it("answers GET /healthz without authentication", async () => {
    const res = await fetch(`${s.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });
});

describe("authentication", () => {
  const missingKeyId = "00000000-0000-4000-8000-000000000000";

  /** The same bad authentication against an existing and a missing key: the answers must not differ. */
  async function refusedAlike(code: string, mentions: string[], options: RawOptions) {
    const a = await refused("DescribeKey", { KeyId: keyId }, code, mentions, options);
    const b = await refused("DescribeKey", { KeyId: missingKeyId }, code, mentions, options);
    assert.deepEqual(b.error, a.error, "the answer reveals whether the key exists");
    // Nor may a write get through.
    await refused("UpdateKeyDescription", { KeyId: keyId, Description: "changed by an attacker" }, code, mentions, options);
    await refused("CreateKey", { Alias: "attacker-key" }, code, mentions, options);
  }

  it("refuses a request without Authorization", async () => {
    await refusedAlike("AuthFailure.InvalidAuthorization", ["Authorization"], { omit: ["authorization"] });
  });

  for (const [label, value] of [
    ["garbage", "garbage"],
    ["an empty value", ""],
    ["a Bearer token", "Bearer abc.def.ghi"],
    ["a truncated signature", "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-01/kms/tc3_request, SignedHeaders=content-type;host, Signature=abc"],
    ["an upper-case signature", `TC3-HMAC-SHA256 Credential=AKIDx/2024-01-01/kms/tc3_request, SignedHeaders=content-type;host, Signature=${"A".repeat(64)}`],
  ] as const) {
    it(`refuses an Authorization that is ${label}`, async () => {
      await refusedAlike("AuthFailure.InvalidAuthorization", ["Authorization"], { headers: { authorization: value } });
    });
  }

  for (const algorithm of ["TC3-HMAC-SHA1", "HmacSHA256", "AWS4-HMAC-SHA256", "tc3-hmac-sha256"]) {
    it(`refuses the algorithm ${algorithm}`, async () => {
      // A correct header with only its algorithm name swapped.
      await refusedAlike("AuthFailure.InvalidAuthorization", ["Authorization"], { mutateAuthorization: (a) => a.replace(/^TC3-HMAC-SHA256/, algorithm) });
    });
  }

  it("refuses SignedHeaders without host", async () => {
    await refusedAlike("AuthFailure.InvalidAuthorization", ["SignedHeaders"], { signedHeaders: ["content-type"] });
  });

  it("refuses SignedHeaders without content-type", async () => {
    await refusedAlike("AuthFailure.InvalidAuthorization", ["SignedHeaders"], { signedHeaders: ["host"] });
  });

  it("accepts the official SDK's signing: content-type and host only", async () => {
    const r = await s.raw("DescribeKey", { KeyId: keyId }, { signedHeaders: ["content-type", "host"] });
    assert.equal(r.error, undefined, r.text);
  });

  it("refuses a request whose signed X-TC-Action was changed after signing", async () => {
    await refused("UpdateKeyDescription", { KeyId: keyId, Description: "changed by an attacker" }, "AuthFailure.SignatureFailure", ["signature"], {
      signedValues: { "x-tc-action": "DescribeKey" },
    });
  });

  it("binds an unsigned-action signature to its first action: the same signature as another action is refused", async () => {
    // The official SDK signs neither X-TC-Action nor a nonce, so two actions with the same body in
    // the same second carry the same signature. The old server served both (a captured request
    // replayed as any other action): now only the first action is served.
    const timestamp = s.clock.seconds();
    const sdkStyle = { timestamp, signedHeaders: ["content-type", "host"] } as const;
    const first = await s.raw("DescribeKey", { KeyId: keyId }, sdkStyle);
    assert.equal(first.error, undefined, first.text);
    for (const action of ["DisableKey", "GetKeyRotationStatus", "ScheduleKeyDeletion"]) {
      const r = await s.raw(action, { KeyId: keyId }, sdkStyle);
      assert.equal(r.error?.Code, "AuthFailure.SignatureFailure", `${action}: ${r.text}`);
      assert.match(r.error!.Message, /already used for another action/);
    }
    const again = await s.raw("DescribeKey", { KeyId: keyId }, sdkStyle);
    assert.equal(again.error, undefined, `the same action with the same signature is still served: ${again.text}`);
    assert.equal((again.response.KeyMetadata as { KeyState: string }).KeyState, "Enabled");
    // A client that signs x-tc-action may send the same body as several actions in one second.
    for (const action of ["DescribeKey", "GetKeyRotationStatus"]) {
      const r = await s.raw(action, { KeyId: keyId }, { timestamp });
      assert.equal(r.error, undefined, r.text);
    }
  });

  it("lets one unsigned-action signature serve the service-information actions, and nothing else", async () => {
    // GetServiceStatus, ListAlgorithms and GetRegions share the body "{}" and disclose nothing of
    // the account's keys or principals: an SDK client asking for them in one second is served.
    const timestamp = s.clock.seconds() + 1;
    const sdkStyle = { timestamp, signedHeaders: ["content-type", "host"] } as const;
    for (const action of ["GetServiceStatus", "ListAlgorithms", "GetRegions"]) {
      const r = await s.raw(action, {}, sdkStyle);
      assert.equal(r.error, undefined, r.text);
    }
    for (const action of ["ListKeys", "ListKeyDetail", "GetParametersForImport"]) {
      const r = await s.raw(action, {}, sdkStyle);
      assert.equal(r.error?.Code, "AuthFailure.SignatureFailure", `${action}: ${r.text}`);
    }
  });

  it("refuses an unknown SecretId with AuthFailure.SecretIdNotFound", async () => {
    await refusedAlike("AuthFailure.SecretIdNotFound", ["SecretId"], { secretId: "AKIDdoesnotexist0000000000000000000" });
  });

  it("refuses a wrong signature with AuthFailure.SignatureFailure", async () => {
    await refusedAlike("AuthFailure.SignatureFailure", ["signature"], { secretKey: "not-the-secret-key" });
  });

  it("refuses a signature one hex digit off", async () => {
    await refusedAlike("AuthFailure.SignatureFailure", ["signature"], { mutateAuthorization: (a) => a.slice(0, -1) + (a.endsWith("0") ? "1" : "0") });
  });

  it("refuses a body changed after signing", async () => {
    await refused("UpdateKeyDescription", { KeyId: keyId, Description: "changed by an attacker" }, "AuthFailure.SignatureFailure", ["signature"], {
      signedBody: JSON.stringify({ KeyId: keyId, Description: "kept as it is" }),
    });
    await refused("CreateKey", { Alias: "attacker-key" }, "AuthFailure.SignatureFailure", ["signature"], { signedBody: JSON.stringify({ Alias: "other" }) });
  });

  it("refuses a host changed after signing", async () => {
    await refusedAlike("AuthFailure.SignatureFailure", ["signature"], { signedHost: "kms.tencentcloudapi.com" });
  });

  it("refuses a content type changed after signing", async () => {
    await refusedAlike("AuthFailure.SignatureFailure", ["signature"], { contentType: "application/json; charset=utf-8", signedValues: { "content-type": "application/json" } });
  });

  it("refuses a signed header that is not sent", async () => {
    await refusedAlike("AuthFailure.InvalidAuthorization", ["x-tc-language"], { signedHeaders: ["content-type", "host", "x-tc-language"] });
  });

  it("accepts a timestamp 300 s away either way, refuses 301 s with AuthFailure.SignatureExpire", async () => {
    const now = s.clock.seconds();
    for (const ts of [now - 300, now + 300]) {
      const r = await s.raw("DescribeKey", { KeyId: keyId }, { timestamp: ts });
      assert.equal(r.error, undefined, `timestamp ${ts - now}: ${r.text}`);
    }
    for (const ts of [now - 301, now + 301, now - 86_400 * 365, now + 86_400 * 365, 0]) {
      await refusedAlike("AuthFailure.SignatureExpire", ["X-TC-Timestamp"], { timestamp: ts });
    }
  });

  it("refuses a request that was valid when signed once the server clock moves past 5 minutes", async () => {
    const signedAt = s.clock.seconds();
    s.clock.advance(301_000);
    try {
      await refusedAlike("AuthFailure.SignatureExpire", ["X-TC-Timestamp"], { timestamp: signedAt });
    } finally {
      s.clock.advance(-301_000);
    }
  });

  it("refuses a request without X-TC-Timestamp", async () => {
    await refusedAlike("MissingParameter", ["X-TC-Timestamp"], { omit: ["x-tc-timestamp"] });
  });

  for (const [label, value] of [
    ["not a number", "yesterday"],
    ["negative", "-5"],
    ["fractional", "1700000000.5"],
    ["in milliseconds", "1700000000000"],
  ] as const) {
    it(`refuses an X-TC-Timestamp that is ${label}`, async () => {
      const r = await s.raw("DescribeKey", { KeyId: keyId }, { headers: { "x-tc-timestamp": value } });
      // Not unix seconds at all, or far from now: either way, refused by name.
      assert.ok(r.error && ["InvalidParameter", "AuthFailure.SignatureExpire"].includes(r.error.Code), r.text);
      assertError(r, r.error.Code, "X-TC-Timestamp");
      await refusedAlike(r.error.Code, ["X-TC-Timestamp"], { headers: { "x-tc-timestamp": value } });
    });
  }

  it("refuses a credential date that does not match the timestamp", async () => {
    const now = s.clock.seconds();
    await refusedAlike("AuthFailure.SignatureFailure", ["date"], { credentialTimestamp: now - 86_400 });
    await refusedAlike("AuthFailure.SignatureFailure", ["date"], { credentialTimestamp: now + 86_400 });
  });

  it("refuses X-TC-Token with AuthFailure.TokenFailure", async () => {
    await refusedAlike("AuthFailure.TokenFailure", ["X-TC-Token"], { headers: { "x-tc-token": "temporary-session-token" } });
  });

  it("never puts the SecretKey into an answer or a log line", () => {
    assert.ok(!s.logs.text().includes(s.secretKey));
    assert.ok(s.logs.lines.length > 0);
  });

  it("logged no internal error for any of these requests", () => {
    const internal = s.logs.records().filter((r) => r.code === "InternalError" || r.level === 50);
    assert.deepEqual(internal, []);
  });
});
