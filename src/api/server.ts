// The HTTP(S) server: the Tencent Cloud API 3.0 endpoint on POST /; GET /healthz (the process is
// up), GET /readyz (it can reach its store and root of trust) and GET /metrics (Prometheus text).
// One structured log line per request: request id, action, result code, latency; never parameters.

import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { unixSeconds, type Clock } from "../service/clock.js";
import { serviceUnavailable, unavailableDependency } from "../service/availability.js";
import { ERROR_CODES, KmsError } from "../service/errors.js";
import type { KmsService } from "../service/kms-service.js";
import { Metrics } from "./metrics.js";
import { ACTIONS, runAction, type ActionDefinition } from "./tencent/actions.js";
import { CAM_ACTIONS, CAM_VERSION, STS_ACTIONS, STS_VERSION } from "./tencent/cam.js";
import type { Schema } from "./tencent/params.js";
import { Tc3Authenticator } from "./tencent/authenticate.js";

export const API_VERSION = "2019-01-18";

/** The products served on one port, told apart by X-TC-Version (each product has its own). */
const PRODUCTS: ReadonlyMap<string, { product: string; actions: Readonly<Record<string, ActionDefinition<Schema>>> }> = new Map([
  [API_VERSION, { product: "kms", actions: ACTIONS }],
  [CAM_VERSION, { product: "cam", actions: CAM_ACTIONS }],
  [STS_VERSION, { product: "sts", actions: STS_ACTIONS }],
]);
/** Largest request body: a 4096-byte plaintext is about 5.5 KB of base64, so this is generous. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface ServerOptions {
  service: KmsService;
  clock: Clock;
  logger: Logger;
  region: string;
  tls?: { cert: Buffer; key: Buffer };
  bodyLimit?: number;
  /** Names this node in /metrics (default "tresor"). */
  nodeId?: string;
}

/** Probes and scrapes: neither logged nor counted as requests. */
const OPERATIONS_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

interface Outcome {
  action: string;
  code: string;
}

const outcomes = new WeakMap<FastifyRequest, Outcome>();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorResponse(requestId: string, code: string, message: string) {
  return { Response: { Error: { Code: code, Message: message }, RequestId: requestId } };
}

export function buildServer(options: ServerOptions): FastifyInstance {
  const { service, logger, region } = options;
  const authenticator = new Tc3Authenticator(service.access, () => unixSeconds(options.clock));
  const metrics = new Metrics(options.nodeId ?? "tresor");
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    genReqId: () => randomUUID(),
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key, minVersion: "TLSv1.2" as const } } : {}),
  });

  // Every content type arrives as raw bytes: the signature covers the exact body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.addHook("onResponse", async (req, reply) => {
    if (OPERATIONS_PATHS.has(req.url)) return;
    const outcome = outcomes.get(req) ?? { action: header(req, "x-tc-action") ?? "", code: `HTTP${reply.statusCode}` };
    metrics.request(outcome.action, outcome.code, reply.elapsedTime / 1000);
    logger.info({ requestId: req.id, action: outcome.action, code: outcome.code, latencyMs: Math.round(reply.elapsedTime * 100) / 100 }, "request");
  });

  // Transport-level failures (oversize or unreadable bodies) still answer in the protocol's shape.
  app.setErrorHandler(async (error: { code?: string; statusCode?: number }, req, reply) => {
    const action = header(req, "x-tc-action") ?? "";
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      outcomes.set(req, { action, code: ERROR_CODES.RequestSizeLimitExceeded.tencent });
      return reply.code(200).send(errorResponse(req.id, ERROR_CODES.RequestSizeLimitExceeded.tencent, `the request body exceeds ${options.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes`));
    }
    if (error.statusCode && error.statusCode < 500) {
      outcomes.set(req, { action, code: ERROR_CODES.InvalidParameter.tencent });
      return reply.code(200).send(errorResponse(req.id, ERROR_CODES.InvalidParameter.tencent, "the request body could not be read"));
    }
    logger.error({ requestId: req.id, action, err: describeError(error) }, "internal error");
    outcomes.set(req, { action, code: ERROR_CODES.InternalError.tencent });
    return reply.code(200).send(errorResponse(req.id, ERROR_CODES.InternalError.tencent, "internal error"));
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  // Unauthenticated, for load balancers: 503 takes the node out of rotation until it recovers.
  app.get("/readyz", async (_req, reply) => {
    const health = await service.health();
    return reply.code(health.ready ? 200 : 503).send({ status: health.ready ? "ready" : "unavailable", store: health.store, rootOfTrust: health.rootOfTrust });
  });

  app.get("/metrics", async (_req, reply) => reply.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render(service)));

  app.post("/", async (req, reply) => {
    const action = header(req, "x-tc-action") ?? "";
    try {
      const response = await handleTencent(req, action);
      outcomes.set(req, { action, code: "Success" });
      return reply.send({ Response: { ...response, RequestId: req.id } });
    } catch (e) {
      if (e instanceof KmsError) {
        const code = ERROR_CODES[e.code].tencent;
        outcomes.set(req, { action, code });
        return reply.send(errorResponse(req.id, code, e.message));
      }
      // The one place where a dependency's failure becomes ServiceUnavailable (clients fail over).
      const unavailable = serviceUnavailable(e);
      if (unavailable !== undefined) {
        const dependency = unavailableDependency(e)!;
        metrics.unavailable(dependency);
        logger.warn({ requestId: req.id, action, dependency, err: describeError(e) }, "dependency unavailable");
        const code = ERROR_CODES.ServiceUnavailable.tencent;
        outcomes.set(req, { action, code });
        return reply.send(errorResponse(req.id, code, unavailable.message));
      }
      logger.error({ requestId: req.id, action, err: describeError(e) }, "internal error");
      outcomes.set(req, { action, code: ERROR_CODES.InternalError.tencent });
      return reply.send(errorResponse(req.id, ERROR_CODES.InternalError.tencent, "internal error"));
    }
  });

  app.route({
    method: ["GET", "PUT", "DELETE", "PATCH"],
    url: "/",
    handler: async (req, reply: FastifyReply) => {
      outcomes.set(req, { action: header(req, "x-tc-action") ?? "", code: ERROR_CODES.UnsupportedProtocol.tencent });
      return reply.send(errorResponse(req.id, ERROR_CODES.UnsupportedProtocol.tencent, `${req.method} is not supported: send POST with a JSON body`));
    },
  });

  async function handleTencent(req: FastifyRequest, action: string): Promise<Record<string, unknown>> {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!action) throw new KmsError("MissingParameter", `the "X-TC-Action" header is required`);
    const version = header(req, "x-tc-version");
    if (!version) throw new KmsError("MissingParameter", `the "X-TC-Version" header is required`);
    const product = PRODUCTS.get(version);
    if (!product) {
      const offered = [...PRODUCTS].map(([v, p]) => `${v} (${p.product})`).join(", ");
      throw new KmsError("NoSuchVersion", `"X-TC-Version" ${version} is not supported: use one of ${offered}`);
    }
    const contentType = header(req, "content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new KmsError("UnsupportedProtocol", `"Content-Type" must be application/json`);
    }

    const caller = await authenticator.authenticate({ method: req.method, url: req.url, headers: req.headers, body, sourceIp: req.ip });

    const requestRegion = header(req, "x-tc-region");
    if (requestRegion !== undefined && requestRegion !== region) {
      throw new KmsError("UnsupportedRegion", `"X-TC-Region" ${requestRegion} is not served here: this service's region is ${region}`);
    }

    let params: unknown;
    try {
      params = body.length === 0 ? {} : JSON.parse(utf8.decode(body));
    } catch {
      throw new KmsError("InvalidParameter", "the request body is not valid UTF-8 JSON");
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      throw new KmsError("InvalidParameter", "the request body must be a JSON object");
    }
    return runAction(action, params as Record<string, unknown>, { service, caller }, product.actions);
  }

  return app;
}

/** What an unexpected error may show in a log: its type and code, never its message (which may
 * quote data) beyond the first line of a known Node error. */
function describeError(e: unknown): Record<string, unknown> {
  if (e instanceof Error) return { type: e.name, code: (e as { code?: unknown }).code, ...pkcs11Cause(e), stack: e.stack?.split("\n").slice(1, 6).join("\n") };
  return { type: typeof e };
}

/** The PKCS#11 function and CKR name behind an HSM failure (a Pkcs11Error somewhere in the cause chain); never arguments. */
function pkcs11Cause(e: Error): { pkcs11?: { fn: string; ckr: string } } {
  for (let cause: unknown = e, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    const { fn, ckr } = cause as { fn?: unknown; ckr?: unknown };
    if (typeof fn === "string" && typeof ckr === "string" && /^CKR_[A-Za-z0-9_+]+$/.test(ckr)) return { pkcs11: { fn, ckr } };
  }
  return {};
}

export async function listen(app: FastifyInstance, host: string, port: number, tls: boolean): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  const scheme = tls ? "https" : "http";
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `${scheme}://${shownHost}:${address.port}`;
}
