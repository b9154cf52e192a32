// The HTTP(S) server: the Tencent Cloud API 3.0 endpoint on POST /, and the AWS KMS door on the
// same POST / for requests with an X-Amz-Target header (aws/door.ts); GET /healthz (the process is
// up), GET /readyz (it can reach its store and root of trust) and GET /metrics (Prometheus text);
// the web console's files under /console/ (console/routes.ts), where a browser's GET / is sent.
// One structured log line per request: request id, action, result code, latency; never parameters.

import { STATUS_CODES } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { unixSeconds, type Clock } from "../service/clock.js";
import { serviceUnavailable, unavailableDependency } from "../service/availability.js";
import { ERROR_CODES, KmsError, type ErrorCode } from "../service/errors.js";
import type { KmsService } from "../service/kms-service.js";
import { AUDIT_SERVICES, type AuditService } from "../audit/record.js";
import { CATALOG_ACTIONS, changesState } from "../policy/catalog.js";
import type { AuditEvent, Auditor } from "../audit/writer.js";
import type { Caller } from "../service/access-control.js";
import { AUDIT_FLAGS, RequestAudit, capField, newRequestId } from "../service/request-audit.js";
import { AccountRateLimiter, DEFAULT_FAILED_AUTH_LIMITS, FailedAuthLimiter, failureSummaryEvent, type FailedAuthLimits, type FailureSummary } from "./limits.js";
import { Metrics } from "./metrics.js";
import { registerTangRoutes, TANG_ACTIONS } from "./tang/routes.js";
import { CONSOLE_PATH, DEFAULT_CONSOLE_DIR, isBrowserNavigation, registerConsoleRoutes } from "./console/routes.js";
import { ACTIONS, runAction, SERVICE_INFORMATION_ACTIONS, type ActionDefinition } from "./tencent/actions.js";
import { CAM_ACTIONS, CAM_VERSION, STS_ACTIONS, STS_VERSION } from "./tencent/cam.js";
import { CLOUDAUDIT_ACTIONS, CLOUDAUDIT_VERSION } from "./tencent/cloudaudit.js";
import type { Schema } from "./tencent/params.js";
import { Tc3Authenticator, type AuthenticatorOptions } from "./tencent/authenticate.js";
import { AWS_ACTION_NAMES, AWS_CONTENT_TYPE, AwsDoor, awsActionOf, awsCatalogAction, awsErrorReply, isAwsRequest } from "./aws/door.js";

export const API_VERSION = "2019-01-18";

interface Product {
  product: string;
  actions: Readonly<Record<string, ActionDefinition<Schema>>>;
  /**
   * What a signature that does not cover X-TC-Action is bound to (signature-bindings.ts), per
   * action, made once: "version:Action", or one name shared by the service-information actions.
   */
  bindingNames: ReadonlyMap<string, string>;
}

function product(version: string, product: string, actions: Readonly<Record<string, ActionDefinition<Schema>>>): [string, Product] {
  const bindingName = (action: string) => `${version}:${SERVICE_INFORMATION_ACTIONS.includes(action) ? "service-information" : action}`;
  return [version, { product, actions, bindingNames: new Map(Object.keys(actions).map((a) => [a, bindingName(a)])) }];
}

/** The products served on one port, told apart by X-TC-Version (each product has its own). */
const PRODUCTS: ReadonlyMap<string, Product> = new Map([
  product(API_VERSION, "kms", ACTIONS),
  product(CAM_VERSION, "cam", CAM_ACTIONS),
  product(STS_VERSION, "sts", STS_ACTIONS),
  product(CLOUDAUDIT_VERSION, "cloudaudit", CLOUDAUDIT_ACTIONS),
]);
/** The product (and so the signing service) of an X-TC-Version; undefined for an unknown version. */
export function productOfVersion(version: string): string | undefined {
  return PRODUCTS.get(version)?.product;
}

/**
 * TLS 1.3's suites (all AEAD with forward secrecy), then TLS 1.2 limited to ECDHE key exchange with
 * AEAD (GCM, ChaCha20-Poly1305): no RSA key exchange (no forward secrecy), no CBC, SHA-1 or CCM8.
 */
export const TLS_CIPHERS = [
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_AES_128_GCM_SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
].join(":");
/** Largest request body: a 4096-byte plaintext is about 5.5 KB of base64, so this is generous. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/** How many connections a node holds and how long it waits for a slow or idle client. */
export interface ConnectionLimits {
  /** Open connections at most; more are closed at once (keep it below the process's open-file limit). */
  maxConnections: number;
  /** A request's headers must arrive within this (a connection that sends nothing is closed then too). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this; longer than a load balancer's idle timeout. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 20_000, keepAliveTimeoutMs: 65_000 };

export interface ServerOptions {
  service: KmsService;
  clock: Clock;
  logger: Logger;
  region: string;
  tls?: { cert: Buffer; key: Buffer };
  bodyLimit?: number;
  /** Names this node in /metrics (default "tresor"). */
  nodeId?: string;
  /** Where every request's audit record goes (default: nowhere, e.g. in unit tests). */
  auditor?: Pick<Auditor, "record">;
  /** Signature checks beyond the protocol's (`--require-signed-action`, the replay table's size). */
  authentication?: AuthenticatorOptions;
  connections?: Partial<ConnectionLimits>;
  /** Requests per second per account (RequestLimitExceeded above it); absent: no limit. */
  rateLimit?: number;
  /** Unauthenticated failures per source that get a full audit record (the rest are summarized). */
  failedAuth?: Partial<FailedAuthLimits>;
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

/** X-TC-Action (or the action of X-Amz-Target) as logged, counted and recorded: never longer than a field may be. */
function actionOf(req: FastifyRequest): string {
  const target = header(req, "x-amz-target");
  return target === undefined ? capField(header(req, "x-tc-action") ?? "") : awsActionOf(target);
}

function errorResponse(requestId: string, code: string, message: string) {
  return { Response: { Error: { Code: code, Message: message }, RequestId: requestId } };
}

export function buildServer(options: ServerOptions): FastifyInstance {
  const { service, logger, region } = options;
  const auditor = options.auditor ?? { record: async () => undefined };
  const authenticator = new Tc3Authenticator(service.access, () => unixSeconds(options.clock), options.authentication);
  const aws = new AwsDoor(service, region, () => unixSeconds(options.clock));
  const metrics = new Metrics(options.nodeId ?? "tresor", [...CATALOG_ACTIONS.map((a) => a.name), ...AWS_ACTION_NAMES, ...TANG_ACTIONS]);
  const signatureFailures = new FailureCounter(() => options.clock.now());
  const rateLimiter = options.rateLimit === undefined ? undefined : new AccountRateLimiter(options.rateLimit, () => options.clock.now());
  const failedAuth = new FailedAuthLimiter({ ...DEFAULT_FAILED_AUTH_LIMITS, ...options.failedAuth }, () => options.clock.now());
  const connections = { ...DEFAULT_CONNECTION_LIMITS, ...options.connections };
  // Node checks the headers and request timeouts every connectionsCheckingInterval (30 s by default).
  const transport = {
    headersTimeout: connections.headersTimeoutMs,
    requestTimeout: connections.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(connections.headersTimeoutMs / 4))),
  };
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    genReqId: () => newRequestId(),
    requestTimeout: connections.requestTimeoutMs,
    connectionTimeout: 60_000,
    keepAliveTimeout: connections.keepAliveTimeoutMs,
    // Answered below in the protocol's shape instead.
    return503OnClosing: false,
    clientErrorHandler: onClientError,
    http: transport,
    ...(options.tls
      ? { https: { ...transport, cert: options.tls.cert, key: options.tls.key, minVersion: "TLSv1.2" as const, ciphers: TLS_CIPHERS, honorCipherOrder: true } }
      : {}),
  });
  app.server.maxConnections = connections.maxConnections;

  /** Audit writes that no request waits for (summaries, transport rejections): awaited on close. */
  const detached = new Set<Promise<void>>();
  function recordDetached(event: AuditEvent): void {
    detach(auditor.record(event), event.requestId);
  }
  function detach(record: Promise<void>, requestId: string | undefined): void {
    const write = record.catch((e: unknown) => {
      metrics.auditFailure();
      logger.error({ requestId, err: describeError(e) }, "audit record could not be written");
    });
    detached.add(write);
    void write.finally(() => detached.delete(write));
  }
  const writeSummaries = (summaries: readonly FailureSummary[]) => summaries.forEach((s) => recordDetached(failureSummaryEvent(s, newRequestId())));
  const summaryTimer = setInterval(() => writeSummaries(failedAuth.sweep()), failedAuth.limits.windowMs).unref();
  app.addHook("onClose", async () => {
    clearInterval(summaryTimer);
    writeSummaries(failedAuth.drain());
    await Promise.all(detached);
  });

  /**
   * Whether a failed request's own audit record is left out: it failed before its caller was
   * authenticated, and its source has had many such failures lately (they go into a summary).
   */
  function suppressRecord(sourceIp: string, authenticated: boolean, code: string): boolean {
    if (authenticated || code === "Success" || NODE_FAULTS.has(code)) return false;
    const suppressed = failedAuth.failed(sourceIp, code);
    writeSummaries(failedAuth.sweep());
    return suppressed;
  }

  /** A request Node refused before it reached Fastify (bad framing, headers too large, too slow). */
  function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const requestId = newRequestId();
    const sourceIp = capField(socket.remoteAddress ?? "");
    const { status, code, message } = clientRejection(err, connections);
    if (socket.writable) {
      const body = JSON.stringify(errorResponse(requestId, code, message));
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy();
    // A connection that never sent a byte made no request: nothing to record.
    if (socket.bytesRead === 0) return;
    metrics.request("", code, 0);
    logger.info({ requestId, action: "", code, status }, "request refused before routing");
    if (suppressRecord(sourceIp, false, code)) return;
    recordDetached({ action: "", result: code, requestId, sourceIp, service: "", resourceType: "", readOnly: true, latencyMs: 0 });
  }

  // Every content type arrives as raw bytes: the signature covers the exact body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.addHook("onResponse", async (req, reply) => {
    if (OPERATIONS_PATHS.has(req.url)) return;
    const outcome = outcomes.get(req) ?? { action: actionOf(req), code: `HTTP${reply.statusCode}` };
    metrics.request(outcome.action, outcome.code, reply.elapsedTime / 1000);
    logger.info({ requestId: req.id, action: outcome.action, code: outcome.code, latencyMs: Math.round(reply.elapsedTime * 100) / 100 }, "request");
  });

  /** What is known of a request so far, for its audit record. */
  function auditOf(req: FastifyRequest): { audit: RequestAudit; facts: RequestFacts } {
    const awsRequest = isAwsRequest(req.headers);
    const facts: RequestFacts = { product: awsRequest ? "kms" : (PRODUCTS.get(header(req, "x-tc-version") ?? "")?.product ?? "") };
    const action = actionOf(req);
    // The catalogue action whose kind (read-only or not) the record has.
    const catalogName = awsRequest ? (awsCatalogAction(action) ?? "") : action;
    const audit = new RequestAudit(() => {
      const caller = facts.caller;
      return {
        time: options.clock.now() - Math.round(elapsedMs(req)),
        requestId: req.id,
        traceId: capField(header(req, "x-tc-traceid") ?? ""),
        accountUin: caller?.uin ?? "",
        principalUin: caller?.principal.id ?? "",
        principalName: caller ? principalLabel(caller) : "",
        accessKeyId: caller?.secretId ?? claimedSecretId(header(req, "authorization")),
        sourceIp: capField(req.ip),
        userAgent: capField(header(req, "user-agent") ?? ""),
        region: facts.region ?? capField(header(req, "x-tc-region") ?? ""),
        ...(isAuditService(facts.product) ? { service: facts.product } : {}),
        action,
        resourceType: facts.product,
        readOnly: !changesState(facts.product, catalogName),
        latencyMs: Math.round(elapsedMs(req)),
        ...(facts.params === undefined ? {} : { params: facts.params }),
      };
    });
    if (awsRequest) audit.flags.add(AUDIT_FLAGS.awsProtocol);
    return { audit, facts };
  }

  /** An error answer in the shape of the request's protocol; `status` overrides the protocol's own. */
  function errorReply(req: FastifyRequest, code: ErrorCode, message: string, status?: number): { status: number; body: object } {
    if (!isAwsRequest(req.headers)) return { status: status ?? 200, body: errorResponse(req.id, ERROR_CODES[code].tencent, message) };
    const reply = awsErrorReply(code, message);
    return { status: status ?? reply.status, body: reply.body };
  }

  /** Answers error `code`; recorded (and counted) under its registry name, the Tencent one. */
  function fail(req: FastifyRequest, res: FastifyReply, audit: RequestAudit, code: ErrorCode, message: string, status?: number) {
    const reply = errorReply(req, code, message, status);
    if (isAwsRequest(req.headers)) res.header("content-type", AWS_CONTENT_TYPE).header("x-amzn-requestid", req.id);
    return answer(req, res, audit, ERROR_CODES[code].tencent, reply.body, reply.status);
  }

  /** Milliseconds since the request arrived. */
  const started = new WeakMap<FastifyRequest, bigint>();
  app.addHook("onRequest", async (req) => void started.set(req, process.hrtime.bigint()));

  function elapsedMs(req: FastifyRequest): number {
    const t = started.get(req);
    return t === undefined ? 0 : Number(process.hrtime.bigint() - t) / 1e6;
  }

  // While closing, requests still arriving on open connections are answered in the protocol's
  // shape, with HTTP 503 so a load balancer or tresor/sdk sends them to another node.
  let closing = false;
  app.addHook("preClose", async () => void (closing = true));
  app.addHook("onRequest", async (req, res) => {
    if (!closing) return;
    res.header("retry-after", "1");
    return fail(req, res, auditOf(req).audit, "ServiceUnavailable", "this node is shutting down: retry, on another node if there is one", 503);
  });

  /**
   * The one way an API answer leaves: its audit record is durable first (unless the request's state
   * change already committed it). When the record cannot be written the answer is InternalError,
   * and nothing changed: only requests that changed nothing are recorded here.
   */
  async function answer(req: FastifyRequest, res: FastifyReply, audit: RequestAudit, code: string, body: object, status = 200) {
    const action = actionOf(req);
    if (code === ERROR_CODES.UnauthorizedOperation.tencent) audit.flags.add(AUDIT_FLAGS.policyDenied);
    const badCredential = code === ERROR_CODES.SignatureFailure.tencent || code === ERROR_CODES.SecretIdNotFound.tencent;
    if (badCredential && signatureFailures.failed(claimedSecretId(header(req, "authorization")))) {
      audit.flags.add(AUDIT_FLAGS.signatureFailures);
    }
    const event = audit.event(code);
    if (!audit.recorded && !suppressRecord(req.ip, event.accountUin !== "", code)) {
      const record = auditor.record(event);
      // A ServiceUnavailable answer changes and discloses nothing, and the store that failed the
      // request is likely down: waiting for its record too would double the wait (two store
      // timeouts). It waits a little, then answers while the record is still being written.
      if (code === ERROR_CODES.ServiceUnavailable.tencent && !(await settlesWithin(record, UNAVAILABLE_RECORD_WAIT_MS))) {
        detach(record, req.id);
        outcomes.set(req, { action, code });
        return res.code(status).send(body);
      }
      try {
        await record;
      } catch (e) {
        logger.error({ requestId: req.id, action, err: describeError(e) }, "audit record could not be written: request refused");
        metrics.auditFailure();
        // The store down is ServiceUnavailable (another node may serve); any other failure, InternalError.
        const unavailable = serviceUnavailable(e);
        const refusal: ErrorCode = unavailable ? "ServiceUnavailable" : "InternalError";
        outcomes.set(req, { action, code: ERROR_CODES[refusal].tencent });
        const reply = errorReply(req, refusal, unavailable ? unavailable.message : "internal error");
        return res.code(reply.status).send(reply.body);
      }
    }
    outcomes.set(req, { action, code });
    return res.code(status).send(body);
  }

  // Transport-level failures (oversize or unreadable bodies) still answer in the protocol's shape.
  app.setErrorHandler(async (error: { code?: string; statusCode?: number }, req, res) => {
    const action = actionOf(req);
    const { audit } = auditOf(req);
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return fail(req, res, audit, "RequestSizeLimitExceeded", `the request body exceeds ${options.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes`);
    }
    if (error.statusCode && error.statusCode < 500) return fail(req, res, audit, "InvalidParameter", "the request body could not be read");
    logger.error({ requestId: req.id, action, err: describeError(error) }, "internal error");
    return fail(req, res, audit, "InternalError", "internal error");
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  // Unauthenticated, for load balancers: 503 takes the node out of rotation until it recovers.
  // Requests failed by the store since the last check make the next check write (disk full, read-only).
  app.get("/readyz", async (_req, res) => {
    const health = await service.health(metrics.storeFailures());
    return res.code(health.ready ? 200 : 503).send({ status: health.ready ? "ready" : "unavailable", store: health.store, rootOfTrust: health.rootOfTrust });
  });

  app.get("/metrics", async (_req, res) => res.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render(service)));

  registerTangRoutes(app, {
    service,
    auditor,
    now: () => options.clock.now(),
    report: (req, action, code) => outcomes.set(req, { action, code }),
    failed: (req, what, err) => {
      if (what === "audit") metrics.auditFailure();
      logger.error({ requestId: req.id, err: describeError(err) }, what === "audit" ? "audit record could not be written: request refused" : "internal error");
    },
  });

  app.post("/", async (req, res) => {
    const action = actionOf(req);
    const { audit, facts } = auditOf(req);
    try {
      if (isAwsRequest(req.headers)) {
        const response = await handleAws(req, audit, facts);
        res.header("content-type", AWS_CONTENT_TYPE).header("x-amzn-requestid", req.id);
        return await answer(req, res, audit, "Success", response);
      }
      const response = await handleTencent(req, action, audit, facts);
      return await answer(req, res, audit, "Success", { Response: { ...response, RequestId: req.id } });
    } catch (e) {
      if (e instanceof KmsError) return fail(req, res, audit, e.code, e.message);
      // The one place where a dependency's failure becomes ServiceUnavailable (clients fail over).
      const unavailable = serviceUnavailable(e);
      if (unavailable !== undefined) {
        const dependency = unavailableDependency(e)!;
        metrics.unavailable(dependency);
        logger.warn({ requestId: req.id, action, dependency, err: describeError(e) }, "dependency unavailable");
        return fail(req, res, audit, "ServiceUnavailable", unavailable.message);
      }
      logger.error({ requestId: req.id, action, err: describeError(e) }, "internal error");
      return fail(req, res, audit, "InternalError", "internal error");
    }
  });

  app.route({
    method: ["GET", "PUT", "DELETE", "PATCH"],
    url: "/",
    handler: async (req, res: FastifyReply) => {
      if (req.method === "GET" && isBrowserNavigation(req.headers)) return res.redirect(CONSOLE_PATH, 302);
      return fail(req, res, auditOf(req).audit, "UnsupportedProtocol", `${req.method} is not supported: send POST with a JSON body`);
    },
  });

  // Any other path: recorded like every request, answered 404 in the protocol's shape.
  const notFound = async (req: FastifyRequest, res: FastifyReply) => fail(req, res, auditOf(req).audit, "UnsupportedProtocol", "the API is served on POST / only", 404);
  app.setNotFoundHandler(notFound);
  registerConsoleRoutes(app, DEFAULT_CONSOLE_DIR, notFound);

  async function handleTencent(req: FastifyRequest, action: string, audit: RequestAudit, facts: RequestFacts): Promise<Record<string, unknown>> {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!action) throw new KmsError("MissingParameter", `the "X-TC-Action" header is required`);
    const version = header(req, "x-tc-version");
    if (!version) throw new KmsError("MissingParameter", `the "X-TC-Version" header is required`);
    const product = PRODUCTS.get(version);
    if (!product) {
      const offered = [...PRODUCTS].map(([v, p]) => `${v} (${p.product})`).join(", ");
      throw new KmsError("NoSuchVersion", `"X-TC-Version" ${capField(version, 64)} is not supported: use one of ${offered}`);
    }
    const contentType = header(req, "content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new KmsError("UnsupportedProtocol", `"Content-Type" must be application/json`);
    }

    const caller = await authenticator.authenticate(
      { method: req.method, url: req.url, headers: req.headers, body, sourceIp: req.ip },
      { product: product.product, action: product.bindingNames.get(action), flags: audit.flags },
    );
    authenticated(caller, audit, facts);
    admit(caller);

    const requestRegion = header(req, "x-tc-region");
    if (requestRegion !== undefined && requestRegion !== region) {
      throw new KmsError("UnsupportedRegion", `"X-TC-Region" ${capField(requestRegion, 64)} is not served here: this service's region is ${region}`);
    }

    return runAction(action, parseBody(body, facts), { service, caller }, product.actions);
  }

  async function handleAws(req: FastifyRequest, audit: RequestAudit, facts: RequestFacts): Promise<Record<string, unknown>> {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    return aws.handle(
      { method: req.method, url: req.url, headers: req.headers, body, sourceIp: req.ip },
      {
        authenticated: (caller) => {
          authenticated(caller, audit, facts);
          facts.region = region;
        },
        admit,
        parseBody: (bytes) => parseBody(bytes, facts),
      },
    );
  }

  /** The request's caller, known: its audit record names it from now on. */
  function authenticated(caller: Caller, audit: RequestAudit, facts: RequestFacts): void {
    caller.audit = audit;
    facts.caller = caller;
  }

  /** The one rate limit of every door, per account. */
  function admit(caller: Caller): void {
    if (rateLimiter && !rateLimiter.take(caller.uin)) {
      throw new KmsError("RequestLimitExceeded", `the account is above its limit of ${rateLimiter.perSecond} requests per second: retry later`);
    }
  }

  return app;
}

const MAX_DIGESTED_DEPTH = 32;

/** A request body as a JSON object (empty: {}), digested for the audit record; InvalidParameter otherwise. */
function parseBody(body: Buffer, facts: RequestFacts): Record<string, unknown> {
  let params: unknown;
  try {
    params = body.length === 0 ? {} : JSON.parse(utf8.decode(body));
  } catch {
    throw new KmsError("InvalidParameter", "the request body is not valid UTF-8 JSON");
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    throw new KmsError("InvalidParameter", "the request body must be a JSON object");
  }
  // Digested for the audit record; no schema nests deeper, and a hostile depth must not cost a stack.
  if (jsonDepth(params, MAX_DIGESTED_DEPTH) <= MAX_DIGESTED_DEPTH) facts.params = params;
  return params as Record<string, unknown>;
}

/** How long a ServiceUnavailable answer waits for its audit record before it leaves anyway. */
const UNAVAILABLE_RECORD_WAIT_MS = 1000;

/** Whether `promise` settles (either way) within `ms`; it is not cancelled when it does not. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Failures that are the node's, not the caller's: never summarized away. */
const NODE_FAULTS = new Set<string>([ERROR_CODES.ServiceUnavailable.tencent, ERROR_CODES.InternalError.tencent]);

/** How a request Node could not take in is answered (the codes are the registry's). */
function clientRejection(err: NodeJS.ErrnoException, limits: ConnectionLimits): { status: number; code: string; message: string } {
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, code: ERROR_CODES.RequestSizeLimitExceeded.tencent, message: "the request headers are too large" };
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return { status: 408, code: ERROR_CODES.UnsupportedProtocol.tencent, message: `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, all within ${limits.requestTimeoutMs} ms)` };
  }
  return { status: 400, code: ERROR_CODES.UnsupportedProtocol.tencent, message: "the request is not valid HTTP/1.1" };
}

/** The nesting depth of a parsed JSON value, counted without recursion up to `limit` + 1. */
function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

interface RequestFacts {
  product: string;
  caller?: Caller;
  params?: unknown;
  /** The region the request was authenticated for, where the protocol has no region header. */
  region?: string;
}

function isAuditService(product: string): product is AuditService {
  return (AUDIT_SERVICES as readonly string[]).includes(product);
}

/** How a principal is named in audit records: root, the user's name, or role/session. */
function principalLabel(caller: Caller): string {
  return caller.session ? `${caller.principal.name}/${caller.session.sessionName}` : caller.principal.name;
}

/** The SecretId a request claims in its Authorization header, whether or not it verifies. */
function claimedSecretId(authorization: string | undefined): string {
  return /Credential=([A-Za-z0-9_-]{1,128})\//.exec(authorization ?? "")?.[1] ?? "";
}

/**
 * Signature failures (and unknown SecretIds) per claimed SecretId in a sliding window: from the
 * third within five minutes, the failures are flagged (someone is guessing, or a client has the
 * wrong secret).
 */
class FailureCounter {
  static readonly WINDOW_MS = 5 * 60_000;
  static readonly THRESHOLD = 3;
  static readonly MAX_TRACKED = 10_000;
  readonly #failures = new Map<string, number[]>();

  constructor(private readonly now: () => number) {}

  /** Counts a failure; true when it is one of several recent ones. */
  failed(secretId: string): boolean {
    const now = this.now();
    const recent = (this.#failures.get(secretId) ?? []).filter((t) => now - t < FailureCounter.WINDOW_MS);
    recent.push(now);
    if (this.#failures.size >= FailureCounter.MAX_TRACKED && !this.#failures.has(secretId)) this.#failures.clear();
    this.#failures.set(secretId, recent.slice(-FailureCounter.THRESHOLD));
    return recent.length >= FailureCounter.THRESHOLD;
  }
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
