// The evaluator, row by row: each row is a set of policy documents (JSON text through the parser),
// one request and the reason expected, with the deciding statement where one decides. Then the
// exported matchers, explain(), and the presets.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePolicyDocument } from "../../src/policy/document.js";
import { actionMatches, evaluate, explain, resourceMatches, type AttachedPolicy, type AuthorizationRequest, type ConditionContext, type Decision } from "../../src/policy/evaluate.js";
import { QcloudKMSCryptoAccess, QcloudKMSFullAccess, QcloudKMSReadOnlyAccess } from "../../src/policy/presets.js";

const A = "100000000001";
const B = "200000000002";
const CREATOR = "100000000003";
const KEY = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-000000000001`;
const ALIAS = `qcs::kms:ap-guangzhou:uin/${A}:alias/app`;
/** A key of account A made by another creator. */
const KEY2 = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${CREATOR}/0aefd3d2-0000-4000-8000-000000000002`;
const KEY_B = `qcs::kms:ap-guangzhou:uin/${B}:key/creatorUin/${B}/0aefd3d2-0000-4000-8000-000000000009`;
const NOW = Date.parse("2026-06-15T12:00:00Z");

type Json = Record<string, unknown>;

function st(effect: "allow" | "deny", action: string | string[], resource: string | string[], condition?: Json): Json {
  return condition === undefined ? { effect, action, resource } : { effect, action, resource, condition };
}
const allow = (action: string | string[], resource: string | string[] = "*", condition?: Json) => st("allow", action, resource, condition);
const deny = (action: string | string[], resource: string | string[] = "*", condition?: Json) => st("deny", action, resource, condition);

/** One policy's text: its statements in a v2.0 document. */
function doc(...statements: Json[]): string {
  return JSON.stringify({ version: "2.0", statement: statements });
}

interface Row {
  name: string;
  /** Policy documents as JSON text; policy i gets id i + 1 and name p<i + 1>. */
  policies: string[];
  /** The owner uin of every policy, when the row is about empty account segments. */
  ownerUin?: string;
  action: string;
  resources?: string[];
  context?: Omit<ConditionContext, "currentTime"> & { currentTime?: number };
  expected: Decision["reason"];
  /** [policyId, statement index] of the deciding statement. */
  by?: [number, number];
}

const ENC = "name/kms:Encrypt";
const ec = (app: string) => ({ encryptionContext: { app } });

const rows: Row[] = [
  // ---- allow, implicit deny, explicit deny ----
  { name: "an exact allow", policies: [doc(allow(ENC, KEY))], action: "kms:Encrypt", expected: "allow", by: [1, 0] },
  { name: "no policies", policies: [], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "another action is not allowed", policies: [doc(allow(ENC, KEY))], action: "kms:Decrypt", expected: "implicit-deny" },
  { name: "deny over allow in one policy", policies: [doc(allow(ENC, KEY), deny(ENC, KEY))], action: "kms:Encrypt", expected: "explicit-deny", by: [1, 1] },
  { name: "deny over allow across policies", policies: [doc(allow(ENC, KEY)), doc(deny(ENC, "*"))], action: "kms:Encrypt", expected: "explicit-deny", by: [2, 0] },
  { name: "deny in the first policy, allow in the second", policies: [doc(deny(ENC, KEY)), doc(allow("name/kms:*"))], action: "kms:Encrypt", expected: "explicit-deny", by: [1, 0] },
  { name: "a deny of another action leaves the allow", policies: [doc(allow(ENC, KEY), deny("name/kms:Decrypt", KEY))], action: "kms:Encrypt", expected: "allow", by: [1, 0] },
  { name: "a deny of another key leaves the allow", policies: [doc(allow(ENC, KEY)), doc(deny(ENC, KEY2))], action: "kms:Encrypt", expected: "allow", by: [1, 0] },
  { name: "the first matching allow is reported", policies: [doc(allow("name/kms:Decrypt")), doc(allow(ENC, KEY), allow("name/kms:*"))], action: "kms:Encrypt", expected: "allow", by: [2, 0] },
  { name: "the first matching deny is reported", policies: [doc(allow(ENC), deny("name/kms:*"), deny(ENC))], action: "kms:Encrypt", expected: "explicit-deny", by: [1, 1] },
  { name: "a request action without a service", policies: [doc(allow("*"))], action: "Encrypt", expected: "implicit-deny" },

  // ---- action wildcards ----
  { name: "Describe* covers DescribeKey", policies: [doc(allow("name/kms:Describe*", KEY))], action: "kms:DescribeKey", expected: "allow" },
  { name: "Describe* covers DescribeKeys", policies: [doc(allow("name/kms:Describe*", KEY))], action: "kms:DescribeKeys", expected: "allow" },
  { name: "Describe* does not cover Encrypt", policies: [doc(allow("name/kms:Describe*", KEY))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "kms:* covers Encrypt", policies: [doc(allow("name/kms:*", KEY))], action: "kms:Encrypt", expected: "allow" },
  { name: '"*" covers a kms action', policies: [doc(allow("*", KEY))], action: "kms:ScheduleKeyDeletion", expected: "allow" },
  { name: '"*" covers a cam action', policies: [doc(allow("*"))], action: "cam:AddUser", resources: ["*"], expected: "allow" },
  { name: "kms:* does not cover a cam action", policies: [doc(allow("name/kms:*"))], action: "cam:AddUser", resources: ["*"], expected: "implicit-deny" },
  { name: "cam:* does not cover a kms action", policies: [doc(allow("name/cam:*"))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "Get* of kms does not cover sts:AssumeRole", policies: [doc(allow("name/kms:Get*"))], action: "sts:AssumeRole", resources: ["*"], expected: "implicit-deny" },
  { name: "? stands for one character", policies: [doc(allow("name/kms:?ncrypt", KEY))], action: "kms:Encrypt", expected: "allow" },
  { name: "the Api part is case-sensitive", policies: [doc(allow(ENC, KEY))], action: "kms:encrypt", expected: "implicit-deny" },
  { name: "the service part is case-sensitive", policies: [doc(allow(ENC, KEY))], action: "KMS:Encrypt", expected: "implicit-deny" },
  { name: "a deny of kms:* beats an exact allow", policies: [doc(allow(ENC, KEY)), doc(deny("name/kms:*"))], action: "kms:Encrypt", expected: "explicit-deny", by: [2, 0] },
  { name: "a deny of Describe* leaves Encrypt", policies: [doc(allow("name/kms:*"), deny("name/kms:Describe*"))], action: "kms:Encrypt", expected: "allow", by: [1, 0] },
  { name: "an action list: any one may match", policies: [doc(allow(["name/kms:Decrypt", ENC], KEY))], action: "kms:Encrypt", expected: "allow" },

  // ---- resource wildcards ----
  { name: "account-wide key/* covers a key", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/*`))], action: "kms:Encrypt", expected: "allow" },
  { name: "account-wide key/* covers another creator's key", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/*`))], action: "kms:Encrypt", resources: [KEY2], expected: "allow" },
  { name: "creatorUin/<a>/* covers that creator's key", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/*`))], action: "kms:Encrypt", expected: "allow" },
  { name: "creatorUin/<a>/* does not cover another creator's key", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/*`))], action: "kms:Encrypt", resources: [KEY2], expected: "implicit-deny" },
  { name: "an exact key does not cover another key", policies: [doc(allow(ENC, KEY))], action: "kms:Encrypt", resources: [KEY2], expected: "implicit-deny" },
  { name: "another account's uin does not cover the key", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${B}:key/*`))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "an empty region segment means every region", policies: [doc(allow(ENC, `qcs::kms::uin/${A}:key/*`))], action: "kms:Encrypt", expected: "allow" },
  { name: "an empty service segment means every service", policies: [doc(allow(ENC, `qcs:::ap-guangzhou:uin/${A}:key/*`))], action: "kms:Encrypt", expected: "allow" },
  { name: "another region does not cover the key", policies: [doc(allow(ENC, `qcs::kms:ap-beijing:uin/${A}:key/*`))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "a region wildcard", policies: [doc(allow(ENC, `qcs::kms:ap-*:uin/${A}:key/*`))], action: "kms:Encrypt", expected: "allow" },
  { name: "a wildcard in the middle of the resource", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/*/0aefd3d2-0000-4000-8000-000000000001`))], action: "kms:Encrypt", expected: "allow" },
  { name: "? in the key id", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-00000000000?`))], action: "kms:Encrypt", expected: "allow" },
  { name: "uin/* in the account segment", policies: [doc(allow(ENC, "qcs::kms:ap-guangzhou:uin/*:key/*"))], action: "kms:Encrypt", resources: [KEY_B], expected: "allow" },
  { name: "an empty account segment is the policy owner's account", policies: [doc(allow(ENC, "qcs::kms:::key/*"))], ownerUin: A, action: "kms:Encrypt", expected: "allow" },
  { name: "an empty account segment does not reach another account", policies: [doc(allow(ENC, "qcs::kms:::key/*"))], ownerUin: B, action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "an empty account segment without an owner means any account", policies: [doc(allow(ENC, "qcs::kms:::key/*"))], action: "kms:Encrypt", resources: [KEY_B], expected: "allow" },
  { name: "a cam resource does not cover a kms key", policies: [doc(allow(ENC, `qcs::cam::uin/${A}:*`))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: '"*" covers a key', policies: [doc(allow(ENC, "*"))], action: "kms:Encrypt", expected: "allow" },
  { name: "a resource list: any one may match", policies: [doc(allow(ENC, [KEY2, KEY]))], action: "kms:Encrypt", expected: "allow" },

  // ---- aliases ----
  { name: "a policy naming the alias covers a request carrying it", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:alias/app`))], action: "kms:Encrypt", resources: [KEY, ALIAS], expected: "allow" },
  { name: "a policy naming the alias does not cover a key without it", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:alias/app`))], action: "kms:Encrypt", resources: [KEY], expected: "implicit-deny" },
  { name: "a policy naming another alias", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:alias/other`))], action: "kms:Encrypt", resources: [KEY, ALIAS], expected: "implicit-deny" },
  { name: "an alias wildcard", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:alias/ap*`))], action: "kms:Encrypt", resources: [KEY, ALIAS], expected: "allow" },
  { name: "a deny on the alias beats an allow on the key", policies: [doc(allow(ENC, KEY), deny(ENC, ALIAS))], action: "kms:Encrypt", resources: [KEY, ALIAS], expected: "explicit-deny", by: [1, 1] },
  { name: "a deny on the key beats an allow on the alias", policies: [doc(allow(ENC, ALIAS)), doc(deny(ENC, KEY))], action: "kms:Encrypt", resources: [KEY, ALIAS], expected: "explicit-deny", by: [2, 0] },
  { name: "alias/* does not cover a key name", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:alias/*`))], action: "kms:Encrypt", resources: [KEY], expected: "implicit-deny" },

  // ---- account-level actions ----
  { name: 'CreateKey with resource "*"', policies: [doc(allow("name/kms:CreateKey", "*"))], action: "kms:CreateKey", resources: ["*"], expected: "allow" },
  { name: "CreateKey is not covered by key/*", policies: [doc(allow("name/kms:CreateKey", `qcs::kms:ap-guangzhou:uin/${A}:key/*`))], action: "kms:CreateKey", resources: ["*"], expected: "implicit-deny" },
  { name: "CreateKey is not covered by a resource of only wildcards", policies: [doc(allow("name/kms:CreateKey", "qcs::kms:*:*:*"))], action: "kms:CreateKey", resources: ["*"], expected: "implicit-deny" },
  { name: 'ListKeys under "*" on "*"', policies: [doc(allow("*", "*"))], action: "kms:ListKeys", resources: ["*"], expected: "allow" },
  { name: 'a deny of "*" on "*" blocks a key action', policies: [doc(allow("name/kms:*")), doc(deny("*", "*"))], action: "kms:Encrypt", expected: "explicit-deny", by: [2, 0] },
  { name: "a deny on key/* does not block an account-level action", policies: [doc(allow("name/kms:*"), deny("name/kms:*", `qcs::kms::uin/${A}:key/*`))], action: "kms:CreateKey", resources: ["*"], expected: "allow" },

  // ---- ip conditions ----
  { name: "ip_equal inside the block", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "10.1.2.3" }, expected: "allow" },
  { name: "ip_equal outside the block", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "11.0.0.1" }, expected: "implicit-deny" },
  { name: "ip_equal on a bare address (/32), equal", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "192.168.1.5" } }))], action: "kms:Encrypt", context: { sourceIp: "192.168.1.5" }, expected: "allow" },
  { name: "ip_equal on a bare address (/32), next address", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "192.168.1.5" } }))], action: "kms:Encrypt", context: { sourceIp: "192.168.1.6" }, expected: "implicit-deny" },
  { name: "ip_equal without a source address", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "ip_equal_if_exist without a source address", policies: [doc(allow(ENC, KEY, { ip_equal_if_exist: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "ip_equal_if_exist with an address outside", policies: [doc(allow(ENC, KEY, { ip_equal_if_exist: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "8.8.8.8" }, expected: "implicit-deny" },
  { name: "deny ip_not_equal from outside", policies: [doc(allow(ENC, KEY), deny("*", "*", { ip_not_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "8.8.8.8" }, expected: "explicit-deny", by: [1, 1] },
  { name: "deny ip_not_equal from inside", policies: [doc(allow(ENC, KEY), deny("*", "*", { ip_not_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "10.0.0.1" }, expected: "allow" },
  {
    name: "deny ip_not_equal without a source address does not apply (absent key: false)",
    policies: [doc(allow(ENC, KEY), deny("*", "*", { ip_not_equal: { "qcs:ip": "10.0.0.0/8" } }))],
    action: "kms:Encrypt",
    expected: "allow",
  },
  { name: "deny ip_not_equal_if_exist without a source address applies", policies: [doc(allow(ENC, KEY), deny("*", "*", { ip_not_equal_if_exist: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", expected: "explicit-deny" },
  { name: "ip_equal on an IPv6 block", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "2001:db8::/32" } }))], action: "kms:Encrypt", context: { sourceIp: "2001:db8:1::5" }, expected: "allow" },
  { name: "ip_equal outside an IPv6 block", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "2001:db8::/32" } }))], action: "kms:Encrypt", context: { sourceIp: "2001:db9::1" }, expected: "implicit-deny" },
  { name: "ip_equal on a bare IPv6 address (/128)", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "2001:db8::7" } }))], action: "kms:Encrypt", context: { sourceIp: "2001:0db8:0:0:0:0:0:7" }, expected: "allow" },
  { name: "an IPv4-mapped source address meets an IPv4 block", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "::ffff:10.0.0.7" }, expected: "allow" },
  { name: "an IPv4 block does not cover an IPv6 address", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "0.0.0.0/0" } }))], action: "kms:Encrypt", context: { sourceIp: "2001:db8::1" }, expected: "implicit-deny" },
  { name: "several blocks: any one", policies: [doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": ["10.0.0.0/8", "192.168.0.0/16"] } }))], action: "kms:Encrypt", context: { sourceIp: "192.168.3.3" }, expected: "allow" },
  { name: "a source address that is no address counts as absent", policies: [doc(allow(ENC, KEY), deny("*", "*", { ip_not_equal: { "qcs:ip": "10.0.0.0/8" } }))], action: "kms:Encrypt", context: { sourceIp: "not-an-ip" }, expected: "allow" },

  // ---- time conditions ----
  { name: "date_greater_than a past instant", policies: [doc(allow(ENC, KEY, { date_greater_than: { "qcs:current_time": "2026-01-01T00:00:00Z" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_greater_than a future instant", policies: [doc(allow(ENC, KEY, { date_greater_than: { "qcs:current_time": "2027-01-01T00:00:00Z" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "date_less_than a future instant", policies: [doc(allow(ENC, KEY, { date_less_than: { "qcs:current_time": "2027-01-01" } }))], action: "kms:Encrypt", expected: "allow" },
  {
    name: "a time window, inside",
    policies: [doc(allow(ENC, KEY, { date_greater_than_equal: { "qcs:current_time": "2026-06-15T09:00:00Z" }, date_less_than: { "qcs:current_time": "2026-06-15T18:00:00Z" } }))],
    action: "kms:Encrypt",
    expected: "allow",
  },
  {
    name: "a time window, after",
    policies: [doc(allow(ENC, KEY, { date_greater_than_equal: { "qcs:current_time": "2026-06-15T09:00:00Z" }, date_less_than: { "qcs:current_time": "2026-06-15T11:00:00Z" } }))],
    action: "kms:Encrypt",
    expected: "implicit-deny",
  },
  { name: "date_equal the very instant", policies: [doc(allow(ENC, KEY, { date_equal: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_not_equal the very instant", policies: [doc(allow(ENC, KEY, { date_not_equal: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "date_not_equal another instant", policies: [doc(allow(ENC, KEY, { date_not_equal: { "qcs:current_time": "2026-06-15T12:00:01Z" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_greater_than_equal at the instant", policies: [doc(allow(ENC, KEY, { date_greater_than_equal: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_greater_than at the instant (strict)", policies: [doc(allow(ENC, KEY, { date_greater_than: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "date_less_than_equal at the instant", policies: [doc(allow(ENC, KEY, { date_less_than_equal: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_less_than at the instant (strict)", policies: [doc(allow(ENC, KEY, { date_less_than: { "qcs:current_time": "2026-06-15T12:00:00Z" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "a time with a zone offset", policies: [doc(allow(ENC, KEY, { date_equal: { "qcs:current_time": "2026-06-15T20:00:00+08:00" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "date_less_than_if_exist (the time is always present)", policies: [doc(allow(ENC, KEY, { date_less_than_if_exist: { "qcs:current_time": "2026-01-01T00:00:00Z" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "a deny after an expiry date", policies: [doc(allow(ENC, KEY), deny("*", "*", { date_greater_than: { "qcs:current_time": "2026-06-01T00:00:00Z" } }))], action: "kms:Encrypt", expected: "explicit-deny" },

  // ---- encryption context conditions ----
  { name: "string_equal on the encryption context", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: ec("billing"), expected: "allow" },
  { name: "string_equal, another value", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: ec("payroll"), expected: "implicit-deny" },
  { name: "string_equal, no encryption context", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "string_equal, the context lacks the name", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: { encryptionContext: { team: "billing" } }, expected: "implicit-deny" },
  { name: "string_equal_if_exist, absent", policies: [doc(allow(ENC, KEY, { string_equal_if_exist: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "string_equal_if_exist, present and different", policies: [doc(allow(ENC, KEY, { string_equal_if_exist: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: ec("payroll"), expected: "implicit-deny" },
  { name: "string_like with *", policies: [doc(allow(ENC, KEY, { string_like: { "kms:encryption_context/app": "bill*" } }))], action: "kms:Encrypt", context: ec("billing-eu"), expected: "allow" },
  { name: "string_like with ?", policies: [doc(allow(ENC, KEY, { string_like: { "kms:encryption_context/app": "?illing" } }))], action: "kms:Encrypt", context: ec("billing"), expected: "allow" },
  { name: "string_like, no match", policies: [doc(allow(ENC, KEY, { string_like: { "kms:encryption_context/app": "bill*" } }))], action: "kms:Encrypt", context: ec("payroll"), expected: "implicit-deny" },
  { name: "string_like_if_exist, absent", policies: [doc(allow(ENC, KEY, { string_like_if_exist: { "kms:encryption_context/app": "bill*" } }))], action: "kms:Encrypt", expected: "allow" },
  { name: "deny string_not_equal, another value", policies: [doc(allow(ENC, KEY), deny(ENC, "*", { string_not_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: ec("payroll"), expected: "explicit-deny" },
  { name: "deny string_not_equal, the value", policies: [doc(allow(ENC, KEY), deny(ENC, "*", { string_not_equal: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", context: ec("billing"), expected: "allow" },
  {
    name: "deny string_not_equal on an absent key does not apply (absent key: false)",
    policies: [doc(allow(ENC, KEY), deny(ENC, "*", { string_not_equal: { "kms:encryption_context/app": "billing" } }))],
    action: "kms:Encrypt",
    expected: "allow",
  },
  { name: "deny string_not_equal_if_exist on an absent key applies", policies: [doc(allow(ENC, KEY), deny(ENC, "*", { string_not_equal_if_exist: { "kms:encryption_context/app": "billing" } }))], action: "kms:Encrypt", expected: "explicit-deny" },
  { name: "several values of one key: any one", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": ["hr", "billing"] } }))], action: "kms:Encrypt", context: ec("billing"), expected: "allow" },
  {
    name: "several keys: all of them",
    policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing", "kms:encryption_context/env": "prod" } }))],
    action: "kms:Encrypt",
    context: ec("billing"),
    expected: "implicit-deny",
  },
  {
    name: "several keys, all present and equal",
    policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing", "kms:encryption_context/env": "prod" } }))],
    action: "kms:Encrypt",
    context: { encryptionContext: { app: "billing", env: "prod" } },
    expected: "allow",
  },
  {
    name: "several operators: all of them",
    policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" }, ip_equal: { "qcs:ip": "10.0.0.0/8" } }))],
    action: "kms:Encrypt",
    context: { ...ec("billing"), sourceIp: "8.8.8.8" },
    expected: "implicit-deny",
  },
  { name: "string_equal is case-sensitive", policies: [doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "Billing" } }))], action: "kms:Encrypt", context: ec("billing"), expected: "implicit-deny" },

  // ---- tag conditions ----
  { name: "qcs:resource_tag key&value present", policies: [doc(allow(ENC, KEY, { string_equal: { "qcs:resource_tag": "env&prod" } }))], action: "kms:Encrypt", context: { resourceTags: { team: "x", env: "prod" } }, expected: "allow" },
  { name: "qcs:resource_tag another value", policies: [doc(allow(ENC, KEY, { string_equal: { "qcs:resource_tag": "env&prod" } }))], action: "kms:Encrypt", context: { resourceTags: { env: "dev" } }, expected: "implicit-deny" },
  { name: "qcs:resource_tag/<key>", policies: [doc(allow(ENC, KEY, { string_equal: { "qcs:resource_tag/env": "prod" } }))], action: "kms:Encrypt", context: { resourceTags: { env: "prod" } }, expected: "allow" },
  { name: "qcs:resource_tag/<key> on an untagged key", policies: [doc(allow(ENC, KEY, { string_equal: { "qcs:resource_tag/env": "prod" } }))], action: "kms:Encrypt", expected: "implicit-deny" },
  { name: "qcs:resource_tag with string_like", policies: [doc(allow(ENC, KEY, { string_like: { "qcs:resource_tag": "env&*" } }))], action: "kms:Encrypt", context: { resourceTags: { env: "anything" } }, expected: "allow" },
  { name: "deny string_not_equal qcs:resource_tag, tag differs", policies: [doc(allow(ENC, KEY), deny("*", "*", { string_not_equal: { "qcs:resource_tag": "env&prod" } }))], action: "kms:Encrypt", context: { resourceTags: { env: "dev" } }, expected: "explicit-deny" },
  {
    name: "deny string_not_equal qcs:resource_tag, one of the tags equals",
    policies: [doc(allow(ENC, KEY), deny("*", "*", { string_not_equal: { "qcs:resource_tag": "env&prod" } }))],
    action: "kms:Encrypt",
    context: { resourceTags: { team: "x", env: "prod" } },
    expected: "allow",
  },
  { name: "deny string_not_equal qcs:resource_tag on an untagged key does not apply", policies: [doc(allow(ENC, KEY), deny("*", "*", { string_not_equal: { "qcs:resource_tag": "env&prod" } }))], action: "kms:Encrypt", context: { resourceTags: {} }, expected: "allow" },
  { name: "an empty tag set is absent for _if_exist", policies: [doc(allow(ENC, KEY, { string_equal_if_exist: { "qcs:resource_tag": "env&prod" } }))], action: "kms:Encrypt", context: { resourceTags: {} }, expected: "allow" },

  // ---- cross-account ----
  { name: "a policy naming B's key does not cover A's key", policies: [doc(allow(ENC, KEY_B))], action: "kms:Encrypt", resources: [KEY], expected: "implicit-deny" },
  { name: "a policy naming A's key does not cover B's key", policies: [doc(allow(ENC, KEY))], action: "kms:Encrypt", resources: [KEY_B], expected: "implicit-deny" },
  { name: "a policy naming B's key covers it", policies: [doc(allow(ENC, KEY_B))], action: "kms:Encrypt", resources: [KEY_B], expected: "allow" },
  { name: "account A's key/* does not cover B's key of the same path", policies: [doc(allow(ENC, `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${B}/0aefd3d2-0000-4000-8000-000000000009`))], action: "kms:Encrypt", resources: [KEY_B], expected: "implicit-deny" },
  { name: "a deny on every account's keys", policies: [doc(allow("name/kms:*")), doc(deny(ENC, "qcs::kms::uin/*:key/*"))], action: "kms:Encrypt", resources: [KEY_B], expected: "explicit-deny", by: [2, 0] },

  // ---- temporary credentials: a role's policies, evaluated the same way ----
  {
    name: "a role with crypto use and a deny of one key",
    policies: [JSON.stringify(QcloudKMSCryptoAccess.document), doc(deny("name/kms:*", KEY2))],
    action: "kms:Decrypt",
    expected: "allow",
    by: [1, 0],
  },
  { name: "the role's deny of one key", policies: [JSON.stringify(QcloudKMSCryptoAccess.document), doc(deny("name/kms:*", KEY2))], action: "kms:Decrypt", resources: [KEY2], expected: "explicit-deny", by: [2, 0] },
  { name: "the role may not schedule deletion", policies: [JSON.stringify(QcloudKMSCryptoAccess.document)], action: "kms:ScheduleKeyDeletion", expected: "implicit-deny" },
  {
    name: "a trust policy's statement never applies to a request",
    policies: [JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: [`qcs::cam::uin/${A}:root`] } }] })],
    action: "sts:AssumeRole",
    resources: ["*"],
    expected: "implicit-deny",
  },
];

function attached(row: Row): AttachedPolicy[] {
  return row.policies.map((text, i) => {
    // The trust row's document must parse as a trust policy; every other as an identity policy.
    const kind = text.includes('"principal"') ? "trust" : "identity";
    const policy: AttachedPolicy = { policyId: i + 1, policyName: `p${i + 1}`, document: parsePolicyDocument(text, kind) };
    if (row.ownerUin !== undefined) policy.ownerUin = row.ownerUin;
    return policy;
  });
}

function requestOf(row: Row): AuthorizationRequest {
  return { action: row.action, resources: row.resources ?? [KEY], context: { currentTime: NOW, ...row.context } };
}

describe("evaluate: the table", () => {
  it("has at least 70 rows with distinct names", () => {
    assert.ok(rows.length >= 70, `${rows.length} rows`);
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length);
  });

  for (const row of rows) {
    it(row.name, () => {
      const decision = evaluate(attached(row), requestOf(row));
      assert.equal(decision.reason, row.expected);
      assert.equal(decision.allowed, row.expected === "allow");
      if (row.expected === "implicit-deny") assert.equal(decision.statement, undefined);
      else assert.ok(decision.statement);
      if (row.by !== undefined) {
        assert.deepEqual(decision.statement, { policyId: row.by[0], policyName: `p${row.by[0]}`, index: row.by[1] });
      }
    });
  }
});

describe("actionMatches and resourceMatches", () => {
  it("match actions by service and case-sensitive Api", () => {
    assert.equal(actionMatches("name/kms:Describe*", "kms:DescribeKey"), true);
    assert.equal(actionMatches("name/kms:Describe*", "kms:describeKey"), false);
    assert.equal(actionMatches("name/kms:*", "cam:AddUser"), false);
    assert.equal(actionMatches("*", "cloudaudit:LookUpEvents"), true);
    assert.equal(actionMatches("kms:Encrypt", "kms:Encrypt"), false, "without name/ a pattern is not an action");
    assert.equal(actionMatches("name/kms:Encrypt", "Encrypt"), false);
  });

  it("match resources segment by segment", () => {
    assert.equal(resourceMatches("*", KEY), true);
    assert.equal(resourceMatches("*", "*"), true);
    assert.equal(resourceMatches(`qcs::kms::uin/${A}:key/*`, "*"), false);
    assert.equal(resourceMatches(`qcs::kms::uin/${A}:key/*`, KEY), true);
    // A wildcard in the region segment stays in it; in the resource tail it spans "/".
    assert.equal(resourceMatches(`qcs::kms:*:uin/${A}:key/*`, KEY), true);
    assert.equal(resourceMatches(`qcs::kms:*:key/*`, KEY), false, "five segments are no pattern");
    assert.equal(resourceMatches(`qcs::kms:ap-guangzhou:uin/1*:key/creatorUin/*`, KEY), true);
    assert.equal(resourceMatches(`qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-000000000001`, `${KEY}x`), false);
    assert.equal(resourceMatches(`qcs::kms:ap-guangzhou:uin/${A}:key.creatorUin/*`, KEY), false, "a dot is literal");
  });
});

describe("explain", () => {
  const policies = (texts: string[]): AttachedPolicy[] => attached({ name: "", policies: texts, action: "", expected: "allow" });
  const request: AuthorizationRequest = { action: "kms:Encrypt", resources: [KEY, ALIAS], context: { currentTime: NOW, sourceIp: "8.8.8.8" } };

  it("names the deciding deny and every matching statement", () => {
    const text = explain(policies([doc(allow(ENC, KEY)), doc(deny("name/kms:*", ALIAS))]), request);
    assert.match(text, /^request: kms:Encrypt on qcs::kms:ap-guangzhou:uin\/100000000001:key\//);
    assert.match(text, /decision: denied explicitly by policy 2 "p2" statement\[0\]/);
    assert.match(text, /policy 1 "p1" statement\[0\] \(allow\): applies/);
    assert.match(text, /policy 2 "p2" statement\[0\] \(deny\): applies/);
  });

  it("says which condition kept a statement from applying", () => {
    const text = explain(policies([doc(allow(ENC, KEY, { ip_equal: { "qcs:ip": "10.0.0.0/8" } }))]), request);
    assert.match(text, /decision: denied implicitly: no statement allows kms:Encrypt on /);
    assert.match(text, /does not apply: ip_equal qcs:ip \["10\.0\.0\.0\/8"\] does not hold \(request: 8\.8\.8\.8\)/);
    const absent = explain(policies([doc(allow(ENC, KEY, { string_equal: { "kms:encryption_context/app": "billing" } }))]), request);
    assert.match(absent, /string_equal kms:encryption_context\/app \["billing"\] does not hold \(request: absent\)/);
  });

  it("names the allow, and says when nothing matches", () => {
    assert.match(explain(policies([doc(allow("name/kms:Decrypt"), allow("*"))]), request), /decision: allowed by policy 1 "p1" statement\[1\]/);
    assert.match(explain([], request), /no statement matches this action and resource/);
  });
});

describe("presets", () => {
  const on = (action: string, resources = [KEY]): AuthorizationRequest => ({ action, resources, context: { currentTime: NOW } });
  const reason = (p: typeof QcloudKMSFullAccess, r: AuthorizationRequest) => evaluate([p], r).reason;

  it("have ids 1, 2, 3 and their names", () => {
    assert.deepEqual(
      [QcloudKMSFullAccess, QcloudKMSReadOnlyAccess, QcloudKMSCryptoAccess].map((p) => [p.policyId, p.policyName]),
      [
        [1, "QcloudKMSFullAccess"],
        [2, "QcloudKMSReadOnlyAccess"],
        [3, "QcloudKMSCryptoAccess"],
      ],
    );
  });

  it("QcloudKMSFullAccess allows every kms action, account-level ones included, and nothing else", () => {
    assert.equal(reason(QcloudKMSFullAccess, on("kms:ScheduleKeyDeletion")), "allow");
    assert.equal(reason(QcloudKMSFullAccess, on("kms:CreateKey", ["*"])), "allow");
    assert.equal(reason(QcloudKMSFullAccess, on("cam:AttachUserPolicy", ["*"])), "implicit-deny");
  });

  it("QcloudKMSReadOnlyAccess reads, but neither uses nor changes keys", () => {
    for (const a of ["DescribeKey", "ListKeys", "GetKeyRotationStatus", "GetPublicKey", "ListKeyVersions"]) assert.equal(reason(QcloudKMSReadOnlyAccess, on(`kms:${a}`)), "allow", a);
    for (const a of ["Encrypt", "GetParametersForImport", "EnableKey", "GenerateRandom"]) assert.equal(reason(QcloudKMSReadOnlyAccess, on(`kms:${a}`)), "implicit-deny", a);
  });

  it("QcloudKMSCryptoAccess uses keys, but neither manages nor lists them", () => {
    for (const a of ["Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "SignByAsymmetricKey", "AsymmetricSm2Decrypt", "GetPublicKey", "DescribeKey"]) {
      assert.equal(reason(QcloudKMSCryptoAccess, on(`kms:${a}`)), "allow", a);
    }
    for (const a of ["CreateKey", "ListKeys", "DisableKey", "ScheduleKeyDeletion", "UpdateAlias", "ImportKeyMaterial"]) assert.equal(reason(QcloudKMSCryptoAccess, on(`kms:${a}`)), "implicit-deny", a);
  });

  it("are frozen", () => {
    assert.ok(Object.isFrozen(QcloudKMSFullAccess.document.statement));
    assert.throws(() => (QcloudKMSFullAccess.document.statement[0]!.action as string[]).push("name/cam:*"));
  });
});
