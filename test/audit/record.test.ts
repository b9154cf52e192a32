// The record encoding and its hash, checked against the worked example of docs/formats.md
// ("Audit records"), and the canonical JSON of the parameter digest.

import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  AUDIT_RECORD_FIELDS,
  auditRecordHash,
  canonicalJson,
  encodeAuditRecord,
  GENESIS_HASH,
  paramsDigest,
  sealAuditRecord,
  type AuditRecordBody,
} from "../../src/audit/record.js";

const formatsMd = readFileSync(new URL("../../../docs/formats.md", import.meta.url), "utf8");

function marked(name: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const start = formatsMd.indexOf(begin);
  const stop = formatsMd.indexOf(end);
  assert.ok(start !== -1 && stop > start, `docs/formats.md must hold ${begin} … ${end}`);
  return formatsMd.slice(start + begin.length, stop).trim();
}

/** The body of the one fenced code block in `text`. */
function fenced(text: string): string {
  const m = /```[a-z]*\n([\s\S]*?)\n```/.exec(text);
  assert.ok(m !== null, "a fenced code block");
  return m[1]!;
}

describe("audit record encoding", () => {
  const example = JSON.parse(fenced(marked("audit-example-record"))) as AuditRecordBody;
  const exampleKey = Buffer.alloc(32, 0x0b);

  it("matches the worked example: fields, bytes and hash", () => {
    const encoding = encodeAuditRecord(example);
    const documented = fenced(marked("audit-example-encoding")).replace(/\s+/g, "");
    assert.equal(encoding.toString("hex"), documented);
    assert.equal(encoding.length, 317);
    const hash = /`([0-9a-f]{64})`/.exec(marked("audit-example-hash"))?.[1];
    assert.equal(auditRecordHash(GENESIS_HASH, example), hash);
    // Independently: SHA-256 over 32 zero bytes and the documented bytes.
    assert.equal(createHash("sha256").update(Buffer.alloc(32)).update(Buffer.from(documented, "hex")).digest("hex"), hash);
  });

  it("lists the fields in encoding order, as the documented table does", () => {
    const rows = marked("audit-record-fields")
      .split("\n")
      .slice(2)
      .map((line) => line.split("|").map((c) => c.trim()).filter((c) => c !== ""));
    assert.deepEqual(rows.map((r) => r[1]!.replaceAll("`", "")), [...AUDIT_RECORD_FIELDS]);
    assert.deepEqual(Object.keys(example), [...AUDIT_RECORD_FIELDS], "the example names every field, in order");
  });

  it("computes the example's parameter digest from canonical JSON", () => {
    const params = { Plaintext: "aGVsbG8=", KeyId: "0aefd3d2-aea1-4004-8a76-39561d5526da" };
    assert.equal(paramsDigest(exampleKey, params), example.paramsDigest);
    const canonical = '{"KeyId":"0aefd3d2-aea1-4004-8a76-39561d5526da","Plaintext":"aGVsbG8="}';
    assert.equal(createHmac("sha256", exampleKey).update(canonical).digest("hex"), example.paramsDigest);
  });

  it("writes canonical JSON with sorted keys at every depth and no undefined members", () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "x" }, u: undefined }), '{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
    assert.equal(canonicalJson([undefined, "é"]), '[null,"é"]');
    assert.equal(paramsDigest(exampleKey, { a: 1, b: 2 }), paramsDigest(exampleKey, { b: 2, a: 1 }));
    assert.notEqual(paramsDigest(exampleKey, { a: 1 }), paramsDigest(Buffer.alloc(32, 1), { a: 1 }));
    assert.throws(() => paramsDigest(Buffer.alloc(16), {}), RangeError);
  });

  it("changes the hash with any field, the prevHash, or a flag moved between strings", () => {
    const base = sealAuditRecord(example, GENESIS_HASH).hash;
    for (const name of AUDIT_RECORD_FIELDS) {
      const v = example[name];
      const changed = typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : Array.isArray(v) ? [...v, "x"] : `${v}x`;
      assert.notEqual(auditRecordHash(GENESIS_HASH, { ...example, [name]: changed }), base, name);
    }
    assert.notEqual(auditRecordHash("11".repeat(32), example), base);
    // Length prefixes keep field boundaries: moving a character from one field to the next changes the hash.
    assert.notEqual(auditRecordHash(GENESIS_HASH, { ...example, requestId: "req-", traceId: "1" }), base);
    assert.notEqual(auditRecordHash(GENESIS_HASH, { ...example, flags: ["a,b"] }), auditRecordHash(GENESIS_HASH, { ...example, flags: ["a", "b"] }));
  });

  it("writes strings exactly as Buffer.from(…, \"utf8\") does, lone surrogates included", () => {
    const tricky = ["", "ascii", "é中🔑", "a\uD800b", "\uDC00", "x\uD83D", "\uD83D\uDD11\uD83D", "\u007f\u0080\u07ff\u0800\uffff"];
    for (const t of tricky) {
      const encoded = encodeAuditRecord({ ...example, requestId: t, flags: [t] });
      const bytes = Buffer.from(t, "utf8");
      const at = 1 + 8 + 8; // after the version byte, seq and time
      assert.equal(encoded.readUInt32BE(at), bytes.length, JSON.stringify(t));
      assert.ok(encoded.subarray(at + 4, at + 4 + bytes.length).equals(bytes), JSON.stringify(t));
      assert.ok(encoded.subarray(encoded.length - bytes.length).equals(bytes), `flag ${JSON.stringify(t)}`);
    }
  });

  it("encodes large integers exactly and refuses values of the wrong type", () => {
    const big = encodeAuditRecord({ ...example, seq: Number.MAX_SAFE_INTEGER });
    assert.equal(big.subarray(1, 9).toString("hex"), "001fffffffffffff");
    assert.throws(() => encodeAuditRecord({ ...example, seq: -1 }), RangeError);
    assert.throws(() => encodeAuditRecord({ ...example, latencyMs: 1.5 }), RangeError);
    assert.throws(() => encodeAuditRecord({ ...example, action: 5 as unknown as string }), TypeError);
    assert.throws(() => auditRecordHash("zz", example), TypeError);
  });
});
