// CAM policy language v2.0 documents: their shape, the catalogue of actions they may name, and the
// parser that accepts what Tencent accepts and refuses everything else with the place of the fault.

import {
  CONDITION_OPERATORS,
  MAX_CONDITION_VALUES,
  conditionKeyProblem,
  conditionValueProblem,
  isConditionOperator,
  type ConditionOperator,
  type Conditions,
} from "./conditions.js";
import { actionNames, PRODUCTS, type Product } from "./catalog.js";
import { compileGlob, hasWildcard } from "./glob.js";

export type { ConditionOperator, Conditions } from "./conditions.js";

export type Effect = "allow" | "deny";

export interface Statement {
  effect: Effect;
  /** "name/<service>:<Api pattern>" or "*". */
  action: string[];
  /** "*" or six-segment qcs resource patterns. */
  resource: string[];
  condition?: Conditions;
  /** Trust policies only: who may assume the role. */
  principal?: { qcs: string[] };
}

export interface PolicyDocument {
  version: "2.0";
  statement: Statement[];
}

export type PolicyKind = "identity" | "trust";

/**
 * Where a document's text comes from. "request": a new document, held to every current rule.
 * "store": one saved earlier, perhaps under older rules; what those accepted is still accepted,
 * and upper-case key ids are matched as the lower-case key they name (see storedResource).
 */
export type DocumentOrigin = "request" | "store";

/** A document refused by the parser; `path` names the place ("statement[1].action[0]", "" for the whole document). */
export class PolicyDocumentError extends Error {
  override readonly name = "PolicyDocumentError";
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(path === "" ? detail : `${path}: ${detail}`);
  }
}

/** A product whose actions a policy may name (name/<service>:<Action>). */
export type PolicyService = Product;

/** Every action a policy may name, by service: the action catalogue's (catalog.ts). */
export const KNOWN_ACTIONS: Readonly<Record<PolicyService, readonly string[]>> = Object.freeze(
  Object.fromEntries(PRODUCTS.map((p) => [p, Object.freeze([...actionNames(p)])])) as Record<PolicyService, readonly string[]>,
);

export const POLICY_SERVICES: readonly PolicyService[] = PRODUCTS;

/** Tencent's CAM limit on a policy document, in bytes of its text. */
export const MAX_DOCUMENT_BYTES = 6144;
export const MAX_STATEMENTS = 100;

const ACTION_PATTERN = /^name\/([^:]*):([A-Za-z0-9*?]+)$/;
const PRINCIPAL_PATTERN = /^qcs::cam::uin\/[1-9]\d*:(?:root|uin\/[1-9]\d*)$/;
const REGION_PATTERN = /^[a-z0-9*?-]*$/;
const ACCOUNT_PATTERN = /^(?:\*|uin\/[0-9*?]+)?$/;
/** A resource tail: printable, no spaces. */
const TAIL_PATTERN = /^[\x21-\x7e]+$/;
/** The name of a key, as the service writes it: key/creatorUin/<uin>/<KeyId>, the key id a lower-case UUID. */
const KEY_NAME_PREFIX = "key/creatorUin/";
const KEY_NAME_PATTERN = /^key\/creatorUin\/\d+\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isPolicyService(name: string): name is PolicyService {
  return (POLICY_SERVICES as readonly string[]).includes(name);
}

/** Why `text` is not an action a policy may name, or undefined if it is one. */
function actionProblem(text: string): string | undefined {
  if (text === "*") return undefined;
  if (text.startsWith("permid/")) return `"${text}": feature sets (permid/) are not supported; name the actions`;
  if (!text.startsWith("name/")) {
    return /^[a-z]+:/.test(text) ? `"${text}" must be written "name/${text}"` : `"${text}" is not an action (write "name/<service>:<Api>" or "*")`;
  }
  const m = ACTION_PATTERN.exec(text);
  if (m === null) return `"${text}" is not an action (write "name/<service>:<Api>")`;
  const service = m[1] as string;
  const api = m[2] as string;
  if (!isPolicyService(service)) return `"${text}" names an unknown service "${service}" (known: ${POLICY_SERVICES.join(", ")})`;
  const known = KNOWN_ACTIONS[service];
  if (!hasWildcard(api)) return known.includes(api) ? undefined : `"${text}" is not a known action`;
  return known.some(compileGlob(api)) ? undefined : `"${text}" matches no known action`;
}

/** Why `text` is not a resource pattern, or undefined if it is one. */
function resourceProblem(text: string, origin: DocumentOrigin): string | undefined {
  if (text === "*") return undefined;
  const segments = text.split(":");
  if (segments.length !== 6) return `"${text}" must be "*" or six segments qcs:<project>:<service>:<region>:<account>:<resource>`;
  const [qcs, project, service, region, account, tail] = segments as [string, string, string, string, string, string];
  if (qcs !== "qcs") return `"${text}" must start with "qcs:"`;
  if (project !== "") return `"${text}": the project segment must be empty`;
  if (service !== "" && !isPolicyService(service)) return `"${text}" names an unknown service "${service}" (known: ${POLICY_SERVICES.join(", ")}, or empty for all)`;
  if (!REGION_PATTERN.test(region)) return `"${text}": "${region}" is not a region`;
  if (!ACCOUNT_PATTERN.test(account)) return `"${text}": the account segment must be uin/<digits>, * or empty`;
  if (!TAIL_PATTERN.test(tail)) return `"${text}": the resource segment must be non-empty printable text without spaces`;
  if (service === "kms" && !(tail === "*" || tail.startsWith("key/") || tail.startsWith("alias/"))) {
    return `"${text}": a kms resource is key/..., alias/... or *`;
  }
  if (origin === "request" && (service === "kms" || service === "") && tail.startsWith("key/")) return keyPatternProblem(text, tail);
  return undefined;
}

/**
 * Why a key/ resource tail can never match a key's name, or undefined. Key ids are lower-case
 * UUIDs, and matching is case-sensitive, so an upper-case id would silently match nothing (a deny
 * written that way would deny nothing): it is refused, as a KeyId parameter is, with the spelling
 * that works. A tail without wildcards must be a whole key name.
 */
function keyPatternProblem(text: string, tail: string): string | undefined {
  const lowered = lowerCaseKeyPattern(tail);
  if (lowered !== tail) {
    return `"${text}": key ids are lower-case UUIDs and resources match case-sensitively, so this matches no key; write "${text.slice(0, -tail.length)}${lowered}"`;
  }
  if (!hasWildcard(tail) && !KEY_NAME_PATTERN.test(tail)) return `"${text}": a key is named key/creatorUin/<uin>/<KeyId> (the KeyId a lower-case UUID), or a pattern with * or ?`;
  return undefined;
}

/** A key/ resource tail with its letters in lower case, but for the "creatorUin" that every key name holds. */
function lowerCaseKeyPattern(tail: string): string {
  const lowered = tail.toLowerCase();
  return lowered.startsWith(KEY_NAME_PREFIX.toLowerCase()) ? KEY_NAME_PREFIX + lowered.slice(KEY_NAME_PREFIX.length) : lowered;
}

/**
 * A stored resource pattern as it is matched: documents saved before key ids were checked may name
 * a key in upper case; they mean that key, so they are matched as its lower-case name.
 */
function storedResource(text: string): string {
  const parts = text.split(":");
  const service = parts[2];
  const tail = parts[5];
  if (parts.length !== 6 || !(service === "kms" || service === "") || tail === undefined || !tail.startsWith("key/")) return text;
  return `${parts.slice(0, 5).join(":")}:${lowerCaseKeyPattern(tail)}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : `a ${typeof value}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function onlyFields(value: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const field of Object.keys(value)) {
    if (!allowed.includes(field)) {
      throw new PolicyDocumentError(path === "" ? field : `${path}.${field}`, `unknown field (allowed: ${allowed.join(", ")})`);
    }
  }
}

/** A string or a non-empty array of strings, as an array; each element checked by `problem`. */
function stringList(value: unknown, path: string, what: string, problem: (s: string) => string | undefined, max = Infinity): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) throw new PolicyDocumentError(path, `must be a string or an array of strings, not ${describe(value)}`);
  if (list.length === 0) throw new PolicyDocumentError(path, `must list at least one ${what}`);
  if (list.length > max) throw new PolicyDocumentError(path, `lists ${list.length} values; at most ${max} are allowed`);
  return list.map((item: unknown, i) => {
    const at = typeof value === "string" ? path : `${path}[${i}]`;
    if (typeof item !== "string") throw new PolicyDocumentError(at, `must be a string, not ${describe(item)}`);
    const p = problem(item);
    if (p !== undefined) throw new PolicyDocumentError(at, p);
    return item;
  });
}

function parseConditions(value: unknown, path: string): Conditions {
  if (!isObject(value)) throw new PolicyDocumentError(path, `must be an object of operator -> key -> values, not ${describe(value)}`);
  const operators = Object.keys(value);
  if (operators.length === 0) throw new PolicyDocumentError(path, "must name at least one operator");
  const entries = operators.map((op): [ConditionOperator, Record<string, string[]>] => {
    const opPath = `${path}.${op}`;
    if (!isConditionOperator(op)) throw new PolicyDocumentError(opPath, `"${op}" is not a known condition operator (known: ${CONDITION_OPERATORS.join(", ")})`);
    const keys = value[op];
    if (!isObject(keys)) throw new PolicyDocumentError(opPath, `must be an object of condition key -> values, not ${describe(keys)}`);
    const names = Object.keys(keys);
    if (names.length === 0) throw new PolicyDocumentError(opPath, "must name at least one condition key");
    const parsed = names.map((key): [string, string[]] => {
      const keyPath = `${opPath}[${JSON.stringify(key)}]`;
      const kp = conditionKeyProblem(op, key);
      if (kp !== undefined) throw new PolicyDocumentError(keyPath, kp);
      return [key, stringList(keys[key], keyPath, "value", (v) => conditionValueProblem(op, key, v), MAX_CONDITION_VALUES)];
    });
    return [op, Object.fromEntries(parsed)];
  });
  return Object.fromEntries(entries) as Conditions;
}

function parseStatement(value: unknown, path: string, kind: PolicyKind, origin: DocumentOrigin): Statement {
  if (!isObject(value)) throw new PolicyDocumentError(path, `must be an object, not ${describe(value)}`);
  if (kind === "identity" && "principal" in value) throw new PolicyDocumentError(`${path}.principal`, "belongs only in a role's trust policy");
  onlyFields(value, kind === "trust" ? ["effect", "action", "resource", "condition", "principal"] : ["effect", "action", "resource", "condition"], path);
  const effect = value["effect"];
  if (effect === undefined) throw new PolicyDocumentError(`${path}.effect`, 'is required ("allow" or "deny")');
  if (effect !== "allow" && effect !== "deny") throw new PolicyDocumentError(`${path}.effect`, `${describe(effect)} must be "allow" or "deny" (lowercase)`);
  if (value["action"] === undefined) throw new PolicyDocumentError(`${path}.action`, "is required");
  const action = stringList(value["action"], `${path}.action`, "action", (a) =>
    kind === "trust" && a !== "name/sts:AssumeRole" ? `"${a}": a trust policy allows only "name/sts:AssumeRole"` : actionProblem(a),
  );
  let resource: string[];
  if (value["resource"] !== undefined) resource = stringList(value["resource"], `${path}.resource`, "resource", (r) => resourceProblem(r, origin));
  else if (kind === "trust") resource = ["*"]; // Tencent's trust policies carry no resource; "*" stands in so every statement has one
  else throw new PolicyDocumentError(`${path}.resource`, "is required");
  const statement: Statement = { effect, action, resource: origin === "store" ? resource.map(storedResource) : resource };
  if (value["condition"] !== undefined) statement.condition = parseConditions(value["condition"], `${path}.condition`);
  if (kind === "trust") {
    const principal = value["principal"];
    const at = `${path}.principal`;
    if (principal === undefined) throw new PolicyDocumentError(at, 'is required in a trust policy ({"qcs": [...]})');
    if (!isObject(principal)) throw new PolicyDocumentError(at, `must be an object {"qcs": [...]}, not ${describe(principal)}`);
    onlyFields(principal, ["qcs"], at);
    if (principal["qcs"] === undefined) throw new PolicyDocumentError(`${at}.qcs`, "is required");
    statement.principal = {
      qcs: stringList(principal["qcs"], `${at}.qcs`, "principal", (p) =>
        PRINCIPAL_PATTERN.test(p) ? undefined : `"${p}" must be qcs::cam::uin/<uin>:root or qcs::cam::uin/<uin>:uin/<subuin>`,
      ),
    };
  }
  return statement;
}

/**
 * Parses a policy document's text. Accepts what Tencent's CAM accepts (action, resource and
 * condition values as one string or an array), normalizes single strings to arrays, and refuses
 * anything else with a PolicyDocumentError naming the place. `kind` "trust" is a role's trust
 * policy: every statement names a principal and only name/sts:AssumeRole. `origin` "store" parses
 * a saved document (see DocumentOrigin).
 */
export function parsePolicyDocument(text: string, kind: PolicyKind, origin: DocumentOrigin = "request"): PolicyDocument {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_DOCUMENT_BYTES) throw new PolicyDocumentError("", `the policy document is ${bytes} bytes; at most ${MAX_DOCUMENT_BYTES} are allowed`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PolicyDocumentError("", `the policy document is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) throw new PolicyDocumentError("", `the policy document must be a JSON object, not ${describe(value)}`);
  onlyFields(value, ["version", "statement"], "");
  if (value["version"] !== "2.0") throw new PolicyDocumentError("version", `${describe(value["version"])} must be "2.0"`);
  const statements = value["statement"];
  if (!Array.isArray(statements)) throw new PolicyDocumentError("statement", `must be an array of statements, not ${describe(statements)}`);
  if (statements.length === 0) throw new PolicyDocumentError("statement", "must hold at least one statement");
  if (statements.length > MAX_STATEMENTS) throw new PolicyDocumentError("statement", `holds ${statements.length} statements; at most ${MAX_STATEMENTS} are allowed`);
  return { version: "2.0", statement: statements.map((s: unknown, i) => parseStatement(s, `statement[${i}]`, kind, origin)) };
}
