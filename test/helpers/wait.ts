// Waiting in tests: for a condition, with a bound, never for a fixed time. A loaded machine makes
// a fixed sleep too short (a flaky failure) or every run too slow; a bounded poll is neither.

import { setTimeout as sleep } from "node:timers/promises";

/**
 * Resolves with the first truthy value of `condition`, polled every `intervalMs`; rejects naming
 * `what` (and the last error the condition threw, if any) once `timeoutMs` has passed.
 */
export async function waitFor<T>(what: string, condition: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? "" : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/**
 * A seeded pseudo-random source (mulberry32) for tests that draw at random: the seed comes from
 * TRESOR_TEST_SEED or is drawn, and is printed so that a failing run can be repeated with it.
 */
export function seededRandom(label: string): { seed: number; next: () => number } {
  const fromEnv = process.env["TRESOR_TEST_SEED"];
  const seed = fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) >>> 0 : Math.floor(Math.random() * 2 ** 32);
  process.stdout.write(`# ${label}: random seed ${seed} (repeat with TRESOR_TEST_SEED=${seed})\n`);
  let state = seed;
  return {
    seed,
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    },
  };
}
