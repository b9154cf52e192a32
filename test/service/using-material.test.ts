// usingMaterial: the one translation of the material layer's and the worker threads' failures.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ThreadBusyError } from "../../src/crypto/job-thread.js";
import { MaterialError } from "../../src/material/material.js";
import { CIPHERTEXT_ERRORS, CURRENT_VERSION_ERRORS, usingMaterial } from "../../src/service/context.js";
import { KmsError } from "../../src/service/errors.js";

describe("usingMaterial", () => {
  it("answers RequestLimitExceeded when a worker thread already holds all the jobs it takes (SM2, ECMR, post-quantum alike)", async () => {
    await assert.rejects(
      usingMaterial(() => Promise.reject(new ThreadBusyError("256 post-quantum jobs are already waiting: retry later")), CURRENT_VERSION_ERRORS),
      (e: unknown) => e instanceof KmsError && e.code === "RequestLimitExceeded" && /already waiting/.test(e.message),
    );
  });

  it("translates the material layer's failures and lets any other error through", async () => {
    await assert.rejects(
      usingMaterial(() => Promise.reject(new MaterialError("Undecryptable", "no")), CIPHERTEXT_ERRORS),
      (e: unknown) => e instanceof KmsError && e.code === "InvalidCiphertext",
    );
    await assert.rejects(
      usingMaterial(() => Promise.reject(new MaterialError("Unsupported", "no token")), CURRENT_VERSION_ERRORS),
      (e: unknown) => e instanceof KmsError && e.code === "UnsupportedOperation",
    );
    const other = new Error("something else");
    await assert.rejects(usingMaterial(() => Promise.reject(other), CURRENT_VERSION_ERRORS), (e: unknown) => e === other);
    assert.equal(await usingMaterial(() => Promise.resolve(7), CURRENT_VERSION_ERRORS), 7);
  });
});
