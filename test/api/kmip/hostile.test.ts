// The KMIP listener against malformed and hostile input, over a real mutual-TLS connection: bad
// tags, lengths past the message, deep nesting, oversized messages, wrong types, unsupported
// versions and operations, the asynchronous indicator, the Maximum Response Size, batches and the
// version echo. Each gets a KMIP error or a closed connection, the server keeps serving, and
// nothing changes in the store.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type TLSSocket } from "node:tls";
import { pino } from "pino";
import { decodeTtlv, encodeTtlv, itemLength, type Ttlv, type TtlvStructure } from "../../../src/api/kmip/ttlv.js";
import { OPERATION, RESULT_REASON, TAG } from "../../../src/api/kmip/tags.js";
import { initDataDir } from "../../../src/node/data-dir.js";
import { startNode, type RunningNode } from "../../../src/node/node.js";
import { rootCaller } from "../../../src/service/access-control.js";
import { requireOpenssl } from "../../helpers/openssl.js";
import { snapshotKeys } from "../helpers-inprocess.js";
import { makePki, type Pki } from "./fixture.js";

const int = (tag: number, value: number): Ttlv => ({ tag, type: "Integer", value });
const enumeration = (tag: number, value: number): Ttlv => ({ tag, type: "Enumeration", value });
const struct = (tag: number, value: Ttlv[]): Ttlv => ({ tag, type: "Structure", value });
const text = (tag: number, value: string): Ttlv => ({ tag, type: "TextString", value });

function version(major: number, minor: number): Ttlv {
  return struct(TAG.ProtocolVersion, [int(TAG.ProtocolVersionMajor, major), int(TAG.ProtocolVersionMinor, minor)]);
}

function request(items: Ttlv[][], header: { major?: number; minor?: number; extra?: Ttlv[] } = {}): Buffer {
  const head = struct(TAG.RequestHeader, [version(header.major ?? 1, header.minor ?? 4), ...(header.extra ?? []), int(TAG.BatchCount, items.length)]);
  return encodeTtlv(struct(TAG.RequestMessage, [head, ...items.map((i) => struct(TAG.BatchItem, i))]));
}

const discover = (): Ttlv[] => [enumeration(TAG.Operation, OPERATION.DiscoverVersions), struct(TAG.RequestPayload, [])];

interface Answer {
  version: { major: number; minor: number };
  items: { operation?: number; status: number; reason?: number; message?: string; batchId?: string; payload?: TtlvStructure }[];
}

function child(s: TtlvStructure, tag: number): Ttlv | undefined {
  return s.value.find((c) => c.tag === tag);
}

function readAnswer(bytes: Buffer): Answer {
  const message = decodeTtlv(bytes) as TtlvStructure;
  const header = child(message, TAG.ResponseHeader) as TtlvStructure;
  const v = child(header, TAG.ProtocolVersion) as TtlvStructure;
  const num = (s: TtlvStructure, tag: number) => (child(s, tag) as { value: number } | undefined)?.value;
  return {
    version: { major: num(v, TAG.ProtocolVersionMajor) ?? -1, minor: num(v, TAG.ProtocolVersionMinor) ?? -1 },
    items: message.value
      .filter((c) => c.tag === TAG.BatchItem)
      .map((i) => {
        const item = i as TtlvStructure;
        const batchId = child(item, TAG.UniqueBatchItemId);
        const message = child(item, TAG.ResultMessage);
        return {
          ...(num(item, TAG.Operation) === undefined ? {} : { operation: num(item, TAG.Operation) as number }),
          status: num(item, TAG.ResultStatus) ?? -1,
          ...(num(item, TAG.ResultReason) === undefined ? {} : { reason: num(item, TAG.ResultReason) as number }),
          ...(message?.type === "TextString" ? { message: message.value } : {}),
          ...(batchId?.type === "ByteString" ? { batchId: batchId.value.toString("hex") } : {}),
          ...(child(item, TAG.ResponsePayload) ? { payload: child(item, TAG.ResponsePayload) as TtlvStructure } : {}),
        };
      }),
  };
}

/** One TLS connection: send bytes, read one whole response message, or learn that the server closed. */
class Connection {
  #buffer = Buffer.alloc(0);
  #closed = false;
  #waiting: (() => void) | undefined;

  private constructor(readonly socket: TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiting?.();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#waiting?.();
    });
    socket.on("error", () => {});
  }

  static open(port: number, pki: { caPem: Buffer }, client: { cert: Buffer; key: Buffer }): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port, ca: pki.caPem, cert: client.cert, key: client.key, servername: "localhost" }, () => resolve(new Connection(socket)));
      socket.once("error", reject);
    });
  }

  /** The next response message, or "closed" when the server closed the connection first. */
  async exchange(bytes: Buffer): Promise<Answer | "closed"> {
    this.socket.write(bytes);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.#buffer.length >= 8 && this.#buffer.length >= itemLength(this.#buffer.subarray(0, 8))) {
        const length = itemLength(this.#buffer.subarray(0, 8));
        const one = this.#buffer.subarray(0, length);
        this.#buffer = this.#buffer.subarray(length);
        return readAnswer(one);
      }
      if (this.#closed) return "closed";
      if (Date.now() > deadline) throw new Error("no response within 10 s");
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
        setTimeout(resolve, 1000).unref();
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe("KMIP listener against malformed and hostile messages", () => {
  let work: string;
  let pki: Pki & { caPem?: Buffer };
  let node: RunningNode;
  let client: { cert: Buffer; key: Buffer };
  let conn: Connection;
  let uin: string;
  let before0: string;

  before(async () => {
    requireOpenssl();
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-hostile-"));
    pki = makePki(work);
    pki.caPem = await readFile(pki.ca);
    const files = await pki.client("app");
    client = { cert: await readFile(files.cert), key: await readFile(files.key) };
    const dir = path.join(work, "data");
    await initDataDir(dir, "local");
    node = await startNode(
      {
        dataDir: dir,
        defaultKeySpec: "SM4",
        cmkLimit: 100,
        kmip: { port: 0, cert: await readFile(pki.server.cert), key: await readFile(pki.server.key), clientCa: pki.caPem, maxMessageBytes: 64 * 1024 },
      },
      { logger: pino({ level: "silent" }) },
    );
    uin = node.dataDir.accountUin;
    const root = rootCaller(uin);
    await node.service.access.addUser(root, { name: "app", remark: "", useApi: false });
    const policy = await node.service.access.createPolicy(root, {
      name: "kmip-app",
      document: JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: ["name/kms:*"], resource: "*" }] }),
      description: "",
    });
    await node.service.access.attachPolicy(root, "user", { name: "app" }, { policyId: policy });
    await node.service.access.addKmipClient(root, { userName: "app", certificatePem: client.cert.toString() });
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
