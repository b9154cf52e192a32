// Issue 13: a key's Description could hold ESC and BEL, and `tresor key describe` printed them raw
// into the administrator's terminal. The printers escape every control character, and no command
// writes to stdout or stderr except through them.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { escapeControls, jsonLines, safeJson } from "../../src/cli/output.js";

const HOSTILE = "a\x1b]0;owned\x07b\x1b[2Jc\x9b31md\x7fe\u202eevil\u2066f\ng\th\r\x00\u2028";

describe("escapeControls", () => {
  it("escapes C0 (newline and tab too), DEL, C1 and the bidi controls, and leaves other text alone", () => {
    assert.equal(escapeControls(HOSTILE), "a\\x1b]0;owned\\x07b\\x1b[2Jc\\x9b31md\\x7fe\\u202eevil\\u2066f\\ng\\th\\r\\x00\\u2028");
    assert.equal(escapeControls("plain Ünïcödé 密钥 ✓ \\x1b"), "plain Ünïcödé 密钥 ✓ \\x1b");
    assert.doesNotMatch(escapeControls(HOSTILE), /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028]/);
  });

  it("is stable: escaping escaped text changes nothing", () => {
    assert.equal(escapeControls(escapeControls(HOSTILE)), escapeControls(HOSTILE));
  });
});

describe("safeJson", () => {
  it("holds no raw control character and parses back to the same value", () => {
    const value = { Description: HOSTILE, n: 1 };
    for (const text of [safeJson(value), jsonLines(value).join("\n")]) {
      assert.doesNotMatch(text.replace(/\n {0,2}/g, ""), /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      assert.deepEqual(JSON.parse(text), value);
    }
  });
});

describe("the CLI's commands", () => {
  /**
   * Writes that bypass the printers, each with its reason: decrypt's plaintext is the user's own
   * bytes, asked for on a pipe or file (refused on a terminal); serve's one line is its own flag
   * errors, and its output is the JSON log; serve's readable log lines are escaped by prettyLogLine.
   */
  const ALLOWED: Record<string, RegExp[]> = {
    "serve-output.ts": [/process\.stdout\.write\(prettyLogLine\(line\)\)/],
    "crypto.ts": [/process\.stdout\.write\(plaintext,/],
    "serve.ts": [/process\.stderr\.write\(`error: \$\{e\.message\}\\n`\)/],
  };

  it("print only through src/cli/output.ts", async () => {
    const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../src/cli");
    const offenders: string[] = [];
    for (const file of (await readdir(dir)).filter((f) => f.endsWith(".ts") && f !== "output.ts")) {
      const lines = (await readFile(path.join(dir, file), "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (!/\.write\(|console\./.test(line)) return;
        if ((ALLOWED[file] ?? []).some((ok) => ok.test(line))) return;
        offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, [], "write through printLines, printErrorLines, printJson or writeLines");
  });
});
