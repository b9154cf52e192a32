// The project's randomBytes: OpenSSL's CSPRNG, small requests served from a pool.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../../src/crypto/random.js";

describe("randomBytes", () => {
  it("returns exactly the length asked for, pooled or not, and refuses bad lengths", () => {
    for (const length of [0, 1, 12, 32, 255, 256, 257, 4096, 5000]) assert.equal(randomBytes(length).length, length);
    for (const bad of [-1, 1.5, Number.NaN]) assert.throws(() => randomBytes(bad), /"length" must be a non-negative integer/);
  });

  it("never hands out the same bytes twice, across many refills of the pool", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) seen.add(randomBytes(12 + (i % 5)).toString("hex"));
    assert.equal(seen.size, 50_000);
  });

  it("gives each caller a buffer of its own: wiping one changes no other", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const copy = Buffer.from(b);
    a.fill(0);
    assert.deepEqual(b, copy);
    assert.notDeepEqual(copy, Buffer.alloc(32));
  });

  it("draws bytes that look uniform (chi-squared over 1,000,000 bytes, 255 degrees of freedom)", () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 1_000_000 / 50; i++) for (const byte of randomBytes(50)) counts[byte]!++;
    const expected = 1_000_000 / 256;
    const chi2 = counts.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
    // The 1e-6 tails of chi-squared with 255 degrees of freedom are about 150 and 375.
    assert.ok(chi2 > 150 && chi2 < 375, `chi-squared ${chi2.toFixed(1)}`);
  });
});
