// The parser: bad documents are refused with the place of the fault, good ones normalize and
// round-trip, and the action catalogue stays equal to the actions the API serves.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACTIONS } from "../../src/api/tencent/actions.js";
import { parseCidr, parseIp, parseIsoTime } from "../../src/policy/conditions.js";
import { CAM_ACTIONS, STS_ACTIONS } from "../../src/api/tencent/cam.js";
import { KNOWN_ACTIONS, MAX_DOCUMENT_BYTES, PolicyDocumentError, parsePolicyDocument, type PolicyKind } from "../../src/policy/document.js";
import { evaluate } from "../../src/policy/evaluate.js";
import { PRESET_POLICIES } from "../../src/policy/presets.js";

const A = "100000000001";
const KEY = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-000000000001`;

type Json = Record<string, unknown>;
const doc = (...statement: unknown[]): string => JSON.stringify({ version: "2.0", statement });
const allowWith = (extra: Json): string => doc({ effect: "allow", action: "name/kms:Encrypt", resource: KEY, ...extra });
const cond = (condition: unknown): string => allowWith({ condition });
const trust = (statement: Json): string => JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: `qcs::cam::uin/${A}:root` }, ...statement }] });

interface Bad {
  name: string;
  text: string;
  kind?: PolicyKind;
  path: string;
  /** Part of the message, when the wording matters. */
  says?: RegExp;
}

const bad: Bad[] = [
  { name: "not JSON", text: "{version: 2.0}", path: "", says: /not JSON/ },
  { name: "a JSON array", text: "[]", path: "", says: /must be a JSON object, not an array/ },
  { name: "JSON null", text: "null", path: "", says: /not null/ },
  { name: "over 6144 bytes", text: doc({ effect: "allow", action: "*", resource: "*", condition: { string_equal: { "kms:encryption_context/x": ["y".repeat(MAX_DOCUMENT_BYTES)] } } }), path: "", says: /at most 6144/ },
  { name: "an unknown top-level field", text: JSON.stringify({ version: "2.0", statement: [], Version: "2.0" }), path: "Version", says: /unknown field/ },
  { name: "version 1.0", text: JSON.stringify({ version: "1.0", statement: [] }), path: "version", says: /must be "2\.0"/ },
  { name: "version as a number", text: JSON.stringify({ version: 2.0, statement: [] }), path: "version" },
  { name: "no version", text: JSON.stringify({ statement: [] }), path: "version" },
  { name: "no statement", text: JSON.stringify({ version: "2.0" }), path: "statement" },
  { name: "a statement object instead of a list", text: JSON.stringify({ version: "2.0", statement: { effect: "allow", action: "*", resource: "*" } }), path: "statement" },
  { name: "an empty statement list", text: doc(), path: "statement", says: /at least one/ },
  { name: "101 statements", text: doc(...new Array(101).fill({ effect: "allow", action: "*", resource: "*" })), path: "statement", says: /at most 100/ },
  { name: "a statement that is a string", text: doc("allow everything"), path: "statement[0]" },
  { name: "an unknown statement field", text: allowWith({ sid: "one" }), path: "statement[0].sid", says: /unknown field/ },
  { name: "an unknown field in the second statement", text: doc({ effect: "allow", action: "*", resource: "*" }, { effect: "deny", action: "*", resource: "*", Effect: "deny" }), path: "statement[1].Effect" },
  { name: "effect Allow", text: allowWith({ effect: "Allow" }), path: "statement[0].effect", says: /"allow" or "deny" \(lowercase\)/ },
  { name: "no effect", text: doc({ action: "*", resource: "*" }), path: "statement[0].effect" },
  { name: "no action", text: doc({ effect: "allow", resource: "*" }), path: "statement[0].action" },
  { name: "an empty action list", text: allowWith({ action: [] }), path: "statement[0].action", says: /at least one action/ },
  { name: "an action that is a number", text: allowWith({ action: ["name/kms:Encrypt", 5] }), path: "statement[0].action[1]" },
  { name: "an action without name/", text: allowWith({ action: "kms:Encrypt" }), path: "statement[0].action", says: /must be written "name\/kms:Encrypt"/ },
  { name: "a permid/ action", text: allowWith({ action: ["permid/123"] }), path: "statement[0].action[0]", says: /permid/ },
  { name: "an unknown service", text: allowWith({ action: ["name/cos:GetObject"] }), path: "statement[0].action[0]", says: /unknown service "cos"/ },
  { name: "a wildcard matching no action", text: allowWith({ action: ["name/kms:Foo*"] }), path: "statement[0].action[0]", says: /matches no known action/ },
  { name: "a lowercase action", text: allowWith({ action: ["name/kms:encrypt"] }), path: "statement[0].action[0]", says: /not a known action/ },
  { name: "no resource", text: doc({ effect: "allow", action: "*" }), path: "statement[0].resource" },
  { name: "an empty resource", text: allowWith({ resource: [""] }), path: "statement[0].resource[0]" },
  { name: "five segments", text: allowWith({ resource: [KEY, "qcs::kms:ap-guangzhou:key/*"] }), path: "statement[0].resource[1]", says: /six segments/ },
  { name: "seven segments", text: allowWith({ resource: `qcs::kms:ap-guangzhou:uin/${A}:key/x:y` }), path: "statement[0].resource" },
  { name: "not starting with qcs", text: allowWith({ resource: [`qcx::kms::uin/${A}:key/*`] }), path: "statement[0].resource[0]" },
  { name: "a project", text: allowWith({ resource: [`qcs:7:kms::uin/${A}:key/*`] }), path: "statement[0].resource[0]", says: /project/ },
  { name: "an unknown resource service", text: allowWith({ resource: [`qcs::cos::uin/${A}:key/*`] }), path: "statement[0].resource[0]", says: /unknown service "cos"/ },
  { name: "an account without uin/", text: allowWith({ resource: [`qcs::kms::${A}:key/*`] }), path: "statement[0].resource[0]", says: /account/ },
  { name: "an upper-case region", text: allowWith({ resource: [`qcs::kms:AP-Guangzhou:uin/${A}:key/*`] }), path: "statement[0].resource[0]", says: /region/ },
  { name: "a kms resource neither key nor alias", text: allowWith({ resource: [`qcs::kms::uin/${A}:keys/*`] }), path: "statement[0].resource[0]", says: /key\/\.\.\., alias\/\.\.\. or \*/ },
  // Issue 13: a key id in upper case was accepted and matched no key, so a deny written that way denied nothing.
  { name: "an upper-case key id", text: allowWith({ resource: [`qcs::kms::uin/${A}:key/creatorUin/${A}/0AEFD3D2-0000-4000-8000-00000000000A`] }), path: "statement[0].resource[0]", says: /lower-case UUIDs.*write "qcs::kms::uin\/100000000001:key\/creatorUin\/100000000001\/0aefd3d2-0000-4000-8000-00000000000a"/ },
  { name: "an upper-case key id under an empty service", text: allowWith({ resource: [`qcs:::ap-guangzhou:uin/${A}:key/creatorUin/${A}/0AEFD3D2-*`] }), path: "statement[0].resource[0]", says: /lower-case/ },
  { name: "a mis-cased creatorUin", text: allowWith({ resource: [`qcs::kms::uin/${A}:key/creatoruin/${A}/*`] }), path: "statement[0].resource[0]", says: /key\/creatorUin\/100000000001\/\*"/ },
  { name: "a key id without creatorUin", text: allowWith({ resource: [`qcs::kms::uin/${A}:key/0aefd3d2-0000-4000-8000-000000000001`] }), path: "statement[0].resource[0]", says: /key\/creatorUin\/<uin>\/<KeyId>/ },
  { name: "a key id that is no UUID", text: allowWith({ resource: [`qcs::kms::uin/${A}:key/creatorUin/${A}/my-key`] }), path: "statement[0].resource[0]", says: /key\/creatorUin\/<uin>\/<KeyId>/ },
  { name: "a space in the resource", text: allowWith({ resource: [`qcs::kms::uin/${A}:key/a b`] }), path: "statement[0].resource[0]" },
  { name: "a condition that is a list", text: cond([]), path: "statement[0].condition" },
  { name: "an empty condition", text: cond({}), path: "statement[0].condition", says: /at least one operator/ },
  { name: "an unknown operator", text: cond({ string_equals: { "qcs:ip": "x" } }), path: "statement[0].condition.string_equals", says: /not a known condition operator/ },
  { name: "numeric operators are not offered", text: cond({ numeric_equal: { "qcs:ip": "1" } }), path: "statement[0].condition.numeric_equal" },
  { name: "an operator with no keys", text: cond({ ip_equal: {} }), path: "statement[0].condition.ip_equal" },
  { name: "an unknown condition key", text: cond({ string_equal: { "qcs:foo": "x" } }), path: 'statement[0].condition.string_equal["qcs:foo"]', says: /not a known condition key/ },
  { name: "an encryption context key without a name", text: cond({ string_equal: { "kms:encryption_context/": "x" } }), path: 'statement[0].condition.string_equal["kms:encryption_context/"]' },
  { name: "qcs:ip under a string operator", text: cond({ string_equal: { "qcs:ip": "10.0.0.1" } }), path: 'statement[0].condition.string_equal["qcs:ip"]', says: /needs an ip_\* operator/ },
  { name: "qcs:current_time under an ip operator", text: cond({ ip_equal: { "qcs:current_time": "10.0.0.1" } }), path: 'statement[0].condition.ip_equal["qcs:current_time"]' },
  { name: "an encryption context under a date operator", text: cond({ date_equal_if_exist: { "kms:encryption_context/a": "2026-01-01" } }), path: 'statement[0].condition.date_equal_if_exist["kms:encryption_context/a"]' },
  { name: "a CIDR prefix of 33", text: cond({ ip_equal: { "qcs:ip": ["10.0.0.0/8", "10.0.0.0/33"] } }), path: 'statement[0].condition.ip_equal["qcs:ip"][1]', says: /not an IPv4 or IPv6/ },
  { name: "an IPv6 prefix of 129", text: cond({ ip_not_equal: { "qcs:ip": "2001:db8::/129" } }), path: 'statement[0].condition.ip_not_equal["qcs:ip"]' },
  { name: "a host name for an address", text: cond({ ip_equal: { "qcs:ip": ["example.internal"] } }), path: 'statement[0].condition.ip_equal["qcs:ip"][0]' },
  { name: "the 30th of February", text: cond({ date_less_than: { "qcs:current_time": "2026-02-30T00:00:00Z" } }), path: 'statement[0].condition.date_less_than["qcs:current_time"]', says: /ISO-8601/ },
  { name: "a date-time without a zone", text: cond({ date_less_than: { "qcs:current_time": ["2026-01-01T00:00:00"] } }), path: 'statement[0].condition.date_less_than["qcs:current_time"][0]' },
  { name: "a Unix time for a date", text: cond({ date_greater_than: { "qcs:current_time": "1767225600" } }), path: 'statement[0].condition.date_greater_than["qcs:current_time"]' },
  { name: "51 values", text: cond({ string_equal: { "kms:encryption_context/app": Array.from({ length: 51 }, (_, i) => `v${i}`) } }), path: 'statement[0].condition.string_equal["kms:encryption_context/app"]', says: /at most 50/ },
  { name: "no values", text: cond({ string_equal: { "kms:encryption_context/app": [] } }), path: 'statement[0].condition.string_equal["kms:encryption_context/app"]' },
  { name: "a value that is a number", text: cond({ string_equal: { "qcs:resource_tag/env": ["prod", 3] } }), path: 'statement[0].condition.string_equal["qcs:resource_tag/env"][1]' },
  { name: "a resource tag without &", text: cond({ string_equal: { "qcs:resource_tag": "env=prod" } }), path: 'statement[0].condition.string_equal["qcs:resource_tag"]', says: /<tag key>&<tag value>/ },
  { name: "a principal in an identity policy", text: allowWith({ principal: { qcs: [`qcs::cam::uin/${A}:root`] } }), path: "statement[0].principal", says: /trust policy/ },
  { name: "a trust policy without a principal", text: doc({ effect: "allow", action: "name/sts:AssumeRole" }), kind: "trust", path: "statement[0].principal", says: /required/ },
  { name: "a trust policy allowing a kms action", text: trust({ action: ["name/sts:AssumeRole", "name/kms:Encrypt"] }), kind: "trust", path: "statement[0].action[1]", says: /only "name\/sts:AssumeRole"/ },
  { name: 'a trust policy allowing "*"', text: trust({ action: "*" }), kind: "trust", path: "statement[0].action" },
  { name: "a principal that is not a cam uin", text: trust({ principal: { qcs: [`qcs::cam::uin/${A}:root`, "qcs::cam::anyone"] } }), kind: "trust", path: "statement[0].principal.qcs[1]" },
  { name: "a service principal", text: trust({ principal: { service: "cvm.qcloud.com" } }), kind: "trust", path: "statement[0].principal.service", says: /unknown field/ },
  { name: "a principal without qcs", text: trust({ principal: {} }), kind: "trust", path: "statement[0].principal.qcs" },
];

describe("parsePolicyDocument refuses", () => {
  it("at least 25 documents, each with a distinct name", () => {
    assert.ok(bad.length >= 25);
    assert.equal(new Set(bad.map((b) => b.name)).size, bad.length);
  });

  for (const b of bad) {
    it(b.name, () => {
      assert.throws(
        () => parsePolicyDocument(b.text, b.kind ?? "identity"),
        (e: unknown) => {
          assert.ok(e instanceof PolicyDocumentError, `${String(e)}`);
          assert.equal(e.path, b.path, e.message);
          assert.ok(b.path === "" || e.message.startsWith(`${b.path}: `), e.message);
          if (b.says !== undefined) assert.match(e.message, b.says);
          return true;
        },
      );
    });
  }

  it("a misspelt action with the message Tencent's users would expect", () => {
    assert.throws(() => parsePolicyDocument(allowWith({ action: ["name/kms:Encrypt", "name/kms:Encrpyt"] }), "identity"), {
      name: "PolicyDocumentError",
      message: 'statement[0].action[1]: "name/kms:Encrpyt" is not a known action',
    });
  });

  it("a document of exactly 6144 bytes is accepted; one byte more is not", () => {
    const base = allowWith({ condition: { string_equal: { "kms:encryption_context/x": "" } } });
    const fill = (n: number) => base.replace('"kms:encryption_context/x":""', `"kms:encryption_context/x":"${"y".repeat(n)}"`);
    const exact = fill(MAX_DOCUMENT_BYTES - Buffer.byteLength(base));
    assert.equal(Buffer.byteLength(exact), MAX_DOCUMENT_BYTES);
    parsePolicyDocument(exact, "identity");
    assert.throws(() => parsePolicyDocument(fill(MAX_DOCUMENT_BYTES - Buffer.byteLength(base) + 1), "identity"), { path: "" });
    // Bytes, not characters: two-byte characters count twice.
    assert.throws(() => parsePolicyDocument(fill(0).replace('""', `"${"é".repeat(3100)}"`), "identity"), /bytes/);
  });
});

describe("parsePolicyDocument accepts", () => {
  const good: Array<{ name: string; text: string; kind?: PolicyKind }> = [
    { name: "the example of Tencent's KMS documentation", text: allowWith({ action: ["name/kms:Encrypt", "name/kms:Decrypt", "name/kms:GenerateDataKey"], resource: [KEY], condition: { ip_equal: { "qcs:ip": ["10.0.0.0/8"] } } }) },
    { name: "wildcard actions and resources", text: doc({ effect: "deny", action: ["name/kms:Describe*", "name/kms:?ncrypt", "name/cam:*", "*"], resource: ["*", "qcs::kms::uin/*:key/*", "qcs:::ap-*::alias/app-?"] }) },
    {
      name: "every operator with every kind of key",
      text: cond({
        string_equal: { "kms:encryption_context/app": "a", "qcs:resource_tag": ["env&prod"], "qcs:resource_tag/env": "prod" },
        string_not_equal_if_exist: { "kms:encryption_context/app": "" },
        string_like: { "qcs:resource_tag": "env&*" },
        ip_equal: { "qcs:ip": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.1", "::1"] },
        ip_not_equal_if_exist: { "qcs:ip": "::ffff:10.0.0.0/104" },
        date_equal: { "qcs:current_time": "2026-01-01" },
        date_not_equal: { "qcs:current_time": "2026-01-01T08:00+08:00" },
        date_greater_than: { "qcs:current_time": "2026-01-01T00:00:00.5Z" },
        date_greater_than_equal_if_exist: { "qcs:current_time": "2024-02-29T23:59:59Z" },
        date_less_than: { "qcs:current_time": "2030-12-31T23:59:59.999999999-05:30" },
        date_less_than_equal: { "qcs:current_time": "2030-01-01T00:00:00Z" },
      }),
    },
    { name: "a trust policy", text: trust({ principal: { qcs: [`qcs::cam::uin/${A}:root`, `qcs::cam::uin/${A}:uin/100000000009`] } }), kind: "trust" },
    { name: "a trust policy with a condition", text: trust({ condition: { ip_equal: { "qcs:ip": "10.0.0.0/8" } } }), kind: "trust" },
  ];

  for (const g of good) {
    it(`${g.name}, and round-trips`, () => {
      const kind = g.kind ?? "identity";
      const parsed = parsePolicyDocument(g.text, kind);
      assert.deepEqual(parsePolicyDocument(JSON.stringify(parsed), kind), parsed);
    });
  }

  it("normalizes single strings to lists", () => {
    const parsed = parsePolicyDocument(allowWith({ condition: { ip_equal: { "qcs:ip": "10.0.0.0/8" } } }), "identity");
    assert.deepEqual(parsed, {
      version: "2.0",
      statement: [{ effect: "allow", action: ["name/kms:Encrypt"], resource: [KEY], condition: { ip_equal: { "qcs:ip": ["10.0.0.0/8"] } } }],
    });
    const t = parsePolicyDocument(trust({}), "trust");
    assert.deepEqual(t.statement[0], { effect: "allow", action: ["name/sts:AssumeRole"], resource: ["*"], principal: { qcs: [`qcs::cam::uin/${A}:root`] } });
  });

  it("the presets", () => {
    for (const p of PRESET_POLICIES) assert.deepEqual(parsePolicyDocument(JSON.stringify(p.document), "identity"), p.document);
  });
});

describe("KNOWN_ACTIONS", () => {
  it("kms is exactly the actions the Tencent adapter serves", () => {
    // and the KMIP door's own exportable-object operations.
    assert.deepEqual([...KNOWN_ACTIONS.kms].sort(), [...Object.keys(ACTIONS), "GetKeyMaterial", "RegisterKey", "ActivateKey", "ModifyKeyAttributes", "RevokeKey", "DestroyKey"].sort());
    assert.deepEqual([...KNOWN_ACTIONS.cam].sort(), Object.keys(CAM_ACTIONS).sort());
    assert.deepEqual([...KNOWN_ACTIONS.sts].sort(), Object.keys(STS_ACTIONS).sort());
  });

  it("has no duplicates", () => {
    for (const list of Object.values(KNOWN_ACTIONS)) assert.equal(new Set(list).size, list.length);
  });
});

describe("condition values", () => {
  it("parseIsoTime reads dates, date-times with zones and fractions", () => {
    assert.equal(parseIsoTime("2026-01-01"), Date.UTC(2026, 0, 1));
    assert.equal(parseIsoTime("2026-01-01T08:00:00+08:00"), Date.UTC(2026, 0, 1));
    assert.equal(parseIsoTime("2025-12-31T19:00-05:00"), Date.UTC(2026, 0, 1));
    assert.equal(parseIsoTime("2026-01-01T00:00:00.25Z"), Date.UTC(2026, 0, 1) + 250);
    assert.equal(parseIsoTime("2024-02-29T00:00:00Z"), Date.UTC(2024, 1, 29));
    for (const t of ["2025-02-29", "2026-13-01", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00+24:00", "26-01-01", " 2026-01-01"]) {
      assert.equal(parseIsoTime(t), undefined, t);
    }
  });

  it("parseCidr and parseIp fold IPv4-mapped addresses to IPv4", () => {
    assert.deepEqual(parseCidr("10.0.0.0/8"), { family: 4, value: 0x0a000000n, prefix: 8 });
    assert.deepEqual(parseCidr("::ffff:10.0.0.0/104"), { family: 4, value: 0x0a000000n, prefix: 8 });
    assert.deepEqual(parseCidr("2001:db8::1"), { family: 6, value: (0x20010db8n << 96n) | 1n, prefix: 128 });
    assert.deepEqual(parseIp("::ffff:10.0.0.7"), { family: 4, value: 0x0a000007n });
    assert.deepEqual(parseIp("fe80::1%eth0"), { family: 6, value: (0xfe80n << 112n) | 1n });
    for (const c of ["10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0/8", "1.2.3.4/33", "::/129", "fe80::1%eth0"]) assert.equal(parseCidr(c), undefined, c);
  });
});

describe("key ids in resources (issue 13)", () => {
  const ID = "0aefd3d2-0000-4000-8000-00000000000a";
  const name = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/${ID}`;
  const denyOf = (resource: string): string => doc({ effect: "allow", action: "name/kms:*", resource: "*" }, { effect: "deny", action: "name/kms:Decrypt", resource });

  it("keeps patterns with wildcards working", () => {
    for (const pattern of [`qcs::kms::uin/${A}:key/*`, `qcs::kms::uin/${A}:key/creatorUin/*/${ID}`, `qcs::kms::uin/${A}:key/creatorUin/${A}/0aefd3d2-*`, `qcs::kms::uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-00000000000?`]) {
      const parsed = parsePolicyDocument(denyOf(pattern), "identity");
      assert.deepEqual(parsed.statement[1]?.resource, [pattern]);
      assert.equal(evaluate([{ policyId: 1, policyName: "p", document: parsed }], { action: "kms:Decrypt", resources: [name], context: { currentTime: 0 } }).reason, "explicit-deny", pattern);
    }
  });

  it("matches a stored document's upper-case key id as the lower-case key it names, so its deny denies", () => {
    const upper = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/${ID.toUpperCase()}`;
    assert.throws(() => parsePolicyDocument(denyOf(upper), "identity"), PolicyDocumentError);
    const stored = parsePolicyDocument(denyOf(upper), "identity", "store");
    assert.deepEqual(stored.statement[1]?.resource, [name]);
    const decision = evaluate([{ policyId: 1, policyName: "p", document: stored }], { action: "kms:Decrypt", resources: [name], context: { currentTime: 0 } });
    assert.equal(decision.reason, "explicit-deny");
  });

  it("still loads a stored document whose key resource matches no key, as before", () => {
    const odd = `qcs::kms::uin/${A}:key/my-key`;
    assert.deepEqual(parsePolicyDocument(denyOf(odd), "identity", "store").statement[1]?.resource, [odd]);
  });
});
