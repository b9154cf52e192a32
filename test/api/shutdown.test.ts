// Shutdown lets in-flight requests finish before the store closes, and takes no new work.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { KmsService } from "../../src/service/kms-service.js";
import { waitFor } from "../helpers/wait.js";
import { startInProcessServer, type InProcessServer } from "./helpers-inprocess.js";

describe("shutdown", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer();
  });
  after(async () => {
    await s.stop();
  });

  it("finishes a request that is in flight when the server starts closing, then closes", async () => {
    const keyId = String((await s.call("CreateKey", { Alias: "inflight" })).KeyId);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const original = s.service.encrypt.bind(s.service);
    (s.service as { encrypt: KmsService["encrypt"] }).encrypt = async (...args) => {
      entered();
      await gate;
      return original(...args);
    };

    const inflight = s.raw("Encrypt", { KeyId: keyId, Plaintext: Buffer.from("in flight").toString("base64") });
    await inside;
    let closed = false;
    const closing = s.stop().then(() => (closed = true));
    // Closing has begun once new connections are refused; the request in flight still holds it open.
    await waitFor("a new connection to be refused while closing", () => s.raw("GetRegions", {}).then(() => false, () => true), { timeoutMs: 10_000, intervalMs: 20 });
    assert.equal(closed, false, "the server waits for the request in flight");

    release();
    const answer = await inflight;
    assert.equal(answer.error, undefined, answer.text);
    assert.match(String(answer.response?.CiphertextBlob), /^[A-Za-z0-9+/]+=*$/);
    await closing;
    assert.equal(closed, true);
  });
});
