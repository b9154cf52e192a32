// The opt-in worker-thread path gives the same messages' plaintexts back, interoperates with the
// sequential path, and still releases nothing of a frame that fails, nor anything after it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decrypt, decryptStream, encrypt, EncryptionSdkError, RawKeyring, SUITE_NAMES } from "../../../src/sdk/encryption/index.js";
import { fixturePlaintext } from "../../helpers/encryption-fixtures.js";

const keyring = new RawKeyring([{ name: "p", algorithm: "SM4-GCM", key: Buffer.alloc(16, 3) }]);
const plaintext = fixturePlaintext(20 * 4096 + 100);

describe("parallel frames (worker threads)", () => {
  for (const suite of SUITE_NAMES) {
    it(`${suite}: parallel and sequential interoperate`, async () => {
      const a = await encrypt(plaintext, { keyring, suite, frameLength: 4096, parallel: true });
      const b = await encrypt(plaintext, { keyring, suite, frameLength: 4096 });
      assert.deepEqual((await decrypt(a.message, { keyring })).plaintext, plaintext);
      assert.deepEqual((await decrypt(b.message, { keyring, parallel: true })).plaintext, plaintext);
      assert.deepEqual((await decrypt(a.message, { keyring, parallel: true })).plaintext, plaintext);
    });
  }

  it("a corrupt frame in the middle releases only the frames before it", async () => {
    const { message } = await encrypt(plaintext, { keyring, suite: "SM4_CTR_HMAC_SM3", frameLength: 4096 });
    const frameStart = (n: number): number => message.length - (16 + 100 + 16) - (21 - n) * (4 + 4096 + 16);
    // Neighbouring frames: one is opened on a worker, the other on the calling thread (its share).
    for (const bad of [9, 10]) {
      const damaged = Buffer.from(message);
      damaged[frameStart(bad) + 100]! ^= 1; // inside that frame's ciphertext
      const released: Buffer[] = [];
      await assert.rejects(
        pipeline(Readable.from([damaged]), decryptStream({ keyring, parallel: true }), new Writable({ write: (c: Buffer, _e, cb) => (released.push(c), cb()) })),
        (e: unknown) => e instanceof EncryptionSdkError && e.code === "AuthenticationFailed",
      );
      assert.deepEqual(Buffer.concat(released), plaintext.subarray(0, (bad - 1) * 4096), `frame ${bad}`);
    }
  });
});
