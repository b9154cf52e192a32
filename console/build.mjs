// Builds the web console (docs/console.md) into dist/console/: one JavaScript bundle and one
// stylesheet, named by their content's hash, and index.html naming them. Offline: esbuild and
// Preact from node_modules only. Run by `npm run build`, after the type check of console/.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "dist", "console");

const result = await build({
  entryPoints: [join(here, "src", "main.tsx"), join(here, "src", "style.css")],
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["chrome109", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  write: false,
  outdir: out,
  logLevel: "warning",
});

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const names = {};
for (const file of result.outputFiles) {
  const ext = file.path.endsWith(".css") ? "css" : "js";
  const name = `app-${createHash("sha256").update(file.contents).digest("hex").slice(0, 12)}.${ext}`;
  writeFileSync(join(out, "assets", name), file.contents);
  names[ext] = name;
}
const html = readFileSync(join(here, "index.html"), "utf8").replace("%CSS%", names.css).replace("%JS%", names.js);
writeFileSync(join(out, "index.html"), html);
