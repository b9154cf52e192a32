// The persistence port: asynchronous, so that a networked database (PostgreSQL) can implement it
// exactly as the embedded SQLite store does.

import type { ImportTokenRecord, KeyRecord, KeyState, KeyVersionRecord, Tag } from "../keys/key.js";

export interface AccessKeyRecord {
  secretId: string;
  /** The SecretKey, wrapped by the root of trust with the SecretId as authenticated data. */
  wrappedSecret: Buffer;
  /** The account (uin) this key acts for. */
  uin: string;
  status: "Active" | "Inactive";
  createTime: number;
}

export interface KeyListQuery {
  offset: number;
  limit: number;
  /** Only keys in one of these states; undefined means all. */
  states?: readonly KeyState[];
  /** Newest first unless "asc". */
  order: "desc" | "asc";
  /** Case-insensitive substring of the key id or alias. */
  search?: string;
  origin?: KeyRecord["origin"];
  keyUsages?: readonly KeyRecord["keyUsage"][];
  owner?: string;
  /** Each filter must match: the key has the tag key with one of the values (any value when `values` is empty). */
  tagFilters?: readonly { key: string; values: readonly string[] }[];
}

/** The reads and writes of the store. Inside `Store.transaction` the same calls run on the transaction. */
export interface StoreOperations {
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;

  /**
   * Throws `StoreConflictError` when the key id or alias exists; writes nothing then. `firstVersion`
   * is null for a key created without material (EXTERNAL, PendingImport).
   */
  insertKey(key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void>;
  /** Adds a version to an existing key (rotation, import). Throws `StoreConflictError` ("keyVersion") if it exists. */
  insertKeyVersion(version: KeyVersionRecord): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  getKeyByAlias(alias: string): Promise<KeyRecord | undefined>;
  /**
   * Overwrites the mutable fields (alias, description, state, deletionDate, currentVersion, tags,
   * and the lifecycle fields rotationEnabled, rotateDays, lastRotateTime, nextRotateTime, validTo,
   * materialDigest).
   */
  updateKey(key: KeyRecord): Promise<void>;
  listKeys(query: KeyListQuery): Promise<{ keys: KeyRecord[]; totalCount: number }>;
  countKeys(): Promise<number>;
  getKeyVersion(keyId: string, version: number): Promise<KeyVersionRecord | undefined>;
  /** Every version of the key, oldest first; empty for an unknown key. */
  listKeyVersions(keyId: string): Promise<KeyVersionRecord[]>;
  /** Removes every version (and so every wrapped material) of the key; returns how many there were. */
  deleteKeyVersions(keyId: string): Promise<number>;
  /** Removes the key with its versions, tags and import tokens; false when there was no such key. */
  deleteKey(keyId: string): Promise<boolean>;
  /**
   * Keys with work due at `now` (unix seconds), oldest due first, at most `limit`: rotation enabled,
   * Enabled and nextRotateTime <= now; PendingDelete and deletionDate <= now; or validTo set and
   * <= now while the key still has material (state not PendingImport).
   */
  listDueKeys(now: number, limit: number): Promise<KeyRecord[]>;

  /** Throws `StoreConflictError` ("importToken") if the token id exists. */
  insertImportToken(token: ImportTokenRecord): Promise<void>;
  getImportToken(tokenId: string): Promise<ImportTokenRecord | undefined>;
  /** Marks an unused token used; false when it is unknown or already used (someone else took it). */
  useImportToken(tokenId: string): Promise<boolean>;
  /** Removes tokens whose expiresAt <= now; returns how many. */
  deleteExpiredImportTokens(now: number): Promise<number>;

  insertAccessKey(record: AccessKeyRecord): Promise<void>;
  getAccessKey(secretId: string): Promise<AccessKeyRecord | undefined>;
}

/**
 * The persistence port. Every operation is durable once its promise resolves. Implementations:
 * SQLite (embedded default), PostgreSQL (clusters).
 */
export interface Store extends StoreOperations {
  /**
   * Runs `fn` in one serializable transaction: every read and write inside goes through `tx`; it
   * commits when `fn` resolves and rolls back everything when it rejects. Not nestable. Other
   * callers never see a half-done transaction. `fn` may run more than once (PostgreSQL reruns it
   * after a serialization failure), so it must have no effects outside `tx`.
   */
  transaction<T>(fn: (tx: StoreOperations) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
  constructor(
    readonly field: "keyId" | "alias" | "secretId" | "keyVersion" | "importToken",
    message: string,
  ) {
    super(message);
  }
}

export type { Tag };
