// One audit record per request, and its place in the hash chain: a canonical byte encoding
// (length-prefixed fields in a fixed order, specified in docs/formats.md, "Audit records") and
// hash = SHA-256(prevHash || encoding). Records never hold messages, parameters, plaintext,
// ciphertext or secrets: only codes, names and a keyed digest of the parameters.

import { createHash, createHmac } from "node:crypto";

export const AUDIT_SERVICES = ["kms", "cam", "sts", "cloudaudit", "tang", ""] as const;
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
  // Two passes: check and measure, then write into one buffer (verify encodes every record).
  let length = 1;
  for (const [name, kind] of FIELDS) {
    const value = record[name];
    switch (kind) {
      case "u64":
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
          throw new RangeError(`audit record "${name}" must be a non-negative safe integer, got ${String(value)}`);
        }
        length += 8;
        break;
      case "str":
        if (typeof value !== "string") throw new TypeError(`audit record "${name}" must be a string`);
        length += 4 + utf8Length(value);
        break;
      case "bool":
        if (typeof value !== "boolean") throw new TypeError(`audit record "${name}" must be a boolean`);
        length += 1;
        break;
      case "list":
        if (!Array.isArray(value) || !value.every((f) => typeof f === "string")) throw new TypeError(`audit record "${name}" must be an array of strings`);
        length += 4;
        for (const f of value as string[]) length += 4 + utf8Length(f);
        break;
    }
  }
  const out = Buffer.allocUnsafe(length);
  out[0] = AUDIT_RECORD_FORMAT_V1;
  let at = 1;
  const str = (s: string): void => {
    const end = writeUtf8(out, at + 4, s);
    out.writeUInt32BE(end - at - 4, at);
    at = end;
  };
  for (const [name, kind] of FIELDS) {
    const value = record[name];
    switch (kind) {
      case "u64": {
        const n = value as number;
        out.writeUInt32BE(Math.floor(n / TWO_32), at);
        out.writeUInt32BE(n % TWO_32, at + 4);
        at += 8;
        break;
      }
      case "str":
        str(value as string);
        break;
      case "bool":
        out[at++] = value === true ? 1 : 0;
        break;
      case "list":
        out.writeUInt32BE((value as string[]).length, at);
        at += 4;
        for (const f of value as string[]) str(f);
        break;
    }
  }
  return out;
}

// UTF-8 in plain JavaScript: for the short strings of a record this is several times faster than
// a call into Buffer per field. Lone surrogates become U+FFFD (EF BF BD), as Buffer.from does.

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Writes `s` at `at`; returns the offset after it. */
function writeUtf8(out: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[at++] = c;
    } else if (c < 0x800) {
      out[at++] = 0xc0 | (c >> 6);
      out[at++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[at++] = 0xf0 | (c >> 18);
      out[at++] = 0x80 | ((c >> 12) & 0x3f);
      out[at++] = 0x80 | ((c >> 6) & 0x3f);
      out[at++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      out[at++] = 0xe0 | (c >> 12);
      out[at++] = 0x80 | ((c >> 6) & 0x3f);
      out[at++] = 0x80 | (c & 0x3f);
    }
  }
  return at;
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
