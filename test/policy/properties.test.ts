// Properties of the evaluator over generated policy sets and requests: a deny never grants, an
// allow never revokes a deny, the order of policies and statements does not matter, and nothing is
// allowed without a policy. Statements are drawn from pools chosen to overlap with the requests,
// so that all three outcomes occur often (checked by the last test).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parsePolicyDocument } from "../../src/policy/document.js";
import { evaluate, type AttachedPolicy, type AuthorizationRequest, type Decision } from "../../src/policy/evaluate.js";

const RUNS = { numRuns: 400 };

const A = "100000000001";
const B = "200000000002";
const KEY = `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/0aefd3d2-0000-4000-8000-000000000001`;
const ALIAS = `qcs::kms:ap-guangzhou:uin/${A}:alias/app`;
const KEY_B = `qcs::kms:ap-beijing:uin/${B}:key/creatorUin/${B}/0aefd3d2-0000-4000-8000-000000000009`;

const ACTION_PATTERNS = ["*", "name/kms:*", "name/kms:Encrypt", "name/kms:Decrypt", "name/kms:Describe*", "name/kms:Get*", "name/kms:CreateKey", "name/cam:*", "name/cam:AddUser"];
const RESOURCE_PATTERNS = [
  "*",
  KEY,
  ALIAS,
  KEY_B,
  `qcs::kms::uin/${A}:key/*`,
  `qcs::kms:ap-guangzhou:uin/${A}:key/creatorUin/${A}/*`,
  `qcs::kms::uin/${A}:alias/ap*`,
  "qcs::kms::uin/*:key/*",
  `qcs:::ap-beijing:uin/${B}:*`,
];
const CONDITIONS: Array<Record<string, Record<string, string[]>>> = [
  { ip_equal: { "qcs:ip": ["10.0.0.0/8"] } },
  { ip_not_equal: { "qcs:ip": ["10.0.0.0/8", "2001:db8::/32"] } },
  { ip_equal_if_exist: { "qcs:ip": ["192.168.0.0/16"] } },
  { string_equal: { "kms:encryption_context/app": ["billing"] } },
  { string_not_equal: { "kms:encryption_context/app": ["billing"] } },
  { string_like_if_exist: { "kms:encryption_context/app": ["bill*"] } },
  { string_equal: { "qcs:resource_tag": ["env&prod"] } },
  { string_not_equal_if_exist: { "qcs:resource_tag/env": ["prod"] } },
  { date_greater_than: { "qcs:current_time": ["2026-06-01T00:00:00Z"] } },
  { date_less_than_equal: { "qcs:current_time": ["2026-06-15T12:00:00Z"] }, string_equal: { "kms:encryption_context/app": ["billing", "hr"] } },
];

interface StatementJson {
  effect: "allow" | "deny";
  action: string[];
  resource: string[];
  condition?: Record<string, Record<string, string[]>>;
}

const statementOf = (effect: fc.Arbitrary<"allow" | "deny">): fc.Arbitrary<StatementJson> =>
  fc
    .record({
      effect,
      action: fc.uniqueArray(fc.constantFrom(...ACTION_PATTERNS), { minLength: 1, maxLength: 3 }),
      resource: fc.uniqueArray(fc.constantFrom(...RESOURCE_PATTERNS), { minLength: 1, maxLength: 3 }),
      condition: fc.option(fc.constantFrom(...CONDITIONS), { nil: undefined, freq: 2 }),
    })
    .map(({ condition, ...s }) => (condition === undefined ? s : { ...s, condition }));

const anyStatement = statementOf(fc.constantFrom("allow", "deny"));
const policyStatements = fc.array(anyStatement, { minLength: 1, maxLength: 4 });
const policySet = fc.array(policyStatements, { minLength: 0, maxLength: 4 });

const request: fc.Arbitrary<AuthorizationRequest> = fc.record({
  action: fc.constantFrom("kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GetPublicKey", "kms:CreateKey", "cam:AddUser", "kms:ScheduleKeyDeletion"),
  resources: fc.constantFrom([KEY], [KEY, ALIAS], [KEY_B], ["*"]),
  context: fc
    .record({
      currentTime: fc.constantFrom(Date.parse("2026-05-01T00:00:00Z"), Date.parse("2026-06-15T12:00:00Z"), Date.parse("2026-07-01T00:00:00Z")),
      sourceIp: fc.option(fc.constantFrom("10.1.2.3", "8.8.8.8", "192.168.7.7", "2001:db8::5", "::ffff:10.0.0.1"), { nil: undefined }),
      encryptionContext: fc.option(fc.constantFrom({ app: "billing" }, { app: "hr" }, { app: "billing-eu" }, {}), { nil: undefined }),
      resourceTags: fc.option(fc.constantFrom({ env: "prod" }, { env: "dev", team: "x" }, {}), { nil: undefined }),
    })
    .map(({ sourceIp, encryptionContext, resourceTags, currentTime }) => ({
      currentTime,
      ...(sourceIp === undefined ? {} : { sourceIp }),
      ...(encryptionContext === undefined ? {} : { encryptionContext }),
      ...(resourceTags === undefined ? {} : { resourceTags }),
    })),
});

/** Parses each policy's statements as a document; ids follow the given order. */
function attach(policies: readonly StatementJson[][]): AttachedPolicy[] {
  return policies.map((statement, i) => ({
    policyId: i + 1,
    policyName: `p${i + 1}`,
    document: parsePolicyDocument(JSON.stringify({ version: "2.0", statement }), "identity"),
  }));
}

const outcome = (d: Decision) => [d.allowed, d.reason] as const;

describe("evaluate: properties", () => {
  it("adding a deny never grants: allowed(P + deny) implies allowed(P)", () => {
    fc.assert(
      fc.property(policySet, statementOf(fc.constant("deny")), fc.nat(), request, (policies, extra, at, r) => {
        const withDeny = [...policies];
        withDeny.splice(at % (policies.length + 1), 0, [extra]);
        if (evaluate(attach(withDeny), r).allowed) assert.equal(evaluate(attach(policies), r).allowed, true);
      }),
      RUNS,
    );
  });

  it("adding a deny statement inside an existing policy never grants either", () => {
    fc.assert(
      fc.property(policySet.filter((p) => p.length > 0), statementOf(fc.constant("deny")), fc.nat(), request, (policies, extra, at, r) => {
        const target = at % policies.length;
        const withDeny = policies.map((statements, i) => (i === target ? [...statements, extra] : statements));
        if (evaluate(attach(withDeny), r).allowed) assert.equal(evaluate(attach(policies), r).allowed, true);
      }),
      RUNS,
    );
  });

  it("adding an allow never revokes an explicit deny", () => {
    fc.assert(
      fc.property(policySet, statementOf(fc.constant("allow")), fc.nat(), request, (policies, extra, at, r) => {
        if (evaluate(attach(policies), r).reason !== "explicit-deny") return;
        const withAllow = [...policies];
        withAllow.splice(at % (policies.length + 1), 0, [extra]);
        assert.equal(evaluate(attach(withAllow), r).reason, "explicit-deny");
      }),
      RUNS,
    );
  });

  it("the order of policies and of statements does not change the outcome", () => {
    const permuted = policySet.chain((policies) =>
      fc.tuple(
        fc.constant(policies),
        fc.shuffledSubarray(policies, { minLength: policies.length, maxLength: policies.length }).chain((order) =>
          fc.tuple(...order.map((statements) => fc.shuffledSubarray(statements, { minLength: statements.length, maxLength: statements.length }))),
        ),
      ),
    );
    fc.assert(
      fc.property(permuted, request, ([policies, reordered], r) => {
        assert.deepEqual(outcome(evaluate(attach(reordered), r)), outcome(evaluate(attach(policies), r)));
      }),
      RUNS,
    );
  });

  it("with no policies every request is implicitly denied", () => {
    fc.assert(
      fc.property(request, (r) => {
        assert.deepEqual(evaluate([], r), { allowed: false, reason: "implicit-deny" });
      }),
      RUNS,
    );
  });

  it("a reported statement is one that has the decision's effect and names the action", () => {
    fc.assert(
      fc.property(policySet, request, (policies, r) => {
        const attached = attach(policies);
        const d = evaluate(attached, r);
        if (d.statement === undefined) return assert.equal(d.reason, "implicit-deny");
        const s = attached[d.statement.policyId - 1]?.document.statement[d.statement.index];
        assert.ok(s);
        assert.equal(s.effect, d.reason === "allow" ? "allow" : "deny");
      }),
      RUNS,
    );
  });

  it("the generators reach all three outcomes often", () => {
    const seen = { allow: 0, "explicit-deny": 0, "implicit-deny": 0 };
    fc.assert(
      fc.property(policySet, request, (policies, r) => {
        seen[evaluate(attach(policies), r).reason]++;
      }),
      { numRuns: 600, seed: 1 },
    );
    for (const [reason, n] of Object.entries(seen)) assert.ok(n >= 60, `${reason}: ${n} of 600`);
  });
});
