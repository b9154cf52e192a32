// `npm run bench:kmip`: KMIP Get and KMIP Encrypt per second next to the Tencent API's Encrypt, in
// one run, against one node (in this process, SQLite store, audit on) with the same concurrency:
// the figures are comparable to each other, not to other machines. KMIP requests are TTLV over
// mutual TLS on persistent connections, one request in flight per connection; Tencent's are
// signed HTTP requests on keep-alive connections.
//
// Options (argv or env): --duration=S (BENCH_DURATION, default 3), --concurrency=N
// (BENCH_CONCURRENCY, 16). Needs the openssl command (to make the throwaway PKI).

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { pino } from "pino";
import { OPERATION, TAG } from "../src/api/kmip/tags.js";
import { decodeTtlv, encodeTtlv, itemLength, type Ttlv, type TtlvStructure } from "../src/api/kmip/ttlv.js";
import { initDataDir } from "../src/node/data-dir.js";
import { startNode } from "../src/node/node.js";
import { rootCaller } from "../src/service/access-control.js";
import { loopbackUrl, post, responseFailure, signedHeaders } from "./signed-request.js";

function option(name: string, env: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? process.env[env];
  const n = arg === undefined ? fallback : Number(arg);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const DURATION_S = option("duration", "BENCH_DURATION", 3);
const CONCURRENCY = option("concurrency", "BENCH_CONCURRENCY", 16);

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

function makePki(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(dir, "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=bench CA");
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    openssl(dir, "req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    execFileSync("sh", ["-c", `printf '%s\\n' "$1" > "$2"`, "sh", ext, join(dir, `${name}.ext`)]);
    openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  }
}

const int = (tag: number, value: number): Ttlv => ({ tag, type: "Integer", value });
const struct = (tag: number, value: Ttlv[]): Ttlv => ({ tag, type: "Structure", value });

function request(operation: number, payload: Ttlv[]): Buffer {
  const header = struct(TAG.RequestHeader, [struct(TAG.ProtocolVersion, [int(TAG.ProtocolVersionMajor, 1), int(TAG.ProtocolVersionMinor, 4)]), int(TAG.BatchCount, 1)]);
  const item = struct(TAG.BatchItem, [{ tag: TAG.Operation, type: "Enumeration", value: operation }, struct(TAG.RequestPayload, payload)]);
  return encodeTtlv(struct(TAG.RequestMessage, [header, item]));
}

/** One request at a time over one TLS connection; resolves with the response's first item's status. */
class KmipConnection {
  #buffer = Buffer.alloc(0);
  #pending: ((status: number) => void) | undefined;
  constructor(private readonly socket: TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      if (this.#buffer.length < 8 || this.#buffer.length < itemLength(this.#buffer)) return;
      const message = decodeTtlv(this.#buffer.subarray(0, itemLength(this.#buffer))) as TtlvStructure;
      this.#buffer = this.#buffer.subarray(itemLength(this.#buffer));
      const item = message.value.find((c) => c.tag === TAG.BatchItem) as TtlvStructure;
      const status = item.value.find((c) => c.tag === TAG.ResultStatus) as { value: number };
      this.#pending?.(status.value);
    });
  }
  send(bytes: Buffer): Promise<number> {
    return new Promise((resolve) => {
      this.#pending = resolve;
      this.socket.write(bytes);
    });
  }
  close(): void {
    this.socket.destroy();
  }
}

/** Runs `call` from CONCURRENCY loops for DURATION_S; returns successful calls per second. */
async function measure(name: string, call: (worker: number, n: number) => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + DURATION_S * 1000;
  let ok = 0;
  let failed = 0;
  let n = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (Date.now() < deadline) (await call(worker, n++)) ? ok++ : failed++;
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (failed > 0) throw new Error(`${name}: ${failed} calls failed`);
  return ok / seconds;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "tresor-bench-kmip-"));
  try {
    makePki(work);
    const file = (name: string) => readFileSync(join(work, name));
    const dataDir = join(work, "data");
    const creds = await initDataDir(dataDir, "local");
    const node = await startNode(
      { dataDir, defaultKeySpec: "AES_256", cmkLimit: 1000, kmip: { port: 0, cert: file("server.pem"), key: file("server.key"), clientCa: file("ca.pem") } },
      { logger: pino({ level: "silent" }) },
    );
    try {
      const root = rootCaller(node.dataDir.accountUin);
      await node.service.access.addUser(root, { name: "bench", remark: "", useApi: false });
      const policyId = await node.service.access.createPolicy(root, { name: "bench", description: "", document: JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: ["name/kms:*"], resource: "*" }] }) });
      await node.service.access.attachPolicy(root, "user", { name: "bench" }, { policyId });
      await node.service.access.addKmipClient(root, { userName: "bench", certificatePem: file("client.pem").toString() });
      const kmipKey = await node.service.kmip.createSymmetric(root, { names: ["bench-kmip"], usageMask: 12, keySpec: "AES_256" });
      await node.service.kmip.activate(root, kmipKey.keyId);
      const cmk = await node.service.createKey(root, { alias: "bench-cmk", description: "", keyUsage: "ENCRYPT_DECRYPT", keySpec: "AES_256", tags: [] });

      const connections = await Promise.all(
        Array.from(
          { length: CONCURRENCY },
          () =>
            new Promise<KmipConnection>((resolve, reject) => {
              const socket = connect({ host: "127.0.0.1", port: node.kmipPort as number, ca: file("ca.pem"), cert: file("client.pem"), key: file("client.key") }, () => resolve(new KmipConnection(socket)));
              socket.once("error", reject);
            }),
        ),
      );
      const uid: Ttlv = { tag: TAG.UniqueIdentifier, type: "TextString", value: kmipKey.keyId };
      const get = request(OPERATION.Get, [uid]);
      const encrypt = request(OPERATION.Encrypt, [
        uid,
        struct(TAG.CryptographicParameters, [{ tag: TAG.BlockCipherMode, type: "Enumeration", value: 9 }]),
        { tag: TAG.Data, type: "ByteString", value: Buffer.alloc(1024, 7) },
      ]);
      const url = loopbackUrl(node.url);
      const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const tencentEncrypt = async (_worker: number, n: number) => {
        // A distinct plaintext per call: the replay guard serves one signature once per second.
        const body = JSON.stringify({ KeyId: cmk.keyId, Plaintext: Buffer.alloc(1024, n % 256).toString("base64"), EncryptionContext: JSON.stringify({ n: String(n) }) });
        const res = await post(url, signedHeaders("Encrypt", body, url.hostname, { secretId: creds.secretId, secretKey: creds.secretKey, region: "local" }), body, agent);
        return responseFailure(res) === undefined;
      };

      const results = {
        "Tencent Encrypt AES-256 1 KiB (HTTP, signed)": await measure("Tencent Encrypt", tencentEncrypt),
        "KMIP Get AES-256 (TTLV, mutual TLS)": await measure("KMIP Get", async (w) => (await connections[w]!.send(get)) === 0),
        "KMIP Encrypt AES-256-GCM 1 KiB (TTLV, mutual TLS)": await measure("KMIP Encrypt", async (w) => (await connections[w]!.send(encrypt)) === 0),
      };
      for (const c of connections) c.close();
      agent.destroy();
      const baseline = results["Tencent Encrypt AES-256 1 KiB (HTTP, signed)"];
      console.log(`KMIP bench: ${DURATION_S} s per scenario, concurrency ${CONCURRENCY}, one in-process node (SQLite, audit on)`);
      for (const [name, perSecond] of Object.entries(results)) {
        console.log(`${name.padEnd(52)} ${perSecond.toFixed(0).padStart(7)} /s   ${(perSecond / baseline).toFixed(2)} x Tencent Encrypt`);
      }
    } finally {
      await node.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
