// RootKeyRing: values name the root key generation that wrapped them; unwrap goes there, wrap uses
// the current generation as the owner reports it (looked up at most once per TTL).

import assert from "node:assert/strict";
import { generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FileRootOfTrust } from "../../src/rootkey/file.js";
import { ecdsaRawToDer } from "../../src/rootkey/pkcs11.js";
import { RootKeyRing, wrappedGeneration } from "../../src/rootkey/ring.js";
import { keyMaterialAad, RootOfTrustError, type RootOfTrust } from "../../src/rootkey/root-of-trust.js";

const aad = keyMaterialAad("0b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 1);
const secret = Buffer.from("thirty-two bytes of key material");

describe("RootKeyRing", () => {
  let dir: string;
  let roots: FileRootOfTrust[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tresor-ring-"));
    roots = [];
    for (let g = 0; g < 3; g++) roots.push(await FileRootOfTrust.create(join(dir, `root.${g}`)));
  });
  after(async () => {
    for (const r of roots) await r.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A ring whose roots stay open after it closes (the test owns them). */
  function ringOf(start: number, current: { value: number }, now: { ms: number }, loads: number[]): RootKeyRing {
    const borrowed = (root: RootOfTrust): RootOfTrust => ({ description: root.description, wrap: (p, a) => root.wrap(p, a), unwrap: (w, a) => root.unwrap(w, a), close: async () => {} });
    return new RootKeyRing(start, borrowed(roots[start]!), {
      load: async (g) => {
        loads.push(g);
        const root = roots[g];
        if (root === undefined) throw new Error(`no generation ${g} here`);
        return borrowed(root);
      },
      currentGeneration: async () => current.value,
      currentTtlMs: 1000,
      now: () => now.ms,
    });
  }

  it("keeps generation 0's format, prefixes later generations, and unwraps each with its own key", async () => {
    const current = { value: 0 };
    const now = { ms: 0 };
    const loads: number[] = [];
    const ring = ringOf(0, current, now, loads);
    const g0 = await ring.wrap(secret, aad);
    assert.equal(g0[0], 0x01, "generation 0 is the file root's own format");
    assert.equal(wrappedGeneration(g0), 0);
    current.value = 1;
    assert.equal(wrappedGeneration(await ring.wrap(secret, aad)), 0, "the current generation is asked again only after the TTL");
    now.ms = 1001;
    const g1 = await ring.wrap(secret, aad);
    assert.deepEqual([...g1.subarray(0, 5)], [0x47, 0, 0, 0, 1]);
    assert.equal(wrappedGeneration(g1), 1);
    assert.deepEqual(await ring.unwrap(g0, aad), secret);
    assert.deepEqual(await ring.unwrap(g1, aad), secret);
    assert.deepEqual(loads, [1], "generation 1 opened once");
    // The generation header is not a way around authentication: another generation's key refuses.
    const moved = Buffer.from(g1);
    moved.writeUInt32BE(2, 1);
    await assert.rejects(ring.unwrap(moved, aad), RootOfTrustError);
    await assert.rejects(ring.unwrap(g1, keyMaterialAad("0b8f2a1e-6c3d-4e5f-9a7b-1c2d3e4f5a6b", 2)), RootOfTrustError);
    // A generation this node cannot open is a RootOfTrustError naming it, and is tried again next time.
    const unknown = Buffer.from(g1);
    unknown.writeUInt32BE(7, 1);
    await assert.rejects(ring.unwrap(unknown, aad), /generation 7/);
    await assert.rejects(ring.unwrap(unknown, aad), RootOfTrustError);
    assert.deepEqual(loads, [1, 2, 7, 7]);
    assert.deepEqual(await ring.wrapWith(2, secret, aad).then((w) => ring.unwrap(w, aad)), secret);
    await ring.close();
    await assert.rejects(ring.wrap(secret, aad), /closed/);
  });
});

describe("ecdsaRawToDer", () => {
  it("turns PKCS#11's r || s into the DER that node:crypto verifies (P-256 and P-384)", () => {
    for (const namedCurve of ["P-256", "P-384"]) {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve });
      for (let i = 0; i < 50; i++) {
        const message = Buffer.from(`message ${i}`);
        const raw = sign(namedCurve === "P-256" ? "sha256" : "sha384", message, { key: privateKey, dsaEncoding: "ieee-p1363" });
        const der = ecdsaRawToDer(raw);
        assert.ok(verify(namedCurve === "P-256" ? "sha256" : "sha384", message, { key: publicKey, dsaEncoding: "der" }, der), `${namedCurve} #${i}`);
      }
    }
  });

  it("drops leading zeros and adds one before a set high bit, as DER INTEGERs need", () => {
    const raw = Buffer.concat([Buffer.from("00007f" + "11".repeat(29), "hex"), Buffer.from("80" + "22".repeat(31), "hex")]);
    const der = ecdsaRawToDer(raw);
    // SEQUENCE (67 bytes) { INTEGER 7f11…(30 bytes), INTEGER 00 80 22…(33 bytes) }
    assert.equal(der.toString("hex"), "3043" + "021e7f" + "11".repeat(29) + "022100" + "80" + "22".repeat(31));
    assert.throws(() => ecdsaRawToDer(Buffer.alloc(3)), RangeError);
  });
});
