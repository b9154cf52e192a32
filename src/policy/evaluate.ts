// Deciding a request against the identity policies attached to its caller: explicit deny wins,
// then allow, else implicit deny. Runs on every KMS request, so each document's patterns are
// compiled to matchers once and kept beside the (immutable) document object.

import { compileConditions, requestValues, type CompiledCondition, type ConditionContext } from "./conditions.js";
import type { Effect, PolicyDocument } from "./document.js";
import { compileGlob, type Glob } from "./glob.js";

export type { ConditionContext } from "./conditions.js";

export interface AuthorizationRequest {
  /** "<service>:<Api>", e.g. "kms:Encrypt". */
  action: string;
  /**
   * The names of the one resource acted on: for a key its key name
   * "qcs::kms:<region>:uin/<owner>:key/creatorUin/<creator>/<keyId>" and, if it has an alias,
   * "qcs::kms:<region>:uin/<owner>:alias/<alias>"; ["*"] for an account-level action.
   */
  resources: string[];
  context: ConditionContext;
}

export interface AttachedPolicy {
  policyId: number;
  policyName: string;
  document: PolicyDocument;
  /**
   * The uin of the account the policy belongs to. A resource pattern with an empty account segment
   * means this account, as in Tencent's CAM; without `ownerUin` it means any account.
   */
  ownerUin?: string;
}

export interface Decision {
  allowed: boolean;
  /** explicit-deny | allow | implicit-deny */
  reason: "explicit-deny" | "allow" | "implicit-deny";
  /** the statement that decided (explicit deny: the first matching deny; allow: the first matching allow) */
  statement?: { policyId: number; policyName: string; index: number };
}

// ---- compiled patterns ---------------------------------------------------------------------

type ActionMatcher = (service: string, api: string) => boolean;

/** A resource name split into its six segments, or the account-level "*". */
type ResourceName = readonly string[] | "*";

interface ResourceMatcher {
  /** The pattern "*": matches every resource, and is the only pattern matching an account-level "*". */
  readonly any: boolean;
  /** One matcher per segment; undefined where an empty segment means any. Empty when the pattern is no six-segment name. */
  readonly segments: readonly (Glob | undefined)[];
  /** The pattern's account segment is empty: the policy owner's account (any account when the owner is not known). */
  readonly ownAccount: boolean;
}

interface CompiledStatement {
  readonly effect: Effect;
  readonly index: number;
  /** Trust-policy statements name a principal; identity evaluation never applies them. */
  readonly trust: boolean;
  readonly actions: readonly ActionMatcher[];
  readonly resources: readonly ResourceMatcher[];
  readonly conditions: readonly CompiledCondition[];
}

const NEVER: ActionMatcher = () => false;

function compileAction(pattern: string): ActionMatcher {
  if (pattern === "*") return () => true;
  const m = /^name\/([^:]*):(.+)$/.exec(pattern);
  if (m === null) return NEVER;
  const service = m[1] as string;
  const api = compileGlob(m[2] as string);
  return (s, a) => s === service && api(a);
}

/** Splits at the first five colons: the sixth segment (the resource) may itself hold colons. */
function segments(name: string): string[] | undefined {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < 5; i++) {
    const colon = name.indexOf(":", start);
    if (colon < 0) return undefined;
    out.push(name.slice(start, colon));
    start = colon + 1;
  }
  out.push(name.slice(start));
  return out;
}

function resourceName(resource: string): ResourceName | undefined {
  return resource === "*" ? "*" : segments(resource);
}

/** Segments whose empty pattern means any: project, service, region (and account, see ownAccount). */
const EMPTY_MEANS_ANY: ReadonlySet<number> = new Set([1, 2, 3, 4]);

function compileResource(pattern: string): ResourceMatcher {
  if (pattern === "*") return { any: true, segments: [], ownAccount: false };
  const parts = segments(pattern);
  if (parts === undefined) return { any: false, segments: [], ownAccount: false };
  // Segment by segment, so a wildcard in the region stays in the region; in the sixth segment `*` spans "/" and ":".
  return {
    any: false,
    segments: parts.map((part, i) => (part === "" && EMPTY_MEANS_ANY.has(i) ? undefined : compileGlob(part))),
    ownAccount: parts[4] === "",
  };
}

function matchesResource(m: ResourceMatcher, name: ResourceName | undefined, ownerUin: string | undefined): boolean {
  if (m.any) return true;
  if (name === undefined || name === "*" || m.segments.length === 0) return false;
  for (let i = 0; i < 6; i++) {
    const glob = m.segments[i];
    if (glob !== undefined && !glob(name[i] as string)) return false;
  }
  return !m.ownAccount || ownerUin === undefined || name[4] === `uin/${ownerUin}`;
}

const compiledDocuments = new WeakMap<PolicyDocument, readonly CompiledStatement[]>();

/**
 * The compiled statements of `document`, built on first use. Documents are treated as immutable:
 * a caller that edits a parsed document in place must parse a new one instead.
 */
function compiled(document: PolicyDocument): readonly CompiledStatement[] {
  let statements = compiledDocuments.get(document);
  if (statements === undefined) {
    statements = document.statement.map((s, index) => ({
      effect: s.effect,
      index,
      trust: s.principal !== undefined,
      actions: s.action.map(compileAction),
      resources: s.resource.map(compileResource),
      conditions: compileConditions(s.condition),
    }));
    compiledDocuments.set(document, statements);
  }
  return statements;
}

function splitAction(action: string): [string, string] | undefined {
  const colon = action.indexOf(":");
  return colon <= 0 || colon === action.length - 1 ? undefined : [action.slice(0, colon), action.slice(colon + 1)];
}

// ---- the public matchers -------------------------------------------------------------------

/** Whether an action pattern ("name/kms:Describe*", "*") covers a request action ("kms:DescribeKey"). The Api part is case-sensitive. */
export function actionMatches(pattern: string, action: string): boolean {
  const parts = splitAction(action);
  return parts !== undefined && compileAction(pattern)(parts[0], parts[1]);
}

/**
 * Whether a resource pattern covers a resource name. Segment by segment; an empty project, service,
 * region or account segment in the pattern means any; `*` and `?` are wildcards, and in the
 * resource segment `*` spans "/". The account-level resource "*" is matched only by the pattern "*".
 */
export function resourceMatches(pattern: string, resource: string): boolean {
  return matchesResource(compileResource(pattern), resourceName(resource), undefined);
}

// ---- evaluation ----------------------------------------------------------------------------

function actionApplies(s: CompiledStatement, service: string, api: string): boolean {
  return s.actions.some((m) => m(service, api));
}

function resourceApplies(s: CompiledStatement, resources: readonly (ResourceName | undefined)[], ownerUin: string | undefined): boolean {
  return s.resources.some((m) => resources.some((r) => matchesResource(m, r, ownerUin)));
}

/**
 * Decides `request` against the identity policies attached to the caller (user, or role for
 * temporary credentials). A statement applies when one of its actions matches, one of its
 * resources matches one of the request's resources, and every condition holds. The first
 * applying deny decides; otherwise the first applying allow; otherwise the request is implicitly
 * denied. Statements of trust policies (those naming a principal) never apply here.
 */
export function evaluate(policies: readonly AttachedPolicy[], request: AuthorizationRequest): Decision {
  const parts = splitAction(request.action);
  if (parts === undefined) return { allowed: false, reason: "implicit-deny" };
  const [service, api] = parts;
  const names = request.resources.map(resourceName);
  let allow: Decision["statement"];
  for (const policy of policies) {
    for (const s of compiled(policy.document)) {
      if (s.trust || (s.effect === "allow" && allow !== undefined)) continue;
      if (!actionApplies(s, service, api) || !resourceApplies(s, names, policy.ownerUin)) continue;
      if (!s.conditions.every((c) => c.holds(request.context))) continue;
      const statement = { policyId: policy.policyId, policyName: policy.policyName, index: s.index };
      if (s.effect === "deny") return { allowed: false, reason: "explicit-deny", statement };
      allow = statement;
    }
  }
  return allow === undefined ? { allowed: false, reason: "implicit-deny" } : { allowed: true, reason: "allow", statement: allow };
}

// ---- explanation ---------------------------------------------------------------------------

function statementName(policy: AttachedPolicy, index: number): string {
  return `policy ${policy.policyId} "${policy.policyName}" statement[${index}]`;
}

/**
 * A human explanation of `evaluate(policies, request)`, several lines: the request, the decision
 * and the statement that made it (or "no statement allows ..."), then every statement whose
 * action and resource match, with the first condition that kept it from applying.
 */
export function explain(policies: readonly AttachedPolicy[], request: AuthorizationRequest): string {
  const decision = evaluate(policies, request);
  const on = request.resources.join(", ");
  const lines = [`request: ${request.action} on ${on}`];
  const decided = decision.statement;
  const decider = decided === undefined ? undefined : policies.find((p) => p.policyId === decided.policyId && p.policyName === decided.policyName);
  switch (decision.reason) {
    case "explicit-deny":
      lines.push(`decision: denied explicitly by ${decider === undefined || decided === undefined ? "a deny statement" : statementName(decider, decided.index)}`);
      break;
    case "allow":
      lines.push(`decision: allowed by ${decider === undefined || decided === undefined ? "an allow statement" : statementName(decider, decided.index)}`);
      break;
    case "implicit-deny":
      lines.push(`decision: denied implicitly: no statement allows ${request.action} on ${on}`);
      break;
  }
  const parts = splitAction(request.action);
  const considered: string[] = [];
  const names = request.resources.map(resourceName);
  if (parts !== undefined) {
    for (const policy of policies) {
      for (const s of compiled(policy.document)) {
        if (s.trust || !actionApplies(s, parts[0], parts[1]) || !resourceApplies(s, names, policy.ownerUin)) continue;
        const failed = s.conditions.find((c) => !c.holds(request.context));
        const given = failed === undefined ? undefined : requestValues(failed.key, request.context);
        const verdict =
          failed === undefined
            ? "applies"
            : `does not apply: ${failed.operator} ${failed.key} ${JSON.stringify(failed.values)} does not hold (request: ${given === undefined ? "absent" : given.join(", ")})`;
        considered.push(`  ${statementName(policy, s.index)} (${s.effect}): ${verdict}`);
      }
    }
  }
  if (considered.length === 0) lines.push("no statement matches this action and resource");
  else lines.push("statements matching this action and resource:", ...considered);
  return lines.join("\n");
}
