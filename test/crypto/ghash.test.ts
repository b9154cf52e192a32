// The flat-table GHASH (src/crypto/ghash.ts) equals @noble/ciphers' GHASH for random keys and
// random segmentations, each update zero-padded to whole blocks; it resets after a digest and
// refuses use after destroy().
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { GHASH } from "@noble/ciphers/_polyval.js";
import { Ghash } from "../../src/crypto/ghash.js";

describe("Ghash (8-bit windows, flat table)", () => {
  it("agrees with @noble/ciphers for random keys and segmentations", () => {
    for (let trial = 0; trial < 200; trial++) {
      const h = randomBytes(16);
      const reference = new GHASH(h, 4096);
      const ours = new Ghash(h);
      const lengths = Array.from({ length: 1 + (trial % 4) }, (_, i) => (trial * 7 + i * 13) % 97);
      for (const n of lengths) {
        const part = randomBytes(n);
        reference.update(part);
        ours.update(part);
      }
      const out = Buffer.alloc(16);
      ours.digestInto(out);
      assert.deepEqual(out, Buffer.from(reference.digest()), `trial ${trial}, lengths ${lengths.join(",")}`);
    }
  });

  it("resets after a digest, and is unusable after destroy()", () => {
    const h = randomBytes(16);
    const data = randomBytes(1000);
    const g = new Ghash(h);
    const a = Buffer.alloc(16);
    const b = Buffer.alloc(16);
    g.update(data).digestInto(a);
    g.update(data).digestInto(b);
    assert.deepEqual(a, b);
    g.destroy();
    assert.throws(() => g.update(data), /destroy/);
  });
});
