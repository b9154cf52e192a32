// The CLI's one vocabulary (src/cli/vocabulary.ts, docs/cli.md), unit by unit: --context in both
// spellings, key ids in any case, times for people and for scripts, and errors in CLI terms.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidArgumentError } from "commander";
import { cliErrorLines, contextArg, humanTime, isKeyId, isoTime, timeArg, withIsoTimes } from "../../src/cli/vocabulary.js";
import { KmsClientError } from "../../src/sdk/index.js";

describe("contextArg", () => {
  it("takes JSON or key=value, merges repeated flags, and refuses a key given two values", () => {
    assert.deepEqual(contextArg('{"a":"1","b":"2"}'), { a: "1", b: "2" });
    assert.deepEqual(contextArg("c=3=x", contextArg("a=1")), { a: "1", c: "3=x" });
    assert.deepEqual(contextArg('{"a":"1"}', { a: "1" }), { a: "1" });
    assert.throws(() => contextArg("a=2", { a: "1" }), InvalidArgumentError);
    assert.throws(() => contextArg("novalue"), /key=value/);
    assert.throws(() => contextArg('{"a":1}'), /strings/);
    assert.throws(() => contextArg("[1]"), /key=value|JSON object/);
  });
});

describe("key ids", () => {
  it("are UUIDs in any case; aliases are not", () => {
    assert.ok(isKeyId("1F0E2C3D-4B5A-4C6D-8E7F-0123456789AB"));
    assert.ok(!isKeyId("payments"));
    assert.ok(!isKeyId("alias/1f0e2c3d-4b5a-4c6d-8e7f-0123456789ab"));
  });
});

describe("times", () => {
  it("print for people in UTC, for scripts as ISO 8601, and read CAM's zone-less times as UTC", () => {
    assert.equal(humanTime(1_700_000_000), "2023-11-14 22:13:20 UTC");
    assert.equal(humanTime("2023-11-14 22:13:20"), "2023-11-14 22:13:20 UTC");
    assert.equal(humanTime(0), "-");
    assert.equal(isoTime(1_700_000_000), "2023-11-14T22:13:20Z");
    assert.equal(timeArg("1700000000"), 1_700_000_000);
    assert.equal(timeArg("2023-11-14T22:13:20Z"), 1_700_000_000);
    assert.equal(timeArg("2023-11-14T22:13:20"), 1_700_000_000);
    assert.equal(timeArg("2023-11-14"), 1_699_920_000);
    assert.throws(() => timeArg("next tuesday"), /unix seconds or an ISO 8601 date/);
    assert.deepEqual(withIsoTimes({ KeyMetadatas: [{ CreateTime: 1_700_000_000, DeletionDate: 0, Alias: "Time" }], Expiration: "2023-11-14T22:13:20Z" }), {
      KeyMetadatas: [{ CreateTime: "2023-11-14T22:13:20Z", DeletionDate: 0, Alias: "Time" }],
      Expiration: "2023-11-14T22:13:20Z",
    });
  });
});

describe("cliErrorLines", () => {
  it("names commands and flags, keeps the code and request id, and leaves policy action names alone", () => {
    const lines = cliErrorLines(
      new KmsClientError("UnauthorizedOperation", 'name/kms:Encrypt denied; "Plaintext" too long; call EnableKeyRotation first', { requestId: "rid-1" }),
    );
    assert.deepEqual(lines, ["error: UnauthorizedOperation: name/kms:Encrypt denied; the input (--in) too long; tresor key rotation KEY --enable first", "request id: rid-1"]);
    assert.deepEqual(cliErrorLines(new KmsClientError("ResourceUnavailable.CmkShouldBeDisabled", "key k is Enabled")), [
      "error: ResourceUnavailable.CmkShouldBeDisabled: key k is Enabled",
      "hint: disable it first: tresor key disable KEY",
    ]);
  });
});
