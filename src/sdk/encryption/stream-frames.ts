// What the encrypting and decrypting streams share: the byte queue over received chunks, output
// kept in message order while frames are sealed or opened on workers, and the "header" event.

import { needs } from "./errors.js";
import type { ContextPairs, Header } from "./format.js";
import { poolSize } from "./parallel.js";
import { RESERVED_CONTEXT_PREFIX, type SuiteName } from "./suites.js";

/** Frames below this size stay on the calling thread: a worker round trip would cost more. */
export const PARALLEL_MIN_FRAME = 4096;
/** The worker pool starts with a message's second regular frame, so short messages never pay for it. */
export const PARALLEL_FROM_SEQ = 2;

/** With workers, frame seq is sealed or opened on the calling thread when this holds: one share of poolSize() + 1. */
export function onThisThread(seq: number): boolean {
  return seq % (poolSize() + 1) === 0;
}

/** Frames in flight at once: enough to keep every worker busy, and at most about 16 MiB. */
export function maxInFlight(frameLength: number): number {
  return Math.max(2, Math.min(4 * poolSize(), Math.floor((16 * 1024 * 1024) / frameLength)));
}

/**
 * Output in message order, whether a frame was done here (at once) or on a worker (later). A
 * rejected entry surfaces, in order, from drain(); entries behind it are never emitted.
 */
export class OrderedOutput<T> {
  readonly #pending: Array<Promise<T>> = [];
  constructor(readonly emit: (item: T) => void) {}
  get length(): number {
    return this.#pending.length;
  }
  add(item: T | Promise<T>): void {
    if (!(item instanceof Promise) && this.#pending.length === 0) {
      this.emit(item);
      return;
    }
    const p = Promise.resolve(item);
    p.catch(() => undefined); // surfaced by drain()
    this.#pending.push(p);
  }
  async drain(max: number): Promise<void> {
    while (this.#pending.length > max) {
      // Awaited in place, so that add() keeps queueing behind it; only then taken off.
      const item = await this.#pending[0]!;
      void this.#pending.shift();
      this.emit(item);
    }
  }
}

/** What the header told: emitted as the "header" event of both streams. */
export interface MessageInfo {
  suite: SuiteName;
  messageId: Buffer;
  /** The caller's pairs (reserved "tresor:" pairs left out). */
  encryptionContext: Record<string, string>;
  frameLength: number;
  encryptedDataKeys: ReadonlyArray<{ provider: string; region: string; keyId: string }>;
  /** Decryption only: the encrypted copy of the data key that was used. */
  decryptedWith?: { provider: string; region: string; keyId: string };
}

/** Byte queue over the received chunks: takes without copying when a piece lies inside one chunk. */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #offset = 0;
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.length += b.length;
  }

  take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length - this.#offset, n - filled);
      c.copy(out, filled, this.#offset, this.#offset + k);
      filled += k;
      this.#advance(c, k);
    }
    return out;
  }

  /** The next n bytes as views of the received chunks, in order: no copy. */
  takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length - this.#offset, left);
      out.push(c.subarray(this.#offset, this.#offset + k));
      left -= k;
      this.#advance(c, k);
    }
    return out;
  }

  /** A copy of the first min(n, length) bytes. */
  peek(n: number): Buffer {
    const size = Math.min(n, this.length);
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    let offset = this.#offset;
    for (const c of this.#chunks) {
      if (filled >= size) break;
      const k = Math.min(c.length - offset, size - filled);
      c.copy(out, filled, offset, offset + k);
      filled += k;
      offset = 0;
    }
    return out;
  }

  #advance(chunk: Buffer, n: number): void {
    this.#offset += n;
    this.length -= n;
    if (this.#offset === chunk.length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

export function checkCallerContext(context: unknown, name: string): Record<string, string> {
  if (context === undefined) return {};
  needs(typeof context === "object" && context !== null && !Array.isArray(context), `"${name}" must be an object of string values`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) {
    needs(typeof v === "string", `"${name}" value of ${JSON.stringify(k)} must be a string`);
    needs(!k.startsWith(RESERVED_CONTEXT_PREFIX), `"${name}" keys starting with "${RESERVED_CONTEXT_PREFIX}" are reserved, got ${JSON.stringify(k)}`);
    out[k] = v;
  }
  return out;
}

function callerPairs(context: ContextPairs): Record<string, string> {
  return Object.fromEntries(Object.entries(context).filter(([k]) => !k.startsWith(RESERVED_CONTEXT_PREFIX)));
}

export function info(header: Header, decryptedWith?: MessageInfo["decryptedWith"]): MessageInfo {
  return {
    suite: header.suite.name,
    messageId: Buffer.from(header.messageId),
    encryptionContext: callerPairs(header.context),
    frameLength: header.frameLength,
    encryptedDataKeys: header.encryptedDataKeys.map(({ provider, region, keyId }) => ({ provider, region, keyId })),
    ...(decryptedWith === undefined ? {} : { decryptedWith }),
  };
}
