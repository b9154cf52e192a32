// The plugin's gRPC face: the service definition loaded at run time from the .proto shipped in the
// repository (proto/kubernetes/kms/v2/api.proto; no network), handlers over KmsPlugin, and the
// mapping of failures onto gRPC status codes. Plaintext never reaches a log line or an error.

import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Logger } from "pino";
import { KmsClientError } from "../../sdk/index.js";
import type { HealthCache } from "./health.js";
import { type DecryptRequest, type EncryptRequest, type KmsPlugin, PluginInputError, ProbeError } from "./plugin.js";

/** From dist/src/cli/kms-plugin/, where tsc puts this file, up to the package root. */
export const KMS_V2_PROTO = fileURLToPath(new URL("../../../../proto/kubernetes/kms/v2/api.proto", import.meta.url));
export const KMS_V2_SERVICE = "v2.KeyManagementService";
/** Field names as in the .proto (key_id), bytes as Buffers, absent fields as their defaults. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
/** Ciphertext and key_id at most 1 KiB each, annotations under 32 KiB: anything larger is refused unread. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export function loadKmsV2Service(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(KMS_V2_PROTO, PROTO_LOADER_OPTIONS);
  const service = definition[KMS_V2_SERVICE];
  if (service === undefined || !("Status" in service)) throw new Error(`${KMS_V2_PROTO} does not define ${KMS_V2_SERVICE}`);
  return service as grpc.ServiceDefinition;
}

/** Counts calls in flight, so that shutdown waits for them and no longer. */
class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  track<T>(work: Promise<T>): Promise<T> {
    this.#count++;
    return work.finally(() => {
      if (--this.#count === 0) for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  idle(): Promise<void> {
    return this.#count === 0 ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

export function createPluginServer(plugin: KmsPlugin, health: HealthCache, logger: Logger): { server: grpc.Server; idle: () => Promise<void> } {
  const inFlight = new InFlight();
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES });
  let lastHealthz = "ok";
  server.addService(loadKmsV2Service(), {
    Status: unary(inFlight, logger, "Status", async () => {
      const { healthz, keyId } = await health.current();
      if (healthz !== lastHealthz) logger[healthz === "ok" ? "info" : "warn"]({ healthz, keyId }, "health changed");
      lastHealthz = healthz;
      return { version: "v2", healthz, key_id: keyId };
    }),
    Encrypt: unary(inFlight, logger, "Encrypt", (request: EncryptRequest) => plugin.encrypt(request)),
    Decrypt: unary(inFlight, logger, "Decrypt", (request: DecryptRequest) => plugin.decrypt(request)),
  });
  return { server, idle: () => inFlight.idle() };
}

/** A unary handler: answers with `run`'s result, or a gRPC error (logged without any payload). */
function unary<Req extends { uid?: string }, Res>(inFlight: InFlight, logger: Logger, method: string, run: (request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    void inFlight.track(run(call.request)).then(
      (response) => {
        logger.debug({ method, uid: logUid(call.request.uid), ms: Math.round(performance.now() - started) }, "served");
        callback(null, response);
      },
      (err: unknown) => {
        const status = grpcStatus(err);
        const level = status.code === grpc.status.INTERNAL ? "error" : "warn";
        logger[level]({ method, uid: logUid(call.request.uid), grpcCode: grpc.status[status.code], details: status.details }, "refused");
        callback(status);
      },
    );
  };
}

/** The caller's uid as logged: it is checked only after the call is logged, so cut to a line's worth. */
function logUid(uid: string | undefined): string {
  return (uid ?? "").slice(0, 128);
}

/** The gRPC status for a failure; details are short and never hold payloads or secrets. */
export function grpcStatus(err: unknown): { code: grpc.status; details: string } {
  if (err instanceof PluginInputError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof ProbeError) return { code: grpc.status.INTERNAL, details: err.message };
  if (!(err instanceof KmsClientError)) return { code: grpc.status.INTERNAL, details: "internal error" };
  // Tresor's messages name parameters and keys, never material or secrets (docs/security.md).
  const details = `Tresor: ${err.code}: ${err.message}`.slice(0, 512);
  const code = err.code;
  if (code === "NetworkError" || code === "Timeout" || code === "ServiceUnavailable" || code === "ClientClosed") return { code: grpc.status.UNAVAILABLE, details };
  if (code === "UnauthorizedOperation" || code.startsWith("AuthFailure")) return { code: grpc.status.PERMISSION_DENIED, details };
  if (code.startsWith("ResourceUnavailable")) return { code: grpc.status.FAILED_PRECONDITION, details };
  if (code.startsWith("RequestLimitExceeded")) return { code: grpc.status.RESOURCE_EXHAUSTED, details };
  if (code.startsWith("InvalidParameter") || code === "FailedOperation.DecryptError") return { code: grpc.status.INVALID_ARGUMENT, details };
  return { code: grpc.status.INTERNAL, details };
}
