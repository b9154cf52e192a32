// The bench's floor (bench/floor-server.ts) is a comparison only if it does the work it claims: it
// checks the TC3 signature and the replay binding, answers an SM4-GCM blob in Tresor's format, and
// stores each record in a hash chain before it answers; with --no-audit-store it stores nothing.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { auditRecordHash, GENESIS_HASH } from "../../src/audit/record.js";
import { decodeBlob } from "../../src/keys/blob.js";
import { fromAuditRow, type AuditRow } from "../../src/store/sql/rows.js";
import { post, signedHeaders, type Credentials } from "../../bench/signed-request.js";

const FLOOR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "bench", "floor-server.js");
const CREDS: Credentials = { secretId: "AKIDfloorfloorfloorfloorfloorfloor12", secretKey: "floor-secret-key-for-the-test-0123456789", region: "ap-guangzhou" };

interface Floor {
  child: ChildProcess;
  url: URL;
  keyId: string;
  dir: string;
}

async function startFloor(extra: string[] = []): Promise<Floor> {
  const dir = await mkdtemp(join(tmpdir(), "tresor-floor-"));
  await writeFile(join(dir, "admin-credentials.json"), JSON.stringify(CREDS), { mode: 0o600 });
  const child = spawn(process.execPath, [FLOOR, dir, dir, ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  const listening = await new Promise<{ url: string; keyId: string }>((ok, fail) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString("utf8");
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (line !== undefined) ok(JSON.parse(line) as { url: string; keyId: string });
    });
    child.once("exit", (code) => fail(new Error(`floor-server exited ${code} before listening`)));
  });
  return { child, url: new URL(listening.url), keyId: listening.keyId, dir };
}

async function stopFloor(f: Floor): Promise<void> {
  if (f.child.exitCode === null) {
    const exited = new Promise((ok) => f.child.once("exit", ok));
    f.child.kill("SIGTERM");
    await exited;
  }
  await rm(f.dir, { recursive: true, force: true });
}

function encrypt(f: Floor, params: object, action = "Encrypt", creds: Credentials = CREDS) {
  const body = JSON.stringify(params);
  return post(f.url, signedHeaders(action, body, f.url.hostname, creds), body).then((r) => JSON.parse(r.body) as { Response: Record<string, unknown> });
}

function storedRecords(f: Floor) {
  const db = new Database(join(f.dir, "floor.db"), { readonly: true });
  try {
    return db.prepare<[], AuditRow>("SELECT * FROM audit_records ORDER BY seq").all().map(fromAuditRow);
  } finally {
    db.close();
  }
}

const plaintext = Buffer.alloc(1024, 7).toString("base64");

describe("bench/floor-server.ts", () => {
  let floor: Floor;
  before(async () => {
    floor = await startFloor();
  });
  after(async () => {
    await stopFloor(floor);
  });

  it("answers a signed Encrypt with an SM4-GCM blob in Tresor's format, under its key", async () => {
    const { Response } = await encrypt(floor, { KeyId: floor.keyId, Plaintext: plaintext });
    assert.equal(Response["Error"], undefined);
    const blob = decodeBlob(Buffer.from(String(Response["CiphertextBlob"]), "base64"));
    assert.equal(blob.algorithm, "SM4-GCM");
    assert.equal(blob.keyId, floor.keyId);
    assert.equal(blob.ciphertext.length, 1024);
  });

  it("refuses a wrong signature, an action other than Encrypt, and bad parameters", async () => {
    const wrongKey = await encrypt(floor, { KeyId: floor.keyId, Plaintext: plaintext }, "Encrypt", { ...CREDS, secretKey: "not-the-key" });
    assert.equal((wrongKey.Response["Error"] as { Code: string }).Code, "AuthFailure");
    const other = await encrypt(floor, { KeyId: floor.keyId, Plaintext: plaintext }, "Decrypt");
    assert.ok(other.Response["Error"], "only Encrypt is served");
    const badPlaintext = await encrypt(floor, { KeyId: floor.keyId, Plaintext: "not base64!" });
    assert.equal((badPlaintext.Response["Error"] as { Code: string }).Code, "InvalidParameter");
    const unknownKey = await encrypt(floor, { KeyId: "00000000-0000-4000-8000-000000000000", Plaintext: plaintext });
    assert.ok((unknownKey.Response["Error"] as { Code: string }).Code.startsWith("ResourceUnavailable"));
  });

  it("has stored each answered request's record in a hash chain before answering", async () => {
    const before = storedRecords(floor).length;
    const answers = await Promise.all(Array.from({ length: 20 }, () => encrypt(floor, { KeyId: floor.keyId, Plaintext: plaintext })));
    const ids = answers.map((a) => String(a.Response["RequestId"]));
    const records = storedRecords(floor);
    assert.equal(records.length, before + 20);
    for (const id of ids) assert.ok(records.some((r) => r.requestId === id), `the record of ${id} is stored`);
    let prev = GENESIS_HASH;
    for (const r of records) {
      assert.equal(r.prevHash, prev);
      const { prevHash: _p, hash, ...body } = r;
      assert.equal(auditRecordHash(prev, body), hash, `record ${r.seq} hashes to its hash`);
      assert.match(r.paramsDigest, /^[0-9a-f]{64}$/);
      prev = hash;
    }
  });

  it("stores nothing with --no-audit-store", async () => {
    const bare = await startFloor(["--no-audit-store"]);
    try {
      const { Response } = await encrypt(bare, { KeyId: bare.keyId, Plaintext: plaintext });
      assert.ok(Response["CiphertextBlob"]);
      assert.equal(storedRecords(bare).length, 0);
    } finally {
      await stopFloor(bare);
    }
  });
});
