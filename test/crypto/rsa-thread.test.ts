// The RSA thread: the same answers as RsaPrivateKey in process (PKCS#1 v1.5's implicit rejection
// included, which is deterministic per key and ciphertext), off the event loop, bounded.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { CryptoError } from "../../src/crypto/errors.js";
import { ThreadBusyError } from "../../src/crypto/job-thread.js";
import {
  RSA_ENCRYPTION_ALGORITHMS,
  RSA_SIGNATURE_ALGORITHMS,
  RsaPrivateKey,
  rsaEncrypt,
  rsaGenerateKeyPairAsync,
  rsaPublicKey,
  rsaVerify,
  rsaVerifyDigest,
  type RsaKeyPair,
} from "../../src/crypto/rsa.js";
import { MAX_QUEUED_RSA, RsaThread } from "../../src/crypto/rsa-worker.js";

describe("the RSA thread", () => {
  let pair: RsaKeyPair;
  let key: RsaPrivateKey;
  let thread: RsaThread;
  before(async () => {
    pair = await rsaGenerateKeyPairAsync(2048);
    key = new RsaPrivateKey(pair.privateKey);
    thread = new RsaThread();
  });
  after(() => {
    thread.close();
    key.destroy();
  });

  it("signs messages and digests, with both algorithms, that verify by the public key", async () => {
    const publicKey = rsaPublicKey(pair.publicKey);
    const message = randomBytes(100);
    const digest = createHash("sha256").update(message).digest();
    for (const algorithm of RSA_SIGNATURE_ALGORITHMS) {
      const signature = await thread.sign(key, algorithm, message, false);
      assert.equal(rsaVerify(publicKey, algorithm, message, signature), true, algorithm);
      const overDigest = await thread.sign(key, algorithm, digest, true);
      assert.equal(rsaVerifyDigest(publicKey, algorithm, digest, overDigest), true, `${algorithm} over a digest`);
      assert.equal(rsaVerify(publicKey, algorithm, message, overDigest), true, `${algorithm}: a digest's signature is the message's`);
    }
    // PKCS#1 v1.5 signatures are deterministic: the thread's is the in-process one.
    assert.deepEqual(await thread.sign(key, "RSA_PKCS1_SHA_256", message, false), key.sign("RSA_PKCS1_SHA_256", message));
    await assert.rejects(thread.sign(key, "RSA_PSS_SHA_256", randomBytes(31), true), RangeError);
  });

  it("decrypts as in process: OAEP, PKCS#1 v1.5, and v1.5's implicit rejection of a bad ciphertext", async () => {
    const publicKey = rsaPublicKey(pair.publicKey);
    const plaintext = randomBytes(32);
    for (const algorithm of RSA_ENCRYPTION_ALGORITHMS) {
      assert.deepEqual(await thread.decrypt(key, algorithm, rsaEncrypt(publicKey, algorithm, plaintext)), plaintext, algorithm);
    }
    const forged = rsaEncrypt(publicKey, "RSAES_OAEP_SHA_256", plaintext);
    forged[10]! ^= 1;
    await assert.rejects(thread.decrypt(key, "RSAES_OAEP_SHA_256", forged), CryptoError);
    // A PKCS#1 v1.5 ciphertext of a badly padded block decrypts to the synthetic plaintext (RFC 8017
    // implicit rejection draft), the same in the thread as in process, never an error.
    const garbage = Buffer.alloc(256, 0x11);
    const synthetic = await thread.decrypt(key, "RSAES_PKCS1_V1_5", garbage);
    assert.deepEqual(synthetic, key.decrypt("RSAES_PKCS1_V1_5", garbage));
    await assert.rejects(thread.decrypt(key, "RSAES_PKCS1_V1_5", Buffer.alloc(255)), CryptoError);
  });

  it("keeps the event loop free while it signs", async () => {
    await thread.sign(key, "RSA_PSS_SHA_256", Buffer.from("warm-up"), false);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    // 100 RSA-2048 signatures are about 30 ms of one core; on the event loop no timer could have fired.
    await Promise.all(Array.from({ length: 100 }, (_, i) => thread.sign(key, "RSA_PSS_SHA_256", Buffer.from(`m${i}`), false)));
    clearInterval(timer);
    assert.ok(ticks > 0, "a 1 ms timer fired while the thread signed");
  });

  it("sends a key again to a thread that restarted, and never uses a key destroyed here", async () => {
    const own = new RsaThread();
    const mine = new RsaPrivateKey(pair.privateKey);
    try {
      const message = Buffer.from("restart");
      const before = await own.sign(mine, "RSA_PKCS1_SHA_256", message, false);
      own.close(); // the next job starts a new thread, which holds no key
      assert.deepEqual(await own.sign(mine, "RSA_PKCS1_SHA_256", message, false), before);
      mine.destroy(); // the thread forgets its clone: it must not sign with it
      await assert.rejects(own.sign(mine, "RSA_PKCS1_SHA_256", message, false), /used after destroy/);
    } finally {
      own.close();
    }
  });

  it("refuses work beyond its queue instead of queueing without bound", async () => {
    const own = new RsaThread();
    try {
      const queued = Array.from({ length: MAX_QUEUED_RSA }, () => own.sign(key, "RSA_PKCS1_SHA_256", Buffer.from("m"), false));
      await assert.rejects(own.sign(key, "RSA_PKCS1_SHA_256", Buffer.from("m"), false), ThreadBusyError);
      own.close();
      await Promise.allSettled(queued);
    } finally {
      own.close();
    }
  });
});
