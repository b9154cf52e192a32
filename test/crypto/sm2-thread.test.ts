// The SM2 thread: the same answers as the in-process functions, off the event loop, bounded.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { CryptoError } from "../../src/crypto/errors.js";
import { sm2Digest, sm2Encrypt, sm2GenerateKeyPair, sm2Verify, sm2VerifyDigest } from "../../src/crypto/sm2.js";
import { MAX_QUEUED_SM2, Sm2BusyError, Sm2Thread } from "../../src/crypto/sm2-worker.js";

describe("the SM2 thread", () => {
  it("signs messages and digests that verify in process, verifies as in process, decrypts, and leaves the caller's d as it was", async () => {
    const thread = new Sm2Thread();
    try {
      const { privateKey, publicKey } = sm2GenerateKeyPair();
      const d = Buffer.from(privateKey);
      const message = randomBytes(100);
      const signature = await thread.sign(privateKey, message, false);
      assert.equal(sm2Verify(publicKey, message, signature), true);
      const digest = sm2Digest(publicKey, message);
      assert.equal(sm2VerifyDigest(publicKey, digest, await thread.sign(privateKey, digest, true)), true);
      assert.equal(await thread.verify(privateKey, message, false, signature), true);
      assert.equal(await thread.verify(privateKey, digest, true, signature), true);
      const altered = Buffer.from(signature);
      altered[altered.length - 1]! ^= 1;
      assert.equal(await thread.verify(privateKey, message, false, altered), false);
      const plaintext = randomBytes(48);
      const ciphertext = sm2Encrypt(publicKey, plaintext);
      assert.deepEqual(await thread.decrypt(privateKey, ciphertext), plaintext);
      ciphertext[ciphertext.length - 1]! ^= 1;
      await assert.rejects(thread.decrypt(privateKey, ciphertext), CryptoError);
      assert.deepEqual(privateKey, d, "the thread wipes its own copy, never the caller's");
    } finally {
      thread.close();
    }
  });

  it("keeps the event loop free while it signs", async () => {
    const thread = new Sm2Thread();
    try {
      const { privateKey } = sm2GenerateKeyPair();
      await thread.sign(privateKey, Buffer.from("warm-up"), false);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      await Promise.all(Array.from({ length: 300 }, (_, i) => thread.sign(privateKey, Buffer.from(`m${i}`), false)));
      clearInterval(timer);
      // 300 signatures take about 0.1 s of one core; on the event loop no timer could have fired.
      assert.ok(ticks > 0, "a 1 ms timer fired while the thread signed");
    } finally {
      thread.close();
    }
  });

  it("refuses work beyond its queue instead of queueing without bound", async () => {
    const thread = new Sm2Thread();
    try {
      const { privateKey } = sm2GenerateKeyPair();
      const queued = Array.from({ length: MAX_QUEUED_SM2 }, () => thread.sign(privateKey, Buffer.from("m"), false));
      await assert.rejects(thread.sign(privateKey, Buffer.from("m"), false), Sm2BusyError);
      thread.close();
      await Promise.allSettled(queued);
    } finally {
      thread.close();
    }
  });
});
