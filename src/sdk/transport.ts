// One attempt of a KmsClient call: the request signed afresh (TC3-HMAC-SHA256), sent over the
// client's keep-alive agent, and its answer read within the time limit and checked. Which failures
// may be retried on another endpoint is decided here; the retrying is the client's.

import http from "node:http";
import https from "node:https";
import { tc3Authorization } from "../crypto/tc3.js";
import { CLIENT_ERROR_CODES, KmsClientError } from "./client-errors.js";
import type { KmsResponse } from "./types.js";

export const API_VERSION = "2019-01-18";
export const SERVICE = "kms";
/** The products a Tresor server answers besides KMS, each with its API version. */
export const PRODUCT_VERSIONS = { kms: API_VERSION, cam: "2019-01-16", sts: "2018-08-13", cloudaudit: "2019-03-19" } as const;
export type Product = keyof typeof PRODUCT_VERSIONS;

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
// The official SDKs sign only content-type and host, which leaves the action open to being swapped
// on a captured request; signing x-tc-action as well closes that for this client.
const SIGNED_HEADERS = ["content-type", "host", "x-tc-action"] as const;
const CONTENT_TYPE = "application/json";

export type AnyAgent = http.Agent | https.Agent;

/** What one attempt needs of its client, which holds it in a private field (never shown or serialised). */
export interface TransportSettings {
  readonly secretId: string;
  readonly secretKey: string;
  readonly token: string | undefined;
  readonly region: string;
  readonly timeoutMs: number;
  readonly agent: AnyAgent;
}

/** A failure before any byte of a response arrived. */
export class TransportFailure extends Error {
  constructor(
    readonly error: KmsClientError,
    readonly retryable: boolean,
  ) {
    super(error.message);
  }
}

class AttemptTimeout extends Error {}

const RETRYABLE_NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET", // also "socket hang up"
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
]);


/** The server's wire code for "this node cannot reach its store or root of trust now". */
const SERVICE_UNAVAILABLE = "ServiceUnavailable";
/** What a load balancer or proxy answers when no node behind it can take the request. */
const UNAVAILABLE_HTTP_STATUSES = new Set([502, 503, 504]);

/** An answer that says "nothing was done here; another node, or later, may do it". */
export function isUnavailableAnswer(err: KmsClientError): boolean {
  return err.code === SERVICE_UNAVAILABLE || (err.code === CLIENT_ERROR_CODES.HttpError && err.status !== undefined && UNAVAILABLE_HTTP_STATUSES.has(err.status));
}

/** One attempt. Rejects with TransportFailure when no response byte arrived. */
export function sendAttempt(settings: TransportSettings, url: URL, product: Product, action: string, body: string): Promise<KmsResponse> {
  const timestamp = Math.floor(Date.now() / 1000);
  const authorization = tc3Authorization({
    secretId: settings.secretId,
    secretKey: settings.secretKey,
    service: product,
    timestamp,
    request: {
      method: "POST",
      path: "/",
      query: "",
      // The signed host is the hostname without port, as the Tencent SDKs sign it.
      headers: { "content-type": CONTENT_TYPE, host: url.hostname, "x-tc-action": action },
      signedHeaders: SIGNED_HEADERS,
      payload: body,
    },
  });
  const transport = url.protocol === "https:" ? https : http;

  return new Promise<KmsResponse>((resolve, reject) => {
    let responded = false;
    let timedOut = false;
    let settled = false;
    const finish = (outcome: { value: KmsResponse } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if ("value" in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };

    const req = transport.request({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port || (url.protocol === "https:" ? 443 : 80),
      path: "/",
      method: "POST",
      agent: settings.agent,
      headers: {
        "Content-Type": CONTENT_TYPE,
        "Content-Length": Buffer.byteLength(body),
        "X-TC-Action": action,
        "X-TC-Version": PRODUCT_VERSIONS[product],
        "X-TC-Timestamp": String(timestamp),
        "X-TC-Region": settings.region,
        ...(settings.token === undefined ? {} : { "X-TC-Token": settings.token }),
        Authorization: authorization,
      },
    });

    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new AttemptTimeout());
    }, settings.timeoutMs);

    const onError = (err: Error): void => {
      if (responded) {
        finish({
          error: new KmsClientError(
            timedOut ? CLIENT_ERROR_CODES.Timeout : CLIENT_ERROR_CODES.InvalidResponse,
            timedOut
              ? `${action}: the response did not complete within ${settings.timeoutMs} ms`
              : `${action}: the response was cut off: ${err.message}`,
            { cause: err },
          ),
        });
        return;
      }
      finish({ error: transportFailure(settings, url, action, timedOut ? new AttemptTimeout() : err) });
    };
    req.on("error", onError);

    req.on("response", (res) => {
      responded = true;
      res.on("error", onError);
      res.on("close", () => onError(new Error("connection closed")));
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => {
        if (!res.complete) return; // cut off: the error handler reports it
        if (status !== 200) {
          finish({
            error: new KmsClientError(
              CLIENT_ERROR_CODES.HttpError,
              `${action}: HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd(),
              { status },
            ),
          });
          return;
        }
        try {
          finish({ value: parseResponse(action, Buffer.concat(chunks).toString("utf8")) });
        } catch (err) {
          finish({ error: err as Error });
        }
      });
    });

    req.end(body);
  });
}

function transportFailure(settings: TransportSettings, url: URL, action: string, err: Error): TransportFailure {
  if (err instanceof AttemptTimeout) {
    return new TransportFailure(
      new KmsClientError(CLIENT_ERROR_CODES.Timeout, `${action}: no response within ${settings.timeoutMs} ms`),
      true,
    );
  }
  const code = (err as NodeJS.ErrnoException).code;
  const retryable = code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
  return new TransportFailure(
    new KmsClientError(CLIENT_ERROR_CODES.NetworkError, `${action}: cannot reach ${url.origin}: ${err.message}`, {
      cause: err,
    }),
    retryable,
  );
}

function parseResponse(action: string, text: string): KmsResponse {
  const invalid = (why: string): KmsClientError =>
    new KmsClientError(CLIENT_ERROR_CODES.InvalidResponse, `${action}: invalid response: ${why}`, { status: 200 });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid("not JSON");
  }
  const response = isObject(parsed) ? parsed["Response"] : undefined;
  if (!isObject(response)) throw invalid(`no "Response" object`);
  const requestId = typeof response["RequestId"] === "string" ? response["RequestId"] : undefined;
  const error = response["Error"];
  if (error !== undefined) {
    if (!isObject(error) || typeof error["Code"] !== "string") throw invalid(`"Error" without a "Code"`);
    const message = typeof error["Message"] === "string" ? error["Message"] : "";
    throw new KmsClientError(error["Code"], message, {
      status: 200,
      ...(requestId === undefined ? {} : { requestId }),
    });
  }
  if (requestId === undefined) throw invalid(`no "RequestId"`);
  return response as unknown as KmsResponse;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

