// Abuse limits of the HTTP door, each with bounded memory: a request rate per account (a token
// bucket per account uin, answered RequestLimitExceeded) and, per source address, how many
// unauthenticated failures get a full audit record before the rest are only counted into a
// summary record, so a flood of bad signatures cannot fill the disk and still shows in the audit.

import type { AuditEvent } from "../audit/writer.js";
import { AUDIT_FLAGS } from "../service/request-audit.js";

/** Token buckets per account: `perSecond` requests a second, bursts up to one second's worth. */
export class AccountRateLimiter {
  /** Accounts tracked at most. */
  static readonly MAX_TRACKED = 100_000;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly perSecond: number,
    private readonly now: () => number,
  ) {
    if (!Number.isInteger(perSecond) || perSecond < 1) throw new RangeError(`"perSecond" must be a positive integer, got ${perSecond}`);
  }

  /** Takes one token from the account's bucket; false when it is empty (the request is refused). */
  take(account: string): boolean {
    const now = this.now();
    const bucket = this.#buckets.get(account);
    const tokens = bucket === undefined ? this.perSecond : Math.min(this.perSecond, bucket.tokens + (Math.max(0, now - bucket.at) * this.perSecond) / 1000);
    // The least recently used bucket goes; were it still in use, it comes back full, a bounded gift.
    if (bucket === undefined && this.#buckets.size >= AccountRateLimiter.MAX_TRACKED) this.#buckets.delete(this.#buckets.keys().next().value!);
    // Re-inserted, so the map's order is least recently used first.
    this.#buckets.delete(account);
    this.#buckets.set(account, { tokens: tokens >= 1 ? tokens - 1 : tokens, at: now });
    return tokens >= 1;
  }

  get tracked(): number {
    return this.#buckets.size;
  }
}

/** What a summary record reports: failures left without a record of their own in one window. */
export interface FailureSummary {
  /** The source address; "" for the sources beyond the tracking cap, counted together. */
  sourceIp: string;
  /** Unix milliseconds of the window's first failure and of the last one summarized. */
  from: number;
  to: number;
  /** Failures counted here and not recorded one by one. */
  suppressed: number;
  /** How many of them got each result code. */
  codes: ReadonlyMap<string, number>;
}

interface Window {
  start: number;
  failures: number;
  suppressed: number;
  last: number;
  codes: Map<string, number>;
}

export interface FailedAuthLimits {
  /** Failures per source and window that each get a full record. */
  threshold: number;
  /** Failures per window, all sources together, that each get a full record. */
  totalThreshold: number;
  windowMs: number;
  /** Sources tracked at most; failures of others are counted together in one summary. */
  maxSources: number;
}

export const DEFAULT_FAILED_AUTH_LIMITS: FailedAuthLimits = { threshold: 100, totalThreshold: 1000, windowMs: 60_000, maxSources: 1000 };

/**
 * Unauthenticated failures per source address in fixed windows (from a source's first failure).
 * A failure gets a full record while its source has had at most `threshold` and all sources
 * together at most `totalThreshold` in the window; the rest are only counted, and summarized
 * once the window ends (seen on the source's next failure, by sweep(), or by drain() on close).
 * So a window costs at most totalThreshold full records and maxSources + 1 summaries, however
 * many addresses an attacker has.
 */
export class FailedAuthLimiter {
  readonly #windows = new Map<string, Window>();
  /** The failures of sources beyond maxSources. */
  #untracked: Window | undefined;
  #all: { start: number; failures: number } | undefined;
  #ended: FailureSummary[] = [];

  constructor(
    readonly limits: FailedAuthLimits,
    private readonly now: () => number,
  ) {}

  /** Counts a failure; true when its own record is to be left out (it goes into a summary). */
  failed(sourceIp: string, code: string): boolean {
    const now = this.now();
    if (this.#all === undefined || now - this.#all.start >= this.limits.windowMs) this.#all = { start: now, failures: 0 };
    this.#all.failures++;
    const w = this.#windowOf(sourceIp, now);
    w.failures++;
    const full = w !== this.#untracked && w.failures <= this.limits.threshold && this.#all.failures <= this.limits.totalThreshold;
    if (full) return false;
    w.suppressed++;
    w.last = now;
    w.codes.set(code, (w.codes.get(code) ?? 0) + 1);
    return true;
  }

  /** Ends the windows that are over; returns every summary not yet taken. */
  sweep(): FailureSummary[] {
    const now = this.now();
    this.#endExpired(now);
    if (this.#untracked !== undefined && now - this.#untracked.start >= this.limits.windowMs) this.#endUntracked();
    return this.#take();
  }

  /** Ends every window now (on close): the summaries of everything counted. */
  drain(): FailureSummary[] {
    for (const [source, w] of this.#windows) this.#end(source, w);
    this.#endUntracked();
    return this.#take();
  }

  get tracked(): number {
    return this.#windows.size;
  }

  #windowOf(sourceIp: string, now: number): Window {
    const w = this.#windows.get(sourceIp);
    if (w !== undefined && now - w.start < this.limits.windowMs) return w;
    if (w !== undefined) this.#end(sourceIp, w);
    if (this.#windows.size >= this.limits.maxSources) this.#endExpired(now);
    if (this.#windows.size >= this.limits.maxSources) {
      if (this.#untracked !== undefined && now - this.#untracked.start >= this.limits.windowMs) this.#endUntracked();
      return (this.#untracked ??= newWindow(now));
    }
    const fresh = newWindow(now);
    // Insertion order is window start order, which #endExpired relies on.
    this.#windows.set(sourceIp, fresh);
    return fresh;
  }

  #endExpired(now: number): void {
    for (const [source, w] of this.#windows) {
      if (now - w.start < this.limits.windowMs) break;
      this.#end(source, w);
    }
  }

  #end(sourceIp: string, w: Window): void {
    this.#windows.delete(sourceIp);
    this.#summarize(sourceIp, w);
  }

  #endUntracked(): void {
    if (this.#untracked !== undefined) this.#summarize("", this.#untracked);
    this.#untracked = undefined;
  }

  #summarize(sourceIp: string, w: Window): void {
    if (w.suppressed > 0) this.#ended.push({ sourceIp, from: w.start, to: w.last, suppressed: w.suppressed, codes: w.codes });
  }

  #take(): FailureSummary[] {
    const out = this.#ended;
    this.#ended = [];
    return out;
  }
}

function newWindow(now: number): Window {
  return { start: now, failures: 0, suppressed: 0, last: now, codes: new Map() };
}

/**
 * The audit record of a summary: flag "failed-auth-summary", the source address ("" for the
 * untracked sources, flagged "untracked-sources"), the most frequent result code, and flags
 * "count=N", "window=<ISO from>/<ISO to>" and "code=<code>:N" for each code.
 */
export function failureSummaryEvent(s: FailureSummary, requestId: string): AuditEvent {
  const codes = [...s.codes].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  return {
    action: "",
    result: codes[0]?.[0] ?? "",
    time: s.to,
    requestId,
    sourceIp: s.sourceIp,
    service: "",
    resourceType: "",
    readOnly: true,
    latencyMs: 0,
    flags: [
      AUDIT_FLAGS.failedAuthSummary,
      ...(s.sourceIp === "" ? [AUDIT_FLAGS.untrackedSources] : []),
      `count=${s.suppressed}`,
      `window=${new Date(s.from).toISOString()}/${new Date(s.to).toISOString()}`,
      ...codes.map(([code, n]) => `code=${code}:${n}`),
    ],
  };
}
