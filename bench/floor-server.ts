// The floor: the least work a durable, audited, signed Encrypt must do, with nothing of Tresor's
// server around it. node:http, one SM4 key in memory, and per request exactly what the protocol and
// the audit trail demand: the TC3-HMAC-SHA256 check (with the replay binding), the parameters'
// checks, SM4-GCM into Tresor's blob format, one audit record sealed into the hash chain (with the
// keyed digest of the parameters) and inserted with Tresor's schema (its search indexes included),
// grouped per turn of the event loop into one transaction, and the answer only after an fdatasync of
// the WAL that began after the commit. No framework, no routing, no policy engine, no logging, no
// metrics. Tresor's rate against this one says how much of the distance to the bare server is the
// work itself and how much is Tresor's. With --no-audit-store it skips the audit record's storage
// (not its sealing): what the protocol and the crypto cost alone.
// Usage: node floor-server.js <dir> <tresor-data-dir> [--no-audit-store]: its database goes in <dir>;
// it accepts the admin credentials `tresor init` wrote in <tresor-data-dir>. Prints one JSON line,
// {"msg":"listening","url":…,"keyId":…}, then serves until SIGTERM.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { parseTc3Authorization, tc3CanonicalRequest, tc3Date, tc3Signature, tc3SigningKey, tc3StringToSign } from "../src/crypto/tc3.js";
import { Sm4GcmKey } from "../src/crypto/sm4-gcm.js";
import { encodeBlob, encodeBlobHeader } from "../src/keys/blob.js";
import { GENESIS_HASH, paramsDigest, sealAuditRecord, type AuditRecord } from "../src/audit/record.js";
import { MIGRATIONS } from "../src/store/migrations/index.js";
import { AUDIT_COLUMNS } from "../src/store/sql/statements.js";
import { auditValues } from "../src/store/sql/rows.js";
import { Checkpointer } from "../src/store/sqlite/checkpointer.js";
import { WalSync } from "../src/store/sqlite/wal-sync.js";
import { SignatureBindings } from "../src/api/tencent/signature-bindings.js";
import { MAX_CLOCK_SKEW_SECONDS } from "../src/api/tencent/authenticate.js";

const [dir, dataDir, flag] = process.argv.slice(2);
if (!dir || !dataDir) throw new Error("usage: floor-server.js <dir> <tresor-data-dir> [--no-audit-store]");
const storeAudit = flag !== "--no-audit-store";
const { secretId, secretKey } = JSON.parse(readFileSync(join(dataDir, "admin-credentials.json"), "utf8")) as { secretId: string; secretKey: string };

const ACCOUNT = "100000000001";
const KEY_ID = randomUUID();
const key = new Sm4GcmKey(randomBytes(16));
const auditHmacKey = randomBytes(32);
const signingKeys = new Map<string, Buffer>();
const bindings = new SignatureBindings(1_000_000, MAX_CLOCK_SKEW_SECONDS);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_PLAINTEXT_BASE64 = 5464; // 4096 bytes

const dbPath = join(dir, "floor.db");
const db = new Database(dbPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
for (const m of MIGRATIONS) db.exec(m.sql);
const insertRecord = db.prepare(`INSERT INTO audit_records (${AUDIT_COLUMNS}, account_seq) VALUES (${"?, ".repeat(23)}?)`);
const setHead = db.prepare("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash");
const setAccountHead = db.prepare("INSERT INTO audit_account_heads (account_uin, seq) VALUES (?, ?) ON CONFLICT (account_uin) DO UPDATE SET seq = excluded.seq");
const begin = db.prepare("BEGIN IMMEDIATE");
const commit = db.prepare("COMMIT");
// The key cache's freshness check, as Tresor's store makes before serving a cached key.
const dataVersion = db.prepare("PRAGMA data_version").pluck();
db.exec("CREATE TABLE IF NOT EXISTS warm (x)"); // the WAL file exists from here on
const walSync = new WalSync(`${dbPath}-wal`);
new Checkpointer(db).start();

interface Waiting {
  body: Omit<AuditRecord, "seq" | "prevHash" | "hash">;
  res: ServerResponse;
  answer: string;
}
let batch: Waiting[] = [];
let seq = 0;
let prevHash = GENESIS_HASH;

function send(res: ServerResponse, body: string): void {
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function refuse(res: ServerResponse, code: string, parameter: string): void {
  send(res, JSON.stringify({ Response: { Error: { Code: code, Message: `bad ${parameter}` }, RequestId: randomUUID() } }));
}

function one(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function handle(req: IncomingMessage, res: ServerResponse, payload: Buffer): void {
  const start = Date.now();
  const auth = parseTc3Authorization(one(req, "authorization") ?? "");
  if (!auth || auth.secretId !== secretId || auth.service !== "kms") return refuse(res, "AuthFailure", "Authorization");
  const timestamp = Number(one(req, "x-tc-timestamp"));
  const now = Math.floor(start / 1000);
  if (!Number.isSafeInteger(timestamp) || Math.abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS || auth.date !== tc3Date(timestamp)) {
    return refuse(res, "AuthFailure", "X-TC-Timestamp");
  }
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = one(req, name);
    if (value === undefined) return refuse(res, "AuthFailure", name);
    headers[name] = name === "host" ? value.replace(/:\d+$/, "") : value;
  }
  const canonical = tc3CanonicalRequest({ method: "POST", path: "/", query: "", headers, signedHeaders: auth.signedHeaders, payload });
  let signingKey = signingKeys.get(auth.date);
  if (signingKey === undefined) signingKeys.set(auth.date, (signingKey = tc3SigningKey(secretKey, auth.date, auth.service)));
  const expected = Buffer.from(tc3Signature(signingKey, tc3StringToSign(timestamp, `${auth.date}/kms/tc3_request`, canonical)), "hex");
  if (!timingSafeEqual(expected, Buffer.from(auth.signature, "hex"))) return refuse(res, "AuthFailure", "Signature");
  const action = one(req, "x-tc-action");
  if (action !== "Encrypt") return refuse(res, "InvalidAction", "X-TC-Action");
  const binding = bindings.bind(auth.signature, timestamp, `2019-01-18:${action}`, now);
  if (!binding.bound && !binding.sameAction) return refuse(res, "AuthFailure", "Signature");

  let params: { KeyId?: unknown; Plaintext?: unknown };
  try {
    params = JSON.parse(payload.toString("utf8")) as typeof params;
  } catch {
    return refuse(res, "InvalidParameter", "body");
  }
  if (params.KeyId !== KEY_ID) return refuse(res, "ResourceUnavailable.CmkNotFound", "KeyId");
  const text = params.Plaintext;
  if (typeof text !== "string" || text.length > MAX_PLAINTEXT_BASE64 || !BASE64.test(text)) return refuse(res, "InvalidParameter", "Plaintext");
  dataVersion.get();

  const iv = randomBytes(12);
  const header = encodeBlobHeader({ algorithm: "SM4-GCM", keyId: KEY_ID, keyVersion: 1, iv });
  const { ciphertext, tag } = key.encrypt(iv, Buffer.from(text, "base64"), header);
  const requestId = randomUUID();
  const answer = JSON.stringify({ Response: { CiphertextBlob: encodeBlob(header, ciphertext, tag).toString("base64"), KeyId: KEY_ID, RequestId: requestId } });
  const body = {
    time: start,
    requestId,
    traceId: requestId,
    nodeId: "floor",
    accountUin: ACCOUNT,
    principalUin: ACCOUNT,
    principalName: "root",
    accessKeyId: secretId,
    sourceIp: req.socket.remoteAddress ?? "",
    userAgent: one(req, "user-agent") ?? "",
    region: one(req, "x-tc-region") ?? "",
    service: "kms" as const,
    action,
    resourceType: "key",
    resourceName: KEY_ID,
    readOnly: false,
    result: "Success",
    latencyMs: Date.now() - start,
    paramsDigest: paramsDigest(auditHmacKey, params),
    flags: [],
  };
  batch.push({ body, res, answer });
  if (batch.length === 1) setImmediate(flush);
}

/** The turn's records: sealed into the chain, one transaction, then the answers once the WAL is synced. */
function flush(): void {
  const these = batch;
  batch = [];
  if (storeAudit) begin.run();
  for (const w of these) {
    const record = sealAuditRecord({ ...w.body, seq: ++seq }, prevHash);
    prevHash = record.hash;
    if (storeAudit) insertRecord.run([...auditValues(record).map((v) => (typeof v === "boolean" ? Number(v) : v)), seq]);
  }
  if (!storeAudit) {
    for (const w of these) send(w.res, w.answer);
    return;
  }
  setAccountHead.run([ACCOUNT, seq]);
  setHead.run([seq, prevHash]);
  commit.run();
  walSync.after().then(
    () => these.forEach((w) => send(w.res, w.answer)),
    () => these.forEach((w) => refuse(w.res, "InternalError", "audit")),
  );
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => handle(req, res, Buffer.concat(chunks)));
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("unexpected server address");
  process.stdout.write(`${JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${address.port}`, keyId: KEY_ID })}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
