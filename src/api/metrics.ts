// Counters for GET /metrics, written out in the Prometheus text exposition format (version 0.0.4)
// by hand: a handful of counters and one histogram do not justify a dependency.

import type { Dependency } from "../service/availability.js";
import type { KmsService } from "../service/kms-service.js";

/** Upper bounds of the latency histogram's buckets, in seconds. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;


interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #unavailable = { store: 0, rootOfTrust: 0 };
  #auditFailures = 0;
  readonly #nodeId: string;
  readonly #knownActions: ReadonlySet<string>;

  /** `knownActions`: the action catalogue; any other name is counted as "other", so junk cannot grow or crowd the label set. */
  constructor(nodeId: string, knownActions: Iterable<string>) {
    this.#nodeId = nodeId;
    this.#knownActions = new Set(knownActions);
  }

  /** One answered request: its action, the result code sent ("Success" or a wire error code), its latency. */
  request(action: string, code: string, seconds: number): void {
    const label = this.#actionLabel(action);
    const key = `${label}\0${code}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let h = this.#latency.get(label);
    if (h === undefined) {
      h = { buckets: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(label, h);
    }
    LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) h.buckets[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  /** A request failed because a dependency could not be reached. */
  unavailable(dependency: Dependency): void {
    this.#unavailable[dependency]++;
  }

  /** A request refused because its audit record could not be written. */
  auditFailure(): void {
    this.#auditFailures++;
  }

  /** Requests failed by the store or by an unwritten audit record so far: the readiness check writes after new ones. */
  storeFailures(): number {
    return this.#unavailable.store + this.#auditFailures;
  }

  /** The exposition text for this node. */
  render(service: KmsService): string {
    const stats = service.stats();
    const out: string[] = [];
    const node = `node="${escapeLabel(this.#nodeId)}"`;
    out.push("# HELP tresor_requests_total Requests answered, by action and result code.");
    out.push("# TYPE tresor_requests_total counter");
    for (const [key, n] of [...this.#requests].sort()) {
      const [action, code] = key.split("\0") as [string, string];
      out.push(`tresor_requests_total{${node},action="${escapeLabel(action)}",code="${escapeLabel(code)}"} ${n}`);
    }
    out.push("# HELP tresor_request_duration_seconds Time from receiving a request to answering it, by action.");
    out.push("# TYPE tresor_request_duration_seconds histogram");
    for (const [action, h] of [...this.#latency].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const labels = `${node},action="${escapeLabel(action)}"`;
      LATENCY_BUCKETS.forEach((bound, i) => out.push(`tresor_request_duration_seconds_bucket{${labels},le="${bound}"} ${h.buckets[i]!}`));
      out.push(`tresor_request_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      out.push(`tresor_request_duration_seconds_sum{${labels}} ${h.sum}`);
      out.push(`tresor_request_duration_seconds_count{${labels}} ${h.count}`);
    }
    out.push("# HELP tresor_material_cache_lookups_total Lookups of unwrapped key material in this node's cache.");
    out.push("# TYPE tresor_material_cache_lookups_total counter");
    out.push(`tresor_material_cache_lookups_total{${node},result="hit"} ${stats.materialCache.hits}`);
    out.push(`tresor_material_cache_lookups_total{${node},result="miss"} ${stats.materialCache.misses}`);
    out.push("# HELP tresor_dependency_errors_total Requests answered ServiceUnavailable because the store or the root of trust could not be reached.");
    out.push("# TYPE tresor_dependency_errors_total counter");
    out.push(`tresor_dependency_errors_total{${node},dependency="store"} ${this.#unavailable.store}`);
    out.push(`tresor_dependency_errors_total{${node},dependency="root_of_trust"} ${this.#unavailable.rootOfTrust}`);
    out.push("# HELP tresor_audit_write_failures_total Requests answered InternalError because their audit record could not be written.");
    out.push("# TYPE tresor_audit_write_failures_total counter");
    out.push(`tresor_audit_write_failures_total{${node}} ${this.#auditFailures}`);
    out.push("# HELP tresor_readiness_check_failures_total Readiness checks (GET /readyz) in which a dependency failed.");
    out.push("# TYPE tresor_readiness_check_failures_total counter");
    out.push(`tresor_readiness_check_failures_total{${node},dependency="store"} ${stats.healthCheckFailures.store}`);
    out.push(`tresor_readiness_check_failures_total{${node},dependency="root_of_trust"} ${stats.healthCheckFailures.rootOfTrust}`);
    return `${out.join("\n")}\n`;
  }

  #actionLabel(action: string): string {
    if (action === "") return "none";
    return this.#knownActions.has(action) ? action : "other";
  }
}

/** Escapes a label value: backslash, double quote and newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
