// The Tang door (docs/disk-encryption.md): GET /tang/NAME/adv[/THP] and POST /tang/NAME/rec/KID as
// tangd 11 serves /adv and /rec (latchset/tang src/tangd.c), so Clevis's tang pin works unchanged.
// It parses the wire (the request JWK, at most TANG_BODY_LIMIT bytes), maps the core's errors onto
// tangd's HTTP statuses and writes every request's audit record before answering; whether a
// request is served (key state, allowed networks) the core decides.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { EcPoint } from "../../crypto/ecmr.js";
import { P521_COORDINATE_LENGTH } from "../../crypto/ecmr.js";
import type { AuditEvent, Auditor } from "../../audit/writer.js";
import { serviceUnavailable } from "../../service/availability.js";
import { ERROR_CODES, KmsError, type ErrorCode } from "../../service/errors.js";
import type { KmsService, TangRequest } from "../../service/kms-service.js";
import { capField, RequestAudit } from "../../service/request-audit.js";
import { TANG_NAME_PATTERN } from "../../service/tang.js";

/** The door's actions as audit records and metrics name them. */
export const TANG_ACTIONS = ["TangAdvertise", "TangRecover"] as const;
type TangAction = (typeof TANG_ACTIONS)[number];

/** tangd reads a whole request into 4096 bytes; a P-521 JWK is about 250. */
export const TANG_BODY_LIMIT = 4096;
/** A JWK thumbprint in base64url: 27 (SHA-1) to 86 (SHA-512) characters; tangd's pattern, bounded. */
const KID_PATTERN = /^[0-9A-Za-z_-]{1,128}$/;

/** tangd's status for each refusal (src/tangd.c): 400 malformed, 403 not allowed, 404 unknown, 405 another method, 413 too large; 429 and 503 are Tresor's. */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  InvalidParameter: 400,
  InvalidParameterValue: 400,
  UnauthorizedOperation: 403,
  InvalidKeyUsage: 403,
  CmkDisabled: 403,
  CmkArchived: 403,
  CmkStateNotSupport: 403,
  TangServerNotFound: 404,
  TangKeyNotFound: 404,
  UnsupportedProtocol: 405,
  RequestSizeLimitExceeded: 413,
  RequestLimitExceeded: 429,
  ServiceUnavailable: 503,
};

export interface TangDoorOptions {
  service: KmsService;
  auditor: Pick<Auditor, "record">;
  now: () => number;
  /** The action and result code of an answered request, for the server's log line and metrics. */
  report: (req: FastifyRequest, action: string, code: string) => void;
  /** An audit record that could not be written, or an unexpected error: logged by the server. */
  failed: (req: FastifyRequest, what: "audit" | "internal", err: unknown) => void;
}

interface Params {
  name: string;
  kid?: string;
}

export function registerTangRoutes(app: FastifyInstance, options: TangDoorOptions): void {
  const { service } = options;

  /** One request's audit record as the door knows it; the core adds the keys and the account. */
  function requestOf(req: FastifyRequest, action: TangAction, params: Params): TangRequest {
    const arrived = options.now();
    const request: TangRequest = {
      sourceIp: req.ip,
      audit: new RequestAudit(() => ({
        time: arrived,
        requestId: req.id,
        accountUin: request.accountUin ?? "",
        sourceIp: capField(req.ip),
        userAgent: capField(String(req.headers["user-agent"] ?? "")),
        service: "tang",
        action,
        resourceType: "tang",
        readOnly: true,
        latencyMs: options.now() - arrived,
        params: { name: params.name, kid: params.kid ?? "" },
      })),
    };
    request.audit.addResource(capField(`tang/${params.name}${params.kid === undefined ? "" : `/${params.kid}`}`));
    return request;
  }

  /** The audit record first (fail closed), then the answer. */
  async function answer(req: FastifyRequest, res: FastifyReply, action: TangAction, request: TangRequest, outcome: { code: string; status: number; type: string; body: string }) {
    const event: AuditEvent = request.audit.event(outcome.code);
    try {
      await options.auditor.record(event);
    } catch (e) {
      options.failed(req, "audit", e);
      const code = serviceUnavailable(e) ? ERROR_CODES.ServiceUnavailable.tencent : ERROR_CODES.InternalError.tencent;
      options.report(req, action, code);
      return res.code(code === ERROR_CODES.ServiceUnavailable.tencent ? 503 : 500).type("application/json").send(errorBody(code, "the audit record could not be written"));
    }
    options.report(req, action, outcome.code);
    return res.code(outcome.status).type(outcome.type).send(outcome.body);
  }

  /** Runs the core's part of a request and answers its result or its error. */
  async function serve(req: FastifyRequest, res: FastifyReply, action: TangAction, params: Params, run: (request: TangRequest) => Promise<{ type: string; body: string }>) {
    const request = requestOf(req, action, params);
    try {
      const { type, body } = await run(request);
      return await answer(req, res, action, request, { code: "Success", status: 200, type, body });
    } catch (e) {
      const error = asKmsError(e);
      if (error.code === "InternalError") options.failed(req, "internal", e);
      const code = ERROR_CODES[error.code].tencent;
      const message = error.code === "InternalError" ? "internal error" : error.message;
      return answer(req, res, action, request, { code, status: HTTP_STATUS[error.code] ?? 500, type: "application/json", body: errorBody(code, message) });
    }
  }

  const advertise = (req: FastifyRequest, res: FastifyReply) => {
    const { name, kid } = req.params as Params;
    const thumbprint = kid === undefined || kid === "" ? undefined : kid;
    return serve(req, res, "TangAdvertise", { name, ...(thumbprint === undefined ? {} : { kid: thumbprint }) }, async (request) => {
      checkPath(name, thumbprint);
      const jws = await service.tang.advertise(request, name, thumbprint);
      return { type: "application/jose+json", body: JSON.stringify(jws) };
    });
  };

  const recover = (req: FastifyRequest, res: FastifyReply) => {
    const { name, kid = "" } = req.params as Params;
    return serve(req, res, "TangRecover", { name, kid }, async (request) => {
      checkPath(name, kid);
      const point = parseRequestJwk(req.body);
      const product = await service.tang.recover(request, name, kid, point);
      return { type: "application/jwk+json", body: responseJwk(product) };
    });
  };

  /** Oversized or unreadable bodies, in the door's shape and audited like any request. */
  const errorHandler = (error: FastifyError, req: FastifyRequest, res: FastifyReply) => {
    const params = (req.params ?? {}) as Params;
    const tooLarge = error.code === "FST_ERR_CTP_BODY_TOO_LARGE";
    const refusal = tooLarge
      ? new KmsError("RequestSizeLimitExceeded", `the request body exceeds ${TANG_BODY_LIMIT} bytes`)
      : new KmsError("InvalidParameter", "the request body could not be read");
    const action: TangAction = req.routeOptions.url?.includes("/rec/") ? "TangRecover" : "TangAdvertise";
    return serve(req, res, action, { name: String(params.name ?? ""), kid: String(params.kid ?? "") }, () => Promise.reject(refusal));
  };

  /** Another method on a Tang path: 405, audited like any request. */
  const methodNotAllowed = (action: TangAction) => (req: FastifyRequest, res: FastifyReply) => {
    const params = req.params as Params;
    const refusal = new KmsError("UnsupportedProtocol", `${req.method} is not served here: ${action === "TangRecover" ? "POST" : "GET"} is`);
    return serve(req, res, action, { name: params.name, ...(params.kid === undefined ? {} : { kid: params.kid }) }, () => Promise.reject(refusal));
  };

  for (const url of ["/tang/:name/adv", "/tang/:name/adv/", "/tang/:name/adv/:kid"]) {
    app.get(url, advertise);
    app.route({ method: ["POST", "PUT", "DELETE", "PATCH"], url, bodyLimit: TANG_BODY_LIMIT, errorHandler, handler: methodNotAllowed("TangAdvertise") });
  }
  app.post("/tang/:name/rec/:kid", { bodyLimit: TANG_BODY_LIMIT, errorHandler }, recover);
  app.route({ method: ["GET", "PUT", "DELETE", "PATCH"], url: "/tang/:name/rec/:kid", bodyLimit: TANG_BODY_LIMIT, errorHandler, handler: methodNotAllowed("TangRecover") });
}

function checkPath(name: string, kid: string | undefined): void {
  if (!TANG_NAME_PATTERN.test(name)) throw new KmsError("TangServerNotFound", "no Tang server has that name");
  if (kid !== undefined && !KID_PATTERN.test(kid)) throw new KmsError("TangKeyNotFound", "a key thumbprint is 1 to 128 base64url characters");
}

function asKmsError(e: unknown): KmsError {
  if (e instanceof KmsError) return e;
  return serviceUnavailable(e) ?? new KmsError("InternalError", "internal error");
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ Error: { Code: code, Message: message } });
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalid(message: string): KmsError {
  return new KmsError("InvalidParameterValue", `the request JWK ${message}`);
}

/**
 * The client's point from the request JWK (RFC 7518 section 6.2.1), checked as tangd checks it
 * (src/tangd.c rec()): JSON; `key_ops`, when present, must allow deriveKey (else 403); `kty` EC;
 * `alg`, when present, ECMR; and `crv` P-521 with x and y of 66 bytes each. Whether the point is on
 * the curve the core checks (crypto/ecmr.ts).
 */
export function parseRequestJwk(body: unknown): EcPoint {
  let jwk: unknown;
  try {
    jwk = JSON.parse(utf8.decode(Buffer.isBuffer(body) ? body : Buffer.alloc(0)));
  } catch {
    throw invalid("is not UTF-8 JSON");
  }
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw invalid("must be a JSON object");
  const field = (name: string): unknown => (Object.hasOwn(jwk, name) ? (jwk as Record<string, unknown>)[name] : undefined);
  const keyOps = field("key_ops");
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes("deriveKey"))) {
    throw new KmsError("InvalidKeyUsage", `the request JWK's "key_ops" must allow deriveKey`);
  }
  if (field("kty") !== "EC") throw invalid(`must have "kty" EC`);
  const alg = field("alg");
  if (alg !== undefined && alg !== "ECMR") throw invalid(`must have "alg" ECMR when it has one`);
  if (field("crv") !== "P-521") throw invalid(`must have "crv" P-521`);
  return { x: coordinate(field("x"), "x"), y: coordinate(field("y"), "y") };
}

function coordinate(value: unknown, name: string): Buffer {
  const bytes = typeof value === "string" && /^[A-Za-z0-9_-]+$/.test(value) ? Buffer.from(value, "base64url") : undefined;
  if (!bytes || bytes.length !== P521_COORDINATE_LENGTH || bytes.toString("base64url") !== value) {
    throw invalid(`must have "${name}" as base64url of ${P521_COORDINATE_LENGTH} bytes`);
  }
  return bytes;
}

/** The answer as tangd writes it: the point with alg and key_ops, members sorted, compact. */
function responseJwk(point: EcPoint): string {
  return JSON.stringify({ alg: "ECMR", crv: "P-521", key_ops: ["deriveKey"], kty: "EC", x: point.x.toString("base64url"), y: point.y.toString("base64url") });
}
