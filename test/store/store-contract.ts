// The contract every Store implementation passes (SQLite now, PostgreSQL later). Each case gets a
// fresh, empty store from `open`.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { KEY_LIFECYCLE_DEFAULTS, type ImportTokenRecord, type KeyRecord, type KeyVersionRecord, type Tag } from "../../src/keys/key.js";
import { StoreConflictError, type AccessKeyRecord, type KeyListQuery, type Store, type StoreOperations } from "../../src/store/store.js";
import { StoreNotEmptyError, type PortableValue, type TableShape } from "../../src/store/store.js";
import type { WrappedValue, WrappedValuePosition } from "../../src/store/store.js";

export interface StoreFixture {
  store: Store;
  /** Closes `store` and opens the same data again. */
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

let aliasCounter = 0;

export function makeKey(overrides: Partial<KeyRecord> = {}): KeyRecord {
  aliasCounter++;
  return {
    keyId: randomUUID(),
    alias: `alias-${aliasCounter}`,
    description: `key number ${aliasCounter}`,
    keyUsage: "ENCRYPT_DECRYPT",
    keySpec: "SM4",
    origin: "TENCENT_KMS",
    state: "Enabled",
    creatorUin: "100000000001",
    owner: "100000000001",
    createTime: 1_700_000_000,
    deletionDate: 0,
    currentVersion: 1,
    tags: [],
    ...KEY_LIFECYCLE_DEFAULTS,
    ...overrides,
  };
}

export function versionOf(key: KeyRecord, version = 1, material?: Buffer, publicKey: Buffer | null = null): KeyVersionRecord {
  return {
    keyId: key.keyId,
    version,
    wrappedMaterial: material ?? Buffer.from(`wrapped:${key.keyId}:${version}`),
    publicKey,
    createTime: key.createTime,
  };
}

function sortTags(tags: readonly Tag[]): Tag[] {
  return [...tags].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Compares key records, treating tags as a set (their order is not part of the contract). */
function assertKey(actual: KeyRecord | undefined, expected: KeyRecord, message?: string): void {
  assert.ok(actual !== undefined, message ?? `key ${expected.keyId} is missing`);
  assert.deepEqual({ ...actual, tags: sortTags(actual.tags) }, { ...expected, tags: sortTags(expected.tags) }, message);
}

function assertConflict(field: StoreConflictError["field"]): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof StoreConflictError, `expected StoreConflictError, got ${String(err)}`);
    assert.equal(err.field, field);
    return true;
  };
}

/** A promise to resolve from outside, to hold a transaction open at a chosen point. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets `n` turns of the event loop pass, so that anything not held back would have run. */
export async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

export function storeContract(name: string, open: () => Promise<StoreFixture>): void {
  async function withStore(fn: (f: StoreFixture) => Promise<void> | void): Promise<void> {
    const fixture = await open();
    try {
      await fn(fixture);
    } finally {
      await fixture.cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe("keys", () => {
      it("inserts a key and gets it by id and by alias, with its first version", () =>
        withStore(async ({ store }) => {
          const key = makeKey({ tags: [{ key: "team", value: "payments" }], description: "" });
          const material = Buffer.from([0, 1, 2, 255, 0]);
          await store.insertKey(key, versionOf(key, 1, material));
          assertKey(await store.getKey(key.keyId), key);
          assertKey(await store.getKeyByAlias(key.alias), key);
          const v1 = await store.getKeyVersion(key.keyId, 1);
          assert.ok(v1 !== undefined);
          assert.ok(Buffer.isBuffer(v1.wrappedMaterial), "wrapped material comes back as a Node Buffer");
          assert.deepEqual(v1, versionOf(key, 1, material));
          assert.equal(await store.countKeys(), 1);
        }));

      it("answers undefined for unknown ids, aliases and versions", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          await store.insertKey(key, versionOf(key));
          assert.equal(await store.getKey(randomUUID()), undefined);
          assert.equal(await store.getKeyByAlias("no-such-alias"), undefined);
          assert.equal(await store.getKeyByAlias(key.alias.toUpperCase()), undefined, "aliases are exact, not case-folded");
          assert.equal(await store.getKeyVersion(key.keyId, 2), undefined);
          assert.equal(await store.getKeyVersion(key.keyId, 0), undefined);
          assert.equal(await store.getKeyVersion(randomUUID(), 1), undefined);
        }));

      it("adds versions to a key and gets each one back", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          const other = makeKey();
          await store.insertKey(key, versionOf(key));
          await store.insertKey(other, versionOf(other));
          const v2 = { ...versionOf(key, 2, Buffer.from([9, 0, 8]), Buffer.from("public key DER")), createTime: key.createTime + 86_400 };
          await store.insertKeyVersion(v2);
          await store.insertKeyVersion(versionOf(key, 3));
          await store.insertKeyVersion(versionOf(other, 2));
          const got = await store.getKeyVersion(key.keyId, 2);
          assert.ok(got !== undefined && Buffer.isBuffer(got.wrappedMaterial) && Buffer.isBuffer(got.publicKey));
          assert.deepEqual(got, v2);
          assert.deepEqual(await store.getKeyVersion(key.keyId, 1), versionOf(key));
          assert.deepEqual(await store.getKeyVersion(key.keyId, 3), versionOf(key, 3));
          assert.deepEqual(await store.getKeyVersion(other.keyId, 2), versionOf(other, 2), "version numbers are per key");
          assert.equal(await store.getKeyVersion(key.keyId, 4), undefined);
          assert.equal((await store.getKey(key.keyId))?.currentVersion, 1, "adding a version does not move currentVersion");
        }));

      it("refuses a version that exists, keeping the original material", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          await store.insertKey(key, versionOf(key));
          await store.insertKeyVersion(versionOf(key, 2));
          await assert.rejects(store.insertKeyVersion(versionOf(key, 1, Buffer.from("other"))), assertConflict("keyVersion"));
          await assert.rejects(store.insertKeyVersion(versionOf(key, 2, Buffer.from("other"))), assertConflict("keyVersion"));
          assert.deepEqual(await store.getKeyVersion(key.keyId, 1), versionOf(key));
          assert.deepEqual(await store.getKeyVersion(key.keyId, 2), versionOf(key, 2));
        }));

      it("refuses a version of a key that does not exist, with a plain error", () =>
        withStore(async ({ store }) => {
          const ghost = makeKey();
          await assert.rejects(store.insertKeyVersion(versionOf(ghost, 2)), (err) => {
            assert.ok(err instanceof Error && !(err instanceof StoreConflictError), `got ${String(err)}`);
            return true;
          });
          assert.equal(await store.getKeyVersion(ghost.keyId, 2), undefined);
          assert.equal(await store.getKey(ghost.keyId), undefined);
        }));

      it("keeps every field, including unusual strings and large times", () =>
        withStore(async ({ store }) => {
          const key = makeKey({
            alias: "ünïcødé-别名-🔑",
            description: "quote ' double \" backslash \\ percent % underscore _ nul-free",
            keySpec: "AES_256",
            origin: "EXTERNAL",
            state: "PendingImport",
            creatorUin: "200000000002",
            owner: "300000000003",
            createTime: 4_102_444_800,
            deletionDate: 4_102_444_800 + 7 * 86_400,
            currentVersion: 3,
            tags: [
              { key: "empty", value: "" },
              { key: "标签", value: "值 with spaces" },
            ],
          });
          await store.insertKey(key, versionOf(key, 3));
          assertKey(await store.getKey(key.keyId), key);
          assertKey(await store.getKeyByAlias("ünïcødé-别名-🔑"), key);
          assert.deepEqual(await store.getKeyVersion(key.keyId, 3), versionOf(key, 3));
        }));

      it("refuses a second key with the same id and writes nothing of it", () =>
        withStore(async ({ store }) => {
          const first = makeKey({ tags: [{ key: "a", value: "1" }] });
          await store.insertKey(first, versionOf(first));
          const second = makeKey({ keyId: first.keyId, tags: [{ key: "b", value: "2" }] });
          await assert.rejects(store.insertKey(second, versionOf(second, 1, Buffer.from("other"))), assertConflict("keyId"));
          assertKey(await store.getKey(first.keyId), first);
          assert.equal(await store.getKeyByAlias(second.alias), undefined);
          assert.deepEqual(await store.getKeyVersion(first.keyId, 1), versionOf(first));
          assert.equal(await store.countKeys(), 1);
        }));

      it("refuses a second key with the same alias and writes nothing of it", () =>
        withStore(async ({ store }) => {
          const first = makeKey();
          await store.insertKey(first, versionOf(first));
          const second = makeKey({ alias: first.alias, tags: [{ key: "t", value: "v" }] });
          await assert.rejects(store.insertKey(second, versionOf(second)), assertConflict("alias"));
          assert.equal(await store.getKey(second.keyId), undefined);
          assert.equal(await store.getKeyVersion(second.keyId, 1), undefined);
          assertKey(await store.getKeyByAlias(first.alias), first);
          assert.equal(await store.countKeys(), 1);
          assert.equal((await store.listKeys({ offset: 0, limit: 10, order: "desc", tagFilters: [{ key: "t", values: ["v"] }] })).totalCount, 0);
          // The id is still free: the failed insert left nothing behind.
          await store.insertKey({ ...second, alias: "another-alias" }, versionOf(second));
          assertKey(await store.getKey(second.keyId), { ...second, alias: "another-alias" });
        }));

      it("updates the mutable fields and the tags, and ignores the immutable ones", () =>
        withStore(async ({ store }) => {
          const key = makeKey({ tags: [{ key: "a", value: "1" }, { key: "b", value: "2" }] });
          await store.insertKey(key, versionOf(key));
          const updated: KeyRecord = {
            ...key,
            alias: "renamed",
            description: "now pending delete",
            state: "PendingDelete",
            deletionDate: key.createTime + 86_400,
            currentVersion: 2,
            tags: [{ key: "b", value: "changed" }, { key: "c", value: "3" }],
          };
          await store.updateKey({ ...updated, owner: "someone-else", creatorUin: "x", createTime: 1, keySpec: "AES_256", origin: "EXTERNAL" });
          assertKey(await store.getKey(key.keyId), updated);
          assertKey(await store.getKeyByAlias("renamed"), updated);
          assert.equal(await store.getKeyByAlias(key.alias), undefined, "the old alias is free");
          assert.deepEqual(await store.getKeyVersion(key.keyId, 1), versionOf(key), "versions are untouched");

          await store.updateKey({ ...updated, tags: [] });
          assert.deepEqual((await store.getKey(key.keyId))?.tags, []);

          // The freed alias can be taken by another key.
          const other = makeKey({ alias: key.alias });
          await store.insertKey(other, versionOf(other));
          assertKey(await store.getKeyByAlias(key.alias), other);
        }));

      it("refuses an update to an alias another key holds and changes nothing", () =>
        withStore(async ({ store }) => {
          const a = makeKey();
          const b = makeKey({ tags: [{ key: "keep", value: "me" }] });
          await store.insertKey(a, versionOf(a));
          await store.insertKey(b, versionOf(b));
          await assert.rejects(
            store.updateKey({ ...b, alias: a.alias, description: "should not stick", state: "Disabled", tags: [] }),
            assertConflict("alias"),
          );
          assertKey(await store.getKey(b.keyId), b);
          assertKey(await store.getKeyByAlias(a.alias), a);
          // Keeping one's own alias is no conflict.
          await store.updateKey({ ...b, description: "fine" });
          assertKey(await store.getKey(b.keyId), { ...b, description: "fine" });
        }));

      it("refuses to update a key that does not exist, creating nothing", () =>
        withStore(async ({ store }) => {
          const ghost = makeKey({ tags: [{ key: "k", value: "v" }] });
          await assert.rejects(store.updateKey(ghost));
          assert.equal(await store.getKey(ghost.keyId), undefined);
          assert.equal(await store.getKeyByAlias(ghost.alias), undefined);
          assert.equal(await store.countKeys(), 0);
        }));

      it("counts keys", () =>
        withStore(async ({ store }) => {
          assert.equal(await store.countKeys(), 0);
          for (let i = 0; i < 5; i++) {
            const key = makeKey({ state: i % 2 === 0 ? "Enabled" : "PendingDelete" });
            await store.insertKey(key, versionOf(key));
          }
          assert.equal(await store.countKeys(), 5);
        }));
    });

    describe("listKeys", () => {
      // Ten keys with deliberate ties in createTime, inserted in this order.
      async function seed(store: Store): Promise<KeyRecord[]> {
        const specs: Partial<KeyRecord>[] = [
          { createTime: 100, alias: "alpha", state: "Enabled", owner: "u1", tags: [{ key: "env", value: "prod" }, { key: "team", value: "pay" }] },
          { createTime: 300, alias: "Beta_One", state: "Disabled", owner: "u1", tags: [{ key: "env", value: "dev" }] },
          { createTime: 100, alias: "gamma%", state: "Enabled", owner: "u2", origin: "EXTERNAL", tags: [{ key: "env", value: "prod" }] },
          { createTime: 200, alias: "delta", state: "PendingDelete", owner: "u2", tags: [{ key: "team", value: "pay" }] },
          { createTime: 100, alias: "betaxone", state: "Archived", owner: "u1", tags: [{ key: "env", value: "test" }, { key: "team", value: "ops" }] },
          { createTime: 300, alias: "back\\slash", state: "Enabled", owner: "u3", origin: "EXTERNAL" },
          { createTime: 50, alias: "epsilon", state: "PendingImport", owner: "u3", origin: "EXTERNAL", tags: [{ key: "team", value: "pay" }] },
          { createTime: 300, alias: "ZETA", state: "Enabled", owner: "u1", tags: [{ key: "env", value: "prod" }, { key: "team", value: "ops" }] },
          { createTime: 200, alias: "eta%x", state: "Disabled", owner: "u2" },
          { createTime: 100, alias: "theta", state: "Enabled", owner: "u1", keySpec: "AES_256", tags: [{ key: "env", value: "prod" }] },
        ];
        const keys: KeyRecord[] = [];
        for (const spec of specs) {
          const key = makeKey(spec);
          await store.insertKey(key, versionOf(key));
          keys.push(key);
        }
        return keys;
      }

      /** The expected order: by createTime, ties broken by insertion order (index in `keys`). */
      function ordered(keys: KeyRecord[], order: "asc" | "desc", filter: (k: KeyRecord) => boolean = () => true): string[] {
        const indexed = keys.map((key, index) => ({ key, index })).filter(({ key }) => filter(key));
        indexed.sort((a, b) => a.key.createTime - b.key.createTime || a.index - b.index);
        if (order === "desc") indexed.reverse();
        return indexed.map(({ key }) => key.alias);
      }

      async function list(store: Store, query: Partial<KeyListQuery>): Promise<{ aliases: string[]; totalCount: number; keys: KeyRecord[] }> {
        const result = await store.listKeys({ offset: 0, limit: 100, order: "desc", ...query } as KeyListQuery);
        return { aliases: result.keys.map((k) => k.alias), totalCount: result.totalCount, keys: result.keys };
      }

      it("orders by create time then insertion, newest first by default and oldest first with asc", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          const desc = await list(store, { order: "desc" });
          assert.deepEqual(desc.aliases, ordered(keys, "desc"));
          assert.deepEqual(desc.aliases.slice(0, 3), ["ZETA", "back\\slash", "Beta_One"]);
          assert.equal(desc.totalCount, 10);
          const asc = await list(store, { order: "asc" });
          assert.deepEqual(asc.aliases, ordered(keys, "asc"));
          assert.deepEqual(asc.aliases.slice(0, 3), ["epsilon", "alpha", "gamma%"]);
          for (const key of desc.keys) assertKey(key, keys.find((k) => k.keyId === key.keyId)!, "listed keys carry all fields and tags");
        }));

      it("pages with offset and limit, counting every match", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          for (const order of ["desc", "asc"] as const) {
            const all = ordered(keys, order);
            const pages: string[] = [];
            for (let offset = 0; offset < 10; offset += 3) {
              const page = await list(store, { order, offset, limit: 3 });
              assert.equal(page.totalCount, 10);
              assert.deepEqual(page.aliases, all.slice(offset, offset + 3));
              pages.push(...page.aliases);
            }
            assert.deepEqual(pages, all);
          }
          assert.deepEqual(await list(store, { offset: 10, limit: 5 }), { aliases: [], totalCount: 10, keys: [] });
          assert.deepEqual((await list(store, { offset: 50, limit: 5 })).totalCount, 10);
          assert.deepEqual(await list(store, { offset: 0, limit: 0 }), { aliases: [], totalCount: 10, keys: [] });
        }));

      it("filters by state", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          const enabled = await list(store, { states: ["Enabled"] });
          assert.deepEqual(enabled.aliases, ordered(keys, "desc", (k) => k.state === "Enabled"));
          assert.equal(enabled.totalCount, 5);
          const some = await list(store, { states: ["Disabled", "PendingDelete", "Archived"], order: "asc" });
          assert.deepEqual(some.aliases, ["betaxone", "delta", "eta%x", "Beta_One"]);
          assert.deepEqual((await list(store, { states: [] })).totalCount, 0, "no state is one of no states");
        }));

      it("searches key ids and aliases case-insensitively, taking % _ and \\ literally", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          assert.deepEqual((await list(store, { search: "BETA", order: "asc" })).aliases, ["betaxone", "Beta_One"]);
          assert.deepEqual((await list(store, { search: "_" })).aliases, ["Beta_One"], "_ is not a wildcard");
          assert.deepEqual((await list(store, { search: "a_o" })).aliases, ["Beta_One"]);
          assert.deepEqual((await list(store, { search: "%" })).aliases, ["eta%x", "gamma%"], "% is not a wildcard");
          assert.deepEqual((await list(store, { search: "a%" })).aliases, ["eta%x", "gamma%"]);
          assert.deepEqual((await list(store, { search: "\\" })).aliases, ["back\\slash"], "\\ is not an escape");
          assert.deepEqual((await list(store, { search: "k\\s" })).aliases, ["back\\slash"]);
          assert.deepEqual(await list(store, { search: "nothing-like-this" }), { aliases: [], totalCount: 0, keys: [] });

          const target = keys[3]!;
          const middle = target.keyId.slice(9, 23).toUpperCase();
          const byId = await list(store, { search: middle });
          assert.deepEqual(byId.aliases, [target.alias], "a substring of the key id matches, in any case");
          assert.deepEqual((await list(store, { search: target.keyId })).aliases, [target.alias]);
        }));

      it("filters by origin, key usage and owner", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          assert.deepEqual((await list(store, { origin: "EXTERNAL" })).aliases, ordered(keys, "desc", (k) => k.origin === "EXTERNAL"));
          assert.equal((await list(store, { origin: "TENCENT_KMS" })).totalCount, 7);
          assert.equal((await list(store, { keyUsages: ["ENCRYPT_DECRYPT"] })).totalCount, 10);
          assert.equal((await list(store, { keyUsages: [] })).totalCount, 0);
          assert.deepEqual((await list(store, { owner: "u2" })).aliases, ordered(keys, "desc", (k) => k.owner === "u2"));
          assert.equal((await list(store, { owner: "nobody" })).totalCount, 0);
        }));

      it("filters by tags: every filter must match, any of a filter's values", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          const has = (k: KeyRecord, key: string, values: string[]) => k.tags.some((t) => t.key === key && values.includes(t.value));
          assert.deepEqual(
            (await list(store, { tagFilters: [{ key: "env", values: ["prod"] }] })).aliases,
            ordered(keys, "desc", (k) => has(k, "env", ["prod"])),
          );
          assert.deepEqual(
            (await list(store, { tagFilters: [{ key: "env", values: ["prod", "test"] }] })).aliases,
            ordered(keys, "desc", (k) => has(k, "env", ["prod", "test"])),
          );
          const both = await list(store, { tagFilters: [{ key: "env", values: ["prod", "test"] }, { key: "team", values: ["ops"] }], order: "asc" });
          assert.deepEqual(both.aliases, ["betaxone", "ZETA"]);
          assert.equal(both.totalCount, 2);
          assert.equal((await list(store, { tagFilters: [{ key: "team", values: ["prod"] }] })).totalCount, 0, "the value must belong to that tag key");
          assert.deepEqual(
            (await list(store, { tagFilters: [{ key: "team", values: [] }] })).aliases,
            ordered(keys, "desc", (k) => k.tags.some((t) => t.key === "team")),
            "no values: any value of that tag key",
          );
          assert.equal((await list(store, { tagFilters: [] })).totalCount, 10);
        }));

      it("combines filters with paging and counts the matches before paging", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          const match = (k: KeyRecord) =>
            (k.state === "Enabled" || k.state === "Archived") && k.owner === "u1" && k.origin === "TENCENT_KMS";
          const query: Partial<KeyListQuery> = { states: ["Enabled", "Archived"], owner: "u1", origin: "TENCENT_KMS", keyUsages: ["ENCRYPT_DECRYPT"] };
          const expected = ordered(keys, "asc", match);
          assert.deepEqual(expected, ["alpha", "betaxone", "theta", "ZETA"]);
          const page = await list(store, { ...query, order: "asc", offset: 1, limit: 2 });
          assert.deepEqual(page.aliases, expected.slice(1, 3));
          assert.equal(page.totalCount, 4);
          const withSearchAndTag = await list(store, { ...query, search: "ET", tagFilters: [{ key: "env", values: ["prod"] }] });
          assert.deepEqual(withSearchAndTag.aliases, ["ZETA", "theta"]);
          assert.equal(withSearchAndTag.totalCount, 2);
        }));

      it("reflects updates to state and tags", () =>
        withStore(async ({ store }) => {
          const keys = await seed(store);
          const alpha = keys[0]!;
          await store.updateKey({ ...alpha, state: "Disabled", tags: [{ key: "env", value: "dev" }] });
          assert.ok(!(await list(store, { states: ["Enabled"] })).aliases.includes("alpha"));
          assert.ok((await list(store, { states: ["Disabled"] })).aliases.includes("alpha"));
          assert.ok(!(await list(store, { tagFilters: [{ key: "team", values: ["pay"] }] })).aliases.includes("alpha"));
          assert.ok((await list(store, { tagFilters: [{ key: "env", values: ["dev"] }] })).aliases.includes("alpha"));
        }));
    });

    describe("transactions", () => {
      it("commits every write made through tx and returns the function's result", () =>
        withStore(async ({ store }) => {
          const existing = makeKey();
          await store.insertKey(existing, versionOf(existing));
          const key = makeKey({ tags: [{ key: "t", value: "v" }] });
          const ak = accessKey("AKIDcommit");
          const result = await store.transaction(async (tx) => {
            await tx.insertKey(key, versionOf(key));
            await tx.insertKeyVersion(versionOf(existing, 2));
            await tx.updateKey({ ...existing, currentVersion: 2 });
            await tx.setMeta("m", "1");
            await tx.insertAccessKey(ak);
            assertKey(await tx.getKey(key.keyId), key, "a transaction reads its own writes");
            assert.equal(await tx.countKeys(), 2);
            assert.equal((await tx.listKeys({ offset: 0, limit: 10, order: "desc" })).totalCount, 2);
            return 42;
          });
          assert.equal(result, 42);
          assertKey(await store.getKey(key.keyId), key);
          assertKey(await store.getKeyByAlias(key.alias), key);
          assert.deepEqual(await store.getKeyVersion(existing.keyId, 2), versionOf(existing, 2));
          assert.equal((await store.getKey(existing.keyId))?.currentVersion, 2);
          assert.equal(await store.getMeta("m"), "1");
          assert.deepEqual(await store.getAccessKey("AKIDcommit"), ak);
        }));

      it("rolls back every write when the function rejects", () =>
        withStore(async ({ store }) => {
          const existing = makeKey();
          await store.insertKey(existing, versionOf(existing));
          const key = makeKey();
          const boom = new Error("boom");
          await assert.rejects(
            store.transaction(async (tx) => {
              await tx.insertKey(key, versionOf(key));
              await tx.insertKeyVersion(versionOf(existing, 2));
              await tx.updateKey({ ...existing, state: "Disabled", currentVersion: 2, tags: [{ key: "x", value: "y" }] });
              await tx.setMeta("m", "1");
              await tx.insertAccessKey(accessKey("AKIDrollback"));
              throw boom;
            }),
            (err) => err === boom,
          );
          assert.equal(await store.getKey(key.keyId), undefined);
          assert.equal(await store.getKeyVersion(key.keyId, 1), undefined);
          assert.equal(await store.getKeyVersion(existing.keyId, 2), undefined);
          assertKey(await store.getKey(existing.keyId), existing);
          assert.equal(await store.getMeta("m"), undefined);
          assert.equal(await store.getAccessKey("AKIDrollback"), undefined);
          assert.equal(await store.countKeys(), 1);
        }));

      it("rolls back every write when a conflict inside it propagates", () =>
        withStore(async ({ store }) => {
          const a = makeKey();
          await store.insertKey(a, versionOf(a));
          const b = makeKey();
          await assert.rejects(
            store.transaction(async (tx) => {
              await tx.insertKey(b, versionOf(b));
              await tx.setMeta("before-conflict", "1");
              const clash = makeKey({ alias: a.alias });
              await tx.insertKey(clash, versionOf(clash));
            }),
            assertConflict("alias"),
          );
          assert.equal(await store.getKey(b.keyId), undefined);
          assert.equal(await store.getMeta("before-conflict"), undefined);
          assert.equal(await store.countKeys(), 1);

          await assert.rejects(
            store.transaction(async (tx) => {
              await tx.setMeta("before-conflict", "2");
              await tx.insertKeyVersion(versionOf(a, 1, Buffer.from("other")));
            }),
            assertConflict("keyVersion"),
          );
          assert.equal(await store.getMeta("before-conflict"), undefined);
          assert.deepEqual(await store.getKeyVersion(a.keyId, 1), versionOf(a));
        }));

      it("never shows another caller the state inside an open transaction", () =>
        withStore(async ({ store }) => {
          // The port only promises that nobody sees a half-done transaction: SQLite makes the
          // reader wait (see sqlite.test.ts), PostgreSQL may answer from the state before it.
          const key = makeKey({ description: "draft" });
          const halfway = deferred();
          const proceed = deferred();
          const running = store.transaction(async (tx) => {
            await tx.insertKey(key, versionOf(key));
            halfway.resolve();
            await proceed.promise;
            await tx.updateKey({ ...key, description: "final" });
          });
          await halfway.promise;
          const read = store.getKey(key.keyId);
          const count = store.countKeys();
          await ticks(5);
          proceed.resolve();
          await running;
          const seen = await read;
          assert.ok(seen === undefined || seen.description === "final", `saw the intermediate state: ${seen?.description}`);
          assert.ok([0, 1].includes(await count));
          assert.equal((await store.getKey(key.keyId))?.description, "final", "after the commit everyone sees it");
        }));

      it("serializes concurrent transactions: two count-then-insert transactions never both pass a limit", () =>
        withStore(async ({ store }) => {
          const limit = 1;
          const attempt = () =>
            store.transaction(async (tx) => {
              const n = await tx.countKeys();
              await ticks(2); // give the other transaction every chance to interleave
              if (n >= limit) return false;
              const key = makeKey();
              await tx.insertKey(key, versionOf(key));
              return true;
            });
          const results = await Promise.allSettled([attempt(), attempt(), attempt()]);
          // A serializable implementation may also fail the loser instead of making it wait.
          const inserted = results.filter((r) => r.status === "fulfilled" && r.value === true).length;
          assert.equal(inserted, 1, JSON.stringify(results.map((r) => r.status)));
          assert.equal(await store.countKeys(), limit);
        }));

      it("insertKeyWithinLimit inserts below the limit, refuses at it writing nothing, and reports alias conflicts", () =>
        withStore(async ({ store }) => {
          const a = makeKey({ tags: [{ key: "t", value: "v" }] });
          assert.equal(await store.insertKeyWithinLimit(a, versionOf(a), 2), true);
          assertKey(await store.getKey(a.keyId), a);
          assert.deepEqual(await store.listKeyVersions(a.keyId), [versionOf(a)]);
          const external = makeKey({ origin: "EXTERNAL", state: "PendingImport" });
          assert.equal(await store.insertKeyWithinLimit(external, null, 2), true);
          assert.deepEqual(await store.listKeyVersions(external.keyId), []);
          const over = makeKey();
          assert.equal(await store.insertKeyWithinLimit(over, versionOf(over), 2), false);
          assert.equal(await store.getKey(over.keyId), undefined);
          assert.deepEqual(await store.listKeyVersions(over.keyId), []);
          assert.equal(await store.countKeys(), 2);
          // Room again once a key is gone; a taken alias is a conflict, as with insertKey.
          assert.equal(await store.deleteKey(external.keyId), true);
          const sameAlias = makeKey({ alias: a.alias });
          await assert.rejects(store.insertKeyWithinLimit(sameAlias, versionOf(sameAlias), 2), assertConflict("alias"));
          assert.equal(await store.getKey(sameAlias.keyId), undefined);
          assert.equal(await store.insertKeyWithinLimit(over, versionOf(over), 2), true);
          assert.equal(await store.countKeys(), 2);
        }));

      it("insertKeyWithinLimit holds the limit under concurrent calls, refusing the rest without an error", () =>
        withStore(async ({ store }) => {
          const limit = 7;
          const results = await Promise.allSettled(
            Array.from({ length: 40 }, () => {
              const key = makeKey();
              return store.insertKeyWithinLimit(key, versionOf(key), limit);
            }),
          );
          const errors = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
          assert.deepEqual(errors, []);
          assert.equal(results.filter((r) => r.status === "fulfilled" && r.value).length, limit);
          assert.equal(await store.countKeys(), limit);
        }));

      it("insertKeyWithinLimit is refused inside a transaction (not nestable)", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          await store.transaction(async () => {
            await assert.rejects(store.insertKeyWithinLimit(key, versionOf(key), 10), /not nestable|inside/);
          });
          assert.equal(await store.getKey(key.keyId), undefined);
        }));

      it("is not nestable: a transaction started inside one rejects, the outer one is unaffected", () =>
        withStore(async ({ store }) => {
          const a = makeKey();
          const b = makeKey();
          await store.transaction(async (tx) => {
            await tx.insertKey(a, versionOf(a));
            await assert.rejects(
              store.transaction(async (inner) => {
                await inner.insertKey(b, versionOf(b));
              }),
              /not nestable/,
            );
          });
          assertKey(await store.getKey(a.keyId), a);
          assert.equal(await store.getKey(b.keyId), undefined);
        }));

      it("refuses a tx used after its transaction ended, committed or rolled back", () =>
        withStore(async ({ store }) => {
          let leaked: StoreOperations | undefined;
          await store.transaction(async (tx) => {
            leaked = tx;
          });
          const key = makeKey();
          await assert.rejects(leaked!.insertKey(key, versionOf(key)));
          await assert.rejects(leaked!.getKey(key.keyId));
          await assert.rejects(store.transaction(async (tx) => {
            leaked = tx;
            throw new Error("roll back");
          }), /roll back/);
          await assert.rejects(leaked!.setMeta("late", "1"));
          // Not even while another transaction is open: the old tx must not write into it.
          const stale = leaked!;
          await store.transaction(async (tx) => {
            await tx.setMeta("current", "1");
            await assert.rejects(stale.setMeta("late", "1"));
          });
          assert.equal(await store.getKey(key.keyId), undefined);
          assert.equal(await store.getMeta("late"), undefined);
          assert.equal(await store.getMeta("current"), "1");
        }));

      it("close waits for an open transaction, which still commits", () =>
        withStore(async (fixture) => {
          const { store } = fixture;
          const key = makeKey();
          const events: string[] = [];
          const halfway = deferred();
          const proceed = deferred();
          const running = store.transaction(async (tx) => {
            halfway.resolve();
            await proceed.promise;
            await tx.insertKey(key, versionOf(key));
            events.push("transaction done");
          });
          await halfway.promise;
          const closing = store.close().then(() => events.push("closed"));
          await ticks(5);
          assert.deepEqual(events, [], "close did not wait");
          proceed.resolve();
          await running;
          await closing;
          assert.deepEqual(events, ["transaction done", "closed"]);
          await assert.rejects(store.getKey(key.keyId));
          if (fixture.reopen !== undefined) {
            const again = await fixture.reopen();
            assertKey(await again.getKey(key.keyId), key);
          }
        }));
    });

    describe("key lifecycle: versions, deletion, due work, import tokens", () => {
      const token = (keyId: string, overrides: Partial<ImportTokenRecord> = {}): ImportTokenRecord => ({
        tokenId: randomUUID(),
        keyId,
        wrappingKeySpec: "RSA_2048",
        wrappingAlgorithm: "RSAES_OAEP_SHA_256",
        wrappedPrivateKey: Buffer.from([0, 9, 255, 0]),
        expiresAt: 1_700_086_400,
        used: false,
        ...overrides,
      });

      it("inserts a key without material (EXTERNAL, PendingImport) and keeps every lifecycle field", () =>
        withStore(async ({ store }) => {
          const key = makeKey({ origin: "EXTERNAL", state: "PendingImport" });
          await store.insertKey(key, null);
          assertKey(await store.getKey(key.keyId), key);
          assert.deepEqual(await store.listKeyVersions(key.keyId), []);
          const updated: KeyRecord = {
            ...key,
            state: "Enabled",
            rotationEnabled: true,
            rotateDays: 365,
            lastRotateTime: 1_700_000_100,
            nextRotateTime: 2_000_000_000,
            validTo: 2_147_443_200,
            materialDigest: Buffer.from([0, 1, 2, 254, 255]),
          };
          await store.updateKey(updated);
          const got = await store.getKey(key.keyId);
          assertKey(got, updated);
          assert.ok(got && Buffer.isBuffer(got.materialDigest));
          await store.updateKey({ ...updated, materialDigest: null, rotationEnabled: false });
          assertKey(await store.getKey(key.keyId), { ...updated, materialDigest: null, rotationEnabled: false });
        }));

      it("lists a key's versions oldest first and deletes them all, leaving the key and other keys alone", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          const other = makeKey();
          await store.insertKey(key, versionOf(key, 1));
          await store.insertKey(other, versionOf(other, 1));
          await store.insertKeyVersion(versionOf(key, 3));
          await store.insertKeyVersion(versionOf(key, 2));
          assert.deepEqual(await store.listKeyVersions(key.keyId), [versionOf(key, 1), versionOf(key, 2), versionOf(key, 3)]);
          assert.equal(await store.deleteKeyVersions(key.keyId), 3);
          assert.deepEqual(await store.listKeyVersions(key.keyId), []);
          assert.equal(await store.getKeyVersion(key.keyId, 1), undefined);
          assertKey(await store.getKey(key.keyId), key);
          assert.deepEqual(await store.listKeyVersions(other.keyId), [versionOf(other, 1)]);
          assert.equal(await store.deleteKeyVersions(key.keyId), 0);
          // The same version numbers can be written again (a re-import restores version 1).
          await store.insertKeyVersion(versionOf(key, 1));
          assert.deepEqual(await store.listKeyVersions(key.keyId), [versionOf(key, 1)]);
        }));

      it("deletes a key with its versions, tags and import tokens; the alias is free again", () =>
        withStore(async ({ store }) => {
          const key = makeKey({ tags: [{ key: "a", value: "b" }] });
          const other = makeKey({ tags: [{ key: "a", value: "b" }] });
          await store.insertKey(key, versionOf(key, 1));
          await store.insertKey(other, versionOf(other, 1));
          await store.insertKeyVersion(versionOf(key, 2));
          const t = token(key.keyId);
          await store.insertImportToken(t);
          assert.equal(await store.deleteKey(key.keyId), true);
          assert.equal(await store.getKey(key.keyId), undefined);
          assert.deepEqual(await store.listKeyVersions(key.keyId), []);
          assert.equal(await store.getImportToken(t.tokenId), undefined);
          assert.equal(await store.countKeys(), 1);
          assert.deepEqual((await store.listKeys({ offset: 0, limit: 10, order: "desc", tagFilters: [{ key: "a", values: [] }] })).keys.map((k) => k.keyId), [other.keyId]);
          assert.equal(await store.deleteKey(key.keyId), false);
          await store.insertKey({ ...makeKey(), alias: key.alias }, null);
        }));

      it("finds due work: rotation of Enabled keys, deletion at the window's end, expiry of material", () =>
        withStore(async ({ store }) => {
          const now = 1_800_000_000;
          const keys = {
            rotateDue: makeKey({ rotationEnabled: true, rotateDays: 7, nextRotateTime: now - 10 }),
            rotateExactly: makeKey({ rotationEnabled: true, rotateDays: 7, nextRotateTime: now }),
            rotateLater: makeKey({ rotationEnabled: true, rotateDays: 7, nextRotateTime: now + 1 }),
            rotateDisabledKey: makeKey({ state: "Disabled", rotationEnabled: true, rotateDays: 7, nextRotateTime: now - 10 }),
            rotationOff: makeKey({ rotationEnabled: false, nextRotateTime: now - 10 }),
            deleteDue: makeKey({ state: "PendingDelete", deletionDate: now - 5 }),
            deleteLater: makeKey({ state: "PendingDelete", deletionDate: now + 5 }),
            expireDue: makeKey({ origin: "EXTERNAL", validTo: now - 1 }),
            expireLater: makeKey({ origin: "EXTERNAL", validTo: now + 1 }),
            neverExpires: makeKey({ origin: "EXTERNAL", validTo: 0 }),
            alreadyPendingImport: makeKey({ origin: "EXTERNAL", state: "PendingImport", validTo: now - 1 }),
          };
          for (const k of Object.values(keys)) await store.insertKey(k, versionOf(k));
          const due = await store.listDueKeys(now, 100);
          // Oldest due first.
          assert.deepEqual(
            due.map((k) => k.keyId),
            [keys.rotateDue.keyId, keys.deleteDue.keyId, keys.expireDue.keyId, keys.rotateExactly.keyId],
          );
          assertKey(due[0], keys.rotateDue);
          assert.deepEqual((await store.listDueKeys(now, 2)).map((k) => k.keyId), [keys.rotateDue.keyId, keys.deleteDue.keyId]);
          assert.deepEqual(await store.listDueKeys(now - 1000, 100), []);
        }));

      it("stores import tokens, lets exactly one caller use each, and removes expired ones", () =>
        withStore(async ({ store }) => {
          const key = makeKey({ origin: "EXTERNAL", state: "PendingImport" });
          await store.insertKey(key, null);
          const t1 = token(key.keyId, { expiresAt: 100 });
          const t2 = token(key.keyId, { expiresAt: 200, wrappingKeySpec: "SM2", wrappingAlgorithm: "SM2PKE" });
          await store.insertImportToken(t1);
          await store.insertImportToken(t2);
          await assert.rejects(store.insertImportToken({ ...t1, keyId: key.keyId }), assertConflict("importToken"));
          await assert.rejects(store.insertImportToken(token(randomUUID())), (e: unknown) => e instanceof Error && !(e instanceof StoreConflictError));
          const got = await store.getImportToken(t2.tokenId);
          assert.deepEqual(got, t2);
          assert.ok(got && Buffer.isBuffer(got.wrappedPrivateKey));
          assert.equal(await store.getImportToken("no-such-token"), undefined);
          const uses = await Promise.all([store.useImportToken(t1.tokenId), store.useImportToken(t1.tokenId), store.useImportToken(t1.tokenId)]);
          assert.deepEqual(uses.filter(Boolean).length, 1);
          assert.equal((await store.getImportToken(t1.tokenId))?.used, true);
          assert.equal(await store.useImportToken("no-such-token"), false);
          assert.equal(await store.deleteExpiredImportTokens(150), 1);
          assert.equal(await store.getImportToken(t1.tokenId), undefined);
          assert.deepEqual(await store.getImportToken(t2.tokenId), t2);
        }));

      it("the new operations run inside transactions and roll back with them", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          await store.insertKey(key, versionOf(key, 1));
          await assert.rejects(
            store.transaction(async (tx) => {
              assert.deepEqual(await tx.listKeyVersions(key.keyId), [versionOf(key, 1)]);
              assert.equal(await tx.deleteKeyVersions(key.keyId), 1);
              await tx.insertImportToken(token(key.keyId));
              assert.equal(await tx.deleteKey(key.keyId), true);
              assert.deepEqual(await tx.listDueKeys(2_000_000_000, 10), []);
              throw new Error("roll back");
            }),
            /roll back/,
          );
          assertKey(await store.getKey(key.keyId), key);
          assert.deepEqual(await store.listKeyVersions(key.keyId), [versionOf(key, 1)]);
          const t = token(key.keyId);
          const used = await store.transaction(async (tx) => {
            await tx.insertImportToken(t);
            return tx.useImportToken(t.tokenId);
          });
          assert.equal(used, true);
          assert.equal(await store.transaction((tx) => tx.useImportToken(t.tokenId)), false);
          assert.equal(await store.transaction((tx) => tx.deleteExpiredImportTokens(t.expiresAt)), 1);
        }));
    });

    describe("meta", () => {
      it("gets, sets and overwrites values", () =>
        withStore(async ({ store }) => {
          assert.equal(await store.getMeta("install-id"), undefined);
          await store.setMeta("install-id", "abc");
          assert.equal(await store.getMeta("install-id"), "abc");
          await store.setMeta("install-id", "def");
          assert.equal(await store.getMeta("install-id"), "def");
          await store.setMeta("empty", "");
          assert.equal(await store.getMeta("empty"), "");
          await store.setMeta("unicode-名", "値 ✓");
          assert.equal(await store.getMeta("unicode-名"), "値 ✓");
          assert.equal(await store.getMeta("INSTALL-ID"), undefined, "names are exact");
        }));
    });

    describe("access keys", () => {
      it("inserts and gets an access key, the wrapped secret as a Node Buffer", () =>
        withStore(async ({ store }) => {
          const record = accessKey("AKIDexample", Buffer.from([0, 255, 1, 254, 0]));
          await store.insertAccessKey(record);
          const got = await store.getAccessKey("AKIDexample");
          assert.ok(got !== undefined);
          assert.ok(Buffer.isBuffer(got.wrappedSecret));
          assert.deepEqual(got, record);
          assert.equal(await store.getAccessKey("AKIDEXAMPLE"), undefined, "SecretIds are exact");
          assert.equal(await store.getAccessKey("missing"), undefined);

          const inactive: AccessKeyRecord = { ...accessKey("AKIDinactive"), status: "Inactive" };
          await store.insertAccessKey(inactive);
          assert.deepEqual(await store.getAccessKey("AKIDinactive"), inactive);
        }));

      it("refuses a duplicate SecretId and keeps the original", () =>
        withStore(async ({ store }) => {
          const record = accessKey("AKIDdup");
          await store.insertAccessKey(record);
          await assert.rejects(
            store.insertAccessKey({ ...record, wrappedSecret: Buffer.from("other"), uin: "999", status: "Inactive" }),
            assertConflict("secretId"),
          );
          assert.deepEqual(await store.getAccessKey("AKIDdup"), record);
        }));
    });

    it("keeps everything across close and reopen", (t) =>
      withStore(async ({ store, reopen }) => {
        if (reopen === undefined) {
          t.skip("this fixture has no persistent storage to reopen");
          return;
        }
        const keys = [makeKey({ tags: [{ key: "env", value: "prod" }] }), makeKey({ createTime: 5 }), makeKey({ state: "Archived" })];
        for (const key of keys) await store.insertKey(key, versionOf(key));
        const renamed = { ...keys[0]!, alias: "renamed-before-reopen", currentVersion: 2 };
        await store.updateKey(renamed);
        await store.setMeta("audit-head", "deadbeef");
        const ak = accessKey("AKIDpersist");
        await store.insertAccessKey(ak);

        const again = await reopen();
        assertKey(await again.getKey(renamed.keyId), renamed);
        assertKey(await again.getKeyByAlias("renamed-before-reopen"), renamed);
        for (const key of keys) assert.deepEqual(await again.getKeyVersion(key.keyId, 1), versionOf(key));
        assert.equal(await again.getMeta("audit-head"), "deadbeef");
        assert.deepEqual(await again.getAccessKey("AKIDpersist"), ak);
        assert.equal(await again.countKeys(), 3);
        assert.deepEqual(
          (await again.listKeys({ offset: 0, limit: 10, order: "asc" })).keys.map((k) => k.keyId),
          [keys[1]!.keyId, renamed.keyId, keys[2]!.keyId],
          "the insertion order survives for ties",
        );
      }));

    // ---- backup: snapshot and importInto (StoreBackup) ------------------------------------------
    // ---- protection level and root key rotation (StoreRewrap) ------------------------------------
    describe("protection level and wrapped values for root key rotation", () => {
      const tokenFor = (keyId: string, tokenId: string, wrappedPrivateKey: Buffer): ImportTokenRecord => ({
        tokenId,
        keyId,
        wrappingKeySpec: "RSA_2048",
        wrappingAlgorithm: "RSAES_OAEP_SHA_256",
        wrappedPrivateKey,
        expiresAt: 1_700_086_400,
        used: false,
      });

      it("keeps a key's protection level, which updateKey never changes", () =>
        withStore(async ({ store }) => {
          const hsmKey = makeKey({ protectionLevel: "HSM", keySpec: "AES_256" });
          const soft = makeKey();
          await store.insertKey(hsmKey, versionOf(hsmKey, 1, Buffer.from("H\x01tresor-cmk/ref")));
          await store.insertKey(soft, versionOf(soft));
          assertKey(await store.getKey(hsmKey.keyId), hsmKey);
          assert.equal((await store.getKey(soft.keyId))?.protectionLevel, "SOFTWARE");
          await store.updateKey({ ...hsmKey, description: "changed", protectionLevel: "SOFTWARE" });
          const after = await store.getKey(hsmKey.keyId);
          assert.equal(after?.description, "changed");
          assert.equal(after?.protectionLevel, "HSM", "fixed at creation");
          const listed = await store.listKeys({ offset: 0, limit: 10, order: "asc" });
          assert.deepEqual(listed.keys.map((k) => k.protectionLevel), ["HSM", "SOFTWARE"]);
        }));

      it("pages through each kind of wrapped value in (id, version) order, leaving out HSM key references", () =>
        withStore(async ({ store }) => {
          const keys = ["b", "a", "c"].map((prefix) => makeKey({ keyId: `${prefix}${randomUUID().slice(1)}` }));
          for (const key of keys) {
            await store.insertKey(key, versionOf(key, 1));
            await store.insertKeyVersion(versionOf(key, 2));
          }
          const hsmKey = makeKey({ keyId: `0${randomUUID().slice(1)}`, protectionLevel: "HSM", keySpec: "AES_256" });
          await store.insertKey(hsmKey, versionOf(hsmKey, 1, Buffer.from("H\x01reference")));
          for (const id of ["AKIDz", "AKIDa", "AKIDm"]) await store.insertAccessKey(accessKey(id));
          await store.insertImportToken(tokenFor(keys[0]!.keyId, "tok-2", Buffer.from([2])));
          await store.insertImportToken(tokenFor(keys[0]!.keyId, "tok-1", Buffer.from([1])));

          const expected = [...keys].sort((x, y) => (x.keyId < y.keyId ? -1 : 1)).flatMap((k) => [1, 2].map((v) => ({ id: k.keyId, version: v, wrapped: versionOf(k, v).wrappedMaterial })));
          const pages: WrappedValue[][] = [];
          let after: WrappedValuePosition | null = null;
          for (;;) {
            const page = await store.listWrappedValues("keyVersion", after, 4);
            if (page.length === 0) break;
            assert.ok(page.length <= 4);
            pages.push(page);
            after = { id: page[page.length - 1]!.id, version: page[page.length - 1]!.version };
          }
          assert.deepEqual(pages.flat(), expected);
          assert.equal(pages.length, 2);
          assert.ok(pages.flat().every((v) => Buffer.isBuffer(v.wrapped)));

          const access = await store.listWrappedValues("accessKey", null, 10);
          assert.deepEqual(access.map((v) => [v.id, v.version]), [["AKIDa", 0], ["AKIDm", 0], ["AKIDz", 0]]);
          assert.deepEqual(access[0]!.wrapped, accessKey("AKIDa").wrappedSecret);
          assert.deepEqual((await store.listWrappedValues("accessKey", { id: "AKIDa", version: 0 }, 10)).map((v) => v.id), ["AKIDm", "AKIDz"]);
          const tokens = await store.listWrappedValues("importToken", null, 10);
          assert.deepEqual(tokens.map((v) => [v.id, [...v.wrapped]]), [["tok-1", [1]], ["tok-2", [2]]]);
          await assert.rejects(store.listWrappedValues("accessKey", null, 0), RangeError);
        }));

      it("replaces a wrapped value only while it is still the expected one (compare and set)", () =>
        withStore(async ({ store }) => {
          const key = makeKey();
          await store.insertKey(key, versionOf(key, 1, Buffer.from("old")));
          await store.insertAccessKey(accessKey("AKIDcas", Buffer.from("old-secret")));
          await store.insertImportToken(tokenFor(key.keyId, "tok-cas", Buffer.from("old-token")));
          const at = { id: key.keyId, version: 1 };
          assert.equal(await store.replaceWrappedValue("keyVersion", at, Buffer.from("stale"), Buffer.from("new")), false);
          assert.deepEqual((await store.getKeyVersion(key.keyId, 1))?.wrappedMaterial, Buffer.from("old"));
          assert.equal(await store.replaceWrappedValue("keyVersion", at, Buffer.from("old"), Buffer.from("new")), true);
          assert.deepEqual((await store.getKeyVersion(key.keyId, 1))?.wrappedMaterial, Buffer.from("new"));
          assert.equal(await store.replaceWrappedValue("keyVersion", at, Buffer.from("old"), Buffer.from("newer")), false, "the second writer loses");
          assert.equal(await store.replaceWrappedValue("keyVersion", { id: key.keyId, version: 2 }, Buffer.from("old"), Buffer.from("x")), false, "no such row");

          assert.equal(await store.replaceWrappedValue("accessKey", { id: "AKIDcas", version: 0 }, Buffer.from("old-secret"), Buffer.from("new-secret")), true);
          assert.deepEqual((await store.getAccessKey("AKIDcas"))?.wrappedSecret, Buffer.from("new-secret"));
          assert.equal(await store.replaceWrappedValue("importToken", { id: "tok-cas", version: 0 }, Buffer.from("old-token"), Buffer.from("new-token")), true);
          assert.deepEqual((await store.getImportToken("tok-cas"))?.wrappedPrivateKey, Buffer.from("new-token"));
          await store.deleteKey(key.keyId);
          assert.equal(await store.replaceWrappedValue("keyVersion", at, Buffer.from("new"), Buffer.from("x")), false, "a deleted row is not recreated");
          assert.equal(await store.getKeyVersion(key.keyId, 1), undefined);
        }));
    });
    // ---- end of protection level and root key rotation ----------------------------------------

    describe("backup", () => {
      /** Every row of every table through one snapshot, paged `batch` at a time; `during` runs after the first page. */
      async function dump(store: Store, batch: number, during?: () => Promise<void>): Promise<{ schemaVersion: number; tables: Map<string, { shape: TableShape; rows: PortableValue[][] }> }> {
        return store.snapshot(async (snapshot) => {
          const tables = new Map<string, { shape: TableShape; rows: PortableValue[][] }>();
          let ran = false;
          for (const shape of snapshot.tables) {
            const keyAt = shape.key.map((k) => shape.columns.findIndex((c) => c.name === k));
            const rows: PortableValue[][] = [];
            let after: PortableValue[] | null = null;
            for (;;) {
              const page: PortableValue[][] = await snapshot.exportRows(shape.name, after, batch);
              rows.push(...page);
              if (!ran && during !== undefined) {
                ran = true;
                await during();
              }
              const last = page.at(-1);
              if (page.length < batch || last === undefined) break;
              after = keyAt.map((i) => last[i] ?? null);
            }
            tables.set(shape.name, { shape, rows });
          }
          return { schemaVersion: snapshot.schemaVersion, tables };
        });
      }

      async function populate(store: Store): Promise<{ keys: KeyRecord[]; token: ImportTokenRecord }> {
        const keys = [
          makeKey({ tags: [{ key: "env", value: "prod" }, { key: "team", value: "payments" }], createTime: 7 }),
          makeKey({ rotationEnabled: true, rotateDays: 30, nextRotateTime: 99, createTime: 7 }),
          makeKey({ state: "PendingImport", origin: "EXTERNAL", currentVersion: 0, createTime: 3 }),
        ];
        await store.insertKey(keys[0]!, versionOf(keys[0]!, 1, Buffer.from([0, 255, 1])));
        await store.insertKeyVersion(versionOf(keys[0]!, 2, Buffer.from("v2"), Buffer.from("public")));
        await store.insertKey(keys[1]!, versionOf(keys[1]!));
        await store.insertKey(keys[2]!, null);
        const token: ImportTokenRecord = {
          tokenId: randomUUID(),
          keyId: keys[2]!.keyId,
          wrappingKeySpec: "RSA_2048",
          wrappingAlgorithm: "RSAES_OAEP_SHA_256",
          wrappedPrivateKey: Buffer.from("wrapped private key"),
          expiresAt: 1_800_000_000,
          used: true,
        };
        await store.insertImportToken(token);
        await store.insertAccessKey(accessKey("AKIDbackup"));
        await store.setMeta("region", "backup-test");
        return { keys, token };
      }

      it("exports every table, typed, from one snapshot while writes go on", () =>
        withStore(async ({ store }) => {
          const { keys } = await populate(store);
          const late = makeKey();
          let writes: Promise<void> | undefined;
          const dumped = await dump(store, 1, async () => {
            writes = (async () => {
              await store.insertKey(late, versionOf(late));
              await store.insertKeyVersion(versionOf(keys[1]!, 2));
              await store.updateKey({ ...keys[0]!, alias: "renamed-during-backup", tags: [] });
              await store.setMeta("region", "changed");
            })();
            // A store that serializes everything (SQLite :memory:) runs them after the snapshot.
            await Promise.race([writes, sleep(500)]);
          });
          await writes;
          const names = [...dumped.tables.keys()];
          for (const table of ["meta", "keys", "key_versions", "key_tags", "import_tokens", "access_keys"]) assert.ok(names.includes(table), `${table} is exported`);
          assert.ok(!names.includes("schema_migrations"), "the migration history is not a table of the backup");
          assert.ok(names.indexOf("keys") < names.indexOf("key_versions") && names.indexOf("keys") < names.indexOf("import_tokens"), "parents come first");
          assert.ok(dumped.schemaVersion >= 1);
          const rows = (table: string) => dumped.tables.get(table)!;
          const column = (table: string, name: string) => rows(table).shape.columns.findIndex((c) => c.name === name);
          const keyIds = rows("keys").rows.map((r) => r[column("keys", "key_id")]);
          assert.deepEqual(new Set(keyIds), new Set(keys.map((k) => k.keyId)), "the key inserted during the backup is not in it");
          assert.ok(rows("keys").rows.some((r) => r[column("keys", "alias")] === keys[0]!.alias), "the rename during the backup is not in it");
          assert.equal(rows("key_versions").rows.length, 3, "the version added during the backup is not in it");
          assert.equal(rows("key_tags").rows.length, 2, "the tags removed during the backup are still in it");
          const region = rows("meta").rows.find((r) => r[column("meta", "name")] === "region");
          assert.equal(region?.[column("meta", "value")], "backup-test");
          // Portable types: booleans as booleans, bytes as Buffers, whatever the database calls them.
          assert.equal(rows("keys").shape.columns[column("keys", "rotation_enabled")]?.type, "boolean");
          assert.equal(rows("import_tokens").rows[0]?.[column("import_tokens", "used")], true);
          const material = rows("key_versions").rows.find((r) => r[column("key_versions", "version")] === 1 && r[column("key_versions", "key_id")] === keys[0]!.keyId);
          assert.deepEqual(material?.[column("key_versions", "wrapped_material")], Buffer.from([0, 255, 1]));
          // And the writes did happen, after or beside the snapshot.
          assert.equal((await store.getKey(keys[0]!.keyId))?.alias, "renamed-during-backup");
          assert.ok((await store.getKey(late.keyId)) !== undefined);
        }));

      it("imports a snapshot into an empty store, which then works as the original", () =>
        withStore(async ({ store }) => {
          const { keys, token } = await populate(store);
          const dumped = await dump(store, 2);
          const target = await open();
          try {
            const imported = await target.store.importInto(async (into) => {
              assert.equal(into.schemaVersion, dumped.schemaVersion);
              for (const { shape, rows } of dumped.tables.values()) await into.importRows(shape.name, shape.columns.map((c) => c.name), rows);
              return "done";
            });
            assert.equal(imported, "done");
            const t = target.store;
            for (const key of keys) assertKey(await t.getKey(key.keyId), key);
            assert.deepEqual(await t.listKeyVersions(keys[0]!.keyId), await store.listKeyVersions(keys[0]!.keyId));
            assert.deepEqual(await t.getImportToken(token.tokenId), token);
            assert.deepEqual(await t.getAccessKey("AKIDbackup"), accessKey("AKIDbackup"));
            assert.equal(await t.getMeta("region"), "backup-test");
            const order = async (s: Store) => (await s.listKeys({ offset: 0, limit: 10, order: "asc" })).keys.map((k) => k.keyId);
            assert.deepEqual(await order(t), await order(store), "the order of keys created in the same second survives");
            // New rows after the import go after the imported ones (generated sequences moved on).
            const next = makeKey({ createTime: 7 });
            await t.insertKey(next, versionOf(next));
            assert.deepEqual((await order(t)).at(-1), next.keyId);
            assert.deepEqual(await dump(t, 100).then((d) => d.tables.get("key_versions")?.rows.length), 4);
          } finally {
            await target.cleanup();
          }
        }));

      it("refuses a non-empty store, and leaves nothing behind when the import fails", () =>
        withStore(async ({ store }) => {
          await store.setMeta("region", "already-here");
          let ran = false;
          await assert.rejects(
            store.importInto(async () => {
              ran = true;
            }),
            (err: unknown) => err instanceof StoreNotEmptyError && /not empty/.test(err.message) && /meta/.test(err.message),
          );
          assert.equal(ran, false, "the function never runs on a non-empty store");
          const target = await open();
          try {
            const key = makeKey();
            await assert.rejects(
              target.store.importInto(async (into) => {
                await into.importRows("meta", ["name", "value"], [["region", "half-done"]]);
                await into.importRows("keys", ["key_id", "alias", "description", "key_usage", "key_spec", "origin", "state", "creator_uin", "owner", "create_time", "deletion_date", "current_version"], [
                  [key.keyId, key.alias, "", "ENCRYPT_DECRYPT", "SM4", "TENCENT_KMS", "Enabled", "1", "1", 1, 0, 1],
                ]);
                throw new Error("the backup file turned out damaged");
              }),
              /turned out damaged/,
            );
            assert.equal(await target.store.getMeta("region"), undefined);
            assert.equal(await target.store.getKey(key.keyId), undefined);
            // And it is still empty enough for the next attempt.
            await target.store.importInto(async (into) => into.importRows("meta", ["name", "value"], [["region", "second-try"]]));
            assert.equal(await target.store.getMeta("region"), "second-try");
          } finally {
            await target.cleanup();
          }
        }));
    });
  });
}

function accessKey(secretId: string, wrappedSecret = Buffer.from(`wrapped-secret:${secretId}`)): AccessKeyRecord {
  return { secretId, wrappedSecret, uin: "100000000001", status: "Active", createTime: 1_700_000_000 };
}
