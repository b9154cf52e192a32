// The contract every Store implementation passes (SQLite now, PostgreSQL later). Each case gets a
// fresh, empty store from `open`.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { KEY_LIFECYCLE_DEFAULTS, type ImportTokenRecord, type KeyRecord, type KeyVersionRecord, type Tag } from "../../src/keys/key.js";
import { StoreConflictError, type AccessKeyRecord, type KeyListQuery, type Store, type StoreOperations } from "../../src/store/store.js";
import type { AccountAuditPage, AccountAuditPosition, AccountAuditRecord, AccountAuditSearch, AuditRecordFilters } from "../../src/store/store.js";
import { StoreNotEmptyError, type PortableValue, type TableShape } from "../../src/store/store.js";
import type { WrappedValue, WrappedValuePosition } from "../../src/store/store.js";
import type { PolicyAttachmentRecord, PolicyRecord, PrincipalRecord, RoleSessionRecord } from "../../src/store/store.js";
import type { Checkpoint } from "../../src/audit/checkpoint.js";
import { GENESIS_HASH, type AuditRecord } from "../../src/audit/record.js";
import { auditChain } from "../helpers/audit-fixtures.js";

export interface StoreFixture {
  store: Store;
  /** Closes `store` and opens the same data again. */
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

let aliasCounter = 0;

/** A record as a row of a version-4 audit_records table (before 005-audit-accounts), for upgrade tests. */
export function v4AuditRow(r: AuditRecord): Record<string, string | number | boolean> {
  return {
    seq: r.seq, time: r.time, request_id: r.requestId, trace_id: r.traceId, node_id: r.nodeId, account_uin: r.accountUin,
    principal_uin: r.principalUin, principal_name: r.principalName, access_key_id: r.accessKeyId, source_ip: r.sourceIp,
    user_agent: r.userAgent, region: r.region, service: r.service, action: r.action, resource_type: r.resourceType,
    resource_name: r.resourceName, read_only: r.readOnly ? 1 : 0, result: r.result, latency_ms: r.latencyMs,
    params_digest: r.paramsDigest, flags: JSON.stringify(r.flags), prev_hash: r.prevHash, hash: r.hash,
  };
}

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

    describe("access keys of principals", () => {
      it("lists a principal's access keys oldest first, and only its own", () =>
        withStore(async ({ store }) => {
          await store.insertAccessKey(accessKey("AKIDc", undefined, { principalId: "200000000001", createTime: 300 }));
          await store.insertAccessKey(accessKey("AKIDa", undefined, { principalId: "200000000001", createTime: 100 }));
          await store.insertAccessKey(accessKey("AKIDb", undefined, { principalId: "200000000001", createTime: 300 }));
          await store.insertAccessKey(accessKey("AKIDroot"));
          const listed = await store.listAccessKeys("200000000001");
          assert.deepEqual(listed.map((k) => k.secretId), ["AKIDa", "AKIDb", "AKIDc"], "by createTime, then SecretId");
          assert.deepEqual(listed[0], accessKey("AKIDa", undefined, { principalId: "200000000001", createTime: 100 }));
          assert.ok(Buffer.isBuffer(listed[0]?.wrappedSecret));
          assert.deepEqual((await store.listAccessKeys("100000000001")).map((k) => k.secretId), ["AKIDroot"]);
          assert.deepEqual(await store.listAccessKeys("nobody"), []);
        }));

      it("updates the status and deletes a key, answering false for an unknown SecretId", () =>
        withStore(async ({ store }) => {
          await store.insertAccessKey(accessKey("AKIDstatus"));
          await store.insertAccessKey(accessKey("AKIDother"));
          assert.equal(await store.updateAccessKeyStatus("AKIDstatus", "Inactive"), true);
          assert.equal((await store.getAccessKey("AKIDstatus"))?.status, "Inactive");
          assert.equal((await store.getAccessKey("AKIDother"))?.status, "Active", "only that key");
          assert.equal(await store.updateAccessKeyStatus("AKIDstatus", "Active"), true);
          assert.deepEqual(await store.getAccessKey("AKIDstatus"), accessKey("AKIDstatus"));
          assert.equal(await store.updateAccessKeyStatus("AKIDmissing", "Inactive"), false);
          assert.equal(await store.getAccessKey("AKIDmissing"), undefined, "an update creates nothing");

          assert.equal(await store.deleteAccessKey("AKIDstatus"), true);
          assert.equal(await store.getAccessKey("AKIDstatus"), undefined);
          assert.equal(await store.deleteAccessKey("AKIDstatus"), false, "already gone");
          assert.equal(await store.deleteAccessKey("AKIDmissing"), false);
          assert.deepEqual(await store.getAccessKey("AKIDother"), accessKey("AKIDother"));
        }));

      it("touches lastUsedTime only when it is older than time - minIntervalSeconds", () =>
        withStore(async ({ store }) => {
          await store.insertAccessKey(accessKey("AKIDtouch"));
          await store.insertAccessKey(accessKey("AKIDuntouched"));
          const lastUsed = async () => (await store.getAccessKey("AKIDtouch"))?.lastUsedTime;
          await store.touchAccessKey("AKIDtouch", 1_000, 60);
          assert.equal(await lastUsed(), 1_000, "never used: recorded at once");
          await store.touchAccessKey("AKIDtouch", 1_030, 60);
          assert.equal(await lastUsed(), 1_000, "within the interval: not written");
          await store.touchAccessKey("AKIDtouch", 1_060, 60);
          assert.equal(await lastUsed(), 1_000, "exactly the interval later: 1000 is not older than 1060 - 60");
          await store.touchAccessKey("AKIDtouch", 1_061, 60);
          assert.equal(await lastUsed(), 1_061, "past the interval: written");
          await store.touchAccessKey("AKIDtouch", 500, 60);
          assert.equal(await lastUsed(), 1_061, "an older time never moves it back");
          await store.touchAccessKey("AKIDtouch", 1_062, 0);
          assert.equal(await lastUsed(), 1_062, "no interval: any newer time");
          await store.touchAccessKey("AKIDtouch", 1_062, 0);
          assert.equal(await lastUsed(), 1_062);
          await store.touchAccessKey("AKIDmissing", 2_000, 60);
          assert.equal(await store.getAccessKey("AKIDmissing"), undefined, "touching an unknown key does nothing");
          assert.equal((await store.getAccessKey("AKIDuntouched"))?.lastUsedTime, 0);
          const touched = await store.getAccessKey("AKIDtouch");
          assert.deepEqual(touched, { ...accessKey("AKIDtouch"), lastUsedTime: 1_062 }, "nothing else changes");
        }));
    });

    describe("principals", () => {
      it("inserts a principal of each kind and gets it by id and by (account, kind, name)", () =>
        withStore(async ({ store }) => {
          const root = principal({ principalId: ACCOUNT, kind: "root", name: "root" });
          const user = principal({ principalId: "200000000001", name: "ünïcødé 用户 ' \" % _ \\", remark: "a remark" });
          const role = principal({
            principalId: "4611686018427387905",
            kind: "role",
            name: "deployer",
            trustPolicy: '{"version":"2.0","statement":[]}',
            maxSessionSeconds: 43_200,
            createTime: 4_102_444_800,
          });
          for (const p of [root, user, role]) await store.insertPrincipal(p);
          for (const p of [root, user, role]) {
            assert.deepEqual(await store.getPrincipal(p.principalId), p);
            assert.deepEqual(await store.getPrincipalByName(p.accountUin, p.kind, p.name), p);
          }
          assert.equal(await store.getPrincipal("missing"), undefined);
          assert.equal(await store.getPrincipalByName(ACCOUNT, "role", user.name), undefined, "the kind is part of the name's key");
          assert.equal(await store.getPrincipalByName("999", "user", user.name), undefined, "so is the account");
          assert.equal(await store.getPrincipalByName(ACCOUNT, "role", "DEPLOYER"), undefined, "names are exact");
        }));

      it("lists the root of every account, oldest first, and nothing else (tresor account list)", () =>
        withStore(async ({ store }) => {
          const other = principal({ principalId: "300000000003", accountUin: "300000000003", kind: "root", name: "root", createTime: 50 });
          await store.insertPrincipal(principal({ principalId: ACCOUNT, kind: "root", name: "root", createTime: 100 }));
          await store.insertPrincipal(other);
          await store.insertPrincipal(principal({ principalId: "200000000001", name: "alice", createTime: 10 }));
          assert.deepEqual((await store.listAccountRoots()).map((p) => p.accountUin), ["300000000003", ACCOUNT]);
          assert.deepEqual((await store.listAccountRoots())[0], other);
        }));

      it("refuses a duplicate id or (account, kind, name), writing nothing", () =>
        withStore(async ({ store }) => {
          const alice = principal({ principalId: "200000000001", name: "alice" });
          await store.insertPrincipal(alice);
          await assert.rejects(store.insertPrincipal({ ...alice, name: "bob" }), assertConflict("principal"));
          await assert.rejects(store.insertPrincipal({ ...alice, principalId: "200000000002", remark: "other" }), assertConflict("principal"));
          assert.equal(await store.getPrincipal("200000000002"), undefined);
          assert.equal(await store.getPrincipalByName(ACCOUNT, "user", "bob"), undefined);
          assert.deepEqual(await store.getPrincipal(alice.principalId), alice);
          // The same name as another kind, or in another account, is a different principal.
          const aliceRole = principal({ principalId: "role-alice", kind: "role", name: "alice" });
          const elsewhere = principal({ principalId: "300000000001", accountUin: "300000000000", name: "alice" });
          await store.insertPrincipal(aliceRole);
          await store.insertPrincipal(elsewhere);
          assert.deepEqual(await store.getPrincipalByName(ACCOUNT, "role", "alice"), aliceRole);
          assert.deepEqual(await store.getPrincipalByName("300000000000", "user", "alice"), elsewhere);
        }));

      it("lists one kind of one account by name (byte order), in pages, with the count of all", () =>
        withStore(async ({ store }) => {
          const names = ["carol", "Bob", "alice", "dave", "bob", "erin"];
          for (const [i, name] of names.entries()) await store.insertPrincipal(principal({ principalId: `20000000000${i}`, name }));
          await store.insertPrincipal(principal({ principalId: "role-1", kind: "role", name: "aaa-role" }));
          await store.insertPrincipal(principal({ principalId: "300000000001", accountUin: "300000000000", name: "aaa" }));
          const sorted = ["Bob", "alice", "bob", "carol", "dave", "erin"];
          const page = async (offset: number, limit: number) => {
            const p = await store.listPrincipals(ACCOUNT, "user", offset, limit);
            return { names: p.items.map((x) => x.name), totalCount: p.totalCount };
          };
          assert.deepEqual(await page(0, 100), { names: sorted, totalCount: 6 });
          assert.deepEqual(await page(0, 4), { names: sorted.slice(0, 4), totalCount: 6 });
          assert.deepEqual(await page(4, 4), { names: sorted.slice(4), totalCount: 6 });
          assert.deepEqual(await page(6, 4), { names: [], totalCount: 6 }, "past the end: no items, still the count");
          assert.deepEqual(await page(0, 0), { names: [], totalCount: 6 });
          const full = (await store.listPrincipals(ACCOUNT, "user", 1, 1)).items[0];
          assert.deepEqual(full, principal({ principalId: "200000000002", name: "alice" }));
          assert.deepEqual((await store.listPrincipals(ACCOUNT, "role", 0, 10)).items.map((p) => p.principalId), ["role-1"]);
          assert.deepEqual(await store.listPrincipals(ACCOUNT, "root", 0, 10), { items: [], totalCount: 0 });
          assert.deepEqual(await store.listPrincipals("nobody", "user", 0, 10), { items: [], totalCount: 0 });
          await assert.rejects(store.listPrincipals(ACCOUNT, "user", -1, 10), RangeError);
          await assert.rejects(store.listPrincipals(ACCOUNT, "user", 0, 1.5), RangeError);
        }));

      it("deletes a principal with its access keys, attachments and role sessions, and nothing of others", () =>
        withStore(async ({ store }) => {
          const role = principal({ principalId: "role-doomed", kind: "role", name: "doomed", maxSessionSeconds: 3_600 });
          const keep = principal({ principalId: "role-kept", kind: "role", name: "kept" });
          const user = principal({ principalId: "200000000001", name: "user" });
          for (const p of [role, keep, user]) await store.insertPrincipal(p);
          await store.insertPolicy(policy({ policyId: 5_001, name: "custom" }));
          for (const p of [role, keep, user]) {
            await store.insertAccessKey(accessKey(`AKID-${p.principalId}`, undefined, { principalId: p.principalId }));
            await store.attachPolicy(attachment(p.principalId, 5_001));
            await store.attachPolicy(attachment(p.principalId, 1));
          }
          await store.insertAccessKey(accessKey("AKID-doomed-2", undefined, { principalId: role.principalId }));
          await store.insertRoleSession(roleSession("tmp-doomed-1", role.principalId, { assumedBy: user.principalId }));
          await store.insertRoleSession(roleSession("tmp-doomed-2", role.principalId));
          await store.insertRoleSession(roleSession("tmp-kept", keep.principalId, { assumedBy: user.principalId }));

          assert.equal(await store.deletePrincipal(role.principalId), true);
          assert.equal(await store.getPrincipal(role.principalId), undefined);
          assert.equal(await store.getPrincipalByName(ACCOUNT, "role", "doomed"), undefined);
          assert.deepEqual(await store.listAccessKeys(role.principalId), []);
          assert.equal(await store.getAccessKey("AKID-doomed-2"), undefined);
          assert.deepEqual(await store.listAttachedPolicies(role.principalId), []);
          assert.equal(await store.getRoleSession("tmp-doomed-1"), undefined);
          assert.equal(await store.getRoleSession("tmp-doomed-2"), undefined);
          assert.equal(await store.countPolicyAttachments(5_001), 2);
          assert.equal(await store.countPolicyAttachments(1), 2);
          assert.ok((await store.getPolicy(5_001)) !== undefined, "the policy itself stays");
          // Everything of the others is untouched.
          for (const p of [keep, user]) {
            assert.deepEqual(await store.getPrincipal(p.principalId), p);
            assert.deepEqual((await store.listAccessKeys(p.principalId)).map((k) => k.secretId), [`AKID-${p.principalId}`]);
            assert.deepEqual((await store.listAttachedPolicies(p.principalId)).map((a) => a.policyId).sort(), [1, 5_001]);
          }
          assert.deepEqual(await store.getRoleSession("tmp-kept"), roleSession("tmp-kept", keep.principalId, { assumedBy: user.principalId }));

          assert.equal(await store.deletePrincipal(role.principalId), false, "already gone");
          assert.equal(await store.deletePrincipal("missing"), false);
          // A name freed by the deletion can be taken again.
          await store.insertPrincipal({ ...role, principalId: "role-reborn" });
          assert.equal((await store.getPrincipalByName(ACCOUNT, "role", "doomed"))?.principalId, "role-reborn");
        }));
    });

    describe("KMIP client certificates", () => {
      it("maps fingerprints to principals, lists an account's, refuses a second mapping, and goes with its principal", () =>
        withStore(async ({ store }) => {
          const user = principal({ principalId: "200000000001", name: "db" });
          const other = principal({ principalId: "200000000002", name: "other" });
          for (const p of [user, other]) await store.insertPrincipal(p);
          const record = (fingerprint: string, principalId: string, createTime: number) => ({ fingerprint, accountUin: ACCOUNT, principalId, subject: `CN=${fingerprint}`, createTime });
          await store.insertKmipClient(record("bb", user.principalId, 2));
          await store.insertKmipClient(record("aa", user.principalId, 1));
          await store.insertKmipClient(record("cc", other.principalId, 3));
          await store.insertKmipClient({ ...record("dd", other.principalId, 4), accountUin: "another" });
          assert.deepEqual(await store.getKmipClient("aa"), record("aa", user.principalId, 1));
          assert.equal(await store.getKmipClient("zz"), undefined);
          assert.deepEqual((await store.listKmipClients(ACCOUNT)).map((c) => c.fingerprint), ["aa", "bb", "cc"]);
          await assert.rejects(store.insertKmipClient(record("aa", other.principalId, 5)), (e: unknown) => e instanceof StoreConflictError && e.field === "kmipClient");
          assert.equal(await store.deleteKmipClient("cc"), true);
          assert.equal(await store.deleteKmipClient("cc"), false);
          assert.equal(await store.deletePrincipal(user.principalId), true);
          assert.deepEqual((await store.listKmipClients(ACCOUNT)).map((c) => c.fingerprint), []);
          assert.equal((await store.listKmipClients("another")).length, 1);
        }));

      it("keeps a key's class and its KMIP metadata through insert and update", () =>
        withStore(async ({ store }) => {
          const meta = { objectType: "SymmetricKey" as const, state: "PreActive" as const, names: ["n1", "n 2"], usageMask: 12, linkedId: "", activationDate: 0, deactivationDate: 0, compromiseDate: 0 };
          const key = makeKey({ keyClass: "KMIP", kmip: meta });
          await store.insertKey(key, versionOf(key));
          assert.deepEqual(await store.getKey(key.keyId), key);
          const changed = { ...key, state: "Enabled" as const, kmip: { ...meta, state: "Active" as const, activationDate: 77 } };
          await store.updateKey(changed);
          assert.deepEqual(await store.getKey(key.keyId), changed);
          const cmk = makeKey();
          await store.insertKey(cmk, versionOf(cmk));
          assert.deepEqual(await store.getKey(cmk.keyId), cmk);
          assert.equal((await store.getKey(cmk.keyId))?.keyClass, "CMK");
        }));
    });

    describe("policies and attachments", () => {
      it("inserts a policy and gets it by id and by (account, name); refuses a duplicate id or name", () =>
        withStore(async ({ store }) => {
          const p = policy({ policyId: 5_001, name: "KmsReadOnly", description: "read ' only", document: '{"version":"2.0","statement":[{"effect":"allow","action":["kms:Get*"],"resource":["*"]}]}' });
          await store.insertPolicy(p);
          assert.deepEqual(await store.getPolicy(5_001), p);
          assert.deepEqual(await store.getPolicyByName(ACCOUNT, "KmsReadOnly"), p);
          assert.equal(await store.getPolicy(5_002), undefined);
          assert.equal(await store.getPolicy(1.5), undefined);
          assert.equal(await store.getPolicyByName(ACCOUNT, "kmsreadonly"), undefined, "names are exact");
          assert.equal(await store.getPolicyByName("999", "KmsReadOnly"), undefined);

          await assert.rejects(store.insertPolicy({ ...p, name: "Other" }), assertConflict("policy"));
          await assert.rejects(store.insertPolicy({ ...p, policyId: 5_002, document: "{}" }), assertConflict("policy"));
          assert.equal(await store.getPolicy(5_002), undefined);
          assert.equal(await store.getPolicyByName(ACCOUNT, "Other"), undefined);
          assert.deepEqual(await store.getPolicy(5_001), p);
          const elsewhere = policy({ policyId: 5_003, accountUin: "300000000000", name: "KmsReadOnly", createTime: 2 ** 40, updateTime: 2 ** 40 + 1 });
          await store.insertPolicy(elsewhere);
          assert.deepEqual(await store.getPolicyByName("300000000000", "KmsReadOnly"), elsewhere, "the same name in another account");
        }));

      it("lists an account's policies by name, in pages, with the count of all matches", () =>
        withStore(async ({ store }) => {
          const names = ["delta", "Alpha", "charlie", "bravo", "alpha"];
          for (const [i, name] of names.entries()) await store.insertPolicy(policy({ policyId: 5_000 + i, name }));
          await store.insertPolicy(policy({ policyId: 6_000, accountUin: "300000000000", name: "alpha-elsewhere" }));
          const page = async (offset: number, limit: number, keyword?: string) => {
            const p = await store.listPolicies(ACCOUNT, offset, limit, keyword);
            return { names: p.items.map((x) => x.name), totalCount: p.totalCount };
          };
          assert.deepEqual(await page(0, 10), { names: ["Alpha", "alpha", "bravo", "charlie", "delta"], totalCount: 5 });
          assert.deepEqual(await page(1, 2), { names: ["alpha", "bravo"], totalCount: 5 });
          assert.deepEqual(await page(5, 2), { names: [], totalCount: 5 });
          assert.deepEqual(await page(0, 0), { names: [], totalCount: 5 });
          assert.deepEqual((await store.listPolicies(ACCOUNT, 4, 1)).items, [policy({ policyId: 5_000, name: "delta" })]);
          assert.deepEqual(await page(0, 10, "ALPH"), { names: ["Alpha", "alpha"], totalCount: 2 }, "the keyword ignores case");
          assert.deepEqual(await page(1, 10, "a"), { names: ["alpha", "bravo", "charlie", "delta"], totalCount: 5 });
          assert.deepEqual(await page(0, 10, "rav"), { names: ["bravo"], totalCount: 1 }, "a substring anywhere");
          assert.deepEqual(await page(0, 10, "zulu"), { names: [], totalCount: 0 });
          assert.deepEqual(await page(0, 10, ""), { names: ["Alpha", "alpha", "bravo", "charlie", "delta"], totalCount: 5 }, "an empty keyword matches all");
          assert.deepEqual(await store.listPolicies("nobody", 0, 10), { items: [], totalCount: 0 });
          await assert.rejects(store.listPolicies(ACCOUNT, -1, 10), RangeError);
        }));

      it("takes the keyword literally: %, _ and the escape character are not wildcards", () =>
        withStore(async ({ store }) => {
          const names = ["a%b", "a_b", "axb", "a\\b", "aXXb"];
          for (const [i, name] of names.entries()) await store.insertPolicy(policy({ policyId: 5_000 + i, name }));
          const matching = async (keyword: string) => (await store.listPolicies(ACCOUNT, 0, 10, keyword)).items.map((p) => p.name);
          assert.deepEqual(await matching("%"), ["a%b"]);
          assert.deepEqual(await matching("_"), ["a_b"]);
          assert.deepEqual(await matching("\\"), ["a\\b"]);
          assert.deepEqual(await matching("a_b"), ["a_b"]);
          assert.deepEqual(await matching("a%b"), ["a%b"]);
          assert.deepEqual(await matching("\\b"), ["a\\b"]);
          assert.equal((await store.listPolicies(ACCOUNT, 0, 10, "%")).totalCount, 1);
        }));

      it("attaches a policy once, lists and counts attachments, and detaches it", () =>
        withStore(async ({ store }) => {
          const alice = principal({ principalId: "200000000001", name: "alice" });
          const bob = principal({ principalId: "200000000002", name: "bob" });
          await store.insertPrincipal(alice);
          await store.insertPrincipal(bob);
          await store.insertPolicy(policy({ policyId: 5_001, name: "custom" }));
          assert.equal(await store.attachPolicy(attachment(alice.principalId, 5_001, 300)), true);
          assert.equal(await store.attachPolicy(attachment(alice.principalId, 1, 100)), true, "a preset policy (not stored) can be attached");
          assert.equal(await store.attachPolicy(attachment(alice.principalId, 7, 300)), true);
          assert.equal(await store.attachPolicy(attachment(bob.principalId, 5_001, 50)), true);
          assert.equal(await store.attachPolicy(attachment(alice.principalId, 5_001, 999)), false, "already attached");
          assert.deepEqual(await store.listAttachedPolicies(alice.principalId), [
            attachment(alice.principalId, 1, 100),
            attachment(alice.principalId, 7, 300),
            attachment(alice.principalId, 5_001, 300),
          ], "oldest first, then by policy id; the refused second attachment changed nothing");
          assert.equal(await store.countPolicyAttachments(5_001), 2);
          assert.equal(await store.countPolicyAttachments(1), 1);
          assert.equal(await store.countPolicyAttachments(404), 0);

          assert.equal(await store.detachPolicy(alice.principalId, 5_001), true);
          assert.equal(await store.detachPolicy(alice.principalId, 5_001), false, "no longer attached");
          assert.equal(await store.detachPolicy("nobody", 1), false);
          assert.equal(await store.countPolicyAttachments(5_001), 1);
          assert.deepEqual((await store.listAttachedPolicies(alice.principalId)).map((a) => a.policyId), [1, 7]);
          assert.deepEqual(await store.listAttachedPolicies(bob.principalId), [attachment(bob.principalId, 5_001, 50)]);
          assert.deepEqual(await store.listAttachedPolicies("nobody"), []);
          assert.equal(await store.attachPolicy(attachment(alice.principalId, 5_001, 400)), true, "attachable again after detaching");
        }));

      it("refuses an attachment to an unknown principal with a plain error", () =>
        withStore(async ({ store }) => {
          await assert.rejects(store.attachPolicy(attachment("nobody", 1)), (err) => {
            assert.ok(err instanceof Error && !(err instanceof StoreConflictError), `got ${String(err)}`);
            return true;
          });
          assert.equal(await store.countPolicyAttachments(1), 0);
        }));

      it("deletes a policy with every attachment of it; an unknown or preset id deletes nothing", () =>
        withStore(async ({ store }) => {
          const alice = principal({ principalId: "200000000001", name: "alice" });
          const bob = principal({ principalId: "200000000002", name: "bob" });
          await store.insertPrincipal(alice);
          await store.insertPrincipal(bob);
          await store.insertPolicy(policy({ policyId: 5_001, name: "doomed" }));
          await store.insertPolicy(policy({ policyId: 5_002, name: "kept" }));
          for (const p of [alice, bob]) {
            for (const id of [1, 5_001, 5_002]) await store.attachPolicy(attachment(p.principalId, id));
          }
          assert.equal(await store.deletePolicy(5_001), true);
          assert.equal(await store.getPolicy(5_001), undefined);
          assert.equal(await store.getPolicyByName(ACCOUNT, "doomed"), undefined);
          assert.equal(await store.countPolicyAttachments(5_001), 0);
          for (const p of [alice, bob]) assert.deepEqual((await store.listAttachedPolicies(p.principalId)).map((a) => a.policyId).sort(), [1, 5_002]);
          assert.equal(await store.deletePolicy(5_001), false, "already gone");
          assert.equal(await store.deletePolicy(1), false, "a preset policy is not stored");
          assert.equal(await store.countPolicyAttachments(1), 2, "so its attachments stay");
          assert.equal(await store.countPolicyAttachments(5_002), 2);
          assert.ok((await store.getPrincipal(alice.principalId)) !== undefined);
          await store.insertPolicy(policy({ policyId: 5_003, name: "doomed" }));
          assert.equal((await store.getPolicyByName(ACCOUNT, "doomed"))?.policyId, 5_003, "the name is free again");
        }));
    });

    describe("role sessions", () => {
      it("inserts and gets a session; refuses one for an unknown role or a duplicate id", () =>
        withStore(async ({ store }) => {
          await store.insertPrincipal(principal({ principalId: "role-1", kind: "role", name: "r" }));
          const session = roleSession("tmp-1", "role-1", { sessionName: "ci-job ✓", createTime: 2 ** 40, expiresAt: 2 ** 40 + 7_200 });
          await store.insertRoleSession(session);
          assert.deepEqual(await store.getRoleSession("tmp-1"), session);
          assert.equal(await store.getRoleSession("TMP-1"), undefined);
          assert.equal(await store.getRoleSession("missing"), undefined);
          await assert.rejects(store.insertRoleSession(roleSession("tmp-2", "no-such-role")), (err) => err instanceof Error && !(err instanceof StoreConflictError));
          assert.equal(await store.getRoleSession("tmp-2"), undefined);
          await assert.rejects(store.insertRoleSession({ ...session, sessionName: "other" }));
          assert.deepEqual(await store.getRoleSession("tmp-1"), session);
        }));

      it("deletes the sessions whose expiresAt <= now and answers how many", () =>
        withStore(async ({ store }) => {
          await store.insertPrincipal(principal({ principalId: "role-1", kind: "role", name: "r" }));
          for (const [id, expiresAt] of [["tmp-a", 100], ["tmp-b", 200], ["tmp-c", 201], ["tmp-d", 300]] as const) {
            await store.insertRoleSession(roleSession(id, "role-1", { expiresAt }));
          }
          assert.equal(await store.deleteExpiredRoleSessions(99), 0);
          assert.equal(await store.deleteExpiredRoleSessions(200), 2, "expiresAt equal to now is expired");
          assert.equal(await store.getRoleSession("tmp-a"), undefined);
          assert.equal(await store.getRoleSession("tmp-b"), undefined);
          assert.ok((await store.getRoleSession("tmp-c")) !== undefined);
          assert.equal(await store.deleteExpiredRoleSessions(200), 0);
          assert.equal(await store.deleteExpiredRoleSessions(1_000), 2);
          assert.equal(await store.getRoleSession("tmp-d"), undefined);
        }));
    });

    describe("keys per account", () => {
      it("counts and lists the keys of one account (creatorUin)", () =>
        withStore(async ({ store }) => {
          const mine = [makeKey({ createTime: 1 }), makeKey({ createTime: 2, state: "Disabled" })];
          const theirs = [makeKey({ creatorUin: "300000000000", owner: "300000000000", createTime: 3 })];
          for (const key of [...mine, ...theirs]) await store.insertKey(key, versionOf(key));
          assert.equal(await store.countKeys(), 3);
          assert.equal(await store.countKeys(ACCOUNT), 2);
          assert.equal(await store.countKeys("300000000000"), 1);
          assert.equal(await store.countKeys("nobody"), 0);
          const list = (query: Partial<KeyListQuery>) => store.listKeys({ offset: 0, limit: 10, order: "asc", ...query });
          assert.deepEqual((await list({ accountUin: ACCOUNT })).keys.map((k) => k.keyId), mine.map((k) => k.keyId));
          assert.equal((await list({ accountUin: ACCOUNT, limit: 1 })).totalCount, 2);
          assert.deepEqual((await list({ accountUin: "300000000000" })).keys.map((k) => k.keyId), [theirs[0]!.keyId]);
          assert.deepEqual(await list({ accountUin: "nobody" }), { keys: [], totalCount: 0 });
          assert.deepEqual((await list({ accountUin: ACCOUNT, states: ["Disabled"] })).keys.map((k) => k.keyId), [mine[1]!.keyId], "with the other filters");
          assert.equal((await list({})).totalCount, 3, "no accountUin: every account");
          assert.equal(await store.transaction((tx) => tx.countKeys(ACCOUNT)), 2);
        }));
    });

    describe("identity in transactions", () => {
      async function seed(store: Store): Promise<void> {
        await store.insertPrincipal(principal({ principalId: "200000000001", name: "existing" }));
        await store.insertPrincipal(principal({ principalId: "role-1", kind: "role", name: "role" }));
        await store.insertPolicy(policy({ policyId: 5_001, name: "existing" }));
        await store.attachPolicy(attachment("200000000001", 5_001));
        await store.insertAccessKey(accessKey("AKIDexisting", undefined, { principalId: "200000000001" }));
        await store.insertRoleSession(roleSession("tmp-existing", "role-1", { expiresAt: 100 }));
      }

      async function snapshotOf(store: Store): Promise<unknown> {
        return {
          users: await store.listPrincipals(ACCOUNT, "user", 0, 100),
          roles: await store.listPrincipals(ACCOUNT, "role", 0, 100),
          policies: await store.listPolicies(ACCOUNT, 0, 100),
          attached: await store.listAttachedPolicies("200000000001"),
          attachedNew: await store.listAttachedPolicies("200000000002"),
          keys: await store.listAccessKeys("200000000001"),
          newKeys: await store.listAccessKeys("200000000002"),
          session: await store.getRoleSession("tmp-existing"),
          newSession: await store.getRoleSession("tmp-new"),
        };
      }

      async function mutate(tx: StoreOperations): Promise<void> {
        await tx.insertPrincipal(principal({ principalId: "200000000002", name: "new" }));
        await tx.insertPolicy(policy({ policyId: 5_002, name: "new" }));
        assert.equal(await tx.attachPolicy(attachment("200000000002", 5_002)), true);
        assert.equal(await tx.attachPolicy(attachment("200000000001", 1)), true);
        assert.equal(await tx.detachPolicy("200000000001", 5_001), true);
        await tx.insertAccessKey(accessKey("AKIDnew", undefined, { principalId: "200000000002" }));
        assert.equal(await tx.updateAccessKeyStatus("AKIDexisting", "Inactive"), true);
        await tx.touchAccessKey("AKIDexisting", 5_000, 60);
        await tx.insertRoleSession(roleSession("tmp-new", "role-1"));
        assert.equal(await tx.deleteExpiredRoleSessions(100), 1);
        // A conflict caught inside the transaction leaves it usable.
        await assert.rejects(tx.insertPrincipal(principal({ principalId: "200000000003", name: "new" })), assertConflict("principal"));
        await assert.rejects(tx.insertPolicy(policy({ policyId: 5_002, name: "other" })), assertConflict("policy"));
        assert.equal(await tx.deletePolicy(5_001), true);
        assert.equal(await tx.deletePrincipal("role-1"), true);
        // It reads its own writes.
        assert.equal((await tx.getPrincipalByName(ACCOUNT, "user", "new"))?.principalId, "200000000002");
        assert.equal((await tx.listPolicies(ACCOUNT, 0, 10)).totalCount, 1);
        assert.equal(await tx.countPolicyAttachments(5_002), 1);
        assert.equal(await tx.getPrincipal("role-1"), undefined);
        assert.equal((await tx.getAccessKey("AKIDexisting"))?.lastUsedTime, 5_000);
      }

      it("rolls back every identity write when the function rejects", () =>
        withStore(async ({ store }) => {
          await seed(store);
          const before = await snapshotOf(store);
          const boom = new Error("boom");
          await assert.rejects(
            store.transaction(async (tx) => {
              await mutate(tx);
              throw boom;
            }),
            (err) => err === boom,
          );
          assert.deepEqual(await snapshotOf(store), before);
          assert.equal(await store.getPrincipal("200000000002"), undefined);
          assert.equal(await store.getPolicy(5_002), undefined);
          assert.equal(await store.getAccessKey("AKIDnew"), undefined);
          assert.ok((await store.getPrincipal("role-1")) !== undefined);
          assert.ok((await store.getPolicy(5_001)) !== undefined);
          assert.equal(await store.countPolicyAttachments(1), 0);
        }));

      it("commits every identity write when the function resolves", () =>
        withStore(async ({ store }) => {
          await seed(store);
          await store.transaction(mutate);
          assert.equal((await store.getPrincipalByName(ACCOUNT, "user", "new"))?.principalId, "200000000002");
          assert.equal(await store.getPrincipal("200000000003"), undefined);
          assert.equal(await store.getPrincipal("role-1"), undefined);
          assert.equal(await store.getRoleSession("tmp-new"), undefined, "deleted with its role");
          assert.equal(await store.getRoleSession("tmp-existing"), undefined);
          assert.deepEqual((await store.listPolicies(ACCOUNT, 0, 10)).items.map((p) => p.policyId), [5_002]);
          assert.deepEqual((await store.listAttachedPolicies("200000000001")).map((a) => a.policyId), [1]);
          assert.deepEqual((await store.listAttachedPolicies("200000000002")).map((a) => a.policyId), [5_002]);
          assert.deepEqual(await store.getAccessKey("AKIDexisting"), { ...accessKey("AKIDexisting", undefined, { principalId: "200000000001" }), status: "Inactive", lastUsedTime: 5_000 });
          assert.ok((await store.getAccessKey("AKIDnew")) !== undefined);
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
        await store.insertPrincipal(BACKUP_ROLE);
        await store.insertPolicy(BACKUP_POLICY);
        await store.attachPolicy(attachment(BACKUP_ROLE.principalId, BACKUP_POLICY.policyId));
        await store.insertRoleSession(roleSession("tmp-persist", BACKUP_ROLE.principalId));

        const again = await reopen();
        assertKey(await again.getKey(renamed.keyId), renamed);
        assertKey(await again.getKeyByAlias("renamed-before-reopen"), renamed);
        for (const key of keys) assert.deepEqual(await again.getKeyVersion(key.keyId, 1), versionOf(key));
        assert.equal(await again.getMeta("audit-head"), "deadbeef");
        assert.deepEqual(await again.getAccessKey("AKIDpersist"), ak);
        assert.deepEqual(await again.getPrincipal(BACKUP_ROLE.principalId), BACKUP_ROLE);
        assert.deepEqual(await again.getPolicy(BACKUP_POLICY.policyId), BACKUP_POLICY);
        assert.equal(await again.countPolicyAttachments(BACKUP_POLICY.policyId), 1);
        assert.deepEqual(await again.getRoleSession("tmp-persist"), roleSession("tmp-persist", BACKUP_ROLE.principalId));
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

    /** Every match of a search, walked call by call; each call's page goes to `calls`. */
    async function searchAll(store: Store, q: Partial<AccountAuditSearch> & { accountUin: string }, calls: AccountAuditPage[] = []): Promise<AccountAuditRecord[]> {
      const out: AccountAuditRecord[] = [];
      let after: AccountAuditPosition | undefined;
      for (let i = 0; i < 10_000; i++) {
        const page = await store.searchAccountAudit({ fromTime: 0, toTime: 2e12, filters: {}, limit: 50, scanLimit: 1000, ...q, ...(after === undefined ? {} : { after }) });
        calls.push(page);
        out.push(...page.records);
        if (page.next === undefined) return out;
        after = page.next;
      }
      throw new Error("the search did not end");
    }

    describe("audit log", () => {
      it("starts empty: no head, no records, no checkpoints", () =>
        withStore(async ({ store }) => {
          assert.equal(await store.auditHead(), undefined);
          assert.deepEqual(await store.listAuditRecords({ limit: 10, order: "asc" }), []);
          assert.deepEqual(await store.listAuditCheckpoints({ order: "asc" }), []);
        }));

      it("appends a chain, moves the head and lists the records as written, both ways and with a cursor", () =>
        withStore(async ({ store }) => {
          const records = auditChain(1, GENESIS_HASH, 5, (i) => ({
            userAgent: i === 2 ? "ünïcödé 🔑 agent" : "sdk/1",
            readOnly: i % 2 === 0,
            flags: i === 3 ? ["policy-denied", "signature-failures"] : [],
          }));
          await store.appendAuditRecords(records.slice(0, 2));
          await store.appendAuditRecords(records.slice(2));
          assert.deepEqual(await store.auditHead(), { seq: 5, hash: records[4]!.hash });
          assert.deepEqual(await store.listAuditRecords({ limit: 10, order: "asc" }), records);
          assert.deepEqual(await store.listAuditRecords({ limit: 10, order: "desc" }), [...records].reverse());
          assert.deepEqual(await store.listAuditRecords({ limit: 2, order: "asc", afterSeq: 2 }), records.slice(2, 4));
          assert.deepEqual(await store.listAuditRecords({ limit: 2, order: "desc", afterSeq: 4 }), [records[2], records[1]]);
          assert.deepEqual(await store.listAuditRecords({ limit: 0, order: "asc" }), []);
        }));

      it("searches one account's records by time range, action, key, principal, access key, read-only and flag", () =>
        withStore(async ({ store }) => {
          const records = auditChain(1, GENESIS_HASH, 8, (i) => ({
            time: 1_700_000_000_000 + i * 1000,
            action: i % 2 === 0 ? "Encrypt" : "Decrypt",
            resourceName: i < 4 ? "key-a" : "key-b",
            principalName: i % 3 === 0 ? "alice" : "bob",
            accessKeyId: i === 5 ? "AKIDfive" : "AKIDother",
            readOnly: i !== 7,
            flags: i === 6 ? ["pending-delete-key-use"] : ["x-pending-delete-key-use-x"],
          }));
          await store.appendAuditRecords(records);
          const seqs = async (q: Partial<AccountAuditSearch>) => (await searchAll(store, { ...q, accountUin: "100000000001" })).map((r) => r.seq).reverse();
          assert.deepEqual(await seqs({ fromTime: 1_700_000_002_000, toTime: 1_700_000_004_000 }), [3, 4, 5], "both ends inclusive");
          assert.deepEqual(await seqs({ filters: { action: "Encrypt" } }), [1, 3, 5, 7]);
          assert.deepEqual(await seqs({ filters: { resourceName: "key-b", action: "Decrypt" } }), [6, 8]);
          assert.deepEqual(await seqs({ filters: { principalName: "alice" } }), [1, 4, 7]);
          assert.deepEqual(await seqs({ filters: { accessKeyId: "AKIDfive" } }), [6]);
          assert.deepEqual(await seqs({ filters: { readOnly: false } }), [8]);
          assert.deepEqual(await seqs({ filters: { flag: "pending-delete-key-use" } }), [7], "a flag matches whole, not as a substring");
          assert.deepEqual(await seqs({ filters: { action: "NoSuchAction" } }), []);
          assert.deepEqual(await seqs({ filters: { accountSeq: 4 } }), [4]);
          assert.deepEqual(await seqs({ filters: { accountSeq: 4, action: "Encrypt" } }), []);
        }));

      it("searches within one account, by request id and resource type, and matches one whole name of a resource list", () =>
        withStore(async ({ store }) => {
          const names = ["key-a", "key-a,key-b", "key-b,key-a,key-c", "key-ab", "xkey-a", "key-b", "", "key-a_"];
          const records = auditChain(1, GENESIS_HASH, 8, (i) => ({
            time: 1_700_000_000_000 + i * 1000,
            accountUin: i % 2 === 0 ? "100000000001" : "100000000002",
            requestId: `req-filter-${i}`,
            resourceType: i < 6 ? "key" : "user",
            resourceName: names[i]!,
          }));
          await store.appendAuditRecords(records);
          const seqs = async (accountUin: string, q: Partial<AccountAuditSearch> = {}) => (await searchAll(store, { ...q, accountUin })).map((r) => r.seq).reverse();
          assert.deepEqual(await seqs("100000000001"), [1, 3, 5, 7]);
          assert.deepEqual(await seqs("100000000002"), [2, 4, 6, 8]);
          assert.deepEqual(await seqs("100000000003"), []);
          const newest = await store.searchAccountAudit({ accountUin: "100000000001", fromTime: 0, toTime: 2e12, filters: {}, limit: 2, scanLimit: 100 });
          assert.deepEqual(newest.records.map((r) => r.seq), [7, 5], "newest first, limited");
          const rest = await store.searchAccountAudit({ accountUin: "100000000001", fromTime: 0, toTime: 2e12, filters: {}, limit: 2, scanLimit: 100, after: newest.next! });
          assert.deepEqual(rest.records.map((r) => r.seq), [3, 1], "with a cursor");
          assert.deepEqual(await seqs("100000000002", { fromTime: 1_700_000_002_000, toTime: 1_700_000_005_000 }), [4, 6]);
          assert.deepEqual(await seqs("100000000002", { filters: { requestId: "req-filter-4" } }), []);
          assert.deepEqual(await seqs("100000000001", { filters: { requestId: "req-filter-4" } }), [5]);
          assert.deepEqual(await seqs("100000000001", { filters: { resourceType: "user" } }), [7]);
          assert.deepEqual(await seqs("100000000002", { filters: { resourceType: "user" } }), [8]);
          assert.deepEqual(await seqs("100000000001", { filters: { resourceName: "key-a" } }), [1, 3], "whole names only: not key-ab, xkey-a or key-a_");
          assert.deepEqual(await seqs("100000000002", { filters: { resourceName: "key-a" } }), [2]);
          assert.deepEqual(await seqs("100000000002", { filters: { resourceName: "key-b" } }), [2, 6]);
          assert.deepEqual(await seqs("100000000001", { filters: { resourceName: "key-c" } }), [3]);
          assert.deepEqual(await seqs("100000000001", { filters: { resourceName: "key-%" } }), [], "no wildcards");
          assert.deepEqual(await seqs("100000000002", { filters: { resourceName: "key-a_" } }), [8]);
        }));

      it("numbers each account's records on its own, 1, 2, 3, …, across appends and pruning", () =>
        withStore(async ({ store }) => {
          const accountOf = (i: number) => (i % 3 === 0 ? "100000000002" : "100000000001");
          const first = auditChain(1, GENESIS_HASH, 6, (i) => ({ accountUin: accountOf(i) }));
          await store.appendAuditRecords(first.slice(0, 4));
          await store.appendAuditRecords(first.slice(4));
          const numbers = async (accountUin: string) =>
            (await searchAll(store, { accountUin })).map((r) => [r.seq, r.accountSeq]).reverse();
          assert.deepEqual(await numbers("100000000001"), [[2, 1], [3, 2], [5, 3], [6, 4]]);
          assert.deepEqual(await numbers("100000000002"), [[1, 1], [4, 2]]);
          assert.deepEqual(await store.accountAuditPosition("100000000002", 2), { time: first[3]!.time, accountSeq: 2 });
          assert.equal(await store.accountAuditPosition("100000000002", 3), undefined);
          await store.pruneAuditRecords(6);
          const more = auditChain(7, first[5]!.hash, 2, () => ({ accountUin: "100000000002" }));
          await store.appendAuditRecords(more);
          assert.deepEqual(await numbers("100000000002"), [[7, 3], [8, 4]], "pruning does not restart the numbering");
        }));

      it("examines at most scanLimit records a call, and its pages add up to the whole search", () =>
        withStore(async ({ store }) => {
          // 50 records, every 7th a match; times out of seq order in places, as several nodes write them.
          const records = auditChain(1, GENESIS_HASH, 50, (i) => ({
            time: 1_700_000_000_000 + i * 1000 + (i % 5 === 0 ? 1500 : 0),
            action: i % 7 === 0 ? "Decrypt" : "Encrypt",
            resourceName: i % 7 === 0 ? "key-x" : "key-y",
          }));
          await store.appendAuditRecords(records);
          const expected = records.filter((r) => r.action === "Decrypt").sort((a, b) => b.time - a.time || b.seq - a.seq).map((r) => r.seq);
          for (const filters of [{ resourceName: "key-x" }, { action: "Decrypt" }] as AuditRecordFilters[]) {
            const calls: AccountAuditPage[] = [];
            const found = await searchAll(store, { accountUin: "100000000001", filters, limit: 2, scanLimit: 6 }, calls);
            assert.deepEqual(found.map((r) => r.seq), expected, JSON.stringify(filters));
            for (const page of calls) assert.ok(page.records.length <= 2);
          }
          const calls: AccountAuditPage[] = [];
          await searchAll(store, { accountUin: "100000000001", filters: { resourceName: "key-x" }, limit: 2, scanLimit: 6 }, calls);
          assert.ok(calls.length >= 50 / 6, `a residual filter walks at most 6 records a call: ${calls.length} calls`);
          assert.ok(calls.some((p) => p.records.length === 0 && p.next !== undefined), "a call may find nothing and still go on");
        }));

      it("refuses records that do not follow the head, or do not link, and writes none of them", () =>
        withStore(async ({ store }) => {
          const records = auditChain(1, GENESIS_HASH, 4);
          await store.appendAuditRecords(records.slice(0, 2));
          await assert.rejects(store.appendAuditRecords(records.slice(0, 2)), assertConflict("auditHead"));
          await assert.rejects(store.appendAuditRecords(records.slice(3)), assertConflict("auditHead"), "a gap after the head");
          const forked = auditChain(3, "ab".repeat(32), 2);
          await assert.rejects(store.appendAuditRecords(forked), assertConflict("auditHead"), "the right seq with another prevHash");
          await assert.rejects(store.appendAuditRecords([records[2]!, { ...records[3]!, prevHash: GENESIS_HASH }]), RangeError);
          await assert.rejects(store.appendAuditRecords([]), RangeError);
          assert.deepEqual(await store.auditHead(), { seq: 2, hash: records[1]!.hash });
          assert.equal((await store.listAuditRecords({ limit: 10, order: "asc" })).length, 2);
        }));

      it("appends inside a transaction together with other writes, and a rollback removes both", () =>
        withStore(async ({ store }) => {
          const records = auditChain(1, GENESIS_HASH, 2);
          const key = makeKey();
          await assert.rejects(
            store.transaction(async (tx) => {
              assert.equal(await tx.auditHead(), undefined);
              await tx.insertKey(key, versionOf(key));
              await tx.appendAuditRecords(records.slice(0, 1));
              assert.deepEqual(await tx.auditHead(), { seq: 1, hash: records[0]!.hash }, "a transaction reads its own append");
              throw new Error("the action failed after all");
            }),
            /failed after all/,
          );
          assert.equal(await store.auditHead(), undefined);
          assert.equal(await store.getKey(key.keyId), undefined);
          await store.transaction(async (tx) => {
            await tx.insertKey(key, versionOf(key));
            await tx.appendAuditRecords(records);
          });
          assert.deepEqual(await store.auditHead(), { seq: 2, hash: records[1]!.hash });
          assert.ok(await store.getKey(key.keyId));
        }));

      it("keeps the chain linear when concurrent transactions each read the head and append", () =>
        withStore(async ({ store }) => {
          await Promise.all(
            Array.from({ length: 12 }, (_, n) =>
              store.transaction(async (tx) => {
                const head = (await tx.auditHead()) ?? { seq: 0, hash: GENESIS_HASH };
                await tx.appendAuditRecords(auditChain(head.seq + 1, head.hash, 3, () => ({ requestId: `writer-${n}` })));
              }),
            ),
          );
          const all = await store.listAuditRecords({ limit: 100, order: "asc" });
          assert.deepEqual(all.map((r) => r.seq), Array.from({ length: 36 }, (_, i) => i + 1));
          all.forEach((r, i) => assert.equal(r.prevHash, i === 0 ? GENESIS_HASH : all[i - 1]!.hash));
          assert.deepEqual(await store.auditHead(), { seq: 36, hash: all[35]!.hash });
        }));

      it("stores checkpoints, lists them in order and refuses a second one at the same seq and prune point", () =>
        withStore(async ({ store }) => {
          const cp = (seq: number, prunedThrough: number): Checkpoint => ({
            seq,
            time: 1_700_000_000_000 + seq,
            headHash: seq.toString(16).padStart(64, "0"),
            prunedThrough,
            prunedHeadHash: GENESIS_HASH,
            signature: "5a".repeat(64),
          });
          await store.insertAuditCheckpoint(cp(10, 0));
          await store.insertAuditCheckpoint(cp(30, 0));
          await store.insertAuditCheckpoint(cp(20, 0));
          await store.insertAuditCheckpoint(cp(30, 5));
          await assert.rejects(store.insertAuditCheckpoint(cp(20, 0)), assertConflict("auditCheckpoint"));
          assert.deepEqual(await store.listAuditCheckpoints({ order: "asc" }), [cp(10, 0), cp(20, 0), cp(30, 0), cp(30, 5)]);
          assert.deepEqual(await store.listAuditCheckpoints({ order: "desc", limit: 1 }), [cp(30, 5)]);
        }));

      it("prunes a prefix of records and the checkpoints it covers, and keeps the head", () =>
        withStore(async ({ store }) => {
          const records = auditChain(1, GENESIS_HASH, 6);
          await store.appendAuditRecords(records);
          const cp = (seq: number): Checkpoint => ({ seq, time: 1, headHash: records[seq - 1]!.hash, prunedThrough: 0, prunedHeadHash: GENESIS_HASH, signature: "00".repeat(64) });
          await store.insertAuditCheckpoint(cp(2));
          await store.insertAuditCheckpoint(cp(5));
          assert.equal(await store.pruneAuditRecords(3), 3);
          assert.deepEqual((await store.listAuditRecords({ limit: 10, order: "asc" })).map((r) => r.seq), [4, 5, 6]);
          assert.deepEqual((await store.listAuditCheckpoints({ order: "asc" })).map((c) => c.seq), [5]);
          assert.deepEqual(await store.auditHead(), { seq: 6, hash: records[5]!.hash });
          assert.equal(await store.pruneAuditRecords(3), 0);
          assert.equal(await store.pruneAuditRecords(6), 3);
          assert.deepEqual(await store.auditHead(), { seq: 6, hash: records[5]!.hash }, "the head outlives its records");
          await store.appendAuditRecords(auditChain(7, records[5]!.hash, 1));
          assert.equal((await store.auditHead())?.seq, 7);
        }));
    });

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
        await store.insertAccessKey(accessKey("AKIDbackup", undefined, { lastUsedTime: 1_700_000_500 }));
        await store.insertPrincipal(principal({ principalId: ACCOUNT, kind: "root", name: "root" }));
        await store.insertPrincipal(BACKUP_ROLE);
        await store.insertPolicy(BACKUP_POLICY);
        await store.attachPolicy(attachment(BACKUP_ROLE.principalId, BACKUP_POLICY.policyId));
        await store.attachPolicy(attachment(ACCOUNT, 1));
        await store.insertRoleSession(roleSession("tmp-backup", BACKUP_ROLE.principalId));
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
          for (const table of ["meta", "keys", "key_versions", "key_tags", "import_tokens", "access_keys", "principals", "policies", "policy_attachments", "role_sessions"]) {
            assert.ok(names.includes(table), `${table} is exported`);
          }
          assert.ok(names.indexOf("principals") < names.indexOf("policy_attachments") && names.indexOf("principals") < names.indexOf("role_sessions"), "principals come before what references them");
          assert.equal(dumped.tables.get("principals")?.rows.length, 2);
          assert.equal(dumped.tables.get("policy_attachments")?.rows.length, 2);
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
            assert.deepEqual(await t.getAccessKey("AKIDbackup"), accessKey("AKIDbackup", undefined, { lastUsedTime: 1_700_000_500 }));
            assert.deepEqual(await t.getPrincipal(ACCOUNT), principal({ principalId: ACCOUNT, kind: "root", name: "root" }));
            assert.deepEqual(await t.getPrincipalByName(ACCOUNT, "role", BACKUP_ROLE.name), BACKUP_ROLE);
            assert.deepEqual(await t.getPolicy(BACKUP_POLICY.policyId), BACKUP_POLICY);
            assert.deepEqual(await t.listAttachedPolicies(BACKUP_ROLE.principalId), [attachment(BACKUP_ROLE.principalId, BACKUP_POLICY.policyId)]);
            assert.deepEqual(await t.listAttachedPolicies(ACCOUNT), [attachment(ACCOUNT, 1)]);
            assert.deepEqual(await t.getRoleSession("tmp-backup"), roleSession("tmp-backup", BACKUP_ROLE.principalId));
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

/** The account most records of these tests belong to (also makeKey's creatorUin). */
const ACCOUNT = "100000000001";

function accessKey(secretId: string, wrappedSecret = Buffer.from(`wrapped-secret:${secretId}`), overrides: Partial<AccessKeyRecord> = {}): AccessKeyRecord {
  return { secretId, wrappedSecret, uin: ACCOUNT, principalId: ACCOUNT, status: "Active", createTime: 1_700_000_000, lastUsedTime: 0, ...overrides };
}

function principal(overrides: Partial<PrincipalRecord> & Pick<PrincipalRecord, "principalId" | "name">): PrincipalRecord {
  return { accountUin: ACCOUNT, kind: "user", remark: "", trustPolicy: null, maxSessionSeconds: 0, createTime: 1_700_000_000, ...overrides };
}

function policy(overrides: Partial<PolicyRecord> & Pick<PolicyRecord, "policyId" | "name">): PolicyRecord {
  return {
    accountUin: ACCOUNT,
    description: "",
    document: '{"version":"2.0","statement":[{"effect":"allow","action":["kms:*"],"resource":["*"]}]}',
    createTime: 1_700_000_000,
    updateTime: 1_700_000_100,
    ...overrides,
  };
}

/** A role and a policy with every field set (trustPolicy not null), for backup and reopen. */
const BACKUP_ROLE = principal({
  principalId: "4611686018427387905",
  kind: "role",
  name: "backup-role",
  remark: "remark ' \" \\ ✓",
  trustPolicy: '{"version":"2.0","statement":[{"effect":"allow","principal":{"qcs":["qcs::cam::uin/100000000001:root"]},"action":["name/sts:AssumeRole"]}]}',
  maxSessionSeconds: 43_200,
});
const BACKUP_POLICY = policy({ policyId: 9_007_199_254_740_991, name: "backup-policy", description: "described" });

function attachment(principalId: string, policyId: number, createTime = 1_700_000_000): PolicyAttachmentRecord {
  return { principalId, policyId, accountUin: ACCOUNT, createTime };
}

function roleSession(tmpSecretId: string, roleId: string, overrides: Partial<RoleSessionRecord> = {}): RoleSessionRecord {
  return { tmpSecretId, roleId, accountUin: ACCOUNT, sessionName: "session", assumedBy: ACCOUNT, createTime: 1_700_000_000, expiresAt: 1_700_003_600, ...overrides };
}

