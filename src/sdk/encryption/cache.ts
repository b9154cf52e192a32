// DataKeyCache: reuse of data keys across messages, off unless a cache is passed. An encryption
// entry serves messages until it is older than maxAgeMs, has begun maxMessages messages or
// encrypted maxBytes; a decryption entry lives maxAgeMs. Entries are partitioned by keyring,
// suite and encryption context (and, for decryption, the encrypted data keys), so a data key
// never crosses into a context it was not made for. Evicted keys are wiped.

import { createHash } from "node:crypto";
import { needs } from "./errors.js";
import { sortedContextEntries, type ContextPairs, type EncryptedDataKey } from "./format.js";
import type { SigningKey, Suite } from "./suites.js";

export interface DataKeyCacheOptions {
  /** Required: how long an entry may be used, in milliseconds. */
  maxAgeMs: number;
  /** Messages one encryption data key may begin; default 2^32. */
  maxMessages?: number;
  /** Plaintext bytes one encryption data key may encrypt; default 2^53 - 1. */
  maxBytes?: number;
  /** Entries kept; the oldest is evicted first. Default 100. */
  capacity?: number;
  /** For tests: the clock. */
  now?: () => number;
}

/** What a cached encryption entry hands a message. Copies: the message may wipe them. */
export interface CachedEncryptionMaterials {
  dataKey: Buffer;
  encryptedDataKeys: EncryptedDataKey[];
  /** Signed suites: the key pair is cached with the data key, since its public half is in the context. */
  signingKey: SigningKey | undefined;
  /** Call once the message is done, with its plaintext length. */
  addBytes(n: number): void;
}

interface EncryptionEntry {
  kind: "encrypt";
  dataKey: Buffer;
  encryptedDataKeys: EncryptedDataKey[];
  signingKey: SigningKey | undefined;
  created: number;
  messages: number;
  bytes: number;
}

interface DecryptionEntry {
  kind: "decrypt";
  dataKey: Buffer;
  decryptedWith: { provider: string; region: string; keyId: string };
  created: number;
}

type Entry = EncryptionEntry | DecryptionEntry;

export class DataKeyCache {
  readonly maxAgeMs: number;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly capacity: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: DataKeyCacheOptions) {
    needs(typeof options === "object" && options !== null, `"options" must be an object`);
    const { maxAgeMs, maxMessages = 2 ** 32, maxBytes = Number.MAX_SAFE_INTEGER, capacity = 100, now = Date.now } = options;
    needs(Number.isFinite(maxAgeMs) && maxAgeMs > 0, `"maxAgeMs" must be a positive number`);
    needs(Number.isInteger(maxMessages) && maxMessages >= 1 && maxMessages <= 2 ** 32, `"maxMessages" must be an integer from 1 to 2^32`);
    needs(Number.isInteger(maxBytes) && maxBytes >= 1, `"maxBytes" must be a positive integer`);
    needs(Number.isInteger(capacity) && capacity >= 1, `"capacity" must be a positive integer`);
    this.maxAgeMs = maxAgeMs;
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
    this.capacity = capacity;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Wipes and drops every entry. */
  clear(): void {
    for (const key of [...this.#entries.keys()]) this.#evict(key);
  }

  /** @internal A cached encryption entry that may begin one more message of `plaintextLength` bytes (when known). */
  takeEncryption(partition: string, plaintextLength: number | undefined): CachedEncryptionMaterials | undefined {
    const entry = this.#live(partition);
    if (entry?.kind !== "encrypt") return undefined;
    if (entry.messages >= this.maxMessages || entry.bytes + (plaintextLength ?? 0) > this.maxBytes || entry.bytes >= this.maxBytes) {
      this.#evict(partition);
      return undefined;
    }
    entry.messages++;
    return this.#hand(partition, entry);
  }

  /** @internal Caches fresh materials (copies them) and hands them to their first message. */
  putEncryption(
    partition: string,
    materials: { dataKey: Buffer; encryptedDataKeys: EncryptedDataKey[]; signingKey: SigningKey | undefined },
  ): CachedEncryptionMaterials {
    const entry: EncryptionEntry = {
      kind: "encrypt",
      dataKey: Buffer.from(materials.dataKey),
      encryptedDataKeys: materials.encryptedDataKeys,
      signingKey: materials.signingKey && copySigningKey(materials.signingKey),
      created: this.#now(),
      messages: 1,
      bytes: 0,
    };
    this.#store(partition, entry);
    return this.#hand(partition, entry);
  }

  /** @internal */
  getDecryption(partition: string): { dataKey: Buffer; decryptedWith: DecryptionEntry["decryptedWith"] } | undefined {
    const entry = this.#live(partition);
    if (entry?.kind !== "decrypt") return undefined;
    return { dataKey: Buffer.from(entry.dataKey), decryptedWith: entry.decryptedWith };
  }

  /** @internal */
  putDecryption(partition: string, dataKey: Buffer, decryptedWith: DecryptionEntry["decryptedWith"]): void {
    this.#store(partition, { kind: "decrypt", dataKey: Buffer.from(dataKey), decryptedWith, created: this.#now() });
  }

  #hand(partition: string, entry: EncryptionEntry): CachedEncryptionMaterials {
    return {
      dataKey: Buffer.from(entry.dataKey),
      encryptedDataKeys: entry.encryptedDataKeys,
      signingKey: entry.signingKey && copySigningKey(entry.signingKey),
      addBytes: (n: number) => {
        entry.bytes += n;
        if (entry.bytes >= this.maxBytes && this.#entries.get(partition) === entry) this.#evict(partition);
      },
    };
  }

  #live(partition: string): Entry | undefined {
    const entry = this.#entries.get(partition);
    if (entry === undefined) return undefined;
    if (this.#now() - entry.created >= this.maxAgeMs) {
      this.#evict(partition);
      return undefined;
    }
    return entry;
  }

  #store(partition: string, entry: Entry): void {
    if (this.#entries.has(partition)) this.#evict(partition);
    while (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#evict(oldest.value);
    }
    this.#entries.set(partition, entry);
  }

  #evict(partition: string): void {
    const entry = this.#entries.get(partition);
    if (entry === undefined) return;
    this.#entries.delete(partition);
    entry.dataKey.fill(0);
    if (entry.kind === "encrypt") entry.signingKey?.privateKey.fill(0);
  }
}

function copySigningKey(key: SigningKey): SigningKey {
  return { signature: key.signature, privateKey: Buffer.from(key.privateKey), publicKeySpki: key.publicKeySpki };
}

function hashParts(parts: Array<string | Buffer>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const b = typeof p === "string" ? Buffer.from(p, "utf8") : p;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return h.digest("hex");
}

/** @internal The partition of an encryption entry: keyring, suite and the caller's context. */
export function encryptionPartition(keyringId: string, suite: Suite, context: ContextPairs): string {
  return `e:${hashParts([keyringId, String(suite.id), ...sortedContextEntries(context).flat()])}`;
}

/** @internal The partition of a decryption entry: keyring, suite, full context and the encrypted data keys. */
export function decryptionPartition(keyringId: string, suite: Suite, context: ContextPairs, edks: readonly EncryptedDataKey[]): string {
  return `d:${hashParts([
    keyringId,
    String(suite.id),
    ...sortedContextEntries(context).flat(),
    ...edks.flatMap((e) => [e.provider, e.region, e.keyId, e.blob]),
  ])}`;
}
