// docs/kmip.md against the code: the state table printed from src/keys/lifecycle.ts, the policy
// example the parser accepts, and the operation table naming as done exactly what the door serves.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { OPERATIONS } from "../../src/api/kmip/operations.js";
import { kmipStateMarkdown } from "../../src/keys/lifecycle.js";
import { parsePolicyDocument } from "../../src/policy/document.js";

const kmipMd = readFileSync(new URL("../../../docs/kmip.md", import.meta.url), "utf8");

/** "Get Attribute List" → "GetAttributeList". */
const compact = (name: string) => name.replace(/\s+/g, "");

describe("docs/kmip.md", () => {
  it("prints exactly kmipStateMarkdown() between the kmip-states markers", () => {
    const m = /<!-- kmip-states:begin -->\n([\s\S]*?)\n<!-- kmip-states:end -->/.exec(kmipMd);
    assert.ok(m, "the kmip-states markers");
    assert.equal(m[1]!.trim(), kmipStateMarkdown().trim());
  });

  it("gives a policy example that the policy parser accepts", () => {
    const blocks = [...kmipMd.matchAll(/^```json policy\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    assert.equal(blocks.length, 1);
    assert.doesNotThrow(() => parsePolicyDocument(blocks[0]!, "identity"));
  });

  it("marks as done exactly the operations the KMIP door serves", () => {
    const section = kmipMd.slice(kmipMd.indexOf("## Operations"), kmipMd.indexOf("## Not yet"));
    const rows = section
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| operation") && !l.startsWith("| ---"))
      .map((l) => l.split("|").map((c) => c.trim()));
    const done = rows.filter((r) => r[2]!.startsWith("done")).flatMap((r) => r[1]!.split(",").map(compact));
    assert.deepEqual(done.sort(), Object.keys(OPERATIONS).sort());
  });
});
