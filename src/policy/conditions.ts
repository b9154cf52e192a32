// The condition part of CAM policy language v2.0: the operators and keys Tresor understands, how
// their values are checked when a document is parsed, and how a parsed condition is tested
// against a request. Semantics (absent keys, negated operators) are stated once, on `holds`.

import { isIPv4, isIPv6 } from "node:net";
import { compileGlob } from "./glob.js";

const BASE_OPERATORS = [
  "string_equal",
  "string_not_equal",
  "string_like",
  "ip_equal",
  "ip_not_equal",
  "date_equal",
  "date_not_equal",
  "date_greater_than",
  "date_greater_than_equal",
  "date_less_than",
  "date_less_than_equal",
] as const;

export type BaseConditionOperator = (typeof BASE_OPERATORS)[number];
export type ConditionOperator = BaseConditionOperator | `${BaseConditionOperator}_if_exist`;

/** Every operator a policy may use: the eleven base operators, then each with `_if_exist`. */
export const CONDITION_OPERATORS: readonly ConditionOperator[] = [...BASE_OPERATORS, ...BASE_OPERATORS.map((op) => `${op}_if_exist` as const)];

/** operator -> condition key -> values (one or more; any one may match). */
export type Conditions = { [Op in ConditionOperator]?: Record<string, string[]> };

/** What a request tells the conditions. */
export interface ConditionContext {
  /** qcs:ip */
  sourceIp?: string;
  /** Unix milliseconds; qcs:current_time. */
  currentTime: number;
  /** kms:encryption_context/<name> */
  encryptionContext?: Readonly<Record<string, string>>;
  /** qcs:resource_tag ("key&value") and qcs:resource_tag/<key> (value). */
  resourceTags?: Readonly<Record<string, string>>;
}

/** At most this many values per condition key (Tencent documents no number; 50 keeps documents readable). */
export const MAX_CONDITION_VALUES = 50;

type KeyKind = "ip" | "time" | "string";
const OPERATOR_KIND: Readonly<Record<BaseConditionOperator, KeyKind>> = {
  string_equal: "string",
  string_not_equal: "string",
  string_like: "string",
  ip_equal: "ip",
  ip_not_equal: "ip",
  date_equal: "time",
  date_not_equal: "time",
  date_greater_than: "time",
  date_greater_than_equal: "time",
  date_less_than: "time",
  date_less_than_equal: "time",
};

const ENCRYPTION_CONTEXT_PREFIX = "kms:encryption_context/";
const RESOURCE_TAG_PREFIX = "qcs:resource_tag/";

export function isConditionOperator(name: string): name is ConditionOperator {
  return (CONDITION_OPERATORS as readonly string[]).includes(name);
}

function baseOf(op: ConditionOperator): { base: BaseConditionOperator; ifExist: boolean } {
  const ifExist = op.endsWith("_if_exist");
  return { base: (ifExist ? op.slice(0, -"_if_exist".length) : op) as BaseConditionOperator, ifExist };
}

/** The kind of value a condition key carries, or undefined for a key Tresor does not know. */
function kindOfKey(key: string): KeyKind | undefined {
  if (key === "qcs:ip") return "ip";
  if (key === "qcs:current_time") return "time";
  if (key === "qcs:resource_tag") return "string";
  if (key.startsWith(ENCRYPTION_CONTEXT_PREFIX) && key.length > ENCRYPTION_CONTEXT_PREFIX.length) return "string";
  if (key.startsWith(RESOURCE_TAG_PREFIX) && key.length > RESOURCE_TAG_PREFIX.length) return "string";
  return undefined;
}

/**
 * Checks that `key` may be used with `op`; returns a problem in words, or undefined. The kinds must
 * agree: qcs:ip only with ip_*, qcs:current_time only with date_*, the others only with string_*.
 */
export function conditionKeyProblem(op: ConditionOperator, key: string): string | undefined {
  const kind = kindOfKey(key);
  if (kind === undefined) {
    return `"${key}" is not a known condition key (qcs:ip, qcs:current_time, kms:encryption_context/<name>, qcs:resource_tag, qcs:resource_tag/<key>)`;
  }
  const { base } = baseOf(op);
  if (OPERATOR_KIND[base] !== kind) {
    const wanted = kind === "ip" ? "an ip_* operator" : kind === "time" ? "a date_* operator" : "a string_* operator";
    return `"${key}" needs ${wanted}, not ${op}`;
  }
  return undefined;
}

/** Checks one value of `key` under `op`; returns a problem in words, or undefined. */
export function conditionValueProblem(op: ConditionOperator, key: string, value: string): string | undefined {
  const { base } = baseOf(op);
  switch (OPERATOR_KIND[base]) {
    case "ip":
      return parseCidr(value) === undefined ? `"${value}" is not an IPv4 or IPv6 address or CIDR block` : undefined;
    case "time":
      return parseIsoTime(value) === undefined ? `"${value}" is not an ISO-8601 date or date-time with a time zone` : undefined;
    case "string":
      return key === "qcs:resource_tag" && !value.includes("&") ? `"${value}" must be written "<tag key>&<tag value>"` : undefined;
  }
}

// ---- time ----------------------------------------------------------------------------------

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Unix milliseconds of an ISO-8601 date ("2026-01-01", midnight UTC) or date-time with a zone
 * ("2026-01-01T08:00:00Z", "2026-01-01T08:00+08:00"); undefined for anything else. A date-time
 * without a zone is refused: it would mean the server's local time, which a policy cannot know.
 */
export function parseIsoTime(text: string): number | undefined {
  const m = ISO_TIME.exec(text);
  if (m === null) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const hour = m[4] === undefined ? 0 : Number(m[4]);
  const minute = m[5] === undefined ? 0 : Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].padEnd(3, "0").slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  let offset = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== "Z") {
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(4, 6));
    if (zh > 23 || zm > 59) return undefined;
    offset = (zone.startsWith("-") ? -1 : 1) * (zh * 60 + zm) * 60_000;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // setUTCFullYear, unlike Date.UTC, keeps years 0-99 as written
  utc.setUTCHours(hour, minute, second, millis);
  return utc.getTime() - offset;
}

// ---- addresses -----------------------------------------------------------------------------

export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr extends IpAddress {
  prefix: number;
}

function parseIpv4(text: string): bigint {
  return text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function parseIpv6(text: string): bigint {
  let groups: number[] = [];
  const [head = "", tail] = text.split("::");
  const part = (s: string): number[] => {
    if (s === "") return [];
    return s.split(":").flatMap((g) => {
      if (g.includes(".")) {
        const v4 = Number(parseIpv4(g));
        return [v4 >>> 16, v4 & 0xffff];
      }
      return [parseInt(g, 16)];
    });
  };
  const left = part(head);
  if (tail === undefined) {
    groups = left;
  } else {
    const right = part(tail);
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

const V4_MAPPED = 0xffffn << 32n;

/** An IPv4 or IPv6 address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as Node reports IPv4 peers on a dual-stack socket) is IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, value: parseIpv4(text) };
  const address = text.split("%")[0] ?? ""; // drop a zone id (fe80::1%eth0)
  if (!isIPv6(address)) return undefined;
  const value = parseIpv6(address);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffff_ffffn };
  return { family: 6, value };
}

/** A CIDR block, or a bare address as a /32 or /128. Host bits are ignored (10.1.2.3/8 is 10.0.0.0/8). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  if (addressText.includes("%")) return undefined;
  if (!isIPv4(addressText) && !isIPv6(addressText)) return undefined;
  const width = isIPv4(addressText) ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > width) return undefined;
  }
  if (width === 32) return { family: 4, value: parseIpv4(addressText), prefix };
  const value = parseIpv6(addressText);
  // A block inside ::ffff:0:0/96 is the IPv4 block it maps, so it matches the addresses parseIp folds to IPv4.
  if (prefix >= 96 && (value >> 32n) << 32n === V4_MAPPED) return { family: 4, value: value & 0xffff_ffffn, prefix: prefix - 96 };
  return { family: 6, value, prefix };
}

function inCidr(address: IpAddress, block: Cidr): boolean {
  if (address.family !== block.family) return false;
  const shift = BigInt((block.family === 4 ? 32 : 128) - block.prefix);
  return address.value >> shift === block.value >> shift;
}

// ---- evaluation ----------------------------------------------------------------------------

/** One operator applied to one key, ready to test: built once per policy document. */
export interface CompiledCondition {
  readonly operator: ConditionOperator;
  readonly key: string;
  readonly values: readonly string[];
  holds(context: ConditionContext): boolean;
}

/**
 * The values a request gives `key`, as text; undefined when the key is absent (an empty tag set is
 * absent). qcs:ip is the source address as given, qcs:current_time the time in ISO-8601.
 */
export function requestValues(key: string, context: ConditionContext): string[] | undefined {
  if (key === "qcs:ip") return context.sourceIp === undefined ? undefined : [context.sourceIp];
  if (key === "qcs:current_time") return Number.isFinite(context.currentTime) ? [new Date(context.currentTime).toISOString()] : undefined;
  return stringValues(key, context);
}

/** The values a request gives a string-kind `key`; undefined when the key is absent (an empty tag set is absent). */
function stringValues(key: string, context: ConditionContext): string[] | undefined {
  if (key.startsWith(ENCRYPTION_CONTEXT_PREFIX)) {
    const ec = context.encryptionContext;
    const name = key.slice(ENCRYPTION_CONTEXT_PREFIX.length);
    return ec !== undefined && Object.hasOwn(ec, name) ? [ec[name] as string] : undefined;
  }
  const tags = context.resourceTags;
  if (tags === undefined) return undefined;
  if (key === "qcs:resource_tag") {
    const pairs = Object.entries(tags).map(([k, v]) => `${k}&${v}`);
    return pairs.length === 0 ? undefined : pairs;
  }
  const tag = key.slice(RESOURCE_TAG_PREFIX.length);
  return Object.hasOwn(tags, tag) ? [tags[tag] as string] : undefined;
}

/**
 * Builds the test for `op` on `key` with `values` (already validated by the parser).
 *
 * Semantics, as AWS IAM has them:
 * - Several values of one key: the condition holds if any one of them matches (OR).
 * - A negated operator (string_not_equal, ip_not_equal, date_not_equal) holds exactly when its
 *   positive operator does not, given the key is present. For a key with several request values
 *   (qcs:resource_tag) that means: none of the request's values matches any policy value.
 * - A key the request does not carry makes every operator false, negated ones included; with the
 *   `_if_exist` suffix it makes the condition true. So a deny on `string_not_equal` of a missing
 *   key does not apply: write `string_not_equal_if_exist` for "deny unless the key says X".
 * - A source IP that is not an address counts as absent.
 */
export function compileCondition(op: ConditionOperator, key: string, values: readonly string[]): CompiledCondition {
  const { base, ifExist } = baseOf(op);
  let present: (context: ConditionContext) => boolean | undefined;
  switch (base) {
    case "string_equal":
    case "string_not_equal": {
      const set = new Set(values);
      const negate = base === "string_not_equal";
      present = (c) => {
        const got = stringValues(key, c);
        return got === undefined ? undefined : got.some((v) => set.has(v)) !== negate;
      };
      break;
    }
    case "string_like": {
      const globs = values.map(compileGlob);
      present = (c) => {
        const got = stringValues(key, c);
        return got === undefined ? undefined : got.some((v) => globs.some((g) => g(v)));
      };
      break;
    }
    case "ip_equal":
    case "ip_not_equal": {
      // Values the parser would refuse (a document built by hand) match nothing rather than throw.
      const blocks = values.map(parseCidr).filter((b): b is Cidr => b !== undefined);
      const negate = base === "ip_not_equal";
      present = (c) => {
        const ip = c.sourceIp === undefined ? undefined : parseIp(c.sourceIp);
        return ip === undefined ? undefined : blocks.some((b) => inCidr(ip, b)) !== negate;
      };
      break;
    }
    default: {
      const times = values.map(parseIsoTime).filter((t): t is number => t !== undefined);
      const compare = TIME_COMPARISONS[base];
      const negate = base === "date_not_equal";
      present = (c) => (Number.isFinite(c.currentTime) ? times.some((t) => compare(c.currentTime, t)) !== negate : undefined);
    }
  }
  return {
    operator: op,
    key,
    values,
    holds: (context) => present(context) ?? ifExist,
  };
}

const TIME_COMPARISONS: Readonly<Record<Extract<BaseConditionOperator, `date_${string}`>, (now: number, t: number) => boolean>> = {
  date_equal: (now, t) => now === t,
  date_not_equal: (now, t) => now === t, // negated by the caller
  date_greater_than: (now, t) => now > t,
  date_greater_than_equal: (now, t) => now >= t,
  date_less_than: (now, t) => now < t,
  date_less_than_equal: (now, t) => now <= t,
};

/** Every operator/key pair of a statement's conditions, compiled; all must hold. */
export function compileConditions(conditions: Conditions | undefined): CompiledCondition[] {
  if (conditions === undefined) return [];
  return Object.entries(conditions).flatMap(([op, keys]) =>
    Object.entries(keys ?? {}).map(([key, values]) => compileCondition(op as ConditionOperator, key, values)),
  );
}
