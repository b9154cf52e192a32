// AuditQueries over records an AuditWriter wrote to a temporary SQLite store: only the caller's
// account, only with the cloudaudit permission, newest first in pages with an opaque cursor, the
// time range checked, and each filter.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AuditEvent } from "../../src/audit/writer.js";
import { AuditWriter } from "../../src/audit/writer.js";
import type { Decision } from "../../src/policy/evaluate.js";
import { rootCaller, type Caller } from "../../src/service/access-control.js";
import { AUDIT_QUERY_LIMITS, AuditQueries, decodeAuditCursor, encodeAuditCursor, type AuditEventQuery } from "../../src/service/audit-query.js";
import { KmsError } from "../../src/service/errors.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { testSigner } from "../helpers/audit-fixtures.js";

const A = "100000000001";
const B = "100000000002";
/** 2023-11-14T22:13:20Z, in milliseconds. */
const T0 = 1_700_000_000_000;
const S0 = T0 / 1000;

/** A caller whose policies allow exactly `allowed`; records what was required of it. */
function callerWith(uin: string, allowed: readonly string[], asked: string[] = []): Caller {
  return {
    uin,
    principal: { id: "200000000001", kind: "user", name: "auditor" },
    secretId: "AKIDauditor",
    permissions: {
      require(action: string, resources: readonly string[]) {
        asked.push(`${action} ${resources.join(",")}`);
        if (!allowed.includes(action)) throw new KmsError("UnauthorizedOperation", `not allowed: ${action}`);
      },
      decide: (action: string): Decision => (allowed.includes(action) ? { allowed: true, reason: "allow" } : { allowed: false, reason: "implicit-deny" }) as Decision,
    },
  };
}

async function rejectsCode(promise: Promise<unknown>, code: string, mention?: RegExp, _what?: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof KmsError, `expected a KmsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.match(e.message, mention);
    return true;
  });
}

describe("AuditQueries", () => {
  let dir: string;
  let store: SqliteStore;
  let queries: AuditQueries;
  const now = T0 + 100 * 60_000;
  const root = rootCaller(A);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tresor-audit-query-"));
    store = SqliteStore.open(join(dir, "tresor.db"));
    const writer = new AuditWriter({ store, signer: testSigner(), hmacKey: Buffer.alloc(32, 7), nodeId: "node-1", now: () => now, checkpointEvery: 10, checkpointIntervalMs: 0 });
    // Account A: 30 records, one a minute from T0; account B: 10 interleaved.
    const events: AuditEvent[] = [];
    for (let i = 0; i < 30; i++) {
      events.push({
        time: T0 + i * 60_000,
        action: i % 3 === 0 ? "Encrypt" : i % 3 === 1 ? "Decrypt" : "CreateKey",
        result: i === 7 ? "UnauthorizedOperation" : "Success",
        requestId: `a-${i}`,
        accountUin: A,
        principalUin: i < 20 ? "200000000001" : A,
        principalName: i < 20 ? "alice" : "root",
        accessKeyId: i < 20 ? "AKIDalice" : "AKIDroot",
        sourceIp: "192.0.2.1",
        service: "kms",
        resourceType: "key",
        resourceName: i === 29 ? "key-1,key-2" : i % 2 === 0 ? "key-1" : "key-2",
        readOnly: i % 3 !== 2,
        params: { KeyId: "key-1", Plaintext: "c2VjcmV0" },
        ...(i === 7 ? { flags: ["policy-denied"] } : {}),
      });
      if (i % 3 === 0) {
        events.push({ time: T0 + i * 60_000 + 1, action: "Encrypt", result: "Success", requestId: `b-${i}`, accountUin: B, principalName: "alice", accessKeyId: "AKIDbob", resourceType: "key", resourceName: "key-1" });
      }
    }
    await Promise.all(events.map((e) => writer.record(e)));
    await writer.close();
    queries = new AuditQueries(store, { now: () => now });
  });

  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const all: AuditEventQuery = { startTime: S0 - 60, endTime: S0 + 3600, maxResults: 50 };

  it("numbers each account's events 1, 2, 3, … whatever other accounts wrote between them (issue 13)", async () => {
    const numbers = async (caller: Caller) => (await queries.lookUpEvents(caller, all)).events.map((r) => r.accountSeq).reverse();
    assert.deepEqual(await numbers(root), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.deepEqual(await numbers(rootCaller(B)), Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it("gives only the caller's account's records, newest first", async () => {
    const page = await queries.lookUpEvents(root, all);
    assert.equal(page.events.length, 30);
    assert.ok(page.events.every((r) => r.accountUin === A));
    assert.deepEqual(
      page.events.map((r) => r.requestId),
      Array.from({ length: 30 }, (_, i) => `a-${29 - i}`),
    );
    assert.equal(page.listOver, true);
    assert.equal(page.nextToken, undefined);
    const b = await queries.lookUpEvents(rootCaller(B), all);
    assert.equal(b.events.length, 10);
    assert.ok(b.events.every((r) => r.accountUin === B && r.requestId.startsWith("b-")));
    assert.deepEqual((await queries.lookUpEvents(rootCaller("100000000003"), all)).events, []);
  });

  it("never holds parameters or plaintext: only their keyed digest", async () => {
    const [r] = (await queries.lookUpEvents(root, { ...all, filters: { requestId: "a-3" } })).events;
    assert.ok(r);
    assert.match(r.paramsDigest, /^[0-9a-f]{64}$/);
    assert.doesNotMatch(JSON.stringify(r), /c2VjcmV0|secret/);
  });

  it("requires the action's permission on the account, and reads nothing without it", async () => {
    const asked: string[] = [];
    await rejectsCode(queries.lookUpEvents(callerWith(A, [], asked), all), "UnauthorizedOperation", /cloudaudit:LookUpEvents/);
    assert.deepEqual(asked, ["cloudaudit:LookUpEvents *"]);
    await rejectsCode(queries.lookUpEvents(callerWith(A, ["cloudaudit:LookUpEvents"]), all, "cloudaudit:DescribeEvents"), "UnauthorizedOperation", /DescribeEvents/);
    const page = await queries.lookUpEvents(callerWith(A, ["cloudaudit:DescribeEvents"]), all, "cloudaudit:DescribeEvents");
    assert.equal(page.events.length, 30);
    // The permission comes first: a caller without it learns nothing, not even about its input.
    await rejectsCode(queries.lookUpEvents(callerWith(A, []), { ...all, nextToken: "!!" }), "UnauthorizedOperation");
  });

  it("pages with an opaque cursor until the list is over, and the pages add up to the whole", async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await queries.lookUpEvents(root, { ...all, maxResults: 7, ...(token === undefined ? {} : { nextToken: token }) });
      pages++;
      seen.push(...page.events.map((r) => r.requestId));
      if (page.listOver) {
        assert.equal(page.nextToken, undefined);
        break;
      }
      assert.equal(page.events.length, 7);
      assert.match(page.nextToken ?? "", /^[A-Za-z0-9_-]+$/);
      assert.equal(page.nextSeq, page.events.at(-1)!.accountSeq);
      token = page.nextToken;
    }
    assert.equal(pages, 5);
    assert.deepEqual(
      seen,
      Array.from({ length: 30 }, (_, i) => `a-${29 - i}`),
    );
    // A page that ends exactly at the last record says so.
    const exact = await queries.lookUpEvents(root, { ...all, maxResults: 30 });
    assert.equal(exact.listOver, true);
    // The numeric cursor (DescribeEvents) is the same place.
    const first = await queries.lookUpEvents(root, { ...all, maxResults: 5 });
    const byToken = await queries.lookUpEvents(root, { ...all, maxResults: 5, nextToken: first.nextToken! });
    const bySeq = await queries.lookUpEvents(root, { ...all, maxResults: 5, afterSeq: first.nextSeq! });
    assert.deepEqual(byToken, bySeq);
  });

  it("refuses a malformed NextToken, naming it", async () => {
    assert.equal(decodeAuditCursor(encodeAuditCursor(12345)), 12345);
    for (const bad of ["!!", "not a token", Buffer.from("abc").toString("base64url"), Buffer.from("0").toString("base64url"), Buffer.from("-1").toString("base64url"), Buffer.from("012").toString("base64url"), "x".repeat(100)]) {
      await rejectsCode(queries.lookUpEvents(root, { ...all, nextToken: bad }), "InvalidParameterValue", /"NextToken"/);
    }
    await rejectsCode(queries.lookUpEvents(root, { ...all, afterSeq: 0 }), "InvalidParameterValue", /"NextToken"/);
  });

  it("keeps to the time range, both ends inclusive to the second", async () => {
    const page = await queries.lookUpEvents(root, { startTime: S0 + 5 * 60, endTime: S0 + 9 * 60, maxResults: 50 });
    assert.deepEqual(
      page.events.map((r) => r.requestId),
      ["a-9", "a-8", "a-7", "a-6", "a-5"],
    );
    const one = await queries.lookUpEvents(rootCaller(B), { startTime: S0, endTime: S0, maxResults: 50 });
    assert.deepEqual(
      one.events.map((r) => r.requestId),
      ["b-0"],
      "a record 1 ms into the second is inside EndTime",
    );
  });

  it("checks the time range and MaxResults", async () => {
    await rejectsCode(queries.lookUpEvents(root, { startTime: S0 + 10, endTime: S0 }), "InvalidParameterValue", /"EndTime"/);
    const span = AUDIT_QUERY_LIMITS.maxSpanSeconds;
    assert.equal((await queries.lookUpEvents(root, { startTime: S0, endTime: S0 + span })).events.length, 10, "exactly 30 days is allowed");
    await rejectsCode(queries.lookUpEvents(root, { startTime: S0, endTime: S0 + span + 1 }), "InvalidParameterValue", /30 days/);
    await rejectsCode(queries.lookUpEvents(root, { startTime: S0 + 86_400, endTime: S0 + 86_401 }), "InvalidParameterValue", /"StartTime".*future/);
    await rejectsCode(queries.lookUpEvents(root, { startTime: T0, endTime: T0 + 1 }), "InvalidParameterValue", /"StartTime".*unix seconds/, "milliseconds");
    await rejectsCode(queries.lookUpEvents(root, { startTime: -1, endTime: S0 }), "InvalidParameterValue", /"StartTime"/);
    await rejectsCode(queries.lookUpEvents(root, { startTime: 1.5, endTime: S0 }), "InvalidParameterValue", /"StartTime"/);
    await rejectsCode(queries.lookUpEvents(root, { ...all, maxResults: 0 }), "InvalidParameterValue", /"MaxResults"/);
    await rejectsCode(queries.lookUpEvents(root, { ...all, maxResults: 51 }), "InvalidParameterValue", /"MaxResults"/);
    const page = await queries.lookUpEvents(root, { startTime: all.startTime, endTime: all.endTime });
    assert.equal(page.events.length, AUDIT_QUERY_LIMITS.defaultMaxResults);
    assert.equal(page.listOver, false);
  });

  it("filters by each attribute, always inside the caller's account", async () => {
    const ids = async (filters: AuditEventQuery["filters"], caller: Caller = root) =>
      (await queries.lookUpEvents(caller, { ...all, filters: filters ?? {} })).events.map((r) => r.requestId).reverse();
    assert.deepEqual(await ids({ requestId: "a-4" }), ["a-4"]);
    assert.deepEqual(await ids({ requestId: "b-3" }), [], "another account's request id");
    assert.deepEqual(await ids({ eventName: "CreateKey", username: "alice" }), ["a-2", "a-5", "a-8", "a-11", "a-14", "a-17"]);
    assert.deepEqual(await ids({ readOnly: false, accessKeyId: "AKIDroot" }), ["a-20", "a-23", "a-26", "a-29"]);
    assert.deepEqual(await ids({ username: "alice" }, rootCaller(B)), ["b-0", "b-3", "b-6", "b-9", "b-12", "b-15", "b-18", "b-21", "b-24", "b-27"]);
    assert.deepEqual(await ids({ resourceName: "key-2", username: "root" }), ["a-21", "a-23", "a-25", "a-27", "a-29"], "a batch record names each of its keys");
    assert.deepEqual(await ids({ resourceType: "key", eventName: "Encrypt", accessKeyId: "AKIDroot" }), ["a-21", "a-24", "a-27"]);
    assert.deepEqual(await ids({ resourceType: "user" }), []);
    assert.deepEqual(await ids({ flag: "policy-denied" }), ["a-7"]);
    const [seven] = (await queries.lookUpEvents(root, { ...all, filters: { requestId: "a-7" } })).events;
    assert.equal(seven?.result, "UnauthorizedOperation");
    assert.deepEqual(await ids({ eventId: seven!.accountSeq }), ["a-7"]);
    assert.deepEqual(await ids({ eventId: seven!.accountSeq, eventName: "Encrypt" }), [], "EventId with a filter it does not match");
    const [b3] = (await queries.lookUpEvents(rootCaller(B), { ...all, filters: { requestId: "b-3" } })).events;
    assert.equal(b3!.accountSeq, 2);
    assert.deepEqual(await ids({ eventId: b3!.accountSeq }), ["a-1"], "an EventId counts within the caller's account only");
    assert.deepEqual(await ids({ eventId: 999_999 }), []);
  });
});
