// The persistence port. Implementations: SQLite (embedded default); PostgreSQL later.
// Every method is one durable transaction unless run inside `transaction()`.

import type { KeyRecord, KeyState, KeyVersionRecord, Tag } from "../keys/key.js";

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
  /** Each filter must match: the key has the tag key with one of the values. */
  tagFilters?: readonly { key: string; values: readonly string[] }[];
}

export interface Store {
  /** Runs `fn` in one transaction; a throw rolls back everything done inside. */
  transaction<T>(fn: () => T): T;

  getMeta(name: string): string | undefined;
  setMeta(name: string, value: string): void;

  /** Throws `StoreConflictError` when the key id or alias exists. */
  insertKey(key: KeyRecord, firstVersion: KeyVersionRecord): void;
  getKey(keyId: string): KeyRecord | undefined;
  getKeyByAlias(alias: string): KeyRecord | undefined;
  /** Overwrites the mutable fields (alias, description, state, deletionDate, currentVersion, tags). */
  updateKey(key: KeyRecord): void;
  listKeys(query: KeyListQuery): { keys: KeyRecord[]; totalCount: number };
  countKeys(): number;
  getKeyVersion(keyId: string, version: number): KeyVersionRecord | undefined;

  insertAccessKey(record: AccessKeyRecord): void;
  getAccessKey(secretId: string): AccessKeyRecord | undefined;

  close(): void;
}

export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
  constructor(
    readonly field: "keyId" | "alias" | "secretId",
    message: string,
  ) {
    super(message);
  }
}

export type { Tag };
