// The audit log's storage port: what the writer, the queries, verification and export need of
// the place the log lives, and the chain rule every implementation enforces. The store implements
// it; nothing here knows of SQL or of the store.

import type { Checkpoint } from "./checkpoint.js";
import { GENESIS_HASH, type AuditRecord } from "./record.js";

/** The chain head of the audit log: the last record appended (seq 0 and the genesis hash before the first). */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** What a search of one account's records may match; each given filter must match exactly. */
export interface AuditRecordFilters {
  /** The record's number within its account (CloudAudit's EventId). */
  accountSeq?: number;
  action?: string;
  /**
   * One of the record's resource names: `resourceName` holds the names a request acted on joined
   * by "," (a batch action names several keys), and this matches any one of them whole.
   */
  resourceName?: string;
  resourceType?: string;
  requestId?: string;
  principalName?: string;
  accessKeyId?: string;
  readOnly?: boolean;
  /** Records whose flags include this one. */
  flag?: string;
}

/** The whole log in chain order (verification, export, pruning). */
export interface AuditRecordQuery {
  /** Unix milliseconds, inclusive. */
  fromTime?: number;
  /** Unix milliseconds, inclusive. */
  toTime?: number;
  /** A cursor: only records after this seq in the listing's order (greater when "asc", smaller when "desc"). */
  afterSeq?: number;
  limit: number;
  /** By seq. */
  order: "asc" | "desc";
}

/** A record with its number within its account: 1, 2, 3, … in the order the account's records were appended. */
export interface AccountAuditRecord extends AuditRecord {
  accountSeq: number;
}

/** A place in one account's records, which a search walks newest first: by time, then accountSeq, both descending. */
export interface AccountAuditPosition {
  time: number;
  accountSeq: number;
}

/**
 * One call of a search through one account's records (CloudAudit). It examines at most
 * `scanLimit` records of the range, so that no call costs more than a bounded amount of work
 * however large the log and however rare the matches; `next` says where the following call goes on.
 */
export interface AccountAuditSearch {
  accountUin: string;
  /** Unix milliseconds, inclusive. */
  fromTime: number;
  /** Unix milliseconds, inclusive. */
  toTime: number;
  /** Only records after this place (a previous page's `next`). */
  after?: AccountAuditPosition;
  filters: AuditRecordFilters;
  /** Matches returned at most. */
  limit: number;
  /** Records examined at most (at least `limit`). */
  scanLimit: number;
}

export interface AccountAuditPage {
  /** Newest first. */
  records: AccountAuditRecord[];
  /** Where the next call goes on; absent when the range holds nothing more. */
  next?: AccountAuditPosition;
}

/**
 * What the audit log needs of its storage: the chain head, appends, listings, searches,
 * checkpoints and pruning. The store implements it on its operations (so inside a transaction
 * too), so that a state change and its record commit in one transaction.
 */
export interface AuditStore {
  /**
   * The chain head (undefined before the first record). Inside a transaction it also locks the
   * head until the transaction ends, so nobody else appends meanwhile; as the first statement of a
   * transaction it reads the latest head (PostgreSQL: the lock is taken before the snapshot).
   */
  auditHead(): Promise<AuditHead | undefined>;
  /**
   * Appends records that continue the chain: consecutive seqs, each prevHash the hash before it,
   * the first one following the current head. Otherwise throws `StoreConflictError` ("auditHead")
   * and writes nothing. Moves the head to the last record.
   */
  appendAuditRecords(records: readonly AuditRecord[]): Promise<void>;
  listAuditRecords(query: AuditRecordQuery): Promise<AuditRecord[]>;
  /** One call of a bounded search through one account's records (see AccountAuditSearch). */
  searchAccountAudit(search: AccountAuditSearch): Promise<AccountAuditPage>;
  /** Where the account's record `accountSeq` stands, undefined when there is none (any more). */
  accountAuditPosition(accountUin: string, accountSeq: number): Promise<AccountAuditPosition | undefined>;
  /** Throws `StoreConflictError` ("auditCheckpoint") when one with the same seq and prunedThrough exists. */
  insertAuditCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Checkpoints by (seq, prunedThrough), at most `limit` (all when omitted). */
  listAuditCheckpoints(query: { order: "asc" | "desc"; limit?: number }): Promise<Checkpoint[]>;
  /**
   * Deletes the records with seq <= throughSeq and the checkpoints with seq <= throughSeq (they
   * cover only pruned records); returns how many records. The head stays. The caller records the
   * pruned prefix in a new checkpoint, in the same transaction.
   */
  pruneAuditRecords(throughSeq: number): Promise<number>;
}

/** Named values of the log's own (its keys), read and written in the same transactions. */
export interface AuditMeta {
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;
}

/** A value as a snapshot carries it, whatever the database calls its type. */
export type SnapshotValue = number | string | boolean | Buffer | null;

/** A read-only view of the whole log at one instant: its tables, paged in key order. */
export interface AuditSnapshot {
  readonly tables: readonly { readonly name: string; readonly columns: readonly { readonly name: string }[]; readonly key: readonly string[] }[];
  exportRows(table: string, after: readonly SnapshotValue[] | null, limit: number): Promise<SnapshotValue[][]>;
}

/** What a transaction hands the audit log: its operations and its meta values. */
export type AuditTransaction = AuditStore & AuditMeta;

/**
 * The storage the audit log runs on. `Tx` is what a transaction's function receives: at least the
 * log's operations, and whatever else the caller changes in the same transaction (the store's
 * operations, for the service).
 */
export interface AuditStorage<Tx extends AuditTransaction = AuditTransaction> extends AuditStore, AuditMeta {
  /** Runs `fn` in one transaction; it may run more than once (see Store.transaction). */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs `fn` on one consistent snapshot of the log's tables (audit_records, audit_checkpoints). */
  snapshot<T>(fn: (snapshot: AuditSnapshot) => Promise<T>): Promise<T>;
  /**
   * Where commits are made durable by a sync of their own (SQLite's WAL): resolves when a commit
   * made then would not wait for a sync already running. The writer waits for it before a batch,
   * so the records that arrive meanwhile share the batch's transaction instead of making another.
   */
  syncIdle?(): Promise<void>;
}

// ---- the chain rule and the checks of a query, made before any storage is touched ------------

/** Throws unless `records` is non-empty, with consecutive seqs, each linked to the one before. */
export function checkAuditAppend(records: readonly AuditRecord[]): { first: AuditRecord; last: AuditRecord } {
  const first = records[0];
  const last = records.at(-1);
  if (first === undefined || last === undefined) throw new RangeError("appendAuditRecords: no records");
  if (!Number.isSafeInteger(first.seq) || first.seq < 1) throw new RangeError(`appendAuditRecords: seq must be a positive safe integer, got ${first.seq}`);
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    const before = records[i - 1]!;
    if (r.seq !== before.seq + 1 || r.prevHash !== before.hash) {
      throw new RangeError(`appendAuditRecords: the record with seq ${r.seq} does not follow the one with seq ${before.seq}`);
    }
  }
  return { first, last };
}

/** Whether `first` continues the chain at `head` (the genesis hash, seq 0, when there is no head yet). */
export function continuesChain(head: AuditHead | undefined, first: AuditRecord): boolean {
  const { seq, hash } = head ?? { seq: 0, hash: GENESIS_HASH };
  return seq === first.seq - 1 && hash === first.prevHash;
}

export function checkAuditQuery(query: AuditRecordQuery): void {
  if (!Number.isSafeInteger(query.limit) || query.limit < 0) throw new RangeError(`"limit" must be a non-negative integer, got ${query.limit}`);
  if (query.order !== "asc" && query.order !== "desc") throw new RangeError(`"order" must be "asc" or "desc"`);
  for (const name of ["fromTime", "toTime", "afterSeq"] as const) {
    const v = query[name];
    if (v !== undefined && !Number.isSafeInteger(v)) throw new RangeError(`"${name}" must be a safe integer, got ${v}`);
  }
}

export function checkAuditSearch(search: AccountAuditSearch): void {
  if (typeof search.accountUin !== "string") throw new TypeError(`"accountUin" must be a string`);
  for (const name of ["fromTime", "toTime"] as const) {
    if (!Number.isSafeInteger(search[name])) throw new RangeError(`"${name}" must be a safe integer, got ${search[name]}`);
  }
  if (search.after !== undefined && !(Number.isSafeInteger(search.after.time) && Number.isSafeInteger(search.after.accountSeq))) {
    throw new RangeError(`"after" must hold safe integers`);
  }
  if (!Number.isSafeInteger(search.limit) || search.limit < 1) throw new RangeError(`"limit" must be a positive integer, got ${search.limit}`);
  if (!Number.isSafeInteger(search.scanLimit) || search.scanLimit < search.limit) throw new RangeError(`"scanLimit" must be an integer of at least "limit", got ${search.scanLimit}`);
}
