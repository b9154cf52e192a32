// Test helper: how long a server keeps others waiting while some work runs. GET /healthz is
// probed one request at a time, PROBE_EVERY_MS apart, as a health checker would (back to back, an
// in-process client would itself load the event loop), and, for a server in this process, the
// event loop's delay is sampled.

import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as pace } from "node:timers/promises";

const PROBE_EVERY_MS = 10;

export interface Probed {
  worstProbeMs: number;
  /** The worst event-loop delay of this process (meaningful when the server runs in it). */
  worstLoopDelayMs: number;
  probes: number;
}

export async function probeWhile(url: string, work: () => Promise<void>): Promise<Probed> {
  // One probe first: the first fetch loads its HTTP client, which is this test's cost, not the server's.
  await (await fetch(`${url}/healthz`)).arrayBuffer();
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let done = false;
  let worstProbeMs = 0;
  let probes = 0;
  const probing = (async () => {
    while (!done) {
      const start = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      worstProbeMs = Math.max(worstProbeMs, performance.now() - start);
      probes++;
      await pace(PROBE_EVERY_MS);
    }
  })();
  delay.enable();
  try {
    await work();
  } finally {
    done = true;
    await probing;
    delay.disable();
  }
  return { worstProbeMs, worstLoopDelayMs: delay.max / 1e6, probes };
}

/** Both the worst probe and the worst event-loop delay below `limitMs`; the figures go to the test's diagnostics. */
export function assertResponsive(t: TestContext, what: string, p: Probed, limitMs: number): void {
  const figures = `worst probe ${p.worstProbeMs.toFixed(1)} ms, worst event-loop delay ${p.worstLoopDelayMs.toFixed(1)} ms, ${p.probes} probes, limit ${limitMs.toFixed(0)} ms`;
  t.diagnostic(`${what}: ${figures}`);
  assert.ok(p.probes > 0, `${what}: no probe answered`);
  assert.ok(p.worstLoopDelayMs < limitMs, `${what} blocked the event loop: ${figures}`);
  assert.ok(p.worstProbeMs < limitMs, `${what} stalled /healthz: ${figures}`);
}
