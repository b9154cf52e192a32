// KMIP request and response messages (KMIP 1.4 §7, KMIP 2.0 §8): reading a decoded request into
// its header and batch items, checking each field's tag and type, and building the response.
// A field of the wrong type or a missing required field is a KmipFault naming the field.

import { TAG, type OperationName, OPERATION, RESULT_REASON, RESULT_STATUS, type ResultReasonName } from "./tags.js";
import type { Ttlv, TtlvStructure } from "./ttlv.js";

/** A refusal in KMIP's own terms: the result reason and a message for the client. */
export class KmipFault extends Error {
  override readonly name = "KmipFault";
  constructor(
    readonly reason: ResultReasonName,
    message: string,
  ) {
    super(message);
  }
}

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** The versions Tresor speaks, newest first (Discover Versions answers in this order). */
export const SUPPORTED_VERSIONS: readonly ProtocolVersion[] = Object.freeze([
  { major: 2, minor: 0 },
  { major: 1, minor: 4 },
  { major: 1, minor: 3 },
  { major: 1, minor: 2 },
  { major: 1, minor: 1 },
  { major: 1, minor: 0 },
]);

export function isSupported(v: ProtocolVersion): boolean {
  return SUPPORTED_VERSIONS.some((s) => s.major === v.major && s.minor === v.minor);
}

/** KMIP 2.0 and later encode attributes and references differently. */
export function isKmip2(v: ProtocolVersion): boolean {
  return v.major >= 2;
}

export interface RequestItem {
  readonly operation: number;
  readonly operationName: OperationName | undefined;
  readonly batchItemId: Buffer | undefined;
  readonly payload: TtlvStructure;
}

export interface KmipRequest {
  readonly version: ProtocolVersion;
  readonly maxResponseSize: number | undefined;
  readonly asynchronous: boolean;
  /** Continue (1), Stop (2, the default) or Undo (3). */
  readonly batchErrorContinuation: number;
  readonly items: readonly RequestItem[];
}

const OPERATION_NAMES = new Map<number, OperationName>(Object.entries(OPERATION).map(([name, code]) => [code, name as OperationName]));

/** Reads the protocol version of a request even when the rest is unreadable, to answer in it. */
export function requestVersion(message: Ttlv): ProtocolVersion | undefined {
  if (message.tag !== TAG.RequestMessage || message.type !== "Structure") return undefined;
  const header = message.value.find((c) => c.tag === TAG.RequestHeader);
  if (header?.type !== "Structure") return undefined;
  const version = header.value.find((c) => c.tag === TAG.ProtocolVersion);
  if (version?.type !== "Structure") return undefined;
  const major = version.value.find((c) => c.tag === TAG.ProtocolVersionMajor);
  const minor = version.value.find((c) => c.tag === TAG.ProtocolVersionMinor);
  return major?.type === "Integer" && minor?.type === "Integer" ? { major: major.value, minor: minor.value } : undefined;
}

export function parseRequest(message: Ttlv): KmipRequest {
  if (message.tag !== TAG.RequestMessage || message.type !== "Structure") throw new KmipFault("InvalidMessage", "the message is not a Request Message structure");
  const header = struct(message, TAG.RequestHeader, "Request Header");
  const versionItem = struct(header, TAG.ProtocolVersion, "Protocol Version");
  const version = { major: integer(versionItem, TAG.ProtocolVersionMajor, "Protocol Version Major"), minor: integer(versionItem, TAG.ProtocolVersionMinor, "Protocol Version Minor") };
  const batchCount = integer(header, TAG.BatchCount, "Batch Count");
  const items = all(message, TAG.BatchItem).map(parseItem);
  if (items.length === 0 || items.length !== batchCount) throw new KmipFault("InvalidMessage", `"Batch Count" is ${batchCount} but the message holds ${items.length} batch items`);
  const maxResponseSize = optionalInteger(header, TAG.MaximumResponseSize, "Maximum Response Size");
  if (maxResponseSize !== undefined && maxResponseSize <= 0) throw new KmipFault("InvalidField", `"Maximum Response Size" must be positive, got ${maxResponseSize}`);
  return {
    version,
    maxResponseSize,
    asynchronous: optionalBoolean(header, TAG.AsynchronousIndicator, "Asynchronous Indicator") ?? false,
    batchErrorContinuation: optionalEnumeration(header, TAG.BatchErrorContinuationOption, "Batch Error Continuation Option") ?? 2,
    items,
  };
}

function parseItem(item: Ttlv): RequestItem {
  if (item.type !== "Structure") throw new KmipFault("InvalidMessage", `"Batch Item" must be a structure, not a ${item.type}`);
  const operation = enumeration(item, TAG.Operation, "Operation");
  const payload = optionalStruct(item, TAG.RequestPayload, "Request Payload") ?? { tag: TAG.RequestPayload, type: "Structure", value: [] };
  return { operation, operationName: OPERATION_NAMES.get(operation), batchItemId: optionalBytes(item, TAG.UniqueBatchItemId, "Unique Batch Item ID"), payload };
}

export interface ResponseItem {
  readonly operation: number | undefined;
  readonly batchItemId: Buffer | undefined;
  readonly reason?: ResultReasonName;
  readonly message?: string;
  readonly payload?: readonly Ttlv[];
}

export function responseMessage(version: ProtocolVersion, timeSeconds: number, items: readonly ResponseItem[]): Ttlv {
  const header: Ttlv = {
    tag: TAG.ResponseHeader,
    type: "Structure",
    value: [versionItem(version), { tag: TAG.TimeStamp, type: "DateTime", value: BigInt(timeSeconds) }, { tag: TAG.BatchCount, type: "Integer", value: items.length }],
  };
  return { tag: TAG.ResponseMessage, type: "Structure", value: [header, ...items.map(responseItem)] };
}

export function versionItem(version: ProtocolVersion): Ttlv {
  return {
    tag: TAG.ProtocolVersion,
    type: "Structure",
    value: [
      { tag: TAG.ProtocolVersionMajor, type: "Integer", value: version.major },
      { tag: TAG.ProtocolVersionMinor, type: "Integer", value: version.minor },
    ],
  };
}

function responseItem(item: ResponseItem): Ttlv {
  const value: Ttlv[] = [];
  if (item.operation !== undefined) value.push({ tag: TAG.Operation, type: "Enumeration", value: item.operation });
  if (item.batchItemId !== undefined) value.push({ tag: TAG.UniqueBatchItemId, type: "ByteString", value: item.batchItemId });
  value.push({ tag: TAG.ResultStatus, type: "Enumeration", value: item.reason ? RESULT_STATUS.OperationFailed : RESULT_STATUS.Success });
  if (item.reason) value.push({ tag: TAG.ResultReason, type: "Enumeration", value: RESULT_REASON[item.reason] });
  if (item.message) value.push({ tag: TAG.ResultMessage, type: "TextString", value: item.message });
  if (!item.reason && item.payload) value.push({ tag: TAG.ResponsePayload, type: "Structure", value: [...item.payload] });
  return { tag: TAG.BatchItem, type: "Structure", value };
}

// ---- fields of a structure, checked ----

const NAMES = new Map<number, string>(Object.entries(TAG).map(([name, tag]) => [tag, name]));

export function all(s: TtlvStructure, tag: number): Ttlv[] {
  return s.value.filter((c) => c.tag === tag);
}

function one(s: TtlvStructure, tag: number, name: string): Ttlv | undefined {
  const found = all(s, tag);
  if (found.length > 1) throw new KmipFault("InvalidField", `"${name}" appears ${found.length} times in ${NAMES.get(s.tag) ?? "a structure"}`);
  return found[0];
}

function typed<T extends Ttlv["type"]>(item: Ttlv | undefined, type: T, name: string): (Ttlv & { type: T }) | undefined {
  if (item === undefined) return undefined;
  if (item.type !== type) throw new KmipFault("InvalidField", `"${name}" must be a ${type}, not a ${item.type}`);
  return item as Ttlv & { type: T };
}

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new KmipFault("InvalidField", `"${name}" is required`);
  return value;
}

export const optionalStruct = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "Structure", name);
export const struct = (s: TtlvStructure, tag: number, name: string): TtlvStructure => required(optionalStruct(s, tag, name), name);
export const optionalInteger = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "Integer", name)?.value;
export const integer = (s: TtlvStructure, tag: number, name: string): number => required(optionalInteger(s, tag, name), name);
export const optionalEnumeration = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "Enumeration", name)?.value;
export const enumeration = (s: TtlvStructure, tag: number, name: string): number => required(optionalEnumeration(s, tag, name), name);
export const optionalText = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "TextString", name)?.value;
export const optionalBytes = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "ByteString", name)?.value;
export const bytes = (s: TtlvStructure, tag: number, name: string): Buffer => required(optionalBytes(s, tag, name), name);
export const optionalBoolean = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "Boolean", name)?.value;
export const optionalDateTime = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "DateTime", name)?.value;
export const optionalInterval = (s: TtlvStructure, tag: number, name: string) => typed(one(s, tag, name), "Interval", name)?.value;
