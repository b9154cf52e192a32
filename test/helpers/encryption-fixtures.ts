// The known-answer fixtures of the Encryption SDK (test/vectors/encryption-sdk-v1.json): the raw
// keyring they were made with, and the generator. The fixtures use a RawKeyring with fixed,
// published test keys so that they decrypt offline, with no KMS and no data directory; the KMS
// keyring is covered by the multi-region test against real servers.
//
// Regenerate (only when the format changes, which needs a new format version anyway):
//   TRESOR_WRITE_ENCRYPTION_FIXTURES=1 node dist/test/helpers/encryption-fixtures.js

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { encrypt, RawKeyring, SUITE_NAMES, type RawKey, type SuiteName } from "../../src/sdk/encryption/index.js";

export const FIXTURES_FILE = fileURLToPath(new URL("../../../test/vectors/encryption-sdk-v1.json", import.meta.url));

/** Test keys only: published here, so they protect nothing. */
export const FIXTURE_KEYS: readonly RawKey[] = [
  { namespace: "fixtures", name: "primary-aes", algorithm: "AES-256-GCM", key: Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex") },
  { namespace: "fixtures", name: "backup-sm4", algorithm: "SM4-GCM", key: Buffer.from("f0e1d2c3b4a5968778695a4b3c2d1e0f", "hex") },
];

export const FIXTURE_FRAME_LENGTH = 64;
export const FIXTURE_CONTEXT = { purpose: "fixture", tenant: "acme" } as const;

export interface Fixture {
  suite: SuiteName;
  case: "empty" | "one-frame" | "many-frames" | "exact-multiple";
  frameLength: number;
  encryptionContext: Record<string, string>;
  plaintextHex: string;
  messageHex: string;
}

/** The plaintext of each case: a fixed byte pattern of the given length. */
export function fixturePlaintext(length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

export const FIXTURE_CASES: ReadonlyArray<{ name: Fixture["case"]; length: number }> = [
  { name: "empty", length: 0 },
  { name: "one-frame", length: 20 },
  { name: "many-frames", length: 200 },
  { name: "exact-multiple", length: 3 * FIXTURE_FRAME_LENGTH },
];

export async function makeFixtures(): Promise<Fixture[]> {
  const keyring = new RawKeyring(FIXTURE_KEYS);
  const out: Fixture[] = [];
  for (const suite of SUITE_NAMES) {
    for (const c of FIXTURE_CASES) {
      const plaintext = fixturePlaintext(c.length);
      const { message } = await encrypt(plaintext, { keyring, suite, frameLength: FIXTURE_FRAME_LENGTH, encryptionContext: FIXTURE_CONTEXT });
      out.push({
        suite,
        case: c.name,
        frameLength: FIXTURE_FRAME_LENGTH,
        encryptionContext: { ...FIXTURE_CONTEXT },
        plaintextHex: plaintext.toString("hex"),
        messageHex: message.toString("hex"),
      });
    }
  }
  return out;
}

if (process.env["TRESOR_WRITE_ENCRYPTION_FIXTURES"] === "1") {
  const fixtures = await makeFixtures();
  writeFileSync(FIXTURES_FILE, `${JSON.stringify({ format: 1, keys: "test/helpers/encryption-fixtures.ts FIXTURE_KEYS", fixtures }, null, 1)}\n`);
  process.stdout.write(`wrote ${fixtures.length} fixtures to ${FIXTURES_FILE}\n`);
}
