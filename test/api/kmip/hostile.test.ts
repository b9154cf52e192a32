// The KMIP listener against malformed and hostile input, over a real mutual-TLS connection: bad
// tags, lengths past the message, deep nesting, oversized messages, wrong types, unsupported
// versions and operations, the asynchronous indicator, the Maximum Response Size, batches and the
// version echo. Each gets a KMIP error or a closed connection, the server keeps serving, and
// nothing changes in the store.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeTtlv, encodeTtlv, type Ttlv, type TtlvStructure } from "../../../src/api/kmip/ttlv.js";
import { OPERATION, RESULT_REASON, TAG } from "../../../src/api/kmip/tags.js";
import type { RunningNode } from "../../../src/node/node.js";
import { rootCaller } from "../../../src/service/access-control.js";
import { snapshotKeys } from "../helpers-inprocess.js";
import type { Pki } from "./fixture.js";
import { Connection, startKmipNode, discover, enumeration, int, request, struct, text, type Answer } from "./wire.js";

describe("KMIP listener against malformed and hostile messages", () => {
  let work: string;
  let pki: Pki & { caPem?: Buffer };
  let node: RunningNode;
  let client: { cert: Buffer; key: Buffer };
  let conn: Connection;
  let uin: string;
  let before0: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-hostile-"));
    let caPem: Buffer;
    ({ node, pki, caPem, client, uin } = await startKmipNode(work));
    pki.caPem = caPem;
    const root = rootCaller(uin);
    before0 = await snapshotKeys(node.service, root);
    conn = await Connection.open(node.kmipPort as number, pki as { caPem: Buffer }, client);
  });

  after(async () => {
    conn?.close();
    await node?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const expectReason = (answer: Answer | "closed", reason: keyof typeof RESULT_REASON) => {
    assert.notEqual(answer, "closed");
    const a = answer as Answer;
    assert.equal(a.items.length >= 1, true);
    assert.equal(a.items[0]?.status, 1, JSON.stringify(a.items));
    assert.equal(a.items[0]?.reason, RESULT_REASON[reason], a.items[0]?.message);
    return a;
  };

  it("answers Discover Versions at the request's version, with the versions it speaks", async () => {
    for (const [major, minor] of [
      [1, 1],
      [1, 4],
      [2, 0],
    ] as const) {
      const a = (await conn.exchange(request([discover()], { major, minor }))) as Answer;
      assert.deepEqual(a.version, { major, minor });
      assert.equal(a.items[0]?.status, 0);
      const versions = (a.items[0]?.payload?.value ?? []).map((v) => (v as TtlvStructure).value.map((x) => (x as { value: number }).value).join("."));
      assert.deepEqual(versions, ["2.0", "1.4", "1.3", "1.2", "1.1", "1.0"]);
    }
  });

  it("answers each item of a batch in order, echoing the Unique Batch Item IDs", async () => {
    const query: Ttlv[] = [enumeration(TAG.Operation, OPERATION.Query), { tag: TAG.UniqueBatchItemId, type: "ByteString", value: Buffer.from("02", "hex") }, struct(TAG.RequestPayload, [enumeration(TAG.QueryFunction, 1)])];
    const first: Ttlv[] = [enumeration(TAG.Operation, OPERATION.DiscoverVersions), { tag: TAG.UniqueBatchItemId, type: "ByteString", value: Buffer.from("01", "hex") }, struct(TAG.RequestPayload, [])];
    const a = (await conn.exchange(request([first, query]))) as Answer;
    assert.deepEqual(a.items.map((i) => [i.batchId, i.status, i.operation]), [["01", 0, OPERATION.DiscoverVersions], ["02", 0, OPERATION.Query]]);
    const operations = (a.items[1]?.payload?.value ?? []).map((o) => (o as { value: number }).value);
    assert.ok(operations.includes(OPERATION.Get) && operations.includes(OPERATION.Encrypt));
  });

  it("refuses the asynchronous indicator, protocol 3.0, an unknown operation and Undo", async () => {
    expectReason(await conn.exchange(request([discover()], { extra: [{ tag: TAG.AsynchronousIndicator, type: "Boolean", value: true }] })), "FeatureNotSupported");
    expectReason(await conn.exchange(request([discover()], { major: 3, minor: 0 })), "InvalidMessage");
    expectReason(await conn.exchange(request([[enumeration(TAG.Operation, 0x30), struct(TAG.RequestPayload, [])]])), "OperationNotSupported");
    expectReason(await conn.exchange(request([discover()], { extra: [enumeration(TAG.BatchErrorContinuationOption, 3)] })), "FeatureNotSupported");
  });

  it("answers Response Too Large beyond the Maximum Response Size", async () => {
    const a = expectReason(await conn.exchange(request([discover()], { extra: [int(TAG.MaximumResponseSize, 64)] })), "ResponseTooLarge");
    assert.equal(a.items[0]?.payload, undefined);
  });

  it("answers Invalid Message for bad tags, lengths past the end, deep nesting and wrong types, and keeps the connection", async () => {
    const good = request([discover()]);
    const badTag = Buffer.from(good);
    badTag.writeUIntBE(0x430000, 8, 3); // the header's tag
    expectReason(await conn.exchange(badTag), "InvalidMessage");
    const pastEnd = Buffer.from(good);
    pastEnd.writeUInt32BE(pastEnd.readUInt32BE(12) + 64, 12); // the header claims more than the message holds
    expectReason(await conn.exchange(pastEnd), "InvalidMessage");
    let deep: Ttlv = int(TAG.ProtocolVersionMajor, 1);
    for (let i = 0; i < 40; i++) deep = struct(TAG.RequestPayload, [deep]);
    expectReason(await conn.exchange(request([[enumeration(TAG.Operation, OPERATION.DiscoverVersions), deep]])), "InvalidMessage");
    const wrongType = encodeTtlv(struct(TAG.RequestMessage, [struct(TAG.RequestHeader, [struct(TAG.ProtocolVersion, [text(TAG.ProtocolVersionMajor, "1"), int(TAG.ProtocolVersionMinor, 4)]), int(TAG.BatchCount, 1)]), struct(TAG.BatchItem, discover())]));
    expectReason(await conn.exchange(wrongType), "InvalidField");
    const countWrong = request([discover()]);
    expectReason(await conn.exchange(encodeTtlv(replaceBatchCount(decodeTtlv(countWrong) as TtlvStructure, 5))), "InvalidMessage");
    // A Create whose length is text: refused, nothing made.
    const create: Ttlv[] = [
      enumeration(TAG.Operation, OPERATION.Create),
      struct(TAG.RequestPayload, [enumeration(TAG.ObjectType, 2), struct(TAG.Attributes, [enumeration(TAG.CryptographicAlgorithm, 3), text(TAG.CryptographicLength, "256")])]),
    ];
    expectReason(await conn.exchange(request([create], { major: 2, minor: 0 })), "InvalidField");
    const still = (await conn.exchange(good)) as Answer;
    assert.equal(still.items[0]?.status, 0, "the connection still serves");
  });

  it("closes the connection on an oversized message or one that is no request", async () => {
    const big = await Connection.open(node.kmipPort as number, pki as { caPem: Buffer }, client);
    const header = Buffer.from([0x42, 0x00, 0x78, 0x01, 0x00, 0x20, 0x00, 0x00]); // claims 2 MiB
    const answer = await big.exchange(header);
    if (answer !== "closed") expectReason(answer, "InvalidMessage");
    assert.equal(await big.exchange(request([discover()])), "closed");
    const junk = await Connection.open(node.kmipPort as number, pki as { caPem: Buffer }, client);
    const refused = await junk.exchange(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    if (refused !== "closed") expectReason(refused, "InvalidMessage");
    assert.equal(await junk.exchange(request([discover()])), "closed");
  });

  it("changed nothing in the store, and still serves new connections", async () => {
    assert.equal(await snapshotKeys(node.service, rootCaller(uin)), before0);
    const fresh = await Connection.open(node.kmipPort as number, pki as { caPem: Buffer }, client);
    const a = (await fresh.exchange(request([discover()]))) as Answer;
    assert.equal(a.items[0]?.status, 0);
    fresh.close();
  });
});

function replaceBatchCount(message: TtlvStructure, count: number): Ttlv {
  return {
    ...message,
    value: message.value.map((c) =>
      c.tag === TAG.RequestHeader && c.type === "Structure" ? { ...c, value: c.value.map((h) => (h.tag === TAG.BatchCount ? int(TAG.BatchCount, count) : h)) } : c,
    ),
  };
}
