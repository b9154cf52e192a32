// The console's files as `tresor serve` serves them: a browser's GET / goes to /console/, the page
// and its hashed assets come with a strict Content-Security-Policy and the right caching, nothing
// outside the built files can be reached, and an API client's mistaken GET / is still answered in
// the protocol's shape.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CONSOLE_CSP, DEFAULT_CONSOLE_DIR, loadConsoleFiles } from "../../../src/api/console/routes.js";
import { startInProcessServer, type InProcessServer } from "../helpers-inprocess.js";

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, target: string, method = "GET", headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the console's routes", () => {
  let s: InProcessServer;

  before(async () => {
    s = await startInProcessServer();
  });

  after(() => s.stop());

  it("sends a browser's GET / and GET /console to /console/", async () => {
    for (const target of ["/", "/console"]) {
      const r = await get(s.port, target);
      assert.equal(r.status, 302, target);
      assert.equal(r.headers.location, "/console/");
    }
  });

  it("still answers an API client's GET / with UnsupportedProtocol", async () => {
    const r = await get(s.port, "/", "GET", { "x-tc-action": "ListKeys" });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).Response.Error.Code, "UnsupportedProtocol");
  });

  it("serves the page with a strict CSP and no inline script, and its hashed assets for good", async () => {
    const page = await get(s.port, "/console/");
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.equal(page.headers["content-security-policy"], CONSOLE_CSP);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-|\*|https?:/);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.equal(page.headers["x-frame-options"], "DENY");
    assert.equal(page.headers["cache-control"], "no-cache");
    const scripts = [...page.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    for (const [, attributes, content] of scripts) {
      assert.match(attributes ?? "", /src="assets\/app-[0-9a-f]{12}\.js"/);
      assert.equal(content, "", "no inline script");
    }
    assert.doesNotMatch(page.body, /<style|style=|https?:\/\//, "no inline style, nothing from another origin");
    const assets = [...page.body.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.equal(assets.length, 2);
    for (const asset of assets) {
      const r = await get(s.port, `/console/${asset}`);
      assert.equal(r.status, 200, asset);
      assert.match(String(r.headers["content-type"]), asset.endsWith(".js") ? /^text\/javascript/ : /^text\/css/);
      assert.equal(r.headers["cache-control"], "public, max-age=31536000, immutable");
      assert.equal(r.headers["content-security-policy"], CONSOLE_CSP);
    }
  });

  it("answers anything else under /console/ 404 in the protocol's shape, reaching no other file", async () => {
    for (const target of [
      "/console/assets/none.js",
      "/console/index.html",
      "/console/../package.json",
      "/console/%2e%2e/%2e%2e/package.json",
      "/console/assets/..%2f..%2fsrc%2fapi%2fserver.js",
      `/console/${"a".repeat(4000)}`,
    ]) {
      const r = await get(s.port, target);
      assert.equal(r.status, 404, target);
      assert.equal(JSON.parse(r.body).Response.Error.Code, "UnsupportedProtocol", target);
    }
    const post = await get(s.port, "/console/", "POST");
    assert.equal(post.status, 404);
  });

  it("loads only index.html and the assets of a build, and nothing from a directory without one", async () => {
    const built = loadConsoleFiles(DEFAULT_CONSOLE_DIR);
    assert.ok(built.has("/console/"));
    assert.ok([...built.keys()].every((k) => k === "/console/" || /^\/console\/assets\/app-[0-9a-f]{12}\.(js|css)$/.test(k)), [...built.keys()].join(", "));
    const empty = await mkdtemp(path.join(tmpdir(), "tresor-console-"));
    try {
      assert.equal(loadConsoleFiles(empty).size, 0);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
