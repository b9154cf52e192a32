// One audit record per request, and its place in the hash chain: a canonical byte encoding
// (length-prefixed fields in a fixed order, specified in docs/formats.md, "Audit records") and
// hash = SHA-256(prevHash || encoding). Records never hold messages, parameters, plaintext,
// ciphertext or secrets: only codes, names and a keyed digest of the parameters.

import { createHash, createHmac } from "node:crypto";

export const AUDIT_SERVICES = ["kms", "cam", "sts", "cloudaudit", ""] as const;
export type AuditService = (typeof AUDIT_SERVICES)[number];

/** The version byte that opens every encoding; a change to the layout takes a new one. */
export const AUDIT_RECORD_FORMAT_V1 = 0x01;
export const HASH_LENGTH = 32;
/** The prevHash of the first record ever written: 32 zero bytes, lower-case hex. */
export const GENESIS_HASH = "0".repeat(2 * HASH_LENGTH);

export interface AuditRecord {
  /** Position in the chain: 1, 2, 3, … with no gaps (a safe integer). */
  seq: number;
  /** Unix milliseconds. */
  time: number;
  requestId: string;
  traceId: string;
  /** The Tresor node that served the request. */
  nodeId: string;
  accountUin: string;
  principalUin: string;
  principalName: string;
  accessKeyId: string;
  sourceIp: string;
  userAgent: string;
  region: string;
  service: AuditService;
  action: string;
  resourceType: string;
  /** A key id or alias, or "". */
  resourceName: string;
  readOnly: boolean;
  /** "Success", or the wire error code. Never the message: it may quote the caller's input. */
  result: string;
  latencyMs: number;
  /** Lower-case hex HMAC-SHA256 of the canonical parameters under the audit HMAC key ("" when none). */
  paramsDigest: string;
  /** Notable facts, e.g. "pending-delete-key-use", "signature-failures", "policy-denied". */
  flags: string[];
  /** Lower-case hex SHA-256: the previous record's hash, or GENESIS_HASH. */
  prevHash: string;
  /** Lower-case hex SHA-256(prevHash || encodeAuditRecord(this)). */
  hash: string;
}

/** A record's content: everything the hash covers besides prevHash. */
export type AuditRecordBody = Omit<AuditRecord, "prevHash" | "hash">;

/** The fields in encoding order, each with how it is written. */
const FIELDS = [
  ["seq", "u64"],
  ["time", "u64"],
  ["requestId", "str"],
  ["traceId", "str"],
  ["nodeId", "str"],
  ["accountUin", "str"],
  ["principalUin", "str"],
  ["principalName", "str"],
  ["accessKeyId", "str"],
  ["sourceIp", "str"],
  ["userAgent", "str"],
  ["region", "str"],
  ["service", "str"],
  ["action", "str"],
  ["resourceType", "str"],
  ["resourceName", "str"],
  ["readOnly", "bool"],
  ["result", "str"],
  ["latencyMs", "u64"],
  ["paramsDigest", "str"],
  ["flags", "list"],
] as const satisfies readonly (readonly [keyof AuditRecordBody, "u64" | "str" | "bool" | "list"])[];

export const AUDIT_RECORD_FIELDS: readonly (keyof AuditRecordBody)[] = FIELDS.map(([name]) => name);

const TWO_32 = 2 ** 32;

/**
 * The canonical encoding of a record without its hashes: the byte AUDIT_RECORD_FORMAT_V1, then
 * each field in AUDIT_RECORD_FIELDS order: integers as 8-byte big-endian unsigned, strings as a
 * 4-byte big-endian byte length and their UTF-8 bytes, booleans as one byte 0 or 1, `flags` as a
 * 4-byte count and each flag as a string.
 */
export function encodeAuditRecord(record: AuditRecordBody): Buffer {
  const parts: Buffer[] = [Buffer.from([AUDIT_RECORD_FORMAT_V1])];
  const u32 = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  const str = (s: string): void => {
    const bytes = Buffer.from(s, "utf8");
    parts.push(u32(bytes.length), bytes);
  };
  for (const [name, kind] of FIELDS) {
    const value = record[name];
    switch (kind) {
      case "u64": {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
          throw new RangeError(`audit record "${name}" must be a non-negative safe integer, got ${String(value)}`);
        }
        const b = Buffer.allocUnsafe(8);
        b.writeUInt32BE(Math.floor(value / TWO_32), 0);
        b.writeUInt32BE(value % TWO_32, 4);
        parts.push(b);
        break;
      }
      case "str":
        if (typeof value !== "string") throw new TypeError(`audit record "${name}" must be a string`);
        str(value);
        break;
      case "bool":
        if (typeof value !== "boolean") throw new TypeError(`audit record "${name}" must be a boolean`);
        parts.push(Buffer.from([value ? 1 : 0]));
        break;
      case "list":
        if (!Array.isArray(value) || !value.every((f) => typeof f === "string")) throw new TypeError(`audit record "${name}" must be an array of strings`);
        parts.push(u32(value.length));
        for (const f of value) str(f);
        break;
    }
  }
  return Buffer.concat(parts);
}

/** SHA-256(prevHash || encodeAuditRecord(body)), lower-case hex. */
export function auditRecordHash(prevHash: string, body: AuditRecordBody): string {
  return createHash("sha256").update(hashBytes("prevHash", prevHash)).update(encodeAuditRecord(body)).digest("hex");
}

/** The record with its place in the chain: prevHash set and hash computed. */
export function sealAuditRecord(body: AuditRecordBody, prevHash: string): AuditRecord {
  return { ...body, flags: [...body.flags], prevHash, hash: auditRecordHash(prevHash, body) };
}

/** A 64-character lower-case hex hash as its 32 bytes. */
export function hashBytes(name: string, hex: string): Buffer {
  if (typeof hex !== "string" || !/^[0-9a-f]{64}$/.test(hex)) throw new TypeError(`"${name}" must be 64 lower-case hex digits`);
  return Buffer.from(hex, "hex");
}

/**
 * Canonical JSON of request parameters: object keys sorted (by UTF-16 code units) at every
 * depth, no whitespace, undefined members left out, everything else as JSON.stringify writes it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    return text === undefined ? "null" : text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString("base64"));
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** HMAC-SHA256 of canonicalJson(params) under the 32-byte audit HMAC key, lower-case hex. */
export function paramsDigest(key: Buffer, params: unknown): string {
  if (!Buffer.isBuffer(key) || key.length !== 32) throw new RangeError('"key" must be a 32-byte Buffer');
  return createHmac("sha256", key).update(canonicalJson(params), "utf8").digest("hex");
}
