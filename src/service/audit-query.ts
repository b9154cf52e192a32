// Searching the audit log (CloudAudit's LookUpEvents and DescribeEvents): the records of the
// caller's own account in a time range, newest first, a page at a time, with exact-match filters.
// The caller needs the action's permission on the account ("cloudaudit:LookUpEvents" on "*").
// Each call examines at most AUDIT_QUERY_LIMITS.scanRecords records, so none blocks the server
// for long however large the log: a page may then hold fewer events than asked, even none, with
// ListOver false and a NextToken to go on. Events are numbered within their account (EventId),
// so nothing an account sees tells of other accounts' records.

import { verifyStoreAudit } from "../audit/export.js";
import { AUDIT_PUBLIC_KEY_META } from "../audit/keys.js";
import type { VerifyReport } from "../audit/verify.js";
import type { AccountAuditPosition, AccountAuditRecord, AuditRecordFilters, Store } from "../store/store.js";
import { ACCOUNT_RESOURCE, type Caller } from "./access-control.js";
import type { Clock } from "./clock.js";
import { KmsError } from "./errors.js";

export const AUDIT_QUERY_LIMITS = {
  /** StartTime to EndTime at most this many seconds apart: 30 days, as Tencent's DescribeEvents. */
  maxSpanSeconds: 30 * 86_400,
  /** MaxResults when not given, and its largest value (Tencent: 50). */
  defaultMaxResults: 10,
  maxMaxResults: 50,
  /** StartTime may lie this far in the future (clock skew); later ones are refused (milliseconds given as seconds, typically). */
  futureSkewSeconds: 300,
  /** The largest time accepted, in unix seconds (9999-12-31T23:59:59Z). */
  maxSeconds: 253_402_300_799,
  /** Records one call examines at most: about a millisecond of SQLite's time (docs/operations.md). */
  scanRecords: 2000,
} as const;

/** What a search may match; each given filter must match exactly. The account is always the caller's. */
export interface AuditEventFilters {
  requestId?: string;
  /** The action, e.g. "Encrypt". */
  eventName?: string;
  readOnly?: boolean;
  /** The principal's name: "root", a user's name, a role session's name. */
  username?: string;
  resourceType?: string;
  /** One key id (or other resource name) the request acted on. */
  resourceName?: string;
  accessKeyId?: string;
  /** The record's number within the account (EventId). */
  eventId?: number;
  /** A flag the record carries, e.g. "policy-denied". */
  flag?: string;
}

export interface AuditEventQuery {
  /** Unix seconds, inclusive. */
  startTime: number;
  /** Unix seconds, inclusive (to the end of that second). */
  endTime: number;
  filters?: AuditEventFilters;
  /** Default AUDIT_QUERY_LIMITS.defaultMaxResults, at most maxMaxResults. */
  maxResults?: number;
  /** The opaque cursor of LookUpEvents, as a previous page gave it. */
  nextToken?: string;
  /** The same cursor as a number (DescribeEvents' NextToken). */
  afterSeq?: number;
}

/** A record as a search gives it: with its number within the account. */
export type AuditEventRecord = AccountAuditRecord;

export interface AuditEventPage {
  /** Newest first. */
  events: AuditEventRecord[];
  /** Where the next page starts; absent when listOver. */
  nextToken?: string;
  /** The same as a number, for DescribeEvents; absent when listOver. */
  nextSeq?: number;
  listOver: boolean;
}

/** The cursor: base64url of the decimal number (within the account) of the last record examined. Opaque to clients. */
export function encodeAuditCursor(seq: number): string {
  return Buffer.from(String(seq), "utf8").toString("base64url");
}

export function decodeAuditCursor(token: string, parameter = "NextToken"): number {
  const bad = () => new KmsError("InvalidParameterValue", `"${parameter}" is not a token a previous page gave`);
  if (typeof token !== "string" || !/^[A-Za-z0-9_-]{1,24}$/.test(token)) throw bad();
  const text = Buffer.from(token, "base64url").toString("utf8");
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw bad();
  const seq = Number(text);
  if (!Number.isSafeInteger(seq) || encodeAuditCursor(seq) !== token) throw bad();
  return seq;
}

/** Records hashed between two turns of the event loop during VerifyAuditChain: a few milliseconds' work. */
const VERIFY_YIELD_EVERY = 200;

/** The chain's state as VerifyAuditChain reports it: `tresor audit verify`'s report, when it was made. */
export interface AuditChainStatus extends VerifyReport {
  /** Unix milliseconds when the check began. */
  checkedAt: number;
  /** The store's own audit public key (base64) the checkpoints were checked against. */
  publicKey: string;
}

export class AuditQueries {
  readonly #store: Store;
  readonly #clock: Clock;
  /** The check in progress: callers arriving meanwhile share it, so the log is read once at a time. */
  #verifying: Promise<AuditChainStatus> | undefined;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * One page of the caller's account's records in [startTime, endTime], newest first. `action` is
   * the permission required on the account: "cloudaudit:LookUpEvents" or "cloudaudit:DescribeEvents".
   */
  async lookUpEvents(caller: Caller, query: AuditEventQuery, action = "cloudaudit:LookUpEvents"): Promise<AuditEventPage> {
    caller.permissions.require(action, ACCOUNT_RESOURCE);
    const { startTime, endTime } = query;
    const limits = AUDIT_QUERY_LIMITS;
    for (const [name, value] of [
      ["StartTime", startTime],
      ["EndTime", endTime],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0 || value > limits.maxSeconds) {
        throw new KmsError("InvalidParameterValue", `"${name}" must be unix seconds from 0 to ${limits.maxSeconds}`);
      }
    }
    if (startTime > Math.floor(this.#clock.now() / 1000) + limits.futureSkewSeconds) {
      throw new KmsError("InvalidParameterValue", `"StartTime" lies in the future: give unix seconds (not milliseconds)`);
    }
    if (endTime < startTime) throw new KmsError("InvalidParameterValue", `"EndTime" must not be before "StartTime"`);
    if (endTime - startTime > limits.maxSpanSeconds) {
      throw new KmsError("InvalidParameterValue", `"StartTime" to "EndTime" must span at most ${limits.maxSpanSeconds / 86_400} days`);
    }
    const maxResults = query.maxResults ?? limits.defaultMaxResults;
    if (!Number.isSafeInteger(maxResults) || maxResults < 1 || maxResults > limits.maxMaxResults) {
      throw new KmsError("InvalidParameterValue", `"MaxResults" must be between 1 and ${limits.maxMaxResults}`);
    }
    let afterSeq: number | undefined;
    if (query.nextToken !== undefined && query.nextToken !== "") afterSeq = decodeAuditCursor(query.nextToken);
    if (query.afterSeq !== undefined) {
      if (!Number.isSafeInteger(query.afterSeq) || query.afterSeq < 1) throw new KmsError("InvalidParameterValue", `"NextToken" is not a token a previous page gave`);
      afterSeq = query.afterSeq;
    }

    const f = query.filters ?? {};
    const filters: AuditRecordFilters = {};
    if (f.requestId !== undefined) filters.requestId = f.requestId;
    if (f.eventName !== undefined) filters.action = f.eventName;
    if (f.readOnly !== undefined) filters.readOnly = f.readOnly;
    if (f.username !== undefined) filters.principalName = f.username;
    if (f.resourceType !== undefined) filters.resourceType = f.resourceType;
    if (f.resourceName !== undefined) filters.resourceName = f.resourceName;
    if (f.accessKeyId !== undefined) filters.accessKeyId = f.accessKeyId;
    if (f.flag !== undefined) filters.flag = f.flag;
    if (f.eventId !== undefined) {
      if (!Number.isSafeInteger(f.eventId) || f.eventId < 1) return { events: [], listOver: true };
      filters.accountSeq = f.eventId;
    }
    let after: AccountAuditPosition | undefined;
    if (afterSeq !== undefined) {
      after = await this.#store.accountAuditPosition(caller.uin, afterSeq);
      if (after === undefined) throw new KmsError("InvalidParameterValue", `"NextToken" points at a record that is no longer kept (pruned): search again without it`);
    }

    const page = await this.#store.searchAccountAudit({
      accountUin: caller.uin,
      fromTime: startTime * 1000,
      toTime: endTime * 1000 + 999,
      ...(after === undefined ? {} : { after }),
      filters,
      limit: maxResults,
      scanLimit: limits.scanRecords,
    });
    // The store searched the account only; checked again, as nothing else keeps accounts apart here.
    const events = page.records.filter((r) => r.accountUin === caller.uin);
    if (page.next === undefined) return { events, listOver: true };
    return { events, nextToken: encodeAuditCursor(page.next.accountSeq), nextSeq: page.next.accountSeq, listOver: false };
  }

  /**
   * Checks the whole audit chain and its signed checkpoints against the store's own audit public
   * key, as `tresor audit verify` does offline. The chain spans every account, so the caller needs
   * "cloudaudit:VerifyAuditChain" on the account (no preset grants it). The log is read a page at a
   * time and hands the event loop back every VERIFY_YIELD_EVERY records, so requests go on meanwhile.
   */
  async verifyChain(caller: Caller): Promise<AuditChainStatus> {
    caller.permissions.require("cloudaudit:VerifyAuditChain", ACCOUNT_RESOURCE);
    this.#verifying ??= this.#verifyChain().finally(() => {
      this.#verifying = undefined;
    });
    return this.#verifying;
  }

  async #verifyChain(): Promise<AuditChainStatus> {
    const checkedAt = this.#clock.now();
    const publicKey = await this.#store.getMeta(AUDIT_PUBLIC_KEY_META);
    if (publicKey === undefined) throw new KmsError("InternalError", "the store has no audit public key");
    const report = await verifyStoreAudit(this.#store, Buffer.from(publicKey, "base64"), undefined, VERIFY_YIELD_EVERY);
    return { ...report, checkedAt, publicKey };
  }
}
