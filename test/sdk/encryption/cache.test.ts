// DataKeyCache: data keys reused within max age, messages and bytes, partitioned by keyring,
// suite and encryption context; off unless passed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DataKeyCache, decrypt, encrypt, RawKeyring, type Keyring } from "../../../src/sdk/encryption/index.js";

function counting(): Keyring & { generated: number; decrypted: number } {
  const inner = new RawKeyring([{ name: "k", algorithm: "SM4-GCM", key: Buffer.alloc(16, 1) }]);
  const k = {
    cacheId: inner.cacheId,
    generated: 0,
    decrypted: 0,
    generateDataKey: (...a: Parameters<Keyring["generateDataKey"]>) => (k.generated++, inner.generateDataKey(...a)),
    decryptDataKey: (...a: Parameters<Keyring["decryptDataKey"]>) => (k.decrypted++, inner.decryptDataKey(...a)),
  };
  return k;
}

describe("DataKeyCache", () => {
  it("is off by default: one data key per message", async () => {
    const keyring = counting();
    for (let i = 0; i < 3; i++) await encrypt("x", { keyring });
    assert.equal(keyring.generated, 3);
  });

  it("reuses a data key up to maxMessages, and messages still decrypt", async () => {
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 2 });
    const messages = [];
    for (let i = 0; i < 5; i++) messages.push((await encrypt(`m${i}`, { keyring, cache, encryptionContext: { a: "1" } })).message);
    assert.equal(keyring.generated, 3); // 2 + 2 + 1
    for (const [i, m] of messages.entries()) assert.equal((await decrypt(m, { keyring })).plaintext.toString(), `m${i}`);
    // The same data key, but each message has its own id and so its own derived keys.
    assert.notDeepEqual(messages[0]!.subarray(7, 39), messages[1]!.subarray(7, 39));
  });

  it("expires entries after maxAgeMs", async () => {
    let now = 1000;
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 100, now: () => now });
    await encrypt("x", { keyring, cache });
    now += 99;
    await encrypt("x", { keyring, cache });
    assert.equal(keyring.generated, 1);
    now += 1;
    await encrypt("x", { keyring, cache });
    assert.equal(keyring.generated, 2);
  });

  it("stops at maxBytes, using the known plaintext length up front", async () => {
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxBytes: 10 });
    await encrypt("12345", { keyring, cache });
    await encrypt("1234", { keyring, cache }); // 9 bytes so far
    assert.equal(keyring.generated, 1);
    await encrypt("12", { keyring, cache }); // would make 11: a new key
    assert.equal(keyring.generated, 2);
  });

  it("partitions by encryption context and suite", async () => {
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    await encrypt("x", { keyring, cache, encryptionContext: { t: "a" } });
    await encrypt("x", { keyring, cache, encryptionContext: { t: "b" } });
    await encrypt("x", { keyring, cache, encryptionContext: { t: "a" }, suite: "SM4_CTR_HMAC_SM3" });
    await encrypt("x", { keyring, cache, encryptionContext: { t: "a" } });
    assert.equal(keyring.generated, 3);
  });

  it("caches the signing key pair with the data key of a signed suite", async () => {
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const a = await encrypt("one", { keyring, cache, suite: "SM4_GCM_SM3_SM2" });
    const b = await encrypt("two", { keyring, cache, suite: "SM4_GCM_SM3_SM2" });
    assert.equal(keyring.generated, 1);
    assert.equal((await decrypt(a.message, { keyring })).plaintext.toString(), "one");
    assert.equal((await decrypt(b.message, { keyring })).plaintext.toString(), "two");
  });

  it("caches decrypted data keys per message header", async () => {
    const keyring = counting();
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const { message } = await encrypt("x", { keyring });
    await decrypt(message, { keyring, cache });
    await decrypt(message, { keyring, cache });
    assert.equal(keyring.decrypted, 1);
    cache.clear();
    await decrypt(message, { keyring, cache });
    assert.equal(keyring.decrypted, 2);
  });

  it("validates its options", () => {
    assert.throws(() => new DataKeyCache({ maxAgeMs: 0 }), /"maxAgeMs"/);
    assert.throws(() => new DataKeyCache({ maxAgeMs: 1, maxMessages: 0 }), /"maxMessages"/);
  });
});
