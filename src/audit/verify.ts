// Offline verification of an audit log: recomputes the chain record by record (one pass, constant
// memory besides the checkpoints) and checks it against the signed checkpoints. Reports the first
// place where the log differs from what was written.

import { verifyCheckpoint, type Checkpoint } from "./checkpoint.js";
import { auditRecordHash, GENESIS_HASH, type AuditRecord } from "./record.js";

export type VerifyFailureReason =
  /** The record's content no longer matches its hash, or it no longer links to its predecessor. */
  | "changed"
  /** A seq is missing (a gap; also the first record when it does not follow the pruned prefix). */
  | "deleted"
  /** A record that was not written: a second record with a seq already seen, or one inside the pruned prefix. */
  | "inserted"
  /** Records out of seq order (the missing seq turns up later). */
  | "reordered"
  /** The records end before the last checkpoint's seq. */
  | "truncated"
  /** The record at a checkpoint's seq has another hash than the signed one: some record at or before it was changed and the chain recomputed. */
  | "checkpoint-mismatch"
  | "bad-checkpoint-signature"
  /** Two validly signed checkpoints contradict each other (the signing key is misused). */
  | "checkpoint-conflict"
  /** A record lacks a field or holds a value of the wrong type. */
  | "malformed";

export interface VerifyFailure {
  /**
   * The seq of the first record that is missing, changed, extra or out of place (for a truncated
   * tail: the first missing seq; for a checkpoint failure: the checkpoint's seq).
   */
  seq: number;
  reason: VerifyFailureReason;
  /** One line for people. */
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  /** How many records were read. */
  records: number;
  /** How many checkpoints were given. */
  checkpoints: number;
  /** The seq of the first and last record read (undefined when there were none). */
  firstSeq?: number;
  lastSeq?: number;
  firstBad?: VerifyFailure;
}

/**
 * Verifies records given in the order they were exported (seq ascending) against the checkpoints
 * (any order) and the audit public key (raw 32-byte Ed25519, pinned by the operator). The log
 * must begin right after the newest checkpoint's pruned prefix (or at seq 1 with the genesis
 * hash) and reach at least the newest checkpoint's seq. Records after the last checkpoint are
 * protected by the chain only: cutting them off is not detectable here.
 */
export interface VerifyOptions {
  /**
   * The records are a contiguous slice of the log (an export `--since` a time): the chain is
   * checked from the first record given, taking its prevHash on trust, instead of from the pruned
   * prefix. Changes, gaps and reordering within the slice, and a tail cut off before the last
   * checkpoint, are still found; what precedes the slice is not checked.
   */
  fromFirstRecord?: boolean;
}

export async function verifyAudit(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  checkpoints: readonly Checkpoint[],
  publicKey: Buffer,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  let bad: VerifyFailure | undefined;

  // 1. Checkpoints: each signed, and together consistent.
  const sorted = [...checkpoints].sort((a, b) => a.seq - b.seq || a.prunedThrough - b.prunedThrough);
  for (const cp of sorted) {
    if (!verifyCheckpoint(cp, publicKey)) {
      bad = { seq: cp.seq, reason: "bad-checkpoint-signature", detail: `the checkpoint at seq ${cp.seq} is not signed by the given audit public key` };
      break;
    }
  }
  let prunedThrough = 0;
  let prunedHeadHash = GENESIS_HASH;
  const headAt = new Map<number, string>();
  for (const cp of bad === undefined ? sorted : []) {
    const seen = headAt.get(cp.seq);
    if ((seen !== undefined && seen !== cp.headHash) || cp.prunedThrough < prunedThrough) {
      bad = { seq: cp.seq, reason: "checkpoint-conflict", detail: `signed checkpoints at seq ${cp.seq} contradict each other` };
      break;
    }
    headAt.set(cp.seq, cp.headHash);
    prunedThrough = cp.prunedThrough;
    prunedHeadHash = cp.prunedHeadHash;
  }
  const lastCheckpointSeq = sorted.at(-1)?.seq ?? 0;

  // 2. The records, one pass. After the first failure the rest is still read, to count it and to
  // tell a deletion from a reordering (the missing seq turning up later).
  let count = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let expectedSeq = prunedThrough + 1;
  let expectedPrev = prunedHeadHash;
  let missing: number | undefined;
  /** A record with a valid hash that does not link to its predecessor: extra, if the next one has its seq and links. */
  let unlinked: { seq: number; prevHash: string } | undefined;
  for await (const r of records) {
    count++;
    firstSeq ??= r.seq;
    lastSeq = r.seq;
    if (bad !== undefined) {
      if (missing !== undefined && r.seq === missing) {
        bad = { seq: missing, reason: "reordered", detail: `the record with seq ${missing} is out of order` };
        missing = undefined;
      }
      if (unlinked !== undefined) {
        if (r.seq === unlinked.seq && r.prevHash === unlinked.prevHash) {
          bad = { seq: r.seq, reason: "inserted", detail: `an extra record with seq ${r.seq} precedes the one that links to seq ${r.seq - 1}` };
        }
        unlinked = undefined;
      }
      continue;
    }
    if (count === 1 && options.fromFirstRecord === true && typeof r.seq === "number" && r.seq > expectedSeq && typeof r.prevHash === "string") {
      expectedSeq = r.seq;
      expectedPrev = r.prevHash;
    }
    let hash: string;
    try {
      if (typeof r.seq !== "number" || typeof r.hash !== "string" || typeof r.prevHash !== "string") throw new TypeError("missing fields");
      hash = auditRecordHash(r.prevHash, r);
    } catch (e) {
      bad = { seq: typeof r.seq === "number" ? r.seq : expectedSeq, reason: "malformed", detail: `record ${count} cannot be read: ${e instanceof Error ? e.message : String(e)}` };
      continue;
    }
    if (r.seq === expectedSeq) {
      if (hash !== r.hash) {
        bad = { seq: r.seq, reason: "changed", detail: `the record with seq ${r.seq} does not match its hash` };
      } else if (r.prevHash !== expectedPrev) {
        bad =
          r.seq === prunedThrough + 1
            ? { seq: r.seq, reason: "changed", detail: `the record with seq ${r.seq} does not follow the pruned prefix the checkpoints sign` }
            : { seq: r.seq - 1, reason: "changed", detail: `the record with seq ${r.seq} does not link to the one before it (changed and rehashed)` };
        unlinked = { seq: r.seq, prevHash: expectedPrev };
      } else {
        const signed = headAt.get(r.seq);
        if (signed !== undefined && signed !== r.hash) {
          bad = { seq: r.seq, reason: "checkpoint-mismatch", detail: `the record with seq ${r.seq} differs from the signed checkpoint: a record at or before it was changed` };
        }
        expectedSeq++;
        expectedPrev = r.hash;
      }
    } else if (r.seq > expectedSeq) {
      bad = { seq: expectedSeq, reason: "deleted", detail: `the record with seq ${expectedSeq} is missing` };
      missing = expectedSeq;
    } else if (count === 1) {
      bad = { seq: r.seq, reason: "inserted", detail: `the record with seq ${r.seq} lies in the prefix the checkpoints say was pruned (through seq ${prunedThrough})` };
    } else if (r.seq === expectedSeq - 1) {
      bad = { seq: r.seq, reason: "inserted", detail: `a second record with seq ${r.seq}` };
    } else {
      bad = { seq: r.seq, reason: "reordered", detail: `the record with seq ${r.seq} comes after seq ${expectedSeq - 1}` };
    }
  }

  // 3. The tail: everything a checkpoint covers must be there.
  // (A slice with no records at all has nothing to check: it says only that nothing happened since.)
  if (bad === undefined && expectedSeq - 1 < lastCheckpointSeq && !(options.fromFirstRecord === true && count === 0)) {
    bad = {
      seq: expectedSeq,
      reason: "truncated",
      detail: `the records end at seq ${expectedSeq - 1}, but a signed checkpoint covers up to seq ${lastCheckpointSeq}`,
    };
  }
  return {
    ok: bad === undefined,
    records: count,
    checkpoints: checkpoints.length,
    ...(firstSeq === undefined ? {} : { firstSeq }),
    ...(lastSeq === undefined ? {} : { lastSeq }),
    ...(bad === undefined ? {} : { firstBad: bad }),
  };
}
