// verifyAudit: an untouched log verifies; each kind of tampering is reported at the exact first
// record it affects, with its reason; 100 000 records verify in well under ten seconds.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { signCheckpoint, verifyCheckpoint, type Checkpoint } from "../../src/audit/checkpoint.js";
import { GENESIS_HASH, sealAuditRecord, type AuditRecord } from "../../src/audit/record.js";
import { verifyAudit, type VerifyReport } from "../../src/audit/verify.js";
import { auditChain, signedLog, testSigner } from "../helpers/audit-fixtures.js";

const signer = testSigner();
const other = testSigner();
// 250 records, checkpoints at 50, 100, … 250.
const { records, checkpoints } = signedLog(250, 50, signer);

async function* stream(list: readonly AuditRecord[]): AsyncIterable<AuditRecord> {
  for (const r of list) yield r;
}

async function check(list: readonly AuditRecord[], cps: readonly Checkpoint[] = checkpoints): Promise<VerifyReport> {
  return verifyAudit(stream(list), cps, signer.publicKey);
}

function expectBad(report: VerifyReport, seq: number, reason: string): void {
  assert.equal(report.ok, false, "the log must not verify");
  assert.deepEqual({ seq: report.firstBad?.seq, reason: report.firstBad?.reason }, { seq, reason }, report.firstBad?.detail);
}

/** The record with `fields` changed and its hash recomputed, as a forger without the signing key can. */
function rehashed(r: AuditRecord, fields: Partial<AuditRecord>): AuditRecord {
  const { prevHash, hash: _hash, ...body } = { ...r, ...fields };
  return sealAuditRecord(body, prevHash);
}

describe("verifyAudit of a slice (fromFirstRecord, a partial export)", () => {
  const slice = (list: readonly AuditRecord[]) => verifyAudit(stream(list), checkpoints, signer.publicKey, { fromFirstRecord: true });

  it("accepts the log from any record on, and the whole log", async () => {
    assert.deepEqual(await slice(records.slice(120)), { ok: true, records: 130, checkpoints: 5, firstSeq: 121, lastSeq: 250 });
    assert.equal((await slice(records)).ok, true);
    assert.equal((await slice([])).ok, true, "nothing since: nothing to check");
    expectBad(await check(records.slice(120)), 1, "deleted");
  });

  it("still finds a change, a gap, a reordering and a cut tail inside the slice", async () => {
    const part = records.slice(120);
    expectBad(await slice(part.map((r) => (r.seq === 130 ? { ...r, action: "Decrypt" } : r))), 130, "changed");
    expectBad(await slice(part.filter((r) => r.seq !== 140)), 140, "deleted");
    const swapped = [...part];
    [swapped[10], swapped[11]] = [swapped[11]!, swapped[10]!];
    expectBad(await slice(swapped), 131, "reordered");
    expectBad(await slice(part.slice(0, 100)), 221, "truncated");
    expectBad(await slice(part.map((r) => (r.seq === 151 ? rehashed(r, { action: "Decrypt" }) : r))), 151, "changed");
    // A rewritten slice with a consistent chain still meets the signed checkpoint at 150.
    const forged: AuditRecord[] = [];
    let prev = part[0]!.prevHash;
    for (const r of part) {
      const f = rehashed({ ...r, prevHash: prev }, r.seq === 125 ? { action: "Decrypt" } : {});
      forged.push(f);
      prev = f.hash;
    }
    expectBad(await slice(forged), 150, "checkpoint-mismatch");
  });
});

describe("verifyAudit", () => {
  it("accepts an untouched log, with and without checkpoints, and an empty one", async () => {
    const report = await check(records);
    assert.deepEqual(report, { ok: true, records: 250, checkpoints: 5, firstSeq: 1, lastSeq: 250 });
    assert.equal((await check(records, [])).ok, true);
    assert.equal((await check(records.slice(0, 260))).ok, true);
    assert.deepEqual(await check([], []), { ok: true, records: 0, checkpoints: 0 });
    assert.equal((await verifyAudit(records, checkpoints, signer.publicKey)).ok, true, "a plain iterable works too");
  });

  it("reports a changed field at that record", async () => {
    const tampered = [...records];
    tampered[119] = { ...records[119]!, result: "Success", action: "Decrypt" };
    expectBad(await check(tampered), 120, "changed");
    tampered[119] = { ...records[119]!, flags: [] , readOnly: true };
    expectBad(await check(tampered), 120, "changed");
  });

  it("reports a changed and rehashed record at that record, where the next one no longer links", async () => {
    const tampered = [...records];
    tampered[119] = rehashed(records[119]!, { principalName: "somebody-else" });
    expectBad(await check(tampered), 120, "changed");
  });

  it("reports a change whose whole chain after it was recomputed at the next checkpoint", async () => {
    const tampered = records.slice(0, 119);
    let prev = records[118]!.hash;
    for (const r of records.slice(119)) {
      const { prevHash: _p, hash: _h, ...body } = r.seq === 120 ? { ...r, sourceIp: "203.0.113.9" } : r;
      const forged = sealAuditRecord(body, prev);
      tampered.push(forged);
      prev = forged.hash;
    }
    expectBad(await check(tampered), 150, "checkpoint-mismatch");
    assert.equal((await check(tampered, [])).ok, true, "without checkpoints a recomputed chain is undetectable: that is what they are for");
  });

  it("reports a deleted record at its seq", async () => {
    expectBad(await check(records.filter((r) => r.seq !== 77)), 77, "deleted");
    expectBad(await check(records.slice(1)), 1, "deleted");
  });

  it("reports an inserted record at the seq it duplicates", async () => {
    const intruder = sealAuditRecord({ ...records[77]!, seq: 78, requestId: "forged", action: "ScheduleKeyDeletion" }, records[76]!.hash);
    expectBad(await check([...records.slice(0, 77), intruder, ...records.slice(77)]), 78, "inserted");
    // An intruder that does not even link.
    const loose = sealAuditRecord({ ...records[77]!, seq: 78, requestId: "forged" }, "cd".repeat(32));
    expectBad(await check([...records.slice(0, 77), loose, ...records.slice(77)]), 78, "inserted");
    // A plain copy of a record.
    expectBad(await check([...records.slice(0, 78), records[77]!, ...records.slice(78)]), 78, "inserted");
  });

  it("reports two swapped records as reordered, at the first seq out of place", async () => {
    const adjacent = [...records];
    [adjacent[40], adjacent[41]] = [adjacent[41]!, adjacent[40]!];
    expectBad(await check(adjacent), 41, "reordered");
    const apart = [...records];
    [apart[40], apart[90]] = [apart[90]!, apart[40]!];
    expectBad(await check(apart), 41, "reordered");
  });

  it("reports a tail cut off after a checkpoint as truncated, at the first missing seq", async () => {
    expectBad(await check(records.slice(0, 180)), 181, "truncated");
    expectBad(await check(records.slice(0, 249)), 250, "truncated");
    expectBad(await check([]), 1, "truncated");
    // A cut after the last checkpoint is beyond what the checkpoints sign.
    assert.equal((await check(records.slice(0, 230), checkpoints.slice(0, 4))).ok, true);
  });

  it("reports a tail cut off and replaced by new records at the checkpoint", async () => {
    const replaced = [...records.slice(0, 180), ...auditChain(181, records[179]!.hash, 70)];
    expectBad(await check(replaced), 200, "checkpoint-mismatch");
  });

  it("reports a forged or altered checkpoint", async () => {
    const forged = signCheckpoint({ seq: 300, time: 1, headHash: records[249]!.hash, prunedThrough: 0, prunedHeadHash: GENESIS_HASH }, other);
    expectBad(await check(records, [...checkpoints, forged]), 300, "bad-checkpoint-signature");
    const altered = { ...checkpoints[2]!, headHash: records[10]!.hash };
    expectBad(await check(records, [checkpoints[0]!, checkpoints[1]!, altered]), 150, "bad-checkpoint-signature");
    expectBad(await check(records, [{ ...checkpoints[1]!, signature: "zz" }]), 100, "bad-checkpoint-signature");
    assert.equal(verifyCheckpoint(checkpoints[0]!, other.publicKey), false, "a checkpoint verifies only under its own key");
  });

  it("accepts a pruned log that starts right after the signed pruned prefix, and nothing shorter", async () => {
    const prune = signCheckpoint({ seq: 250, time: 2, headHash: records[249]!.hash, prunedThrough: 60, prunedHeadHash: records[59]!.hash }, signer);
    const cps = [...checkpoints.filter((c) => c.seq > 60), prune];
    assert.deepEqual(await check(records.slice(60), cps), { ok: true, records: 190, checkpoints: 5, firstSeq: 61, lastSeq: 250 });
    expectBad(await check(records.slice(61), cps), 61, "deleted");
    expectBad(await check([rehashed(records[60]!, { prevHash: "ef".repeat(32) }), ...records.slice(61)], cps), 61, "changed");
    expectBad(await check(records.slice(59), cps), 60, "inserted");
  });

  // Cost, not speed: CPU time (not wall time, which a loaded machine stretches) grows linearly with
  // the log, so 100 000 records cost about ten times 10 000 (a quadratic check would cost 100 times).
  it("verifies 100 000 records at a cost linear in the log's length", async () => {
    const cpuSeconds = async (n: number): Promise<number> => {
      const log = signedLog(n, 1000, signer);
      const before = process.cpuUsage();
      const report = await verifyAudit(stream(log.records), log.checkpoints, signer.publicKey);
      const used = process.cpuUsage(before);
      assert.equal(report.ok, true);
      assert.equal(report.records, n);
      return (used.user + used.system) / 1e6;
    };
    const small = await cpuSeconds(10_000);
    const big = await cpuSeconds(100_000);
    console.log(`verification CPU: 10 000 records ${small.toFixed(2)} s, 100 000 records ${big.toFixed(2)} s`);
    assert.ok(big < 25 * small, `100 000 records took ${big.toFixed(2)} s of CPU, 10 000 took ${small.toFixed(2)} s`);
  });
});
