// Keeps docs/aws.md true to the AWS door: its action table lists exactly the actions the door
// serves, each with the catalogue action the code maps it onto, and every AWS exception name the
// error table (src/api/aws/errors.ts) can answer is documented.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AWS_ACTIONS } from "../../src/api/aws/actions.js";
import { AWS_ERRORS } from "../../src/api/aws/errors.js";

const awsMd = readFileSync(new URL("../../../docs/aws.md", import.meta.url), "utf8");

/** The rows of the table between the aws-actions markers: [action, catalogue action, served]. */
function actionRows(): string[][] {
  const begin = awsMd.indexOf("<!-- aws-actions:begin -->");
  const end = awsMd.indexOf("<!-- aws-actions:end -->");
  assert.ok(begin >= 0 && end > begin, "docs/aws.md needs the aws-actions markers");
  return awsMd
    .slice(begin, end)
    .split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| AWS action") && !line.startsWith("| ---"))
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
}

describe("docs/aws.md", () => {
  it("has an action table equal to the door's actions and their catalogue actions, in order", () => {
    const documented = actionRows().map(([name, catalog]) => [name, catalog]);
    const served = Object.entries(AWS_ACTIONS).map(([name, definition]) => [name, definition.catalog]);
    assert.deepEqual(documented, served);
  });

  it("marks each action served, partial or not, and explains every partial or refused one", () => {
    for (const [name, , served, differs] of actionRows()) {
      assert.ok(["yes", "partial", "no"].includes(served!), `${name}: "${served}"`);
      if (served !== "yes") assert.ok(differs && differs.length > 0, `${name} needs a "what differs" text`);
    }
  });

  it("names every AWS exception the door can answer", () => {
    const missing = [...new Set(Object.values(AWS_ERRORS).map((e) => e.type))].filter((type) => !awsMd.includes(`\`${type}\``));
    assert.deepEqual(missing, []);
  });
});
