// Message format v1: the checked-in known-answer fixtures of every suite decrypt to their
// plaintexts; every single-byte change and every truncation of a small message is refused; the
// decryption limits hold before any keyring call.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  decrypt,
  decryptStream,
  encrypt,
  EncryptionSdkError,
  RawKeyring,
  SUITE_NAMES,
  SUITES,
  type Keyring,
} from "../../../src/sdk/encryption/index.js";
import { FIXTURE_CASES, FIXTURE_CONTEXT, FIXTURE_KEYS, FIXTURES_FILE, fixturePlaintext, type Fixture } from "../../helpers/encryption-fixtures.js";

const { fixtures } = JSON.parse(readFileSync(FIXTURES_FILE, "utf8")) as { fixtures: Fixture[] };
const keyring = new RawKeyring(FIXTURE_KEYS);

/** A keyring that counts its calls and delegates to `inner`. */
function countingKeyring(inner: Keyring): Keyring & { calls: number } {
  const k = {
    cacheId: inner.cacheId,
    calls: 0,
    generateDataKey: (...args: Parameters<Keyring["generateDataKey"]>) => {
      k.calls++;
      return inner.generateDataKey(...args);
    },
    decryptDataKey: (...args: Parameters<Keyring["decryptDataKey"]>) => {
      k.calls++;
      return inner.decryptDataKey(...args);
    },
  };
  return k;
}

async function rejects(message: Buffer, code?: string): Promise<void> {
  await assert.rejects(decrypt(message, { keyring }), (err: unknown) => {
    assert.ok(err instanceof EncryptionSdkError, `expected an EncryptionSdkError, got ${String(err)}`);
    if (code !== undefined) assert.equal(err.code, code);
    return true;
  });
}

describe("known-answer fixtures (test/vectors/encryption-sdk-v1.json)", () => {
  it("covers every suite and every case", () => {
    for (const suite of SUITE_NAMES) {
      for (const c of FIXTURE_CASES) {
        assert.ok(fixtures.some((f) => f.suite === suite && f.case === c.name), `missing fixture ${suite} ${c.name}`);
      }
    }
  });

  for (const f of fixtures) {
    it(`${f.suite} ${f.case} decrypts to its plaintext and context`, async () => {
      const expected = Buffer.from(f.plaintextHex, "hex");
      assert.deepEqual(expected, fixturePlaintext(expected.length));
      const { plaintext, info } = await decrypt(Buffer.from(f.messageHex, "hex"), { keyring, requiredContext: FIXTURE_CONTEXT });
      assert.deepEqual(plaintext, expected);
      assert.equal(info.suite, f.suite);
      assert.deepEqual(info.encryptionContext, f.encryptionContext);
      assert.equal(info.frameLength, f.frameLength);
      assert.deepEqual(info.decryptedWith, { provider: "raw", region: "fixtures", keyId: "primary-aes" });
      assert.equal(info.encryptedDataKeys.length, 2);
    });
  }

  it("decrypts with the backup key alone", async () => {
    const backupOnly = new RawKeyring([FIXTURE_KEYS[1]!]);
    for (const f of fixtures.filter((x) => x.case === "many-frames")) {
      const { plaintext, info } = await decrypt(Buffer.from(f.messageHex, "hex"), { keyring: backupOnly });
      assert.equal(plaintext.toString("hex"), f.plaintextHex);
      assert.equal(info.decryptedWith?.keyId, "backup-sm4");
    }
  });

  it("lays out the exact-multiple case as regular frames and a full final frame", () => {
    const f = fixtures.find((x) => x.suite === "SM4_CTR_HMAC_SM3" && x.case === "exact-multiple")!;
    const m = Buffer.from(f.messageHex, "hex");
    // Unsigned suite: the message ends with the final frame: marker, seq 3, total 192, 64 bytes, tag.
    const final = m.subarray(m.length - (16 + 64 + 16));
    assert.equal(final.readUInt32BE(0), 0xffffffff);
    assert.equal(final.readUInt32BE(4), 3);
    assert.equal(final.readBigUInt64BE(8), 192n);
    assert.equal(m.subarray(0, 5).toString("latin1"), "TRSE\x01");
  });
});

describe("tampering", () => {
  for (const suite of SUITE_NAMES) {
    const f = fixtures.find((x) => x.suite === suite && x.case === "one-frame")!;
    const message = Buffer.from(f.messageHex, "hex");

    // An ML-DSA-65 signature is 3309 bytes and each try a verification of milliseconds: there,
    // every 17th byte (test/sdk/encryption/post-quantum.test.ts samples the same way).
    const sampledFrom = SUITES[suite].signature === "ML_DSA_65" ? message.length - 3309 : message.length;
    it(`${suite}: every single-byte flip is refused${sampledFrom < message.length ? " (every 17th in the signature)" : ""}`, async () => {
      for (let i = 0; i < message.length; i += i >= sampledFrom ? 17 : 1) {
        for (const mask of [0x01, 0xff]) {
          const m = Buffer.from(message);
          m[i]! ^= mask;
          await assert.rejects(decrypt(m, { keyring }), EncryptionSdkError, `flip ^${mask} at byte ${i} of ${message.length} was accepted`);
        }
      }
    });

    it(`${suite}: every truncation is refused, and an appended byte too`, async () => {
      for (let n = 0; n < message.length; n++) {
        await assert.rejects(decrypt(message.subarray(0, n), { keyring }), EncryptionSdkError, `a prefix of ${n} bytes was accepted`);
      }
      await rejects(Buffer.concat([message, Buffer.of(0)]), "InvalidMessage");
    });
  }

  it("a cut stream errors with Truncated and says how much was released", async () => {
    const f = fixtures.find((x) => x.suite === "SM4_GCM_SM3" && x.case === "many-frames")!;
    const m = Buffer.from(f.messageHex, "hex");
    const released: Buffer[] = [];
    const d = decryptStream({ keyring });
    await assert.rejects(
      pipeline(Readable.from([m.subarray(0, m.length - 10)]), d, new Writable({ write: (c: Buffer, _e, cb) => (released.push(c), cb()) })),
      (err: unknown) => err instanceof EncryptionSdkError && err.code === "Truncated" && /192 bytes of plaintext had been released/.test(err.message),
    );
    // Three whole frames came out, each after its tag verified; nothing of the cut final frame.
    assert.deepEqual(Buffer.concat(released), fixturePlaintext(200).subarray(0, 192));
  });

  it("a corrupt frame releases nothing of that frame", async () => {
    const f = fixtures.find((x) => x.suite === "AES_256_GCM_HKDF_SHA512_COMMIT" && x.case === "many-frames")!;
    const m = Buffer.from(f.messageHex, "hex");
    m[m.length - 20]! ^= 1; // inside the final frame's ciphertext
    const released: Buffer[] = [];
    await assert.rejects(
      pipeline(Readable.from([m]), decryptStream({ keyring }), new Writable({ write: (c: Buffer, _e, cb) => (released.push(c), cb()) })),
      (err: unknown) => err instanceof EncryptionSdkError && err.code === "AuthenticationFailed",
    );
    assert.deepEqual(Buffer.concat(released), fixturePlaintext(200).subarray(0, 192));
  });

  it("a bad signature fails at the end with SignatureInvalid", async () => {
    const f = fixtures.find((x) => x.suite === "SM4_CTR_HMAC_SM3_SM2" && x.case === "many-frames")!;
    const m = Buffer.from(f.messageHex, "hex");
    m[m.length - 5]! ^= 1;
    await rejects(m, "SignatureInvalid");
  });
});

describe("decryption limits and context", () => {
  const fiveKeys = new RawKeyring(
    Array.from({ length: 5 }, (_, i) => ({ name: `k${i}`, algorithm: "AES-256-GCM" as const, key: Buffer.alloc(32, i + 1) })),
  );

  it("refuses more encrypted data keys than maxEncryptedDataKeys without calling the keyring", async () => {
    const { message } = await encrypt("hello", { keyring: fiveKeys });
    const spy = countingKeyring(fiveKeys);
    await assert.rejects(decrypt(message, { keyring: spy, maxEncryptedDataKeys: 4 }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "TooManyEncryptedDataKeys");
    assert.equal(spy.calls, 0);
    assert.equal((await decrypt(message, { keyring: spy })).plaintext.toString(), "hello");
    assert.equal(spy.calls, 1);
  });

  it("refuses a header larger than maxHeaderBytes, and does not buffer an endless one", async () => {
    const { message } = await encrypt("x", { keyring, encryptionContext: { big: "v".repeat(3000) } });
    await assert.rejects(decrypt(message, { keyring, maxHeaderBytes: 1024 }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "HeaderTooLarge");
    // A header that claims a 65535-byte context key, then never ends.
    const prefix = Buffer.concat([Buffer.from("TRSE\x01\x01\x00", "latin1"), Buffer.alloc(32), Buffer.from([0, 1, 0xff, 0xff])]);
    let sent = 0;
    const endless = new Readable({
      read() {
        sent += 4096;
        this.push(sent > 64 * 1024 * 1024 ? null : sent === 4096 ? Buffer.concat([prefix, Buffer.alloc(4096 - prefix.length)]) : Buffer.alloc(4096));
      },
    });
    await assert.rejects(pipeline(endless, decryptStream({ keyring }), new Writable({ write: (_c, _e, cb) => cb() })), (e: unknown) => e instanceof EncryptionSdkError && e.code === "HeaderTooLarge");
    assert.ok(sent <= 64 * 1024, `read ${sent} bytes before refusing`);
  });

  it("refuses a frame length above maxFrameLength before any keyring call", async () => {
    const { message } = await encrypt(Buffer.alloc(100_000, 7), { keyring, frameLength: 65536 });
    const spy = countingKeyring(keyring);
    await assert.rejects(
      decrypt(message, { keyring: spy, maxFrameLength: 65535 }),
      (e: unknown) => e instanceof EncryptionSdkError && e.code === "FrameTooLarge" && /65536.*65535 are accepted \(maxFrameLength\)/.test(e.message),
    );
    assert.equal(spy.calls, 0);
    assert.equal((await decrypt(message, { keyring: spy, maxFrameLength: 65536 })).plaintext.length, 100_000);
    // The default is the format's own limit, so messages of any frame length the SDK writes decrypt.
    const big = await encrypt(Buffer.alloc(10, 1), { keyring, frameLength: 16 * 1024 * 1024 });
    assert.equal((await decrypt(big.message, { keyring })).plaintext.length, 10);
    for (const bad of [0, 16 * 1024 * 1024 + 1, 1.5]) {
      assert.throws(() => decryptStream({ keyring, maxFrameLength: bad }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "InvalidArgument");
    }
  });

  it("checks required context pairs", async () => {
    const { message } = await encrypt("x", { keyring, encryptionContext: { tenant: "acme" } });
    assert.deepEqual((await decrypt(message, { keyring, requiredContext: { tenant: "acme" } })).info.encryptionContext, { tenant: "acme" });
    await assert.rejects(decrypt(message, { keyring, requiredContext: { tenant: "evil" } }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "ContextMismatch");
    await assert.rejects(decrypt(message, { keyring, requiredContext: { other: "x" } }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "ContextMismatch");
  });

  it("refuses reserved context keys, bad frame lengths and unknown suites on encrypt", async () => {
    await assert.rejects(encrypt("x", { keyring, encryptionContext: { "tresor:public-key": "x" } }), /reserved/);
    await assert.rejects(encrypt("x", { keyring, frameLength: 0 }), /"frameLength"/);
    await assert.rejects(encrypt("x", { keyring, suite: "ROT13" as never }), /"suite"/);
  });

  it("refuses a suite outside allowedSuites", async () => {
    const { message } = await encrypt("x", { keyring, suite: "SM4_CTR_HMAC_SM3" });
    await assert.rejects(decrypt(message, { keyring, allowedSuites: ["SM4_GCM_SM3_SM2"] }), (e: unknown) => e instanceof EncryptionSdkError && e.code === "SuiteNotAllowed");
  });

  it("names every failed key when no key decrypts", async () => {
    const { message } = await encrypt("x", { keyring });
    const stranger = new RawKeyring([{ namespace: "fixtures", name: "primary-aes", algorithm: "AES-256-GCM", key: Buffer.alloc(32, 9) }]);
    await assert.rejects(decrypt(message, { keyring: stranger }), (e: unknown) => {
      assert.ok(e instanceof EncryptionSdkError && e.code === "NoDataKey");
      assert.match(e.message, /fixtures\/primary-aes: the wrapped key does not authenticate/);
      assert.match(e.message, /fixtures\/backup-sm4: not in the keyring/);
      return true;
    });
  });

  it("a round trip across frame sizes and chunkings gives the plaintext back", async () => {
    const plaintext = fixturePlaintext(10_000);
    for (const suite of SUITE_NAMES) {
      for (const frameLength of [7, 333, 4096, 10_000, 65536]) {
        const { message } = await encrypt(plaintext, { keyring, suite, frameLength });
        // Feed the message in odd-sized pieces.
        const pieces: Buffer[] = [];
        for (let i = 0; i < message.length; i += 777) pieces.push(message.subarray(i, i + 777));
        const { plaintext: out } = await decrypt(Readable.from(pieces), { keyring });
        assert.deepEqual(out, plaintext, `${suite} frame ${frameLength}`);
      }
    }
  });
});
