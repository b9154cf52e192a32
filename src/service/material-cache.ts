// Unwrapped key material, cached for a bounded time and count so hot keys skip the root of trust.
// Entries are wiped when evicted; nothing here is ever written anywhere.

export interface MaterialCacheOptions {
  maxEntries: number;
  ttlMs: number;
}

interface Entry {
  material: Buffer;
  expiresAt: number;
}

export class MaterialCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly options: MaterialCacheOptions,
    private readonly now: () => number,
  ) {}

  get(id: string): Buffer | undefined {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.#evict(id, entry);
      return undefined;
    }
    return entry.material;
  }

  /** Takes ownership of `material`: the cache wipes it on eviction. */
  set(id: string, material: Buffer): void {
    const existing = this.#entries.get(id);
    if (existing) this.#evict(id, existing);
    while (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.entries().next().value;
      if (!oldest) break;
      this.#evict(oldest[0], oldest[1]);
    }
    this.#entries.set(id, { material, expiresAt: this.now() + this.options.ttlMs });
  }

  clear(): void {
    for (const [id, entry] of this.#entries) this.#evict(id, entry);
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(id: string, entry: Entry): void {
    this.#entries.delete(id);
    entry.material.fill(0);
  }
}
