// docs/formats.md's suite table and example agree with the code and the fixtures.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SUITES, SUITE_NAMES } from "../../../src/sdk/encryption/index.js";
import { FIXTURES_FILE, type Fixture } from "../../helpers/encryption-fixtures.js";

const formatsMd = readFileSync(new URL("../../../../docs/formats.md", import.meta.url), "utf8");
const usageMd = readFileSync(new URL("../../../../docs/encryption-sdk.md", import.meta.url), "utf8");

describe("docs for the Encryption SDK", () => {
  it("lists every suite with its id, and no other", () => {
    const start = formatsMd.indexOf("<!-- encryption-suites:begin -->");
    const end = formatsMd.indexOf("<!-- encryption-suites:end -->");
    assert.ok(start > 0 && end > start);
    const rows = formatsMd
      .slice(start, end)
      .split("\n")
      .filter((l) => /^\| `0x/.test(l))
      .map((l) => l.split("|").map((c) => c.trim().replace(/^`|`$/g, "")));
    assert.deepEqual(
      rows.map((r) => [r[1], r[2]]),
      SUITE_NAMES.map((n) => [`0x${SUITES[n].id.toString(16).padStart(4, "0")}`, n]),
    );
  });

  it("shows the example message's real first bytes and length", () => {
    const { fixtures } = JSON.parse(readFileSync(FIXTURES_FILE, "utf8")) as { fixtures: Fixture[] };
    const f = fixtures.find((x) => x.suite === "SM4_CTR_HMAC_SM3" && x.case === "one-frame")!;
    const m = Buffer.from(f.messageHex, "hex");
    assert.match(formatsMd, new RegExp(`one-frame\` message \\(20 bytes of plaintext[^)]*\\) is ${m.length} bytes`));
    const firstLine = [...m.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    assert.ok(formatsMd.includes(`00000000  ${firstLine}`), "the hex dump's first line");
  });

  it("the usage page names every suite", () => {
    for (const n of SUITE_NAMES) assert.ok(usageMd.includes(n), n);
  });
});
