// docs/architecture.md stays a true map: its folder table lists exactly the folders of src/.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { describe, it } from "node:test";

// From dist/test/docs/ up to the repository root.
const ROOT = new URL("../../../", import.meta.url);

describe("docs/architecture.md", () => {
  it("lists exactly the folders of src/ in its folder table", () => {
    const text = readFileSync(new URL("docs/architecture.md", ROOT), "utf8");
    const table = text.slice(text.indexOf("<!-- folders:"), text.indexOf("\n## ", text.indexOf("<!-- folders:")));
    const listed = [...table.matchAll(/^\| `src\/([a-z-]+)\/` \|/gm)].map((m) => m[1]!).sort();
    const actual = readdirSync(new URL("src/", ROOT), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    assert.deepEqual(listed, actual, "docs/architecture.md's folder table differs from src/");
  });

  it("names only files that exist", () => {
    const text = readFileSync(new URL("docs/architecture.md", ROOT), "utf8");
    const missing = [...text.matchAll(/`(src\/[a-z/-]+\.ts)`/g)].map((m) => m[1]!).filter((file) => {
      try {
        readFileSync(new URL(file, ROOT));
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(missing, [], "docs/architecture.md names files that do not exist");
  });
});
