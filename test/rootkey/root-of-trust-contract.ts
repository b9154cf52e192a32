// The contract every RootOfTrust implementation passes (file now, PKCS#11 later). It assumes only
// what the port promises, plus one layout rule: a wrapped value starts with a format byte.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { accessKeySecretAad, keyMaterialAad, RootOfTrustError, type RootOfTrust } from "../../src/rootkey/root-of-trust.js";

export interface RootOfTrustFixture {
  rot: RootOfTrust;
  /** The raw key, when the implementation can know it (a file can; an HSM key cannot). */
  keyBytes?: Buffer;
  /** Closes `rot` and opens the same root key again. */
  reopen?: () => Promise<RootOfTrust>;
  cleanup: () => Promise<void>;
}

export function rootOfTrustContract(name: string, open: () => Promise<RootOfTrustFixture>): void {
  async function withRot(fn: (f: RootOfTrustFixture) => Promise<void>): Promise<void> {
    const fixture = await open();
    try {
      await fn(fixture);
    } finally {
      await fixture.cleanup();
    }
  }

  const aad = keyMaterialAad("0b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 1);
  const plaintext = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");

  async function assertRejected(rot: RootOfTrust, wrapped: Buffer, withAad: Buffer, what: string): Promise<void> {
    await assert.rejects(rot.unwrap(wrapped, withAad), RootOfTrustError, what);
  }

  describe(`RootOfTrust contract: ${name}`, () => {
    it("round-trips, returning a fresh Buffer and leaving the inputs unchanged", () =>
      withRot(async ({ rot }) => {
        const input = Buffer.from(plaintext);
        const aadCopy = Buffer.from(aad);
        const wrapped = await rot.wrap(input, aadCopy);
        assert.ok(Buffer.isBuffer(wrapped));
        assert.deepEqual(input, plaintext);
        assert.deepEqual(aadCopy, aad);
        assert.equal(wrapped.includes(plaintext), false, "the plaintext must not appear in the wrapped value");
        const unwrapped = await rot.unwrap(wrapped, aad);
        assert.ok(Buffer.isBuffer(unwrapped));
        assert.deepEqual(unwrapped, plaintext);
        unwrapped.fill(0);
        assert.deepEqual(await rot.unwrap(wrapped, aad), plaintext, "the result must not alias internal state");
      }));

    it("round-trips an empty plaintext, an empty AAD and a large plaintext", () =>
      withRot(async ({ rot }) => {
        const empty = await rot.wrap(Buffer.alloc(0), aad);
        assert.deepEqual(await rot.unwrap(empty, aad), Buffer.alloc(0));
        await assertRejected(rot, empty, accessKeySecretAad("AKIDx"), "an empty plaintext is still bound to its AAD");

        const noAad = await rot.wrap(plaintext, Buffer.alloc(0));
        assert.deepEqual(await rot.unwrap(noAad, Buffer.alloc(0)), plaintext);

        const large = Buffer.alloc(64 * 1024, 0xa5);
        assert.deepEqual(await rot.unwrap(await rot.wrap(large, aad), aad), large);
      }));

    it("uses a fresh IV for every wrap: wrapping the same input twice gives different outputs", () =>
      withRot(async ({ rot }) => {
        const seen = new Set<string>();
        for (let i = 0; i < 32; i++) seen.add((await rot.wrap(plaintext, aad)).toString("hex"));
        assert.equal(seen.size, 32);
      }));

    it("rejects a flipped bit anywhere in the wrapped value", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        for (let byte = 0; byte < wrapped.length; byte++) {
          for (let bit = 0; bit < 8; bit++) {
            const tampered = Buffer.from(wrapped);
            tampered[byte] = tampered[byte]! ^ (1 << bit);
            await assertRejected(rot, tampered, aad, `bit ${bit} of byte ${byte} flipped`);
          }
        }
        assert.deepEqual(await rot.unwrap(wrapped, aad), plaintext, "the original still unwraps");
      }));

    it("rejects the wrong authenticated data", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        await assertRejected(rot, wrapped, keyMaterialAad("0b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 2), "another version");
        await assertRejected(rot, wrapped, keyMaterialAad("1b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 1), "another key");
        await assertRejected(rot, wrapped, Buffer.alloc(0), "no AAD");
        await assertRejected(rot, wrapped, Buffer.concat([aad, Buffer.of(0)]), "AAD with a byte appended");
        await assertRejected(rot, wrapped, aad.subarray(0, aad.length - 1), "truncated AAD");
        for (let byte = 0; byte < aad.length; byte++) {
          const other = Buffer.from(aad);
          other[byte] = other[byte]! ^ 0x01;
          await assertRejected(rot, wrapped, other, `AAD byte ${byte} changed`);
        }
      }));

    it("rejects truncated and extended input", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        for (let length = 0; length < wrapped.length; length++) {
          await assertRejected(rot, wrapped.subarray(0, length), aad, `first ${length} bytes`);
          await assertRejected(rot, wrapped.subarray(wrapped.length - length), aad, `last ${length} bytes`);
        }
        await assertRejected(rot, Buffer.concat([wrapped, Buffer.of(0)]), aad, "a byte appended");
      }));

    it("rejects an unknown format byte", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        for (const format of [0x00, 0x7f, 0xff]) {
          if (format === wrapped[0]) continue;
          const other = Buffer.from(wrapped);
          other[0] = format;
          await assertRejected(rot, other, aad, `format byte 0x${format.toString(16)}`);
        }
      }));

    it("gives failures a message that says nothing about the input", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        const messages = new Set<string>();
        const failures = [Buffer.from(wrapped).fill(0, 0, 1), wrapped.subarray(0, 5), Buffer.concat([wrapped, Buffer.of(1)])];
        for (const bad of failures) {
          await rot.unwrap(bad, aad).then(
            () => assert.fail("unwrap must fail"),
            (err: unknown) => {
              assert.ok(err instanceof RootOfTrustError);
              messages.add(err.message);
            },
          );
        }
        await rot.unwrap(wrapped, Buffer.alloc(0)).catch((err: Error) => messages.add(err.message));
        assert.equal(messages.size, 1, `one message for every failure, got ${[...messages].join(" | ")}`);
        const [message] = messages;
        assert.equal(message?.includes(wrapped.toString("hex").slice(0, 8)), false);
      }));

    it("has a short description free of key material, also when inspected or serialised", (t) =>
      withRot(async ({ rot, keyBytes }) => {
        assert.equal(typeof rot.description, "string");
        assert.ok(rot.description.length > 0 && rot.description.length < 512);
        if (keyBytes === undefined) {
          t.diagnostic("key bytes are not known to this implementation; only the shape is checked");
          return;
        }
        const shown = [rot.description, inspect(rot, { showHidden: true, depth: Infinity }), JSON.stringify(rot) ?? "", String(rot)];
        const forms = [keyBytes.toString("hex"), keyBytes.toString("base64"), keyBytes.toString("base64url"), keyBytes.toString("latin1")];
        // As util.inspect prints a Buffer ("<Buffer 0a 1b ...>") and as an array of numbers.
        const spacedHex = keyBytes.toString("hex").replace(/(..)(?!$)/g, "$1 ");
        const numbers = [[...keyBytes].join(","), [...keyBytes].join(", ")];
        for (const text of shown) {
          for (const form of [...forms, spacedHex, ...numbers]) assert.equal(text.toLowerCase().includes(form.toLowerCase()), false, `key bytes in ${text}`);
        }
      }));

    it("refuses to wrap or unwrap after close", () =>
      withRot(async ({ rot }) => {
        const wrapped = await rot.wrap(plaintext, aad);
        await rot.close();
        await assert.rejects(rot.wrap(plaintext, aad));
        await assert.rejects(rot.unwrap(wrapped, aad));
        await rot.close();
      }));

    it("unwraps after reopening what it wrapped before", (t) =>
      withRot(async ({ rot, reopen }) => {
        if (reopen === undefined) {
          t.skip("this fixture cannot reopen its root key");
          return;
        }
        const wrapped = await rot.wrap(plaintext, aad);
        const again = await reopen();
        assert.deepEqual(await again.unwrap(wrapped, aad), plaintext);
        await assertRejected(again, wrapped, accessKeySecretAad("AKID"), "the AAD still binds after reopening");
      }));
  });
}
