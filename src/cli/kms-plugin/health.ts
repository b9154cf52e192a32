// The answer to Status: a real probe round trip, cached for a few seconds so that the apiserver's
// polls (about one a minute, every ten seconds while unhealthy) and any burst of them cost Tresor
// at most one probe per cache period. Concurrent asks share one probe in flight.

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
  readonly #now: () => number;
  #cached: { at: number; health: Health } | undefined;
  #inFlight: Promise<Health> | undefined;
  #lastKeyId = "";

  constructor(probe: () => Promise<string>, reason: (err: unknown) => string, cacheMs: number, now: () => number = Date.now) {
    this.#probe = probe;
    this.#reason = reason;
    this.#cacheMs = cacheMs;
    this.#now = now;
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
    try {
      this.#lastKeyId = await this.#probe();
      health = { healthz: "ok", keyId: this.#lastKeyId };
    } catch (err) {
      health = { healthz: this.#reason(err), keyId: this.#lastKeyId };
    }
    // Stamped when the probe ends: a slow probe is not stale on arrival.
    this.#cached = { at: this.#now(), health };
    return health;
  }
}
