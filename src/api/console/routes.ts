// The web console's files (docs/console.md): GET /console/ and /console/assets/*, built by
// `npm run build` into dist/console/ and read into memory once. They are public, change nothing
// and carry no credential, so they are neither authenticated nor audited (like /healthz); every
// API call the console makes is a signed POST / like any client's. A strict Content-Security-Policy
// lets the page load only its own files and talk only to this origin.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

export const CONSOLE_PATH = "/console/";

/** Where `npm run build` writes the console: dist/console/, beside dist/src/. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL("../../../console/", import.meta.url));

/** Only this origin's own files and API; no inline script or style, no frames, no plugins. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

interface ConsoleFile {
  body: Buffer;
  type: string;
  /** Asset names carry their content's hash, so they may be cached for good; index.html never. */
  immutable: boolean;
}

/** The built console's files by URL path; empty when it was not built. */
export function loadConsoleFiles(dir: string): ReadonlyMap<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  const index = join(dir, "index.html");
  if (!isFile(index)) return files;
  files.set(CONSOLE_PATH, { body: readFileSync(index), type: TYPES[".html"]!, immutable: false });
  const assets = join(dir, "assets");
  for (const name of isDirectory(assets) ? readdirSync(assets) : []) {
    const type = TYPES[name.slice(name.lastIndexOf("."))];
    if (type !== undefined && isFile(join(assets, name))) files.set(`${CONSOLE_PATH}assets/${name}`, { body: readFileSync(join(assets, name)), type, immutable: true });
  }
  return files;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * Registers GET /console, /console/ and /console/assets/NAME. `notFound` answers any other path
 * under /console/ (the server's own 404). A browser's GET / is sent here by the server.
 */
export function registerConsoleRoutes(app: FastifyInstance, dir: string, notFound: (req: FastifyRequest, res: FastifyReply) => Promise<unknown>): void {
  const files = loadConsoleFiles(dir);
  app.get("/console", async (_req, res) => res.redirect(CONSOLE_PATH, 302));
  app.get("/console/*", async (req, res) => {
    const path = req.url.split("?")[0]!;
    const file = files.get(path);
    if (file === undefined) {
      if (path === CONSOLE_PATH) return res.code(503).type("text/plain; charset=utf-8").send("the console was not built: run npm run build\n");
      return notFound(req, res);
    }
    return res
      .headers(SECURITY_HEADERS)
      .header("cache-control", file.immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .type(file.type)
      .send(file.body);
  });
}

/** Whether a GET / comes from a browser (sent to the console) rather than an API client's mistake (answered in the protocol's shape). */
export function isBrowserNavigation(headers: FastifyRequest["headers"]): boolean {
  return headers["x-tc-action"] === undefined && headers["x-amz-target"] === undefined && headers.authorization === undefined;
}
