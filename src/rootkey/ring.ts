// Root keys by generation, so that the root key can be replaced while nodes serve (`tresor rootkey
// rotate`). A value wrapped by generation 0 (the root key `tresor init` made) keeps the format of
// its root of trust (0x01 file, 0x02 pkcs11); a later generation's value is 0x47 ('G') ||
// generation (4 bytes, big endian) || the value in its root's own format. Unwrap goes to the
// generation that wrapped the value, so values wrapped before, during and after a rotation all
// unwrap while it runs; wrap uses the current generation, which the ring asks its owner for (the
// store says which one it is) at most once per `currentTtlMs`.

import { RootOfTrustError, type HsmKeys, type RootOfTrust } from "./root-of-trust.js";

const GENERATION_MAGIC = 0x47;
const GENERATION_HEADER_LENGTH = 5;
export const MAX_GENERATION = 0xffff_ffff;

export interface RootKeyRingOptions {
  /** Opens the root key of a generation; throws when this node has no such generation. */
  load(generation: number): Promise<RootOfTrust>;
  /** The generation new values are wrapped with now. */
  currentGeneration(): Promise<number>;
  /** How long a current generation read is used before asking again (default 1000 ms). */
  currentTtlMs?: number;
  now?: () => number;
}

/** The generation that wrapped `wrapped` (0 for a value without the generation header). */
export function wrappedGeneration(wrapped: Buffer): number {
  if (wrapped.length >= GENERATION_HEADER_LENGTH && wrapped[0] === GENERATION_MAGIC) return wrapped.readUInt32BE(1);
  return 0;
}

export class RootKeyRing implements RootOfTrust {
  readonly #roots = new Map<number, Promise<RootOfTrust>>();
  readonly #options: RootKeyRingOptions;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #current: { generation: number; readAt: number };
  /** The generation this node started with: its description names the ring, its token holds the HSM keys. */
  readonly #first: RootOfTrust;
  #closed = false;

  /** `root` is generation `generation`'s root key, already open (the one the node started with). */
  constructor(generation: number, root: RootOfTrust, options: RootKeyRingOptions) {
    checkGeneration(generation);
    this.#options = options;
    this.#ttlMs = options.currentTtlMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#roots.set(generation, Promise.resolve(root));
    this.#current = { generation, readAt: this.#now() };
    this.#first = root;
  }

  get description(): string {
    return this.#first.description;
  }

  /** HSM-protected keys live in the token beside the root keys, whichever generation is current. */
  get hsmKeys(): HsmKeys | undefined {
    return this.#first.hsmKeys;
  }

  /** The generation wrap() used last (refreshed from the owner at most once per TTL). */
  get currentGeneration(): number {
    return this.#current.generation;
  }

  async wrap(plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    const generation = await this.#currentGeneration();
    const inner = await (await this.root(generation)).wrap(plaintext, aad);
    return withGeneration(generation, inner);
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    if (!Buffer.isBuffer(wrapped)) throw new TypeError(`"wrapped" must be a Buffer`);
    const generation = wrappedGeneration(wrapped);
    let root: RootOfTrust;
    try {
      root = await this.root(generation);
    } catch (err) {
      throw new RootOfTrustError(`the value was wrapped by root key generation ${generation}, which this node cannot open: ${(err as Error).message}`, { cause: err });
    }
    return root.unwrap(generation === 0 ? wrapped : wrapped.subarray(GENERATION_HEADER_LENGTH), aad);
  }

  /** Wraps with the root key of exactly `generation` (the rotation's rewrap). */
  async wrapWith(generation: number, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    return withGeneration(generation, await (await this.root(generation)).wrap(plaintext, aad));
  }

  /** The root key of a generation, opened once (concurrent callers share the opening). */
  root(generation: number): Promise<RootOfTrust> {
    checkGeneration(generation);
    let root = this.#roots.get(generation);
    if (root === undefined) {
      root = this.#options.load(generation);
      this.#roots.set(generation, root);
      // A failed opening is not remembered: the key may be there next time (a file copied in, a token back).
      root.catch(() => this.#roots.delete(generation));
    }
    return root;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const roots = [...this.#roots.values()];
    this.#roots.clear();
    for (const root of roots) await (await root.catch(() => undefined))?.close();
  }

  async #currentGeneration(): Promise<number> {
    const now = this.#now();
    if (now - this.#current.readAt < this.#ttlMs) return this.#current.generation;
    const generation = await this.#options.currentGeneration();
    checkGeneration(generation);
    this.#current = { generation, readAt: now };
    return generation;
  }

  #live(): void {
    if (this.#closed) throw new Error(`root of trust ${this.description} is closed`);
  }
}

function withGeneration(generation: number, inner: Buffer): Buffer {
  if (generation === 0) return inner;
  const header = Buffer.alloc(GENERATION_HEADER_LENGTH);
  header[0] = GENERATION_MAGIC;
  header.writeUInt32BE(generation, 1);
  return Buffer.concat([header, inner]);
}

function checkGeneration(generation: number): void {
  if (!Number.isSafeInteger(generation) || generation < 0 || generation > MAX_GENERATION) throw new RangeError(`"generation" must be an integer from 0 to ${MAX_GENERATION}`);
}
