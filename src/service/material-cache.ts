// Unwrapped key material, held as prepared AEAD keys, cached for a bounded time and count so hot
// keys skip the root of trust and the per-key set-up. Entries are destroyed (wiped) when evicted;
// nothing here is ever written anywhere.

import type { AeadKey } from "../crypto/aead.js";

export interface MaterialCacheOptions {
  maxEntries: number;
  ttlMs: number;
}

interface Entry {
  key: AeadKey;
  expiresAt: number;
}

export class MaterialCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly options: MaterialCacheOptions,
    private readonly now: () => number,
  ) {}

  get(id: string): AeadKey | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.#evict(id, entry);
      return undefined;
    }
    return entry.key;
  }

  /** Takes ownership of `key`: the cache destroys it on eviction. */
  set(id: string, key: AeadKey): void {
    const existing = this.#entries.get(id);
    if (existing) this.#evict(id, existing);
    while (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.entries().next().value;
      if (!oldest) break;
      this.#evict(oldest[0], oldest[1]);
    }
    this.#entries.set(id, { key, expiresAt: this.now() + this.options.ttlMs });
  }

  clear(): void {
    for (const [id, entry] of this.#entries) this.#evict(id, entry);
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(id: string, entry: Entry): void {
    this.#entries.delete(id);
    entry.key.destroy();
  }
}
