// KmsService behaviour below the protocol: ReEncrypt, GenerateDataKey lengths, the material cache,
// the CMK limit, alias uniqueness and all-or-nothing batches.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AEADS, type AeadKey } from "../../src/crypto/aead.js";
import { BLOB_HEADER_LENGTH, decodeBlob } from "../../src/keys/blob.js";
import { KmsError } from "../../src/service/errors.js";
import { MaterialCache } from "../../src/material/cache.js";
import { kmsError, openService, type ServiceFixture } from "./fixture.js";

const MISSING = "00000000-0000-4000-8000-000000000000";

describe("ReEncrypt", () => {
  let f: ServiceFixture;
  before(async () => {
    f = await openService();
  });
  after(async () => {
    await f.close();
  });

  it("returns the original blob and ReEncrypted false for the same key, version and context", async () => {
    const key = await f.createKey();
    const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("same"), { a: "1", b: "2" });
    const r = await f.service.reEncrypt(f.caller, { blob, sourceContext: { a: "1", b: "2" }, destinationContext: { b: "2", a: "1" } });
    assert.equal(r.reEncrypted, false);
    assert.ok(r.blob.equals(blob));
    assert.equal(r.keyId, key.keyId);
    assert.equal(r.sourceKeyId, key.keyId);
    // Naming the same key as destination explicitly is the same thing.
    const explicit = await f.service.reEncrypt(f.caller, { blob, destinationKeyId: key.keyId, sourceContext: { a: "1", b: "2" }, destinationContext: { a: "1", b: "2" } });
    assert.equal(explicit.reEncrypted, false);
    assert.ok(explicit.blob.equals(blob));
  });

  it("re-encrypts under the same key when the context changes", async () => {
    const key = await f.createKey();
    const plaintext = Buffer.from("context moves");
    const { blob } = await f.service.encrypt(f.caller, key.keyId, plaintext, { a: "1" });
    const r = await f.service.reEncrypt(f.caller, { blob, sourceContext: { a: "1" }, destinationContext: { a: "2" } });
    assert.equal(r.reEncrypted, true);
    assert.ok(!r.blob.equals(blob));
    assert.equal(r.keyId, key.keyId);
    assert.ok((await f.service.decrypt(f.caller, r.blob, { a: "2" })).plaintext.equals(plaintext));
    await assert.rejects(f.service.decrypt(f.caller, r.blob, { a: "1" }), kmsError("InvalidCiphertext"));
  });

  it("re-encrypts when a context pair is added, even one with an empty value", async () => {
    const key = await f.createKey();
    const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("x"), { a: "b" });
    const r = await f.service.reEncrypt(f.caller, { blob, sourceContext: { a: "b" }, destinationContext: { a: "b", c: "" } });
    assert.equal(r.reEncrypted, true);
  });

  it("re-encrypts to another key", async () => {
    const source = await f.createKey();
    const destination = await f.createKey({ keySpec: "AES_256" });
    const plaintext = Buffer.from("moving house");
    const { blob } = await f.service.encrypt(f.caller, source.keyId, plaintext, {});
    const r = await f.service.reEncrypt(f.caller, { blob, destinationKeyId: destination.keyId, sourceContext: {}, destinationContext: { to: "aes" } });
    assert.equal(r.reEncrypted, true);
    assert.equal(r.keyId, destination.keyId);
    assert.equal(r.sourceKeyId, source.keyId);
    const parsed = decodeBlob(r.blob);
    assert.equal(parsed.keyId, destination.keyId);
    assert.equal(parsed.algorithm, "AES-256-GCM");
    const back = await f.service.decrypt(f.caller, r.blob, { to: "aes" });
    assert.equal(back.keyId, destination.keyId);
    assert.ok(back.plaintext.equals(plaintext));
  });

  it("re-encrypts from an Archived source key to an Enabled one, but not onto the Archived key", async () => {
    const source = await f.createKey();
    const destination = await f.createKey();
    const { blob } = await f.service.encrypt(f.caller, source.keyId, Buffer.from("archive me"), {});
    await f.setState(source.keyId, "Archived");
    const r = await f.service.reEncrypt(f.caller, { blob, destinationKeyId: destination.keyId, sourceContext: {}, destinationContext: {} });
    assert.equal(r.reEncrypted, true);
    assert.equal(r.keyId, destination.keyId);
    await assert.rejects(f.service.reEncrypt(f.caller, { blob, sourceContext: {}, destinationContext: {} }), kmsError("CmkArchived"));
  });

  it("fails with the source context wrong, and with a missing destination", async () => {
    const key = await f.createKey();
    const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("x"), { a: "1" });
    await assert.rejects(f.service.reEncrypt(f.caller, { blob, sourceContext: { a: "2" }, destinationContext: {} }), kmsError("InvalidCiphertext"));
    await assert.rejects(f.service.reEncrypt(f.caller, { blob, destinationKeyId: MISSING, sourceContext: { a: "1" }, destinationContext: {} }), kmsError("CmkNotFound"));
  });

  it("fails onto a Disabled destination without changing anything", async () => {
    const source = await f.createKey();
    const destination = await f.createKey();
    await f.service.disableKey(f.caller, destination.keyId);
    const { blob } = await f.service.encrypt(f.caller, source.keyId, Buffer.from("x"), {});
    await assert.rejects(f.service.reEncrypt(f.caller, { blob, destinationKeyId: destination.keyId, sourceContext: {}, destinationContext: {} }), kmsError("CmkDisabled"));
    assert.equal((await f.service.describeKey(f.caller, destination.keyId)).state, "Disabled");
  });
});

describe("GenerateDataKey and GenerateRandom", () => {
  let f: ServiceFixture;
  before(async () => {
    f = await openService();
  });
  after(async () => {
    await f.close();
  });

  for (const spec of ["SM4", "AES_256"] as const) {
    it(`gives a data key of the asked length under a ${spec} key, whose blob decrypts to it`, async () => {
      const key = await f.createKey({ keySpec: spec });
      for (const n of [1, 16, 32, 1024]) {
        const r = await f.service.generateDataKey(f.caller, key.keyId, n, { n: String(n) });
        assert.equal(r.plaintext.length, n);
        assert.equal(r.keyId, key.keyId);
        assert.equal(r.blob.length, BLOB_HEADER_LENGTH + n + 16);
        const back = await f.service.decrypt(f.caller, r.blob, { n: String(n) });
        assert.ok(back.plaintext.equals(r.plaintext));
      }
    });
  }

  it("gives different data keys each time", async () => {
    const key = await f.createKey();
    const a = await f.service.generateDataKey(f.caller, key.keyId, 32, {});
    const b = await f.service.generateDataKey(f.caller, key.keyId, 32, {});
    assert.ok(!a.plaintext.equals(b.plaintext));
  });

  it("generates random bytes of the asked length", async () => {
    for (const n of [1, 32, 1024]) assert.equal((await f.service.generateRandom(f.caller, n)).length, n);
  });
});

describe("MaterialCache", () => {
  // A real prepared key over a material buffer whose wiping is observable.
  type Observed = AeadKey & { material: Buffer };
  const material = (fill: number): Observed => {
    const buffer = Buffer.alloc(32, fill);
    const key = AEADS["AES-256-GCM"].importKey(buffer);
    return { ...key, material: buffer, destroy: () => (key.destroy(), buffer.fill(0), undefined) };
  };
  const wiped = (k: Observed) => k.material.every((x) => x === 0);

  it("keeps at most maxEntries, wiping the oldest on eviction", () => {
    const cache = new MaterialCache({ maxEntries: 2, ttlMs: 60_000 }, () => 0);
    const [a, b, c] = [material(1), material(2), material(3)];
    cache.set("a", a);
    cache.set("b", b);
    assert.equal(cache.size, 2);
    cache.set("c", c);
    assert.equal(cache.size, 2);
    assert.ok(wiped(a), "the evicted entry was not wiped");
    assert.equal(cache.get("a"), undefined);
    assert.equal(cache.get("b"), b);
    assert.equal(cache.get("c"), c);
    assert.ok(!wiped(b) && !wiped(c));
  });

  it("expires entries after ttlMs, wiping them", () => {
    let now = 1_000;
    const cache = new MaterialCache({ maxEntries: 10, ttlMs: 500 }, () => now);
    const a = material(7);
    cache.set("a", a);
    now += 499;
    assert.equal(cache.get("a"), a);
    now += 1;
    assert.equal(cache.get("a"), undefined);
    assert.ok(wiped(a));
    assert.equal(cache.size, 0);
  });

  it("wipes the buffer it replaces under the same id", () => {
    const cache = new MaterialCache({ maxEntries: 10, ttlMs: 500 }, () => 0);
    const first = material(1);
    const second = material(2);
    cache.set("k/1", first);
    cache.set("k/1", second);
    assert.ok(wiped(first));
    assert.equal(cache.get("k/1"), second);
    assert.equal(cache.size, 1);
  });

  it("wipes everything on clear", () => {
    const cache = new MaterialCache({ maxEntries: 10, ttlMs: 500 }, () => 0);
    const all = [material(1), material(2), material(3)];
    all.forEach((m, i) => cache.set(String(i), m));
    cache.clear();
    assert.equal(cache.size, 0);
    assert.ok(all.every(wiped));
  });

  it("stays bounded under many distinct ids", () => {
    const cache = new MaterialCache({ maxEntries: 5, ttlMs: 500 }, () => 0);
    const all: Observed[] = [];
    for (let i = 0; i < 100; i++) {
      const m = material(i + 1);
      all.push(m);
      cache.set(`k/${i}`, m);
      assert.ok(cache.size <= 5);
    }
    assert.equal(all.filter((m) => !wiped(m)).length, 5);
  });

  it("in the service: with room for one entry, concurrent work over several keys stays correct", async () => {
    const f = await openService({ materialCache: { maxEntries: 1, ttlMs: 60_000 } });
    try {
      const keys = await Promise.all([1, 2, 3, 4].map(() => f.createKey()));
      const jobs = Array.from({ length: 40 }, (_, i) => ({ key: keys[i % keys.length]!, data: Buffer.from(`item ${i}`) }));
      const blobs = await Promise.all(jobs.map((j) => f.service.encrypt(f.caller, j.key.keyId, j.data, { i: j.data.toString() })));
      const back = await Promise.all(blobs.map((b, i) => f.service.decrypt(f.caller, b.blob, { i: jobs[i]!.data.toString() })));
      back.forEach((b, i) => assert.ok(b.plaintext.equals(jobs[i]!.data), `item ${i}`));
    } finally {
      await f.close();
    }
  });

  it("in the service: material expires with the clock and is unwrapped again", async () => {
    const f = await openService({ materialCache: { maxEntries: 10, ttlMs: 1_000 } });
    try {
      const key = await f.createKey();
      const { blob } = await f.service.encrypt(f.caller, key.keyId, Buffer.from("later"), {});
      f.clock.advance(10 * 60_000);
      assert.equal((await f.service.decrypt(f.caller, blob, {})).plaintext.toString(), "later");
    } finally {
      await f.close();
    }
  });
});

describe("CmkLimit", () => {
  it("refuses the key past the limit and stores nothing", async () => {
    const f = await openService({ cmkLimit: 3 });
    try {
      for (let i = 0; i < 3; i++) await f.createKey();
      await assert.rejects(f.createKey({ alias: "one-too-many" }), kmsError("CmkLimitExceeded"));
      assert.equal((await f.service.getServiceStatus(f.caller)).cmkUserCount, 3);
      assert.equal(await f.store.getKeyByAlias("one-too-many"), undefined);
    } finally {
      await f.close();
    }
  });

  it("holds under concurrent creates", async () => {
    const f = await openService({ cmkLimit: 2 });
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => f.createKey({ alias: `race-${i}` })));
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 2);
      for (const r of results) {
        if (r.status === "rejected") assert.ok(r.reason instanceof KmsError && r.reason.code === "CmkLimitExceeded", String(r.reason));
      }
      assert.equal((await f.service.getServiceStatus(f.caller)).cmkUserCount, 2);
    } finally {
      await f.close();
    }
  });
});

describe("alias uniqueness", () => {
  let f: ServiceFixture;
  before(async () => {
    f = await openService();
  });
  after(async () => {
    await f.close();
  });

  it("refuses a second key with the same alias", async () => {
    await f.createKey({ alias: "unique" });
    await assert.rejects(f.createKey({ alias: "unique" }), kmsError("AliasAlreadyExists"));
    assert.equal((await f.service.listKeyDetail(f.caller, { offset: 0, limit: 100, role: 0, order: "asc", search: "unique" })).totalCount, 1);
  });

  it("lets exactly one of concurrent creates with one alias win; the others get AliasAlreadyExists", async () => {
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => f.createKey({ alias: "contested" })));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof KmsError && r.reason.code === "AliasAlreadyExists", String(r.reason));
    }
  });

  it("refuses UpdateAlias to a taken alias and keeps both keys as they were", async () => {
    const a = await f.createKey({ alias: "first-alias" });
    const b = await f.createKey({ alias: "second-alias" });
    await assert.rejects(Promise.resolve().then(() => f.service.updateAlias(f.caller, b.keyId, "first-alias")), kmsError("AliasAlreadyExists"));
    assert.equal((await f.service.describeKey(f.caller, a.keyId)).alias, "first-alias");
    assert.equal((await f.service.describeKey(f.caller, b.keyId)).alias, "second-alias");
  });

  it("frees the old alias after UpdateAlias", async () => {
    const a = await f.createKey({ alias: "old-name" });
    await f.service.updateAlias(f.caller, a.keyId, "new-name");
    assert.equal((await f.service.describeKey(f.caller, a.keyId)).alias, "new-name");
    const b = await f.createKey({ alias: "old-name" });
    assert.equal(b.alias, "old-name");
  });
});

describe("EnableKeys and DisableKeys are all or nothing", () => {
  let f: ServiceFixture;
  before(async () => {
    f = await openService();
  });
  after(async () => {
    await f.close();
  });

  const states = async (ids: string[]) => Promise.all(ids.map(async (id) => (await f.service.describeKey(f.caller, id)).state));

  it("enables every key when all may be enabled", async () => {
    const keys = await Promise.all([1, 2, 3].map(() => f.createKey()));
    const ids = keys.map((k) => k.keyId);
    await f.service.disableKeys(f.caller, ids);
    assert.deepEqual(await states(ids), ["Disabled", "Disabled", "Disabled"]);
    // One already Enabled is fine.
    await f.service.enableKey(f.caller, ids[0]!);
    await f.service.enableKeys(f.caller, ids);
    assert.deepEqual(await states(ids), ["Enabled", "Enabled", "Enabled"]);
  });

  it("changes none when one id is missing", async () => {
    const keys = await Promise.all([1, 2].map(() => f.createKey()));
    const ids = keys.map((k) => k.keyId);
    await f.service.disableKeys(f.caller, ids);
    await assert.rejects(Promise.resolve().then(() => f.service.enableKeys(f.caller, [ids[0]!, MISSING, ids[1]!])), kmsError("CmkNotFound"));
    assert.deepEqual(await states(ids), ["Disabled", "Disabled"]);
  });

  it("changes none when one key is in a state that forbids it (the last one)", async () => {
    const keys = await Promise.all([1, 2].map(() => f.createKey()));
    const ids = keys.map((k) => k.keyId);
    await f.service.disableKeys(f.caller, ids);
    const archived = await f.createKey();
    await f.setState(archived.keyId, "Archived");
    await assert.rejects(Promise.resolve().then(() => f.service.enableKeys(f.caller, [...ids, archived.keyId])), kmsError("CmkStateNotSupport"));
    assert.deepEqual(await states([...ids, archived.keyId]), ["Disabled", "Disabled", "Archived"]);
  });

  it("changes none on DisableKeys with a PendingDelete key among them", async () => {
    const keys = await Promise.all([1, 2].map(() => f.createKey()));
    const pending = await f.createKey();
    await f.setState(pending.keyId, "PendingDelete");
    const ids = [keys[0]!.keyId, pending.keyId, keys[1]!.keyId];
    await assert.rejects(Promise.resolve().then(() => f.service.disableKeys(f.caller, ids)), kmsError("CmkStateNotSupport"));
    assert.deepEqual(await states(ids), ["Enabled", "PendingDelete", "Enabled"]);
  });

  it("DescribeKeys fails as a whole when one id is missing", async () => {
    const key = await f.createKey();
    await assert.rejects(Promise.resolve().then(() => f.service.describeKeys(f.caller, [key.keyId, MISSING])), kmsError("CmkNotFound"));
  });
});
