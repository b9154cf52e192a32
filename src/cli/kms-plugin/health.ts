// The answer to Status: a real probe round trip, cached for a few seconds so that the apiserver's
// polls (about one a minute, every ten seconds while unhealthy) and any burst of them cost Tresor
// at most one probe per cache period. Concurrent asks share one probe in flight.

import { ProbeError } from "./plugin.js";

export interface Health {
  /** "ok", or a short, secret-free reason. */
  healthz: string;
  /** The current key_id; while unhealthy, the last one known ("" before any). */
  keyId: string;
}

export class HealthCache {
  readonly #probe: () => Promise<string>;
  readonly #reason: (err: unknown) => string;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #cached: { at: number; health: Health } | undefined;
  #inFlight: Promise<Health> | undefined;
  #lastKeyId = "";

  /**
   * `timeoutMs` bounds one probe: a Tresor that accepts connections but does not answer would
   * otherwise hold Status for the client's time-outs and retries (tens of seconds).
   */
  constructor(probe: () => Promise<string>, reason: (err: unknown) => string, options: { cacheMs: number; timeoutMs: number; now?: () => number }) {
    this.#probe = probe;
    this.#reason = reason;
    this.#cacheMs = options.cacheMs;
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
  }

  /** Records a probe that succeeded elsewhere (the one at startup) as the current answer. */
  succeeded(keyId: string): void {
    this.#lastKeyId = keyId;
    this.#cached = { at: this.#now(), health: { healthz: "ok", keyId } };
  }

  /** The cached health while fresh, else a new probe's. */
  current(): Promise<Health> {
    const cached = this.#cached;
    if (cached !== undefined && this.#now() - cached.at < this.#cacheMs) return Promise.resolve(cached.health);
    this.#inFlight ??= this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #run(): Promise<Health> {
    let health: Health;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeError(`Tresor did not answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      this.#lastKeyId = await Promise.race([this.#probe(), late]);
      health = { healthz: "ok", keyId: this.#lastKeyId };
    } catch (err) {
      health = { healthz: this.#reason(err), keyId: this.#lastKeyId };
    } finally {
      clearTimeout(timer);
    }
    // Stamped when the probe ends: a slow probe is not stale on arrival.
    this.#cached = { at: this.#now(), health };
    return health;
  }
}
