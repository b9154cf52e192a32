// The import direction of DESIGN.md ("Layers"), checked on the source: reads every src/**/*.ts
// file's import and export-from lines and fails when a lower layer imports a higher one.
//
//   crypto < keys, policy, audit, rootkey, store < material < service < api < node < cli
//
// - sdk may import only crypto and sdk; only cli and sdk may import sdk.
// - Nothing but cli imports cli.
// - node/ is the composition root (configuration, data directory, startNode): it wires the layers
//   together, so it may import any layer below cli; only cli imports it.
// - No file sits at src/ root: every file belongs to a layer.
// - Layers of the same rank may import each other (store uses the key types of keys), but
//   never both ways: no two folders import each other, directly or through others (no cycle).
// - The audit log owns its storage port (audit/port.ts), which the store implements: store may
//   import audit, audit never imports store.
// Not checked: DESIGN's "never reaches around the one below" (api imports keys' types today).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// From dist/test/architecture/ up to the repository root.
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = path.join(ROOT, "src");

const RANKS: Readonly<Record<string, number>> = {
  crypto: 0,
  keys: 1,
  policy: 1,
  audit: 1,
  rootkey: 1,
  store: 1,
  material: 2,
  service: 3,
  api: 4,
  node: 5,
  cli: 6,
};

/**
 * Violations present in the tree, each reported to be fixed in src/. Listed so that the check
 * guards everything else meanwhile; the last test fails once an entry is fixed, so the list only
 * shrinks. Never add to it to make a new violation pass.
 */
const KNOWN_VIOLATIONS: ReadonlySet<string> = new Set<string>([]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** The layer of a file under src/: its top folder. */
function layerOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts.length === 1) throw new Error(`src/${parts[0]} is a top-level file: place it in a layer`);
  const layer = parts[0]!;
  if (layer !== "sdk" && !(layer in RANKS)) throw new Error(`src/${layer}/ is not a layer of DESIGN.md: add it to this test`);
  return layer;
}

/** Module specifiers of static imports, export-from lines, side-effect and dynamic imports. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((p) => [...code.matchAll(p)].map((m) => m[1]!));
}

/** Imports the ranks would allow but the design forbids: [from, to, why]. */
const FORBIDDEN: readonly (readonly [string, string, string])[] = [["audit", "store", "the audit log owns its storage port (audit/port.ts); the store implements it"]];

function allowed(from: string, to: string): boolean {
  if (from === to) return true;
  if (FORBIDDEN.some(([f, t]) => f === from && t === to)) return false;
  if (to === "sdk") return from === "cli";
  if (from === "sdk") return to === "crypto";
  if (to === "cli") return false;
  if (to === "node") return from === "cli";
  return RANKS[to]! <= RANKS[from]!;
}

interface Edge {
  from: string;
  to: string;
  label: string;
}

/** The cycles among folders: each strongly connected set of two or more layers, sorted (Tarjan's algorithm). */
function folderCycles(all: readonly Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of all) if (e.from !== e.to) next.set(e.from, (next.get(e.from) ?? new Set()).add(e.to));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue; // packages and node: built-ins
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts");
      const rel = (p: string) => path.relative(ROOT, p).split(path.sep).join("/");
      assert.ok(existsSync(target), `${rel(file)} imports ${spec}, which is not a file under src/`);
      assert.ok(!path.relative(SRC, target).startsWith(".."), `${rel(file)} imports ${spec}, outside src/`);
      out.push({ from, to: layerOf(target), label: `${rel(file)} -> ${rel(target)}` });
    }
  }
  return out;
}

describe("import direction (DESIGN.md, Layers)", () => {
  const all = edges();

  it("finds the source tree and its imports", () => {
    assert.ok(all.length > 20, `only ${all.length} imports found under ${SRC}`);
  });

  it("has no layer importing a higher one", (t) => {
    const bad = all.filter((e) => !allowed(e.from, e.to) && !KNOWN_VIOLATIONS.has(e.label));
    for (const label of KNOWN_VIOLATIONS) t.diagnostic(`known violation, to be fixed in src/: ${label}`);
    assert.deepEqual(
      bad.map((e) => `${e.label} (${e.from} may not import ${e.to}${FORBIDDEN.find(([f, t]) => f === e.from && t === e.to)?.[2].replace(/^/, ": ") ?? ""})`),
      [],
    );
  });

  it("has no cycle between folders", () => {
    const cycles = folderCycles(all);
    const examples = cycles.map((c) => `${c.join(" <-> ")}: ${all.filter((e) => c.includes(e.from) && c.includes(e.to) && e.from !== e.to).map((e) => e.label).filter((l, i, labels) => labels.indexOf(l) === i).join(", ")}`);
    assert.deepEqual(examples, []);
  });

  it("lists as known only violations that still exist", () => {
    const present = new Set(all.filter((e) => !allowed(e.from, e.to)).map((e) => e.label));
    assert.deepEqual(
      [...KNOWN_VIOLATIONS].filter((label) => !present.has(label)),
      [],
      "fixed: remove these from KNOWN_VIOLATIONS",
    );
  });

  it("applies the rules it states", () => {
    assert.equal(allowed("keys", "service"), false);
    assert.equal(allowed("service", "api"), false);
    assert.equal(allowed("api", "cli"), false);
    assert.equal(allowed("api", "node"), false);
    assert.equal(allowed("service", "node"), false);
    assert.equal(allowed("sdk", "service"), false);
    assert.equal(allowed("api", "sdk"), false);
    assert.equal(allowed("cli", "sdk"), true);
    assert.equal(allowed("sdk", "crypto"), true);
    assert.equal(allowed("store", "keys"), true);
    assert.equal(allowed("node", "node"), true);
    assert.equal(allowed("node", "api"), true);
    assert.equal(allowed("node", "service"), true);
    assert.equal(allowed("cli", "node"), true);
    assert.equal(allowed("rootkey", "store"), true);
    assert.equal(allowed("service", "crypto"), true);
    assert.equal(allowed("service", "material"), true);
    assert.equal(allowed("material", "store"), true);
    assert.equal(allowed("material", "rootkey"), true);
    assert.equal(allowed("material", "service"), false);
    assert.equal(allowed("store", "material"), false);
    assert.equal(allowed("rootkey", "material"), false);
    assert.equal(allowed("audit", "store"), false);
    assert.equal(allowed("store", "audit"), true);
    assert.deepEqual(folderCycles([{ from: "a", to: "b", label: "" }, { from: "b", to: "c", label: "" }, { from: "c", to: "a", label: "" }, { from: "c", to: "d", label: "" }]), [["a", "b", "c"]]);
    assert.deepEqual(folderCycles([{ from: "a", to: "b", label: "" }, { from: "a", to: "a", label: "" }]), []);
  });
});
