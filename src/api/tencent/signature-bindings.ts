// Binds a request signature to the first action it was accepted with. The official SDKs sign only
// content-type and host, so X-TC-Action is not covered by their signatures: without this a
// captured request could be re-sent, within its validity window, as any other action of the same
// product whose parameters its body fits (a ReEncrypt as a Decrypt, a DescribeKey as a
// DeleteImportedKeyMaterial). Requests that sign x-tc-action never need an entry here.

/** How a table entry is named: the signature's first 16 bytes, as a fresh 16-character string. */
function entryKey(signatureHex: string): string {
  return Buffer.from(signatureHex.slice(0, 32), "hex").toString("latin1");
}

export type BindingOutcome =
  /** First use of the signature: it is now bound to this action. */
  | { bound: true; evicted: number }
  /** The signature was already used, with this same action (a retry or a replay of it). */
  | { bound: false; sameAction: true }
  /** The signature was already used with another action: refuse. */
  | { bound: false; sameAction: false; firstAction: string };

/**
 * Where bindings are kept: this process's own table, or (a worker of `tresor serve --workers N`)
 * the supervisor's one table for every worker of the host, reached over IPC (src/node/workers.ts).
 */
export interface SignatureBinder {
  bind(signatureHex: string, timestamp: number, action: string, nowSeconds: number): BindingOutcome | Promise<BindingOutcome>;
}

/**
 * Signatures are grouped by their X-TC-Timestamp: a signature stays valid only while its timestamp
 * is within `windowSeconds` of the server's clock, so a whole group is forgotten at once when its
 * timestamp leaves the window, and a lookup reads one group. At `maxEntries` the groups with the
 * oldest timestamps (closest to expiring anyway) are dropped first: memory stays bounded, and an
 * honest client is never refused because the table is full.
 */
export class SignatureBindings implements SignatureBinder {
  readonly #groups = new Map<number, Map<string, string>>();
  #size = 0;
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly maxEntries: number,
    private readonly windowSeconds: number,
  ) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`"maxEntries" must be a positive integer`);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Binds `signatureHex` (of a request with X-TC-Timestamp `timestamp`) to `action`, or says which
   * action it is already bound to. `action` should be an interned string (a catalogue name): the
   * table keeps a reference to it.
   */
  bind(signatureHex: string, timestamp: number, action: string, nowSeconds: number): BindingOutcome {
    this.#sweep(nowSeconds);
    const key = entryKey(signatureHex);
    let group = this.#groups.get(timestamp);
    const first = group?.get(key);
    if (first !== undefined) return first === action ? { bound: false, sameAction: true } : { bound: false, sameAction: false, firstAction: first };
    const evicted = this.#makeRoom(timestamp);
    if (group === undefined || !this.#groups.has(timestamp)) {
      group = new Map();
      this.#groups.set(timestamp, group);
    }
    group.set(key, action);
    this.#size++;
    return { bound: true, evicted };
  }

  /** Forgets the groups whose timestamps have left the window; at most once per second. */
  #sweep(nowSeconds: number): void {
    if (nowSeconds === this.#sweptAt) return;
    this.#sweptAt = nowSeconds;
    for (const [timestamp, group] of this.#groups) {
      if (timestamp < nowSeconds - this.windowSeconds) {
        this.#size -= group.size;
        this.#groups.delete(timestamp);
      }
    }
  }

  /** Drops whole groups, oldest timestamp first, until one more entry fits; how many entries went. */
  #makeRoom(incoming: number): number {
    let evicted = 0;
    while (this.#size >= this.maxEntries) {
      let oldest: number | undefined;
      for (const timestamp of this.#groups.keys()) if (oldest === undefined || timestamp < oldest) oldest = timestamp;
      if (oldest === undefined) break;
      const group = this.#groups.get(oldest)!;
      if (oldest === incoming || group.size === 0) {
        // Only the incoming request's own group is left: drop its oldest entries one by one.
        const first = group.keys().next();
        if (first.done) {
          this.#groups.delete(oldest);
          continue;
        }
        group.delete(first.value);
        this.#size--;
        evicted++;
        continue;
      }
      this.#size -= group.size;
      evicted += group.size;
      this.#groups.delete(oldest);
    }
    return evicted;
  }
}
