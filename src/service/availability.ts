// Whether a failure means "this node cannot reach its store or root of trust right now, or cannot
// write to its store" (answered as ServiceUnavailable, so clients fail over), and the readiness
// check behind GET /readyz.

import { RootOfTrustUnavailableError, type RootOfTrust } from "../rootkey/root-of-trust.js";
import { RootKeyRing } from "../rootkey/ring.js";
import { PostgresStoreError } from "../store/postgres.js";
import { isSqliteUnwritable } from "../store/sqlite.js";
import type { Store } from "../store/store.js";
import { KmsError } from "./errors.js";

/** Which dependency failed; counted in the metrics. */
export type Dependency = "store" | "rootOfTrust";

/**
 * SQLSTATE classes (and codes) that say the database could not be reached or did not answer:
 * 08 connection exception, 53 insufficient resources (too many connections), 57P admin or crash
 * shutdown / cannot connect now, 57014 statement cancelled by its timeout, 58 system error. No
 * SQLSTATE at all means pg itself failed: no connection, connection lost, or no answer in time.
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P|58)|^57014$/;
/**
 * Serialization failure or deadlock that outlasted the store's own retries: the transaction rolled
 * back, so nothing was done and a retry (later, or on another node) may succeed.
 */
const CONTENTION_SQLSTATE = /^(40001|40P01)$/;
/** 53100 disk full; 25006 read-only transaction (a standby, or default_transaction_read_only on). */
const UNWRITABLE_SQLSTATE = /^(53100|25006)$/;

/**
 * Whether the store refused a write because it cannot write at all: its disk (or quota) is full,
 * it is read-only, or its disk fails. Reads may still work; the node should still leave rotation.
 */
export function storeUnwritable(err: unknown): boolean {
  if (err instanceof PostgresStoreError) return err.code !== undefined && UNWRITABLE_SQLSTATE.test(err.code);
  return isSqliteUnwritable(err);
}

export function unavailableDependency(err: unknown): Dependency | undefined {
  if (err instanceof RootOfTrustUnavailableError) return "rootOfTrust";
  if (storeUnwritable(err)) return "store";
  if (err instanceof PostgresStoreError && (err.code === undefined || UNAVAILABLE_SQLSTATE.test(err.code) || CONTENTION_SQLSTATE.test(err.code))) {
    return "store";
  }
  return undefined;
}

/**
 * The KmsError a protocol adapter answers for an unavailable dependency, or undefined for any other
 * error. The message names the dependency, never a connection string or the driver's text.
 */
export function serviceUnavailable(err: unknown): KmsError | undefined {
  switch (unavailableDependency(err)) {
    case "store":
      if (storeUnwritable(err)) {
        return new KmsError("ServiceUnavailable", "this node cannot write to its key store now (disk full, read-only or failing); retry, on another node if there is one");
      }
      if (err instanceof PostgresStoreError && err.code !== undefined && CONTENTION_SQLSTATE.test(err.code)) {
        return new KmsError("ServiceUnavailable", "the key store is busy with conflicting concurrent changes; nothing was done: retry");
      }
      return new KmsError("ServiceUnavailable", "this node cannot reach its key store now; retry, on another node if there is one");
    case "rootOfTrust":
      return new KmsError("ServiceUnavailable", "this node cannot reach its root of trust now; retry, on another node if there is one");
    default:
      return undefined;
  }
}

/** "unwritable": the store answers reads but refuses writes (disk full, read-only). */
export type ComponentHealth = "ok" | "unavailable" | "unwritable" | "failed";

export interface HealthReport {
  ready: boolean;
  store: ComponentHealth;
  rootOfTrust: ComponentHealth;
}

const HEALTH_AAD = Buffer.from("tresor/health-check/v1", "utf8");
const HEALTH_PLAINTEXT = Buffer.from("tresor health check", "utf8");

/** The meta value the readiness check's write probe overwrites with the time of the probe. */
export const READINESS_PROBE_META = "readiness_probe";

/**
 * A cheap store read and a root-of-trust wrap/unwrap of a constant, each bounded by a timeout; the
 * answer is remembered for `cacheMs` and concurrent callers share one check, so a load balancer
 * polling every node often costs the dependencies little. The store is also written (one small
 * meta value) every `writeProbeMs`, and at every check after a failed one, so a full disk or a
 * read-only store takes the node out of rotation and a successful write puts it back; also at the
 * first check after requests failed because of the store.
 */
export class HealthCheck {
  readonly #store: Store;
  readonly #root: RootOfTrust;
  readonly #now: () => number;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #writeProbeMs: number;
  /** When the next check writes; 0 right after a check in which the store failed. */
  #nextWriteAt = 0;
  #storeFailures = 0;
  #last: { report: HealthReport; at: number } | undefined;
  #running: Promise<HealthReport> | undefined;
  /** Failed checks by dependency, for the metrics. */
  readonly failures = { store: 0, rootOfTrust: 0 };

  constructor(store: Store, root: RootOfTrust, now: () => number, options: { cacheMs?: number; timeoutMs?: number; writeProbeMs?: number } = {}) {
    this.#store = store;
    this.#root = root;
    this.#now = now;
    this.#cacheMs = options.cacheMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#writeProbeMs = options.writeProbeMs ?? 5000;
  }

  /**
   * The cached report, or a fresh one. `storeFailures` counts requests failed by the store (or by
   * an audit record that could not be written); when it has grown, the next check writes.
   */
  check(storeFailures?: number): Promise<HealthReport> {
    if (storeFailures !== undefined && storeFailures !== this.#storeFailures) {
      this.#storeFailures = storeFailures;
      this.#nextWriteAt = 0;
    }
    const last = this.#last;
    if (last !== undefined && this.#now() - last.at < this.#cacheMs) return Promise.resolve(last.report);
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<HealthReport> {
    const started = this.#now();
    const write = started >= this.#nextWriteAt;
    const [store, rootOfTrust] = await Promise.all([
      this.#probe(async () => {
        await this.#store.getMeta("region");
        if (write) await this.#store.setMeta(READINESS_PROBE_META, String(started));
      }),
      this.#probe(async () => {
        // A ring asks the store for its current generation on wrap: probe the generation it holds,
        // so a store that is down is not reported as a root of trust that is down too.
        const root = this.#root;
        const wrapped = root instanceof RootKeyRing ? await root.wrapWith(root.currentGeneration, HEALTH_PLAINTEXT, HEALTH_AAD) : await root.wrap(HEALTH_PLAINTEXT, HEALTH_AAD);
        const back = await this.#root.unwrap(wrapped, HEALTH_AAD);
        const same = back.equals(HEALTH_PLAINTEXT);
        back.fill(0);
        if (!same) throw new Error("the root of trust unwrapped a different value");
      }),
    ]);
    if (store !== "ok") this.#nextWriteAt = 0;
    else if (write) this.#nextWriteAt = started + this.#writeProbeMs;
    if (store !== "ok") this.failures.store++;
    if (rootOfTrust !== "ok") this.failures.rootOfTrust++;
    const report: HealthReport = { ready: store === "ok" && rootOfTrust === "ok", store, rootOfTrust };
    this.#last = { report, at: this.#now() };
    return report;
  }

  async #probe(run: () => Promise<void>): Promise<ComponentHealth> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ComponentHealth>((resolve) => {
      timer = setTimeout(() => resolve("unavailable"), this.#timeoutMs);
    });
    try {
      return await Promise.race([
        run().then(
          (): ComponentHealth => "ok",
          (err: unknown): ComponentHealth => (storeUnwritable(err) ? "unwritable" : unavailableDependency(err) !== undefined ? "unavailable" : "failed"),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
