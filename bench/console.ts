// The web console's figures: the size of what a browser downloads (raw and gzip-compressed, as a
// proxy would send it), and its first load in Debian's chromium against the bench's own tresor
// serve, beside a baseline in the same run: the same browser loading the same server's /healthz
// (one tiny JSON answer), so the ratio says what the console's page, script and first render add.
// Each round opens a fresh browser context (empty cache). Run alone: node dist/bench/console.js URL.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Browser } from "playwright-core";
import { CONSOLE_PATH, DEFAULT_CONSOLE_DIR } from "../src/api/console/routes.js";
import { chromiumSkip, launchChromium } from "../test/helpers/chromium.js";

export interface ConsoleFigures {
  files: { name: string; bytes: number; gzipBytes: number }[];
  totalBytes: number;
  totalGzipBytes: number;
  /** Median milliseconds from navigation to the sign-in form on screen, fresh context each round. */
  firstLoadMs: number;
  /** Median milliseconds to load /healthz the same way. */
  baselineMs: number;
  firstLoadToBaseline: number;
  rounds: number;
}

/** The built console's files and their sizes. */
export function bundleSizes(dir = DEFAULT_CONSOLE_DIR): ConsoleFigures["files"] {
  const names = ["index.html", ...readdirSync(join(dir, "assets")).map((n) => `assets/${n}`)];
  return names.map((name) => {
    const bytes = readFileSync(join(dir, name));
    return { name, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length };
  });
}

async function timedLoad(browser: Browser, url: string, ready: string | undefined): Promise<number> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const start = performance.now();
    await page.goto(url, { waitUntil: ready === undefined ? "load" : "domcontentloaded" });
    if (ready !== undefined) await page.locator(ready).waitFor({ timeout: 15_000 });
    return performance.now() - start;
  } finally {
    await context.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Interleaved rounds: the baseline, then the console, each in a fresh context. */
export async function measureConsole(serverUrl: string, rounds: number): Promise<ConsoleFigures | string> {
  if (chromiumSkip) return `skipped: ${chromiumSkip}`;
  const files = bundleSizes();
  const browser = await launchChromium();
  try {
    const base = new URL(serverUrl);
    // One unrecorded load of each: the browser's own first-start costs are not the console's.
    await timedLoad(browser, new URL("/healthz", base).href, undefined);
    await timedLoad(browser, new URL(CONSOLE_PATH, base).href, "#secretId");
    const loads: number[] = [];
    const baselines: number[] = [];
    for (let i = 0; i < Math.max(3, rounds * 3); i++) {
      baselines.push(await timedLoad(browser, new URL("/healthz", base).href, undefined));
      loads.push(await timedLoad(browser, new URL(CONSOLE_PATH, base).href, "#secretId"));
    }
    const firstLoadMs = median(loads);
    const baselineMs = median(baselines);
    return {
      files,
      totalBytes: files.reduce((n, f) => n + f.bytes, 0),
      totalGzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0),
      firstLoadMs: Math.round(firstLoadMs * 10) / 10,
      baselineMs: Math.round(baselineMs * 10) / 10,
      firstLoadToBaseline: Math.round((firstLoadMs / baselineMs) * 100) / 100,
      rounds: loads.length,
    };
  } finally {
    await browser.close();
  }
}

/** The figures as the bench prints them. */
export function consoleLine(f: ConsoleFigures | string): string {
  if (typeof f === "string") return `console: ${f}`;
  return `console: bundle ${f.totalBytes} B (${f.totalGzipBytes} B gzip) in ${f.files.length} files; first load to the sign-in form ${f.firstLoadMs} ms (median of ${f.rounds}), ${f.firstLoadToBaseline}× the ${f.baselineMs} ms of /healthz in the same browser`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.argv[2];
  if (!url) {
    console.error("usage: node dist/bench/console.js http://127.0.0.1:8400");
    process.exitCode = 2;
  } else {
    const figures = await measureConsole(url, 3);
    console.log(consoleLine(figures));
    if (typeof figures !== "string") console.log(JSON.stringify(figures, null, 2));
  }
}
