// The `openssl` command line is the independent reference for the crypto cross-checks. Without it
// those checks skip on a developer machine and fail under CI.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

export const HAS_OPENSSL = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();

/** For `it(name, { skip: opensslSkip }, …)`: a reason to skip, or false. */
export const opensslSkip: string | false = HAS_OPENSSL || process.env.CI ? false : "the openssl command is not installed";

export function requireOpenssl(): void {
  assert.ok(HAS_OPENSSL, "the openssl command is required (CI is set)");
}
