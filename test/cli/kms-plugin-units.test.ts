// The kms-plugin's parts that need no server: the Status cache (one probe per period, shared by
// concurrent asks, the last key_id kept while unhealthy), the short healthz reasons, and the
// mapping of failures onto gRPC status codes.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { grpcStatus } from "../../src/cli/kms-plugin/grpc.js";
import { HealthCache } from "../../src/cli/kms-plugin/health.js";
import { PluginInputError, ProbeError, healthReason } from "../../src/cli/kms-plugin/plugin.js";
import { KmsClientError } from "../../src/sdk/index.js";

const SECRET_LOOKING = "SecretKey=abc123 plaintext=aGVsbG8=";

describe("HealthCache", () => {
  function harness(cacheMs: number) {
    let now = 1_000;
    let probes = 0;
    let next: () => Promise<string> = async () => "tresor:k:v1";
    const cache = new HealthCache(
      () => {
        probes++;
        return next();
      },
      healthReason,
      { cacheMs, timeoutMs: 2_000, now: () => now },
    );
    return {
      cache,
      probes: () => probes,
      advance: (ms: number) => (now += ms),
      answer: (fn: () => Promise<string>) => (next = fn),
    };
  }

  it("probes once per cache period and answers from the cache in between", async () => {
    const h = harness(5_000);
    assert.deepEqual(await h.cache.current(), { healthz: "ok", keyId: "tresor:k:v1" });
    h.advance(4_999);
    await h.cache.current();
    assert.equal(h.probes(), 1);
    h.advance(1);
    h.answer(async () => "tresor:k:v2");
    assert.deepEqual(await h.cache.current(), { healthz: "ok", keyId: "tresor:k:v2" });
    assert.equal(h.probes(), 2);
  });

  it("shares one probe in flight among concurrent asks", async () => {
    const h = harness(0);
    let release!: (keyId: string) => void;
    h.answer(() => new Promise((resolve) => (release = resolve)));
    const asks = [h.cache.current(), h.cache.current(), h.cache.current()];
    release("tresor:k:v3");
    for (const health of await Promise.all(asks)) assert.equal(health.keyId, "tresor:k:v3");
    assert.equal(h.probes(), 1);
  });

  it("keeps the last key_id while unhealthy, with a short reason; a startup success primes it", async () => {
    const h = harness(1_000);
    h.cache.succeeded("tresor:k:v7");
    assert.deepEqual(await h.cache.current(), { healthz: "ok", keyId: "tresor:k:v7" });
    assert.equal(h.probes(), 0, "the startup probe's answer is reused");
    h.advance(1_000);
    h.answer(async () => {
      throw new KmsClientError("ResourceUnavailable.CmkDisabled", SECRET_LOOKING);
    });
    assert.deepEqual(await h.cache.current(), { healthz: "key Disabled", keyId: "tresor:k:v7" });
  });
});

describe("HealthCache probe time limit", () => {
  it("reports a probe that does not end in time, and probes again on the next ask", async () => {
    let probes = 0;
    const cache = new HealthCache(
      () => {
        probes++;
        return probes === 1 ? new Promise<string>(() => {}) : Promise.resolve("tresor:k:v1");
      },
      healthReason,
      { cacheMs: 0, timeoutMs: 20 },
    );
    assert.deepEqual(await cache.current(), { healthz: "Tresor did not answer within 20 ms", keyId: "" });
    assert.deepEqual(await cache.current(), { healthz: "ok", keyId: "tresor:k:v1" });
  });
});

describe("healthReason", () => {
  const cases: [unknown, string][] = [
    [new KmsClientError("NetworkError", SECRET_LOOKING), "Tresor unreachable"],
    [new KmsClientError("Timeout", SECRET_LOOKING), "Tresor unreachable"],
    [new KmsClientError("ServiceUnavailable", SECRET_LOOKING), "Tresor unavailable"],
    [new KmsClientError("ResourceUnavailable.CmkDisabled", SECRET_LOOKING), "key Disabled"],
    [new KmsClientError("ResourceUnavailable.CmkArchived", SECRET_LOOKING), "key Archived"],
    [new KmsClientError("ResourceUnavailable.CmkNotFound", SECRET_LOOKING), "key not found"],
    [new KmsClientError("UnauthorizedOperation", SECRET_LOOKING), "permission denied (UnauthorizedOperation)"],
    [new KmsClientError("AuthFailure.SecretIdNotFound", SECRET_LOOKING), "permission denied (AuthFailure.SecretIdNotFound)"],
    [new KmsClientError("Weird\ncode<script>", SECRET_LOOKING), "Tresor error Weirdcodescript"],
    [new ProbeError("key PendingDelete"), "key PendingDelete"],
    [new Error(SECRET_LOOKING), "probe failed"],
  ];
  for (const [err, reason] of cases) {
    it(`${(err as Error).name} ${(err as { code?: string }).code ?? (err as Error).message} → ${JSON.stringify(reason)}`, () => {
      assert.equal(healthReason(err), reason);
    });
  }
});

describe("grpcStatus", () => {
  const cases: [unknown, grpc.status][] = [
    [new PluginInputError(`"uid" must be …`), grpc.status.INVALID_ARGUMENT],
    [new ProbeError("Tresor encrypted under another key"), grpc.status.INTERNAL],
    [new KmsClientError("InvalidParameterValue.InvalidCiphertext", "m"), grpc.status.INVALID_ARGUMENT],
    [new KmsClientError("FailedOperation.DecryptError", "m"), grpc.status.INVALID_ARGUMENT],
    [new KmsClientError("UnauthorizedOperation", "m"), grpc.status.PERMISSION_DENIED],
    [new KmsClientError("AuthFailure.SignatureFailure", "m"), grpc.status.PERMISSION_DENIED],
    [new KmsClientError("ResourceUnavailable.CmkDisabled", "m"), grpc.status.FAILED_PRECONDITION],
    [new KmsClientError("RequestLimitExceeded", "m"), grpc.status.RESOURCE_EXHAUSTED],
    [new KmsClientError("NetworkError", "m"), grpc.status.UNAVAILABLE],
    [new KmsClientError("ServiceUnavailable", "m"), grpc.status.UNAVAILABLE],
    [new KmsClientError("InternalError", "m"), grpc.status.INTERNAL],
  ];
  for (const [err, code] of cases) {
    it(`${(err as { code?: string }).code ?? (err as Error).name} → ${grpc.status[code]}`, () => {
      assert.equal(grpc.status[grpcStatus(err).code], grpc.status[code]);
    });
  }

  it("says nothing of an unexpected error", () => {
    assert.deepEqual(grpcStatus(new Error(SECRET_LOOKING)), { code: grpc.status.INTERNAL, details: "internal error" });
  });
});
