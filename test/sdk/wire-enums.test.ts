// tresor/sdk keeps its own copy of the wire enums (it may not import server code); they must
// stay equal to the server's.

import assert from "node:assert/strict";
import { it } from "node:test";
import { KEY_USAGES as SERVER_KEY_USAGES } from "../../src/keys/key.js";
import { KEY_USAGES } from "../../src/sdk/index.js";

it("the SDK's KeyUsage values are the server's", () => {
  assert.deepEqual([...KEY_USAGES], [...SERVER_KEY_USAGES]);
});
