// Hostile ciphertexts: every byte of a blob altered in turn, truncated, extended, empty, foreign
// (another data directory), naming an unknown key; and encryption contexts that differ. All must be
// InvalidParameterValue.InvalidCiphertext and change nothing. Last, no answer or log line may carry
// the plaintexts, the SecretKey or a data key used here.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { BLOB_HEADER_LENGTH } from "../../src/keys/blob.js";
import { assertError, snapshotKeys, startInProcessServer, type InProcessServer, type RawResponse } from "./helpers-inprocess.js";

const INVALID = "InvalidParameterValue.InvalidCiphertext";
/** Distinctive plaintexts, so a leak is unmistakable. */
const SECRET_TEXT = `tresor-secret-plaintext-${randomBytes(8).toString("hex")}`;
const SECRET_B64 = Buffer.from(SECRET_TEXT).toString("base64");

let s: InProcessServer;
let foreign: InProcessServer;
let sm4Key: string;
let sm4Other: string;
let aesKey: string;
let blob: Buffer;
let dataKeyB64: string;
const errors: RawResponse[] = [];

before(async () => {
  [s, foreign] = await Promise.all([startInProcessServer(), startInProcessServer()]);
  sm4Key = (await s.call("CreateKey", { Alias: "ct-sm4" })).KeyId as string;
  sm4Other = (await s.call("CreateKey", { Alias: "ct-sm4-other" })).KeyId as string;
  aesKey = (await s.call("CreateKey", { Alias: "ct-aes", KeySpec: "AES_256" })).KeyId as string;
  const e = await s.call("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64, EncryptionContext: '{"purpose":"tests","tenant":"t1"}' });
  blob = Buffer.from(e.CiphertextBlob as string, "base64");
  dataKeyB64 = (await s.call("GenerateDataKey", { KeyId: sm4Key, KeySpec: "AES_256", EncryptionContext: '{"purpose":"dk"}' })).Plaintext as string;
});

after(async () => {
  await Promise.all([s.stop(), foreign.stop()]);
});

async function refusedDecrypt(bytes: Buffer | string, label: string, context = '{"purpose":"tests","tenant":"t1"}', code = INVALID) {
  const before = await snapshotKeys(s.service, s.caller);
  const CiphertextBlob = typeof bytes === "string" ? bytes : bytes.toString("base64");
  const r = await s.raw("Decrypt", { CiphertextBlob, EncryptionContext: context });
  errors.push(r);
  try {
    assertError(r, code, "CiphertextBlob");
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
  assert.equal(await snapshotKeys(s.service, s.caller), before);
}

function flipped(source: Buffer, index: number, mask: number): Buffer {
  const copy = Buffer.from(source);
  copy[index] = copy[index]! ^ mask;
  return copy;
}

/** Which part of the v1 layout a byte belongs to (see src/keys/blob.ts). */
function part(index: number, length: number): string {
  if (index === 0) return "format version";
  if (index === 1) return "algorithm";
  if (index < 18) return "key id";
  if (index < 22) return "key version";
  if (index < BLOB_HEADER_LENGTH) return "IV";
  if (index < length - 16) return "ciphertext";
  return "tag";
}

describe("tampered ciphertexts", () => {
  it("decrypts the untouched blob (the baseline)", async () => {
    const r = await s.call("Decrypt", { CiphertextBlob: blob.toString("base64"), EncryptionContext: '{"purpose":"tests","tenant":"t1"}' });
    assert.equal(r.KeyId, sm4Key);
    assert.equal(r.Plaintext, SECRET_B64);
  });

  for (const mask of [0x01, 0x80, 0xff]) {
    it(`refuses the blob with any single byte XORed with 0x${mask.toString(16)}`, async () => {
      const parts = new Set<string>();
      for (let i = 0; i < blob.length; i++) {
        parts.add(part(i, blob.length));
        await refusedDecrypt(flipped(blob, i, mask), `byte ${i} (${part(i, blob.length)})`);
      }
      assert.deepEqual([...parts], ["format version", "algorithm", "key id", "key version", "IV", "ciphertext", "tag"]);
    });
  }

  it("refuses the blob relabelled as AES-256-GCM (another known algorithm)", async () => {
    const relabelled = Buffer.from(blob);
    relabelled[1] = 0x02;
    await refusedDecrypt(relabelled, "algorithm AES-256-GCM on an SM4 key");
  });

  it("refuses format version 0 and 2", async () => {
    for (const v of [0x00, 0x02]) {
      const b = Buffer.from(blob);
      b[0] = v;
      await refusedDecrypt(b, `format version ${v}`);
    }
  });

  it("refuses key version 0, 2 and 0xffffffff", async () => {
    for (const v of [0, 2, 0xffffffff]) {
      const b = Buffer.from(blob);
      b.writeUInt32BE(v, 18);
      await refusedDecrypt(b, `key version ${v}`);
    }
  });

  it("refuses the blob moved onto another key of the same spec", async () => {
    const b = Buffer.from(blob);
    Buffer.from(sm4Other.replaceAll("-", ""), "hex").copy(b, 2);
    await refusedDecrypt(b, "key id of another SM4 key");
  });

  it("refuses the blob moved onto a key of another spec", async () => {
    const b = Buffer.from(blob);
    Buffer.from(aesKey.replaceAll("-", ""), "hex").copy(b, 2);
    await refusedDecrypt(b, "key id of an AES key");
  });

  it("refuses a blob naming a key that does not exist (never made, or deleted)", async () => {
    const b = Buffer.from(blob);
    Buffer.from(randomUUID().replaceAll("-", ""), "hex").copy(b, 2);
    await refusedDecrypt(b, "unknown key id");
  });

  it("refuses truncated blobs", async () => {
    for (const length of [blob.length - 1, blob.length - 16, BLOB_HEADER_LENGTH + 16, BLOB_HEADER_LENGTH + 15, BLOB_HEADER_LENGTH, 22, 2, 1]) {
      await refusedDecrypt(blob.subarray(0, length), `first ${length} bytes`);
    }
    await refusedDecrypt(blob.subarray(1), "without the first byte");
  });

  it("refuses extended blobs", async () => {
    await refusedDecrypt(Buffer.concat([blob, Buffer.from([0])]), "one byte appended");
    await refusedDecrypt(Buffer.concat([blob, Buffer.alloc(16)]), "16 bytes appended");
    await refusedDecrypt(Buffer.concat([blob.subarray(0, BLOB_HEADER_LENGTH), Buffer.from([0]), blob.subarray(BLOB_HEADER_LENGTH)]), "a byte inserted");
  });

  it("refuses a blob twice as long: the second copy appended", async () => {
    await refusedDecrypt(Buffer.concat([blob, blob]), "doubled");
  });

  it("refuses an empty blob", async () => {
    await refusedDecrypt("", "empty string");
  });

  it("refuses a blob longer than any ciphertext of 4096 bytes of plaintext", async () => {
    await refusedDecrypt(Buffer.concat([blob, Buffer.alloc(4200)]), "oversized");
  });

  it("refuses random bytes of a plausible length", async () => {
    await refusedDecrypt(randomBytes(blob.length), "random");
  });

  it("refuses a blob from another data directory", async () => {
    const fk = (await foreign.call("CreateKey", { Alias: "elsewhere" })).KeyId as string;
    const fb = Buffer.from((await foreign.call("Encrypt", { KeyId: fk, Plaintext: SECRET_B64 })).CiphertextBlob as string, "base64");
    await refusedDecrypt(fb, "foreign blob", "");
    // The same blob relabelled with a local key id fails too: the material differs.
    Buffer.from(sm4Key.replaceAll("-", ""), "hex").copy(fb, 2);
    await refusedDecrypt(fb, "foreign blob under a local key id", "");
  });

  it("refuses tampered blobs in ReEncrypt as well, and writes nothing", async () => {
    for (const i of [0, 1, 5, 20, 25, BLOB_HEADER_LENGTH + 1, blob.length - 1]) {
      const before = await snapshotKeys(s.service, s.caller);
      const r = await s.raw("ReEncrypt", {
        CiphertextBlob: flipped(blob, i, 0x01).toString("base64"),
        SourceEncryptionContext: '{"purpose":"tests","tenant":"t1"}',
        DestinationKeyId: sm4Other,
      });
      errors.push(r);
      assertError(r, INVALID, "CiphertextBlob");
      assert.equal(await snapshotKeys(s.service, s.caller), before);
    }
  });
});

describe("encryption context", () => {
  it("does not depend on key order or whitespace", async () => {
    for (const context of ['{"tenant":"t1","purpose":"tests"}', '{ "purpose" : "tests",\n "tenant": "t1" }']) {
      const r = await s.call("Decrypt", { CiphertextBlob: blob.toString("base64"), EncryptionContext: context });
      assert.equal(r.Plaintext, SECRET_B64);
    }
  });

  for (const [label, context] of [
    ["missing", undefined],
    ["empty", ""],
    ["an empty object", "{}"],
    ["one pair short", '{"purpose":"tests"}'],
    ["one pair more", '{"purpose":"tests","tenant":"t1","extra":""}'],
    ["one value changed", '{"purpose":"tests","tenant":"t2"}'],
    ["one key's case changed", '{"Purpose":"tests","tenant":"t1"}'],
    ["a value with a trailing space", '{"purpose":"tests ","tenant":"t1"}'],
    ["the pairs swapped", '{"purpose":"t1","tenant":"tests"}'],
  ] as const) {
    it(`fails to decrypt when the context is ${label}`, async () => {
      const before = await snapshotKeys(s.service, s.caller);
      const body: Record<string, string> = { CiphertextBlob: blob.toString("base64") };
      if (context !== undefined) body.EncryptionContext = context;
      const r = await s.raw("Decrypt", body);
      errors.push(r);
      assertError(r, INVALID, "CiphertextBlob");
      assert.equal(await snapshotKeys(s.service, s.caller), before);
    });
  }

  it("fails to decrypt a blob made without a context when one is given", async () => {
    const plain = (await s.call("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64 })).CiphertextBlob as string;
    for (const ok of [undefined, "", "{}"]) {
      const r = await s.call("Decrypt", ok === undefined ? { CiphertextBlob: plain } : { CiphertextBlob: plain, EncryptionContext: ok });
      assert.equal(r.Plaintext, SECRET_B64);
    }
    const r = await s.raw("Decrypt", { CiphertextBlob: plain, EncryptionContext: '{"a":"b"}' });
    errors.push(r);
    assertError(r, INVALID, "CiphertextBlob");
  });

  it("distinguishes a context with an extra empty value from one without", async () => {
    const e = (await s.call("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64, EncryptionContext: '{"a":"b"}' })).CiphertextBlob as string;
    const r = await s.raw("Decrypt", { CiphertextBlob: e, EncryptionContext: '{"a":"b","c":""}' });
    errors.push(r);
    assertError(r, INVALID, "CiphertextBlob");
  });

  it("binds the data key's context: GenerateDataKey's blob needs it back", async () => {
    // Regenerate to hold the blob (the one from before() was not kept).
    const g = await s.call("GenerateDataKey", { KeyId: sm4Key, NumberOfBytes: 32, EncryptionContext: '{"purpose":"dk"}' });
    const r = await s.raw("Decrypt", { CiphertextBlob: g.CiphertextBlob as string });
    errors.push(r);
    assertError(r, INVALID, "CiphertextBlob");
    const ok = await s.call("Decrypt", { CiphertextBlob: g.CiphertextBlob as string, EncryptionContext: '{"purpose":"dk"}' });
    assert.equal(ok.Plaintext, g.Plaintext);
  });

  it("fails ReEncrypt with a wrong source context, and writes nothing", async () => {
    const before = await snapshotKeys(s.service, s.caller);
    const r = await s.raw("ReEncrypt", { CiphertextBlob: blob.toString("base64"), SourceEncryptionContext: '{"purpose":"tests"}', DestinationKeyId: sm4Other });
    errors.push(r);
    assertError(r, INVALID, "CiphertextBlob");
    assert.equal(await snapshotKeys(s.service, s.caller), before);
  });
});

describe("no secret in any answer or log line", () => {
  it("refused requests carrying secrets answer without them", async () => {
    // Requests that carry the secrets and fail for some other reason.
    const more = [
      await s.raw("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64, EncryptionContext: "{not json" }),
      await s.raw("Encrypt", { KeyId: "00000000-0000-4000-8000-000000000000", Plaintext: SECRET_B64 }),
      await s.raw("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64, Extra: SECRET_TEXT }),
      await s.raw("Encrypt", { KeyId: sm4Key, Plaintext: `${SECRET_B64}!` }),
      await s.raw("Encrypt", { KeyId: sm4Key, Plaintext: SECRET_B64 }, { secretKey: "wrong" }),
      await s.raw("Decrypt", { CiphertextBlob: dataKeyB64 }),
      await s.raw("Decrypt", { CiphertextBlob: SECRET_B64 }),
      await s.raw("ReEncrypt", { CiphertextBlob: dataKeyB64, DestinationKeyId: sm4Other }),
      await s.raw("Encrypt", `{"KeyId":"${sm4Key}","Plaintext":"${SECRET_B64}"`),
    ];
    errors.push(...more);
    for (const r of more) assert.ok(r.error, r.text);
    assert.ok(errors.length > 100);
    for (const r of errors) {
      const message = r.error?.Message ?? "";
      for (const secret of [SECRET_TEXT, SECRET_B64, dataKeyB64, s.secretKey]) {
        assert.ok(!r.text.includes(secret), `an answer carries a secret: ${message}`);
      }
      // Nor a ciphertext or any long base64 run.
      assert.doesNotMatch(message, /[A-Za-z0-9+/]{40,}/, `an answer quotes base64 data: ${message}`);
    }
  });

  it("no log line carries them, nor a parameter value", () => {
    const text = s.logs.text();
    for (const secret of [SECRET_TEXT, SECRET_B64, dataKeyB64, s.secretKey, blob.toString("base64")]) {
      assert.ok(!text.includes(secret), "a log line carries a secret");
    }
    for (const record of s.logs.records()) {
      assert.deepEqual(Object.keys(record).sort(), ["action", "code", "hostname", "latencyMs", "level", "msg", "pid", "requestId", "time"]);
    }
  });
});
