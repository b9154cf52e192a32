// The wildcard matcher: examples, agreement with a RegExp reference on small inputs, and no
// catastrophic backtracking on the patterns that make a RegExp hang.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parsePolicyDocument } from "../../src/policy/document.js";
import { evaluate } from "../../src/policy/evaluate.js";
import { compileGlob, globMatches } from "../../src/policy/glob.js";

/** The obvious RegExp translation, used as the reference on inputs too small to make it backtrack badly. */
function reference(pattern: string, subject: string): boolean {
  const source = Array.from(pattern, (c) => (c === "*" ? "[\\s\\S]*" : c === "?" ? "[\\s\\S]" : c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"))).join("");
  return new RegExp(`^${source}$`, "u").test(subject);
}

describe("glob", () => {
  it("matches the examples", () => {
    const cases: Array<[string, string, boolean]> = [
      ["Describe*", "DescribeKey", true],
      ["Describe*", "Describe", true],
      ["Describe*", "describeKey", false],
      ["*", "", true],
      ["", "", true],
      ["", "a", false],
      ["?", "", false],
      ["?ncrypt", "Encrypt", true],
      ["key/*", "key/creatorUin/1/k", true],
      ["key/*/k-?", "key/creatorUin/1/k-1", true],
      ["key/*/k-?", "key/creatorUin/1/k-10", false],
      ["a*b*c", "aXXbYYc", true],
      ["a*b*c", "aXXbYY", false],
      ["a**b", "ab", true],
      ["a.b", "aXb", false],
      ["环境&?", "环境&产", true],
      ["?", "😀", true],
      ["a?c", "a😀c", true],
    ];
    for (const [pattern, subject, expected] of cases) assert.equal(globMatches(pattern, subject), expected, `${pattern} vs ${subject}`);
  });

  it("agrees with a RegExp on small inputs", () => {
    const alphabet = fc.constantFrom("a", "b", "/", ":", "*", "?", ".", "😀");
    const text = fc.array(alphabet, { maxLength: 8 }).map((cs) => cs.join(""));
    const subject = fc.array(fc.constantFrom("a", "b", "/", ":", ".", "😀", "*", "?"), { maxLength: 10 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(text, subject, (p, s) => {
        assert.equal(compileGlob(p)(s), reference(p, s));
      }),
      { numRuns: 2000 },
    );
  });

  it("does not backtrack catastrophically", () => {
    // As a RegExp this pattern takes about a minute on 200 characters.
    const started = performance.now();
    assert.equal(globMatches(`${"*a".repeat(30)}*c`, "a".repeat(1000)), false);
    const text = JSON.stringify({
      version: "2.0",
      statement: [
        // The resource fails to match; then the resource matches and the condition fails to.
        { effect: "allow", action: "name/kms:Encrypt", resource: `qcs::kms::uin/1:key/${"*a".repeat(40)}*c` },
        { effect: "allow", action: "name/kms:Encrypt", resource: `qcs::kms::uin/1:key/${"*a".repeat(40)}*`, condition: { string_like: { "kms:encryption_context/x": `${"*a".repeat(40)}*c` } } },
      ],
    });
    const policies = [{ policyId: 1, policyName: "slow", document: parsePolicyDocument(text, "identity") }];
    const d = evaluate(policies, {
      action: "kms:Encrypt",
      resources: [`qcs::kms:ap-guangzhou:uin/1:key/${"a".repeat(200)}`],
      context: { currentTime: 0, encryptionContext: { x: "a".repeat(1000) } },
    });
    assert.equal(d.reason, "implicit-deny");
    assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
  });
});
