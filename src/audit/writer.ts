// The audit writer: appends one record per request to the hash chain, durably, before the
// response leaves (fail closed: a record that cannot be written fails the request). Records
// that arrive while a flush is running are committed together in the next one (group commit),
// so the chain costs one transaction per batch, not per request. Also writes the signed
// checkpoints (every N records and every T ms), prunes by age, and copies committed records to
// an optional JSON-lines file.

import { AsyncResource } from "node:async_hooks";
import { appendFile } from "node:fs/promises";
import type { RootOfTrust } from "../rootkey/root-of-trust.js";
import { loadAuditKeys } from "./keys.js";
import type { AuditStorage, AuditTransaction } from "./port.js";
import { signCheckpoint, type AuditSigner, type Checkpoint } from "./checkpoint.js";
import { GENESIS_HASH, paramsDigest, sealAuditRecord, type AuditRecord, type AuditRecordBody, type AuditService } from "./record.js";

/** What the service knows about a request; the writer adds seq, time (if absent), the digest and the hashes. */
export interface AuditEvent {
  action: string;
  /** "Success" or the wire error code (never a message). */
  result: string;
  /** Unix milliseconds; default: the writer's clock. */
  time?: number;
  requestId?: string;
  traceId?: string;
  accountUin?: string;
  principalUin?: string;
  principalName?: string;
  accessKeyId?: string;
  sourceIp?: string;
  userAgent?: string;
  region?: string;
  /** Default "kms". */
  service?: AuditService;
  resourceType?: string;
  resourceName?: string;
  readOnly?: boolean;
  latencyMs?: number;
  /** The request's parameters; only their keyed digest is kept. Absent: the digest is "". */
  params?: unknown;
  flags?: readonly string[];
}

/** A logger in pino's shape. */
export interface AuditLog {
  warn(details: object, message: string): void;
}

export interface AuditWriterOptions<Tx extends AuditTransaction = AuditTransaction> {
  /** Where the log lives; `Tx` is what its transactions hand out (the store's operations, for the service). */
  store: AuditStorage<Tx>;
  signer: AuditSigner;
  /** The 32-byte key of parameter digests. */
  hmacKey: Buffer;
  /** Names this node in every record it writes. */
  nodeId: string;
  /** Unix milliseconds (default Date.now). */
  now?: () => number;
  /** A checkpoint once this many records have been appended since the last one (default 1000). */
  checkpointEvery?: number;
  /** And at least this often while records come in (default 60 000 ms; 0: no timer). */
  checkpointIntervalMs?: number;
  /** prune() removes records older than this (default 90). */
  retentionDays?: number;
  /** Records per flush transaction at most (default 1000). */
  maxBatch?: number;
  /** Records per prune transaction at most (default 10 000), so appends wait only briefly. */
  pruneBatch?: number;
  /**
   * Best effort: after each commit the committed records are appended to this file as JSON lines,
   * in commit order. A failure to write is logged and does not fail the request; the store is the
   * record, the file a convenience (no fsync; lines may be missing after a crash).
   */
  sinkPath?: string;
  log?: AuditLog;
}

/** What the service and the server need of an audit writer. Auditing off means no Auditor at all. */
export interface Auditor<Tx extends AuditTransaction = AuditTransaction> {
  /** Resolves once the record is durable; rejects (fail closed) when it could not be written. Never await it inside a store transaction. */
  record(event: AuditEvent): Promise<void>;
  /**
   * Runs `fn` in one store transaction; each `audit(event)` it awaits appends a record inside that
   * transaction, so the state change and its record commit together or not at all.
   */
  transaction<T>(fn: (tx: Tx, audit: (event: AuditEvent) => Promise<void>) => Promise<T>): Promise<T>;
  /**
   * Appends one record inside a transaction someone else runs (taking the chain head lock there);
   * once that transaction commits, pass its records to `committed`.
   */
  inTransaction(tx: AuditTransaction, event: AuditEvent): Promise<AuditRecord>;
  committed(records: readonly AuditRecord[]): void;
  close(): Promise<void>;
}

/**
 * The writer a server runs with:
 * the store's audit keys, made on first use, and the options.
 */
export async function openAuditWriter<Tx extends AuditTransaction>(
  options: Omit<AuditWriterOptions<Tx>, "signer" | "hmacKey"> & { root: RootOfTrust },
): Promise<AuditWriter<Tx>> {
  const { root, ...rest } = options;
  const keys = await loadAuditKeys(options.store, root);
  return new AuditWriter({ ...rest, signer: keys.signer, hmacKey: keys.hmacKey });
}

export const AUDIT_DEFAULTS = {
  checkpointEvery: 1000,
  checkpointIntervalMs: 60_000,
  retentionDays: 90,
  maxBatch: 1000,
  pruneBatch: 10_000,
} as const;

const DAY_MS = 86_400_000;
/** Longest kept length of a text field (userAgent: USER_AGENT_MAX), in UTF-16 code units. */
const TEXT_MAX = 256;
const USER_AGENT_MAX = 512;
const FLAGS_MAX = 16;

interface Pending {
  body: Omit<AuditRecordBody, "seq">;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class AuditWriter<Tx extends AuditTransaction = AuditTransaction> implements Auditor<Tx> {
  readonly #store: AuditStorage<Tx>;
  readonly #signer: AuditSigner;
  readonly #hmacKey: Buffer;
  readonly #nodeId: string;
  readonly #now: () => number;
  readonly #checkpointEvery: number;
  readonly #retentionMs: number;
  readonly #maxBatch: number;
  readonly #pruneBatch: number;
  readonly #sinkPath: string | undefined;
  readonly #log: AuditLog | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  /** Starts a drain in the writer's own async context, never inside a caller's transaction. */
  readonly #startDrain: () => void;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #scheduled = false;
  #sinkChain: Promise<void> = Promise.resolve();
  #closed = false;
  /** A seq the newest checkpoint is known to cover (it may cover more). */
  #coveredSeq = 0;

  /** Counts, for tests and metrics. */
  readonly stats = { transactions: 0, records: 0, checkpoints: 0, failedFlushes: 0 };

  constructor(options: AuditWriterOptions<Tx>) {
    if (!Buffer.isBuffer(options.hmacKey) || options.hmacKey.length !== 32) throw new RangeError('"hmacKey" must be 32 bytes');
    this.#store = options.store;
    this.#signer = options.signer;
    this.#hmacKey = options.hmacKey;
    this.#nodeId = options.nodeId;
    this.#now = options.now ?? Date.now;
    this.#checkpointEvery = positive("checkpointEvery", options.checkpointEvery ?? AUDIT_DEFAULTS.checkpointEvery);
    this.#retentionMs = positive("retentionDays", options.retentionDays ?? AUDIT_DEFAULTS.retentionDays) * DAY_MS;
    this.#maxBatch = positive("maxBatch", options.maxBatch ?? AUDIT_DEFAULTS.maxBatch);
    this.#pruneBatch = positive("pruneBatch", options.pruneBatch ?? AUDIT_DEFAULTS.pruneBatch);
    this.#sinkPath = options.sinkPath;
    this.#log = options.log;
    this.#startDrain = AsyncResource.bind(() => {
      this.#scheduled = false;
      // Only with work to do: #drain must reach an await before it clears #draining.
      if (this.#draining === undefined && this.#queue.length > 0) this.#draining = this.#drain();
    });
    const interval = options.checkpointIntervalMs ?? AUDIT_DEFAULTS.checkpointIntervalMs;
    if (interval > 0) {
      this.#timer = setInterval(
        AsyncResource.bind(() => {
          this.checkpoint().catch((err: unknown) => this.#log?.warn({ err: describe(err) }, "audit: the periodic checkpoint failed"));
        }),
        interval,
      );
      this.#timer.unref();
    }
  }

  record(event: AuditEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the audit writer is closed"));
    let body: Pending["body"];
    try {
      body = this.#body(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ body, resolve, reject });
      // The first record of a turn schedules the flush for the end of it, so the records of the
      // whole turn (and any that arrive while a flush runs) share one transaction.
      if (this.#draining === undefined && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#startDrain);
      }
    });
  }

  /**
   * Appends one record inside the caller's transaction (taking the chain head lock there) and
   * returns it. The caller hands it to `committed` after the commit (for the file sink). Prefer
   * `transaction`, which does that and locks the head first: on PostgreSQL a transaction that
   * locks the head only here reruns whenever another append committed since its first statement.
   */
  async inTransaction(tx: AuditTransaction, event: AuditEvent): Promise<AuditRecord> {
    if (this.#closed) throw new Error("the audit writer is closed");
    const [record] = await this.#append(tx, [this.#body(event)]);
    return record!;
  }

  /** Records committed through inTransaction, for the file sink. */
  committed(records: readonly AuditRecord[]): void {
    this.stats.records += records.length;
    this.#sink(records);
  }

  /**
   * The chain head is locked first, for the whole transaction: on PostgreSQL a head taken only at
   * the end would be older than the transaction's snapshot whenever a flush committed meanwhile,
   * and the whole transaction would run again (under steady traffic, again and again). State
   * changes are short and few, so appends wait for them briefly instead.
   */
  async transaction<T>(fn: (tx: Tx, audit: (event: AuditEvent) => Promise<void>) => Promise<T>): Promise<T> {
    let appended: AuditRecord[] = [];
    const value = await this.#store.transaction(async (tx) => {
      // PostgreSQL may run this more than once: only the last run's records were committed.
      appended = [];
      await tx.auditHead();
      return fn(tx, async (event) => {
        appended.push(await this.inTransaction(tx, event));
      });
    });
    this.committed(appended);
    return value;
  }

  /** Resolves when every record handed to `record` so far has been flushed (or has failed). */
  async flush(): Promise<void> {
    while (this.#draining !== undefined || this.#queue.length > 0) {
      if (this.#draining === undefined) this.#startDrain();
      await this.#draining;
    }
  }

  /** Signs and stores a checkpoint of the current head, unless the newest checkpoint already covers it. */
  async checkpoint(): Promise<Checkpoint | undefined> {
    return this.#store.transaction(async (tx) => {
      const head = await tx.auditHead();
      return head === undefined ? undefined : this.#checkpointIn(tx, head, true);
    });
  }

  /**
   * Removes the records older than the retention period (a prefix of the chain: everything up to
   * the newest record older than the cutoff), in transactions of at most pruneBatch records, each
   * with a signed checkpoint naming the pruned prefix's last seq and hash.
   */
  async prune(now: number = this.#now()): Promise<{ pruned: number; checkpoint?: Checkpoint }> {
    const cutoff = now - this.#retentionMs;
    const [target] = await this.#store.listAuditRecords({ toTime: cutoff - 1, order: "desc", limit: 1 });
    let pruned = 0;
    let checkpoint: Checkpoint | undefined;
    while (target !== undefined) {
      const step = await this.#store.transaction(async (tx) => {
        const head = await tx.auditHead();
        const [first] = await tx.listAuditRecords({ order: "asc", limit: 1 });
        if (head === undefined || first === undefined || first.seq > target.seq) return undefined;
        const throughSeq = Math.min(target.seq, first.seq + this.#pruneBatch - 1);
        const [through] = await tx.listAuditRecords({ afterSeq: throughSeq - 1, order: "asc", limit: 1 });
        if (through === undefined || through.seq !== throughSeq) throw new Error(`audit: the record with seq ${throughSeq} is missing; prune stopped`);
        const n = await tx.pruneAuditRecords(throughSeq);
        const cp = signCheckpoint(
          { seq: head.seq, time: this.#now(), headHash: head.hash, prunedThrough: through.seq, prunedHeadHash: through.hash },
          this.#signer,
        );
        await tx.insertAuditCheckpoint(cp);
        return { n, cp };
      });
      if (step === undefined) break;
      pruned += step.n;
      checkpoint = step.cp;
      this.stats.checkpoints++;
      if (step.cp.prunedThrough >= target.seq) break;
    }
    return { pruned, ...(checkpoint === undefined ? {} : { checkpoint }) };
  }

  /** Flushes what is queued, writes a last checkpoint (best effort), stops the timer; later calls to record reject. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
    this.#closed = true;
    try {
      await this.checkpoint();
    } catch (err) {
      this.#log?.warn({ err: describe(err) }, "audit: the closing checkpoint failed");
    }
    await this.#sinkChain;
  }

  // ---- inside ----

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        await this.#syncIdle();
        const batch = this.#queue.splice(0, this.#maxBatch);
        await this.#flush(batch);
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /** Never fails: a store that cannot tell only costs the batching (its failure shows in the flush). */
  async #syncIdle(): Promise<void> {
    try {
      await this.#store.syncIdle?.();
    } catch {
      // Commit now.
    }
  }

  /** One transaction for the batch; every promise of the batch settles with its outcome. */
  async #flush(batch: Pending[]): Promise<void> {
    let sealed: AuditRecord[] = [];
    try {
      await this.#store.transaction(async (tx) => {
        sealed = await this.#append(
          tx,
          batch.map((p) => p.body),
        );
        const last = sealed.at(-1)!;
        await this.#checkpointIn(tx, { seq: last.seq, hash: last.hash }, false);
      });
    } catch (err) {
      this.stats.failedFlushes++;
      const error = err instanceof Error ? err : new Error(String(err));
      for (const p of batch) p.reject(error);
      return;
    }
    this.stats.transactions++;
    this.stats.records += sealed.length;
    for (const p of batch) p.resolve();
    this.#sink(sealed);
  }

  /** Reads (and locks) the head, chains the records after it and appends them. Pure but for `tx`, so a rerun is safe. */
  async #append(tx: AuditTransaction, bodies: readonly Pending["body"][]): Promise<AuditRecord[]> {
    const head = (await tx.auditHead()) ?? { seq: 0, hash: GENESIS_HASH };
    let seq = head.seq;
    let prev = head.hash;
    const records = bodies.map((body) => {
      const record = sealAuditRecord({ ...body, seq: ++seq }, prev);
      prev = record.hash;
      return record;
    });
    await tx.appendAuditRecords(records);
    return records;
  }

  /** Inside a transaction holding the head: a checkpoint when due (or `force`) and the head moved past the newest one. */
  async #checkpointIn(tx: AuditTransaction, head: { seq: number; hash: string }, force: boolean): Promise<Checkpoint | undefined> {
    // The newest checkpoint only moves forward (another node may write one), so one known to cover
    // at least #coveredSeq spares the lookup while no checkpoint can be due.
    if (!force && head.seq - this.#coveredSeq < this.#checkpointEvery) return undefined;
    const [latest] = await tx.listAuditCheckpoints({ order: "desc", limit: 1 });
    const coveredSeq = latest?.seq ?? 0;
    this.#coveredSeq = Math.max(this.#coveredSeq, coveredSeq);
    if (head.seq <= coveredSeq || (!force && head.seq - coveredSeq < this.#checkpointEvery)) return undefined;
    const cp = signCheckpoint(
      {
        seq: head.seq,
        time: this.#now(),
        headHash: head.hash,
        prunedThrough: latest?.prunedThrough ?? 0,
        prunedHeadHash: latest?.prunedHeadHash ?? GENESIS_HASH,
      },
      this.#signer,
    );
    await tx.insertAuditCheckpoint(cp);
    this.stats.checkpoints++;
    return cp;
  }

  #body(event: AuditEvent): Pending["body"] {
    // Empty for a request that named no action: it is recorded all the same.
    if (typeof event.action !== "string") throw new TypeError('an audit event needs an "action"');
    if (typeof event.result !== "string" || event.result === "") throw new TypeError('an audit event needs a "result"');
    const time = Math.floor(event.time ?? this.#now());
    return {
      time,
      requestId: text(event.requestId),
      traceId: text(event.traceId),
      nodeId: text(this.#nodeId),
      accountUin: text(event.accountUin),
      principalUin: text(event.principalUin),
      principalName: text(event.principalName),
      accessKeyId: text(event.accessKeyId),
      sourceIp: text(event.sourceIp),
      userAgent: text(event.userAgent, USER_AGENT_MAX),
      region: text(event.region),
      service: event.service ?? "kms",
      action: text(event.action),
      resourceType: text(event.resourceType),
      resourceName: text(event.resourceName),
      readOnly: event.readOnly ?? false,
      result: text(event.result),
      latencyMs: Math.max(0, Math.round(event.latencyMs ?? 0)),
      paramsDigest: event.params === undefined ? "" : paramsDigest(this.#hmacKey, event.params),
      flags: (event.flags ?? []).slice(0, FLAGS_MAX).map((f) => text(f, 64)),
    };
  }

  #sink(records: readonly AuditRecord[]): void {
    const path = this.#sinkPath;
    if (path === undefined || records.length === 0) return;
    const lines = records.map((r) => `${JSON.stringify(r)}\n`).join("");
    this.#sinkChain = this.#sinkChain
      .then(() => appendFile(path, lines, { mode: 0o600 }))
      .catch((err: unknown) => this.#log?.warn({ err: describe(err), path }, "audit: could not append to the audit file sink"));
  }
}

// Lone surrogates and NUL: PostgreSQL text refuses NUL, and both would not survive a round trip
// through UTF-8 unchanged, so they become U+FFFD before the record is hashed.
const UNSAFE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/g;

/** A caller-supplied string as the record keeps it: at most `max` code units, well-formed, no NUL. */
function text(value: string | undefined, max = TEXT_MAX): string {
  if (value === undefined) return "";
  const s = String(value);
  return (s.length > max ? s.slice(0, max) : s).replace(UNSAFE, "\uFFFD");
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`"${name}" must be a positive integer, got ${value}`);
  return value;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
