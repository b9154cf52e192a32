// The ciphertext blob v1: a byte-by-byte fixture of the layout, round trips, every malformed form,
// and the canonical encryption context.
//
// Layout (src/keys/blob.ts; docs/formats.md):
//   offset  size  field
//   0       1     format version, 0x01
//   1       1     algorithm: 0x01 SM4-GCM, 0x02 AES-256-GCM
//   2       16    key id, the UUID's 16 bytes
//   18      4     key version, unsigned big-endian, >= 1
//   22      12    IV
//   34      n     ciphertext
//   34+n    16    GCM tag

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  BLOB_FORMAT_V1,
  BLOB_HEADER_LENGTH,
  BLOB_MIN_LENGTH,
  BlobFormatError,
  blobAad,
  canonicalContext,
  decodeBlob,
  encodeBlob,
  encodeBlobHeader,
  type BlobHeader,
} from "../../src/keys/blob.js";

const KEY_ID = "00112233-4455-6677-8899-aabbccddeeff";
const IV = Buffer.from("a0a1a2a3a4a5a6a7a8a9aaab", "hex");
const CIPHERTEXT = Buffer.from("c0c1c2c3c4", "hex");
const TAG = Buffer.from("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "hex");

// prettier-ignore
const FIXTURE_HEX = [
  "01",                                   // [0]      format version 1
  "01",                                   // [1]      algorithm SM4-GCM
  "00112233445566778899aabbccddeeff",     // [2..17]  key id 00112233-4455-6677-8899-aabbccddeeff
  "01020304",                             // [18..21] key version 0x01020304, big-endian
  "a0a1a2a3a4a5a6a7a8a9aaab",             // [22..33] IV
  "c0c1c2c3c4",                           // [34..38] ciphertext (5 bytes)
  "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",     // [39..54] tag
].join("");

const header: BlobHeader = { algorithm: "SM4-GCM", keyId: KEY_ID, keyVersion: 0x01020304, iv: IV };

describe("blob layout", () => {
  it("has the documented sizes", () => {
    assert.equal(BLOB_FORMAT_V1, 0x01);
    assert.equal(BLOB_HEADER_LENGTH, 34);
    assert.equal(BLOB_MIN_LENGTH, 50);
  });

  it("encodes byte for byte as the fixture", () => {
    const blob = encodeBlob(encodeBlobHeader(header), CIPHERTEXT, TAG);
    assert.equal(blob.toString("hex"), FIXTURE_HEX);
  });

  it("encodes the AES-256-GCM algorithm as 0x02", () => {
    const h = encodeBlobHeader({ ...header, algorithm: "AES-256-GCM" });
    assert.equal(h[1], 0x02);
    assert.equal(decodeBlob(encodeBlob(h, CIPHERTEXT, TAG)).algorithm, "AES-256-GCM");
  });

  it("decodes the fixture into its fields", () => {
    const parsed = decodeBlob(Buffer.from(FIXTURE_HEX, "hex"));
    assert.equal(parsed.algorithm, "SM4-GCM");
    assert.equal(parsed.keyId, KEY_ID);
    assert.equal(parsed.keyVersion, 0x01020304);
    assert.equal(parsed.iv.toString("hex"), IV.toString("hex"));
    assert.equal(parsed.ciphertext.toString("hex"), CIPHERTEXT.toString("hex"));
    assert.equal(parsed.tag.toString("hex"), TAG.toString("hex"));
    assert.equal(parsed.header.toString("hex"), FIXTURE_HEX.slice(0, 68));
  });

  it("round-trips headers of either algorithm, any version and any ciphertext length", () => {
    for (const algorithm of ["SM4-GCM", "AES-256-GCM"] as const) {
      for (const keyVersion of [1, 2, 255, 256, 0xffffffff]) {
        for (const length of [0, 1, 16, 4096]) {
          const ct = Buffer.alloc(length, 0x5a);
          const h: BlobHeader = { algorithm, keyId: "fedcba98-7654-4321-8fed-cba987654321", keyVersion, iv: Buffer.alloc(12, keyVersion & 0xff) };
          const blob = encodeBlob(encodeBlobHeader(h), ct, TAG);
          assert.equal(blob.length, BLOB_HEADER_LENGTH + length + 16);
          const p = decodeBlob(blob);
          assert.deepEqual(
            { algorithm: p.algorithm, keyId: p.keyId, keyVersion: p.keyVersion, iv: p.iv.toString("hex"), ct: p.ciphertext.toString("hex"), tag: p.tag.toString("hex") },
            { algorithm, keyId: h.keyId, keyVersion, iv: h.iv.toString("hex"), ct: ct.toString("hex"), tag: TAG.toString("hex") },
          );
        }
      }
    }
  });

  it("docs/formats.md, once it exists, documents the same layout", { skip: !existsSync(new URL("../../../docs/formats.md", import.meta.url)) && "docs/formats.md does not exist yet" }, () => {
    const doc = readFileSync(new URL("../../../docs/formats.md", import.meta.url), "utf8");
    // The facts a reader needs to parse a blob by hand.
    assert.match(doc, /0x01/);
    assert.match(doc, /SM4-GCM/);
    assert.match(doc, /AES-256-GCM/);
    assert.match(doc, /34/, "the header length");
    assert.match(doc, /big[- ]endian/i, "the byte order of the key version");
  });
});

describe("malformed blobs throw BlobFormatError", () => {
  const good = Buffer.from(FIXTURE_HEX, "hex");
  const malformed = (mutate: (b: Buffer) => Buffer): Buffer => mutate(Buffer.from(good));

  const cases: [string, Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from([0x01])],
    ["the header alone", good.subarray(0, BLOB_HEADER_LENGTH)],
    ["one byte short of header and tag", good.subarray(0, BLOB_MIN_LENGTH - 1)],
    ["format version 0", malformed((b) => ((b[0] = 0x00), b))],
    ["format version 2", malformed((b) => ((b[0] = 0x02), b))],
    ["format version 0xff", malformed((b) => ((b[0] = 0xff), b))],
    ["algorithm 0", malformed((b) => ((b[1] = 0x00), b))],
    ["algorithm 3", malformed((b) => ((b[1] = 0x03), b))],
    ["algorithm 0xff", malformed((b) => ((b[1] = 0xff), b))],
    ["key version 0", malformed((b) => (b.writeUInt32BE(0, 18), b))],
  ];
  for (const [label, bytes] of cases) {
    it(label, () => {
      assert.throws(() => decodeBlob(bytes), BlobFormatError);
    });
  }

  it("accepts the shortest well-formed blob (empty ciphertext): refusing it is the AEAD's job", () => {
    const p = decodeBlob(Buffer.concat([good.subarray(0, BLOB_HEADER_LENGTH), TAG]));
    assert.equal(p.ciphertext.length, 0);
  });
});

describe("encoding refuses what it cannot represent", () => {
  const bad: [string, Partial<BlobHeader>][] = [
    ["an upper-case key id", { keyId: KEY_ID.toUpperCase() }],
    ["a key id without dashes", { keyId: KEY_ID.replaceAll("-", "") }],
    ["key version 0", { keyVersion: 0 }],
    ["key version 2^32", { keyVersion: 2 ** 32 }],
    ["a fractional key version", { keyVersion: 1.5 }],
    ["an 11-byte IV", { iv: Buffer.alloc(11) }],
    ["a 16-byte IV", { iv: Buffer.alloc(16) }],
  ];
  for (const [label, override] of bad) {
    it(label, () => {
      assert.throws(() => encodeBlobHeader({ ...header, ...override }), RangeError);
    });
  }
  it("a tag that is not 16 bytes", () => {
    assert.throws(() => encodeBlob(encodeBlobHeader(header), CIPHERTEXT, Buffer.alloc(12)), RangeError);
  });
});

describe("canonicalContext", () => {
  it("does not depend on key order", () => {
    const a = canonicalContext({ b: "2", a: "1", c: "3" });
    const b = canonicalContext({ c: "3", a: "1", b: "2" });
    assert.deepEqual(a, b);
  });

  it("distinguishes {a:b} from {a:b, c:''}", () => {
    assert.notDeepEqual(canonicalContext({ a: "b" }), canonicalContext({ a: "b", c: "" }));
  });

  it("distinguishes contexts that concatenate alike", () => {
    assert.notDeepEqual(canonicalContext({ ab: "c" }), canonicalContext({ a: "bc" }));
    assert.notDeepEqual(canonicalContext({ a: "b,c" }), canonicalContext({ a: "b", c: "" }));
    assert.notDeepEqual(canonicalContext({ a: '","' }), canonicalContext({ a: "", "": "" }));
    assert.notDeepEqual(canonicalContext({ a: "b" }), canonicalContext({ b: "a" }));
  });

  it("is empty for an empty context", () => {
    assert.equal(canonicalContext({}).length, 0);
  });

  it("is the authenticated data's tail after the header", () => {
    const h = encodeBlobHeader(header);
    const context = { tenant: "t1", purpose: "tests" };
    assert.deepEqual(blobAad(h, context), Buffer.concat([h, canonicalContext(context)]));
    assert.deepEqual(blobAad(h, {}), h);
  });

  it("treats a key named __proto__ as data", () => {
    const parsed = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    assert.notDeepEqual(canonicalContext(parsed), canonicalContext({}));
  });
});
