// Unwrapped key material, held as prepared keys (AEAD keys, asymmetric private-key handles), cached for a bounded time and count so hot
// keys skip the root of trust and the per-key set-up. Entries are destroyed (wiped) when evicted;
// nothing here is ever written anywhere.

/** A prepared key: opaque, and wiped by destroy(). */
export interface Destroyable {
  destroy(): void;
}

export interface MaterialCacheOptions {
  maxEntries: number;
  ttlMs: number;
}

interface Entry<T> {
  key: T;
  expiresAt: number;
}

export class MaterialCache<T extends Destroyable> {
  readonly #entries = new Map<string, Entry<T>>();

  constructor(
    private readonly options: MaterialCacheOptions,
    private readonly now: () => number,
  ) {}

  /** Lookups that found a live entry, and those that did not (for the metrics). */
  hits = 0;
  misses = 0;

  get(id: string): T | undefined {
    const entry = this.#entries.get(id);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    if (entry.expiresAt <= this.now()) {
      this.#evict(id, entry);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return entry.key;
  }

  /** Takes ownership of `key`: the cache destroys it on eviction. */
  set(id: string, key: T): void {
    const existing = this.#entries.get(id);
    if (existing) this.#evict(id, existing);
    while (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.entries().next().value;
      if (!oldest) break;
      this.#evict(oldest[0], oldest[1]);
    }
    this.#entries.set(id, { key, expiresAt: this.now() + this.options.ttlMs });
  }

  /** Destroys every entry whose id starts with `prefix` (a key's versions: "keyId/"). */
  dropPrefix(prefix: string): void {
    for (const [id, entry] of this.#entries) if (id.startsWith(prefix)) this.#evict(id, entry);
  }

  clear(): void {
    for (const [id, entry] of this.#entries) this.#evict(id, entry);
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(id: string, entry: Entry<T>): void {
    this.#entries.delete(id);
    entry.key.destroy();
  }
}
