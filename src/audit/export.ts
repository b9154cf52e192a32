// The audit export: every checkpoint and record of a store from one consistent snapshot, as JSON
// lines, for offline verification (`tresor audit verify`) away from the store. It names the
// audit public key; a verifier should pin the key it trusts rather than take the file's word.

import { createReadStream } from "node:fs";
import { link, open, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setImmediate } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import type { Checkpoint } from "./checkpoint.js";
import type { AuditSnapshot, AuditStorage, SnapshotValue } from "./port.js";
import type { AuditRecord, AuditService } from "./record.js";
import { verifyAudit, type VerifyReport } from "./verify.js";

export const AUDIT_EXPORT_FORMAT = "tresor-audit-export";
export const AUDIT_EXPORT_FORMAT_VERSION = 1;

export interface AuditExportHeader {
  type: "header";
  format: typeof AUDIT_EXPORT_FORMAT;
  formatVersion: number;
  /** ISO 8601, UTC. */
  exportedAt: string;
  /** base64 of the raw 32-byte Ed25519 public key the store's checkpoints are signed with. */
  publicKey: string;
  /**
   * Present in a partial export: ISO 8601, the time it was asked to start from. Its records are
   * the log from the first record at or after that time on; verification checks the chain from
   * the first of them (see VerifyOptions.fromFirstRecord).
   */
  since?: string;
}

export interface AuditExportOptions {
  /** Unix milliseconds: only the records from the first one at or after this time (a partial export). */
  fromTime?: number;
  /** Called every PROGRESS_EVERY records with the count so far. */
  progress?: (records: number) => void;
}

/** How often exportAudit and verifyStoreAudit report progress, in records. */
export const PROGRESS_EVERY = 10_000;

const PAGE = 1000;

/**
 * Writes the store's audit log to `out` (which must not exist): a header line, one line per
 * checkpoint (`{"type":"checkpoint",…}`), then one per record (`{"type":"record",…}`) in seq
 * order. Written aside and linked into place once complete, mode 0600.
 */
export async function exportAudit(
  store: Pick<AuditStorage, "snapshot">,
  out: string,
  publicKey: Buffer,
  now: () => Date = () => new Date(),
  options: AuditExportOptions = {},
): Promise<{ records: number; checkpoints: number }> {
  const { fromTime, progress } = options;
  if (fromTime !== undefined && !Number.isSafeInteger(fromTime)) throw new RangeError('"fromTime" must be unix milliseconds');
  const target = resolve(out);
  const aside = join(dirname(target), `.${randomUUID()}.partial`);
  const file = await open(aside, "wx", 0o600);
  let counts: { records: number; checkpoints: number };
  try {
    const header: AuditExportHeader = {
      type: "header",
      format: AUDIT_EXPORT_FORMAT,
      formatVersion: AUDIT_EXPORT_FORMAT_VERSION,
      exportedAt: now().toISOString(),
      publicKey: publicKey.toString("base64"),
      ...(fromTime === undefined ? {} : { since: new Date(fromTime).toISOString() }),
    };
    await file.write(`${JSON.stringify(header)}\n`);
    counts = await store.snapshot(async (snapshot) => {
      let checkpoints = 0;
      for await (const row of rows(snapshot, "audit_checkpoints")) {
        await file.write(`${JSON.stringify({ type: "checkpoint", ...toCheckpoint(row) })}\n`);
        checkpoints++;
      }
      let records = 0;
      let lines: string[] = [];
      let started = fromTime === undefined;
      for await (const row of rows(snapshot, "audit_records")) {
        // A partial export is contiguous: everything from the first record at or after fromTime.
        if (!started) {
          if ((row["time"] as number) < fromTime!) continue;
          started = true;
        }
        lines.push(`${JSON.stringify({ type: "record", ...toRecord(row) })}\n`);
        records++;
        if (progress !== undefined && records % PROGRESS_EVERY === 0) progress(records);
        if (lines.length >= PAGE) {
          await file.write(lines.join(""));
          lines = [];
        }
      }
      await file.write(lines.join(""));
      return { records, checkpoints };
    });
    await file.sync();
  } catch (err) {
    await file.close();
    await unlink(aside).catch(() => undefined);
    throw err;
  }
  await file.close();
  try {
    await link(aside, target);
  } finally {
    await unlink(aside);
  }
  return counts;
}

/** Every row of `table` in key order, as an object by column name. */
async function* rows(snapshot: AuditSnapshot, table: string): AsyncGenerator<Record<string, SnapshotValue>> {
  const shape = snapshot.tables.find((t) => t.name === table);
  if (shape === undefined) throw new Error(`the store has no table ${table}: it predates the audit log`);
  const keyAt = shape.key.map((k) => shape.columns.findIndex((c) => c.name === k));
  let after: SnapshotValue[] | null = null;
  for (;;) {
    const page = await snapshot.exportRows(table, after, PAGE);
    for (const values of page) yield Object.fromEntries(shape.columns.map((c, i) => [c.name, values[i] ?? null]));
    const last = page.at(-1);
    if (page.length < PAGE || last === undefined) return;
    after = keyAt.map((i) => last[i] ?? null);
  }
}

function toCheckpoint(row: Record<string, SnapshotValue>): Checkpoint {
  return {
    seq: row["seq"] as number,
    time: row["time"] as number,
    headHash: row["head_hash"] as string,
    prunedThrough: row["pruned_through"] as number,
    prunedHeadHash: row["pruned_head_hash"] as string,
    signature: row["signature"] as string,
  };
}

function toRecord(row: Record<string, SnapshotValue>): AuditRecord {
  return {
    seq: row["seq"] as number,
    time: row["time"] as number,
    requestId: row["request_id"] as string,
    traceId: row["trace_id"] as string,
    nodeId: row["node_id"] as string,
    accountUin: row["account_uin"] as string,
    principalUin: row["principal_uin"] as string,
    principalName: row["principal_name"] as string,
    accessKeyId: row["access_key_id"] as string,
    sourceIp: row["source_ip"] as string,
    userAgent: row["user_agent"] as string,
    region: row["region"] as string,
    service: row["service"] as AuditService,
    action: row["action"] as string,
    resourceType: row["resource_type"] as string,
    resourceName: row["resource_name"] as string,
    readOnly: row["read_only"] as boolean,
    result: row["result"] as string,
    latencyMs: row["latency_ms"] as number,
    paramsDigest: row["params_digest"] as string,
    flags: JSON.parse(row["flags"] as string) as string[],
    prevHash: row["prev_hash"] as string,
    hash: row["hash"] as string,
  };
}

/**
 * Verifies the audit log in a store from one consistent snapshot, streaming (like an export, but
 * nothing is written): every checkpoint against `publicKey` and the whole chain.
 */
/**
 * Verifies the store's log in place. `yieldEvery` (inside a server) hands the event loop back after
 * that many records, so other requests go on while a long log is hashed.
 */
export async function verifyStoreAudit(store: Pick<AuditStorage, "snapshot">, publicKey: Buffer, progress?: (records: number) => void, yieldEvery?: number): Promise<VerifyReport> {
  return store.snapshot(async (snapshot) => {
    const checkpoints: Checkpoint[] = [];
    for await (const row of rows(snapshot, "audit_checkpoints")) checkpoints.push(toCheckpoint(row));
    async function* records(): AsyncGenerator<AuditRecord> {
      let n = 0;
      for await (const row of rows(snapshot, "audit_records")) {
        yield toRecord(row);
        n++;
        if (progress !== undefined && n % PROGRESS_EVERY === 0) progress(n);
        if (yieldEvery !== undefined && n % yieldEvery === 0) await setImmediate();
      }
    }
    return verifyAudit(records(), checkpoints, publicKey);
  });
}

export interface ExportVerifyReport extends VerifyReport {
  /** The key the file names, base64. */
  exportPublicKey: string;
  /** False when a pinned key was given and the file names another one (its checkpoints then fail too). */
  publicKeyMatches: boolean;
  /** A partial export's start (its header's `since`): the records before its first one were not checked. */
  since?: string;
}

/**
 * Verifies an export file in one streaming pass. With `pinnedPublicKey` (raw 32 bytes, from the
 * operator) the checkpoints are checked against it; without, against the key the file names,
 * which proves only that the file is consistent with itself.
 */
export async function verifyAuditExport(file: string, pinnedPublicKey?: Buffer, progress?: (records: number) => void): Promise<ExportVerifyReport> {
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity })[Symbol.asyncIterator]();
  try {
    const first = await lines.next();
    const header = first.done ? undefined : (JSON.parse(first.value) as Partial<AuditExportHeader>);
    if (header?.type !== "header" || header.format !== AUDIT_EXPORT_FORMAT || typeof header.publicKey !== "string") {
      throw new Error(`${file} is not a Tresor audit export`);
    }
    if (header.formatVersion !== AUDIT_EXPORT_FORMAT_VERSION) throw new Error(`${file}: audit export format version ${String(header.formatVersion)} is not known here`);
    const named = Buffer.from(header.publicKey, "base64");
    const key = pinnedPublicKey ?? named;
    // Checkpoints come first; the first record line ends them and starts the stream of records.
    const checkpoints: Checkpoint[] = [];
    let firstRecord: AuditRecord | undefined;
    for (;;) {
      const next = await lines.next();
      if (next.done) break;
      if (next.value === "") continue;
      const line = JSON.parse(next.value) as { type?: string };
      if (line.type === "checkpoint") {
        const { type: _t, ...cp } = line as Checkpoint & { type: string };
        checkpoints.push(cp);
      } else if (line.type === "record") {
        const { type: _t, ...r } = line as AuditRecord & { type: string };
        firstRecord = r;
        break;
      } else {
        throw new Error(`${file}: a line of unknown type ${JSON.stringify(line.type)}`);
      }
    }
    async function* records(): AsyncGenerator<AuditRecord> {
      if (firstRecord === undefined) return;
      yield firstRecord;
      let n = 1;
      for (;;) {
        const next = await lines.next();
        if (next.done) return;
        if (next.value === "") continue;
        const { type, ...r } = JSON.parse(next.value) as AuditRecord & { type: string };
        if (type !== "record") throw new Error(`${file}: a line of type ${JSON.stringify(type)} among the records`);
        yield r;
        if (progress !== undefined && ++n % PROGRESS_EVERY === 0) progress(n);
      }
    }
    const since = typeof header.since === "string" ? header.since : undefined;
    const report = await verifyAudit(records(), checkpoints, key, { fromFirstRecord: since !== undefined });
    return {
      ...report,
      exportPublicKey: header.publicKey,
      publicKeyMatches: pinnedPublicKey === undefined || pinnedPublicKey.equals(named),
      ...(since === undefined ? {} : { since }),
    };
  } finally {
    await lines.return?.();
  }
}
