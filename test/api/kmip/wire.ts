// Raw KMIP over mutual TLS for the tests: build request messages, send them, read whole responses.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { pino } from "pino";
import { initDataDir } from "../../../src/node/data-dir.js";
import { startNode, type RunningNode } from "../../../src/node/node.js";
import { rootCaller } from "../../../src/service/access-control.js";
import { requireOpenssl } from "../../helpers/openssl.js";
import { makePki, type Pki } from "./fixture.js";
import { OPERATION, TAG } from "../../../src/api/kmip/tags.js";
import { decodeTtlv, encodeTtlv, itemLength, type Ttlv, type TtlvStructure } from "../../../src/api/kmip/ttlv.js";

export const int = (tag: number, value: number): Ttlv => ({ tag, type: "Integer", value });
export const enumeration = (tag: number, value: number): Ttlv => ({ tag, type: "Enumeration", value });
export const struct = (tag: number, value: Ttlv[]): Ttlv => ({ tag, type: "Structure", value });
export const text = (tag: number, value: string): Ttlv => ({ tag, type: "TextString", value });

export function version(major: number, minor: number): Ttlv {
  return struct(TAG.ProtocolVersion, [int(TAG.ProtocolVersionMajor, major), int(TAG.ProtocolVersionMinor, minor)]);
}

export function request(items: Ttlv[][], header: { major?: number; minor?: number; extra?: Ttlv[] } = {}): Buffer {
  const head = struct(TAG.RequestHeader, [version(header.major ?? 1, header.minor ?? 4), ...(header.extra ?? []), int(TAG.BatchCount, items.length)]);
  return encodeTtlv(struct(TAG.RequestMessage, [head, ...items.map((i) => struct(TAG.BatchItem, i))]));
}

export const discover = (): Ttlv[] => [enumeration(TAG.Operation, OPERATION.DiscoverVersions), struct(TAG.RequestPayload, [])];

export interface Answer {
  version: { major: number; minor: number };
  items: { operation?: number; status: number; reason?: number; message?: string; batchId?: string; payload?: TtlvStructure }[];
}

export function child(s: TtlvStructure, tag: number): Ttlv | undefined {
  return s.value.find((c) => c.tag === tag);
}

export function readAnswer(bytes: Buffer): Answer {
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
export class Connection {
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


/** A node in this process with a KMIP listener, and a client certificate mapped to a user allowed every kms action. */
export async function startKmipNode(work: string): Promise<{ node: RunningNode; pki: Pki; caPem: Buffer; client: { cert: Buffer; key: Buffer }; uin: string }> {
  requireOpenssl();
  const pki = makePki(work);
  const caPem = await readFile(pki.ca);
  const files = await pki.client("app");
  const client = { cert: await readFile(files.cert), key: await readFile(files.key) };
  const dir = path.join(work, "data");
  await initDataDir(dir, "local");
  const node = await startNode(
    {
      dataDir: dir,
      defaultKeySpec: "SM4",
      cmkLimit: 100,
      kmip: { port: 0, cert: await readFile(pki.server.cert), key: await readFile(pki.server.key), clientCa: caPem, maxMessageBytes: 64 * 1024 },
    },
    { logger: pino({ level: "silent" }) },
  );
  const uin = node.dataDir.accountUin;
  const root = rootCaller(uin);
  await node.service.access.addUser(root, { name: "app", remark: "", useApi: false });
  const policyId = await node.service.access.createPolicy(root, {
    name: "kmip-app",
    document: JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: ["name/kms:*"], resource: "*" }] }),
    description: "",
  });
  await node.service.access.attachPolicy(root, "user", { name: "app" }, { policyId });
  await node.service.access.addKmipClient(root, { userName: "app", certificatePem: client.cert.toString() });
  return { node, pki, caPem, client, uin };
}
