// GHASH (NIST SP 800-38D, section 6.4) with 8-bit windows over one flat Uint32Array: for each of
// the 16 byte positions b and byte values v, T[b][v] = (v's bits at positions 8b..8b+7) · H, so a
// block's product with H is the XOR of 16 table rows. 64 KiB of table per hash key, built once,
// then about 16 lookups per block. Used by Sm4GcmKey for long messages (Encryption SDK frames),
// where @noble/ciphers' object-per-entry table measured several times slower.

const BLOCK = 16;
/** Uint32 words per table row (one 128-bit field element, big-endian words). */
const ROW = 4;
const TABLE_WORDS = BLOCK * 256 * ROW;

/** An incremental GHASH_H. Each update() is zero-padded to whole blocks, as GCM's A and C are. */
export class Ghash {
  readonly #t = new Int32Array(TABLE_WORDS);
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #destroyed = false;

  constructor(h: Uint8Array) {
    if (!(h instanceof Uint8Array) || h.length !== BLOCK) throw new RangeError(`"h" must be ${BLOCK} bytes`);
    // P = x^k · H for k = 0..127: multiplying by x is a right shift of the big-endian value, with
    // R = 0xe1 || 0^120 folded in when a bit falls off the end.
    let v0 = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
    let v1 = ((h[4]! << 24) | (h[5]! << 16) | (h[6]! << 8) | h[7]!) >>> 0;
    let v2 = ((h[8]! << 24) | (h[9]! << 16) | (h[10]! << 8) | h[11]!) >>> 0;
    let v3 = ((h[12]! << 24) | (h[13]! << 16) | (h[14]! << 8) | h[15]!) >>> 0;
    const t = this.#t;
    for (let k = 0; k < 128; k++) {
      // Bit k of a block is bit (7 - k % 8) of byte k / 8: the row for that single bit set.
      const at = ((k >>> 3) * 256 + (0x80 >>> (k & 7))) * ROW;
      t[at] = v0;
      t[at + 1] = v1;
      t[at + 2] = v2;
      t[at + 3] = v3;
      const carry = v3 & 1;
      v3 = ((v3 >>> 1) | (v2 << 31)) >>> 0;
      v2 = ((v2 >>> 1) | (v1 << 31)) >>> 0;
      v1 = ((v1 >>> 1) | (v0 << 31)) >>> 0;
      v0 = ((v0 >>> 1) ^ (carry ? 0xe1000000 : 0)) >>> 0;
    }
    v0 = v1 = v2 = v3 = 0;
    // Every other row is the XOR of its highest set bit's row and the rest (linearity).
    for (let b = 0; b < BLOCK; b++) {
      const base = b * 256;
      for (let v = 3; v < 256; v++) {
        const high = 1 << (31 - Math.clz32(v));
        if (high === v) continue;
        const at = (base + v) * ROW;
        const x = (base + high) * ROW;
        const y = (base + (v ^ high)) * ROW;
        t[at] = t[x]! ^ t[y]!;
        t[at + 1] = t[x + 1]! ^ t[y + 1]!;
        t[at + 2] = t[x + 2]! ^ t[y + 2]!;
        t[at + 3] = t[x + 3]! ^ t[y + 3]!;
      }
    }
  }

  reset(): this {
    this.#s0 = this.#s1 = this.#s2 = this.#s3 = 0;
    return this;
  }

  update(data: Uint8Array): this {
    if (this.#destroyed) throw new Error("Ghash: used after destroy()");
    const t = this.#t;
    let s0 = this.#s0;
    let s1 = this.#s1;
    let s2 = this.#s2;
    let s3 = this.#s3;
    const whole = data.length - (data.length % BLOCK);
    let o = 0;
    let end = whole;
    let d = data;
    let pad: Uint8Array | undefined;
    for (;;) {
      if (o >= end) {
        if (pad !== undefined || whole === data.length) break;
        // The partial last block, zero-padded.
        pad = new Uint8Array(BLOCK);
        pad.set(data.subarray(whole));
        d = pad;
        o = 0;
        end = BLOCK;
      }
      const y0 = s0 ^ ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!);
      const y1 = s1 ^ ((d[o + 4]! << 24) | (d[o + 5]! << 16) | (d[o + 6]! << 8) | d[o + 7]!);
      const y2 = s2 ^ ((d[o + 8]! << 24) | (d[o + 9]! << 16) | (d[o + 10]! << 8) | d[o + 11]!);
      const y3 = s3 ^ ((d[o + 12]! << 24) | (d[o + 13]! << 16) | (d[o + 14]! << 8) | d[o + 15]!);
      o += BLOCK;
      let i: number;
      // Row of byte position b and value v: (b * 256 + v) * 4 = b * 1024 + v * 4.
      i = ((y0 >>> 24) & 255) << 2;
      let z0 = t[i]!, z1 = t[i + 1]!, z2 = t[i + 2]!, z3 = t[i + 3]!;
      i = 1024 + (((y0 >>> 16) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 2048 + (((y0 >>> 8) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 3072 + ((y0 & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 4096 + (((y1 >>> 24) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 5120 + (((y1 >>> 16) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 6144 + (((y1 >>> 8) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 7168 + ((y1 & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 8192 + (((y2 >>> 24) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 9216 + (((y2 >>> 16) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 10240 + (((y2 >>> 8) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 11264 + ((y2 & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 12288 + (((y3 >>> 24) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 13312 + (((y3 >>> 16) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 14336 + (((y3 >>> 8) & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      i = 15360 + ((y3 & 255) << 2);
      z0 ^= t[i]!; z1 ^= t[i + 1]!; z2 ^= t[i + 2]!; z3 ^= t[i + 3]!;
      s0 = z0;
      s1 = z1;
      s2 = z2;
      s3 = z3;
    }
    pad?.fill(0);
    this.#s0 = s0;
    this.#s1 = s1;
    this.#s2 = s2;
    this.#s3 = s3;
    return this;
  }

  /** Writes the 16-byte hash into `out` and resets the state for the next message. */
  digestInto(out: Uint8Array): void {
    if (this.#destroyed) throw new Error("Ghash: used after destroy()");
    const words = [this.#s0, this.#s1, this.#s2, this.#s3];
    for (let w = 0; w < 4; w++) {
      const v = words[w]!;
      out[w * 4] = v >>> 24;
      out[w * 4 + 1] = v >>> 16;
      out[w * 4 + 2] = v >>> 8;
      out[w * 4 + 3] = v;
    }
    this.reset();
  }

  /** Wipes the H-derived table and the state; the object is unusable after. */
  destroy(): void {
    this.#destroyed = true;
    this.#t.fill(0);
    this.reset();
  }
}
