// CAM wildcards: `*` is any run of characters (none included), `?` is exactly one, everything else
// is literal and case-sensitive. Matched by hand rather than through a RegExp: a backtracking
// RegExp built from "*a*a*a*c" takes minutes on a 200-character value, and a policy's patterns are
// tested on every request; this matcher is O(pattern × subject) at worst and linear in practice.

export type Glob = (subject: string) => boolean;

const SURROGATE = /[\uD800-\uDFFF]/;

/** Whether `pattern` holds a wildcard. */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/** Greedy match with one backtracking point, the last `*` seen; p and s are arrays of characters or strings. */
function matches(p: ArrayLike<string>, s: ArrayLike<string>): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    const pc = pi < p.length ? p[pi] : undefined;
    if (pc === "*") {
      star = pi++;
      mark = si;
    } else if (pc !== undefined && (pc === "?" || pc === s[si])) {
      pi++;
      si++;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}

/** A matcher for `pattern`, built once: plain equality or a prefix test where the pattern allows. */
export function compileGlob(pattern: string): Glob {
  if (!hasWildcard(pattern)) return (s) => s === pattern;
  if (pattern === "*") return () => true;
  const star = pattern.indexOf("*");
  if (star === pattern.length - 1 && !pattern.includes("?")) {
    const prefix = pattern.slice(0, -1);
    return (s) => s.startsWith(prefix);
  }
  // Runs of `*` are one `*`. `?` is one character, so both sides are split into code points when
  // either holds a surrogate pair; otherwise string indexing is enough.
  const collapsed = pattern.replace(/\*+/g, "*");
  const chars = Array.from(collapsed);
  const wide = SURROGATE.test(collapsed);
  return (s) => (wide || SURROGATE.test(s) ? matches(chars, Array.from(s)) : matches(collapsed, s));
}

/** Whether `subject` matches `pattern` (compiles on each call; hold on to compileGlob's matcher instead on a hot path). */
export function globMatches(pattern: string, subject: string): boolean {
  return compileGlob(pattern)(subject);
}
