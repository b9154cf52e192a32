// Audit records for tests: chains of plausible records, and checkpoints signed by a throwaway key.

import { generateAuditSigningKey, ed25519Signer, signCheckpoint, type AuditSigner, type Checkpoint } from "../../src/audit/checkpoint.js";
import { GENESIS_HASH, sealAuditRecord, type AuditRecord, type AuditRecordBody } from "../../src/audit/record.js";
import type { Store } from "../../src/store/store.js";

/** Every audit record of a store, oldest first, read a page at a time. */
export async function allAuditRecords(store: Pick<Store, "listAuditRecords">): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (let afterSeq = 0; ; ) {
    const page = await store.listAuditRecords({ afterSeq, limit: 1000, order: "asc" });
    if (page.length === 0) return out;
    out.push(...page);
    afterSeq = page.at(-1)!.seq;
  }
}

let auditRequest = 0;

/** `count` chained records from `firstSeq` after `prevHash`, each with defaults and `fields(i)` (i from 0). */
export function auditChain(firstSeq: number, prevHash: string, count: number, fields: (i: number) => Partial<AuditRecordBody> = () => ({})): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = prevHash;
  for (let i = 0; i < count; i++) {
    auditRequest++;
    const body: AuditRecordBody = {
      seq: firstSeq + i,
      time: 1_700_000_000_000 + auditRequest,
      requestId: `req-${auditRequest}`,
      traceId: "",
      nodeId: "node-1",
      accountUin: "100000000001",
      principalUin: "100000000001",
      principalName: "root",
      accessKeyId: "AKIDexample",
      sourceIp: "192.0.2.1",
      userAgent: "sdk/1",
      region: "ap-guangzhou",
      service: "kms",
      action: "Encrypt",
      resourceType: "key",
      resourceName: "key-1",
      readOnly: false,
      result: "Success",
      latencyMs: 2,
      paramsDigest: "",
      flags: [],
      ...fields(i),
    };
    const record = sealAuditRecord({ ...body, seq: firstSeq + i }, prev);
    records.push(record);
    prev = record.hash;
  }
  return records;
}

/** A fresh Ed25519 audit signer. */
export function testSigner(): AuditSigner {
  const { privateKeyDer } = generateAuditSigningKey();
  try {
    return ed25519Signer(privateKeyDer);
  } finally {
    privateKeyDer.fill(0);
  }
}

/** A chain of `count` records from seq 1, with a checkpoint signed every `every` records (and none at the end unless it falls there). */
export function signedLog(count: number, every: number, signer: AuditSigner): { records: AuditRecord[]; checkpoints: Checkpoint[] } {
  const records = auditChain(1, GENESIS_HASH, count, (i) => ({ requestId: `log-${i + 1}`, time: 1_700_000_000_000 + i }));
  const checkpoints: Checkpoint[] = [];
  for (let seq = every; seq <= count; seq += every) {
    checkpoints.push(signCheckpoint({ seq, time: 1_700_000_000_000 + seq, headHash: records[seq - 1]!.hash, prunedThrough: 0, prunedHeadHash: GENESIS_HASH }, signer));
  }
  return { records, checkpoints };
}
