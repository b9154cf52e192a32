// HMAC (RFC 2104) with SHA-256/384/512 (RFC 4231 vectors) and SM3 (GB/T 32905's hash), through
// node:crypto. Verification compares in constant time.

import { createHmac, timingSafeEqual } from "node:crypto";

export type HmacHash = "sha256" | "sha384" | "sha512" | "sm3";

/** An HMAC key prepared for use; `destroy()` wipes the copy it holds. */
export class HmacKey {
  readonly hash: HmacHash;
  readonly #key: Buffer;
  #destroyed = false;

  /** Copies `key`; the caller may wipe it afterwards. */
  constructor(hash: HmacHash, key: Buffer) {
    if (!(key instanceof Uint8Array) || key.length === 0) throw new RangeError(`"key" must be a non-empty Buffer`);
    this.hash = hash;
    this.#key = Buffer.from(key);
  }

  mac(message: Buffer): Buffer {
    if (this.#destroyed) throw new Error("HMAC key: used after destroy()");
    return createHmac(this.hash, this.#key).update(message).digest();
  }

  /** Constant-time in the MAC's bytes; a MAC of another length is simply false. */
  verify(message: Buffer, mac: Buffer): boolean {
    const expected = this.mac(message);
    return expected.length === mac.length && timingSafeEqual(expected, mac);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#key.fill(0);
  }
}
