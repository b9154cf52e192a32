// Builds and sends TC3-signed Tencent API 3.0 requests for the benchmarks, the way the official
// SDK does (host without port, service "kms", signed headers content-type;host). node:http only,
// so the bench measures the server and not a client library.

import { request, type Agent, type OutgoingHttpHeaders } from "node:http";
import { tc3AuthorizationWithKey, tc3Date, tc3SigningKey } from "../src/crypto/tc3.js";

export const API_VERSION = "2019-01-18";
export const SERVICE = "kms";
const CONTENT_TYPE = "application/json";
const SIGNED_HEADERS = ["content-type", "host"] as const;

export interface Credentials {
  secretId: string;
  secretKey: string;
  region: string;
}

// The derived signing key depends only on the secret and the UTC date, so it is kept per day, as
// a long-running client would: the load then spends its CPU on what every request must do.
// Everything else is computed per request.
let cachedKey: { secretKey: string; date: string; service: string; key: Buffer } | undefined;

function signingKey(secretKey: string, date: string, service: string): Buffer {
  if (cachedKey?.secretKey !== secretKey || cachedKey.date !== date || cachedKey.service !== service) {
    cachedKey = { secretKey, date, service, key: tc3SigningKey(secretKey, date, service) };
  }
  return cachedKey.key;
}

/** The product a request is for: its signing service and X-TC-Version (default: KMS). */
export interface Product {
  service: string;
  version: string;
}
export const KMS: Product = { service: SERVICE, version: API_VERSION };
export const CAM: Product = { service: "cam", version: "2019-01-16" };

export function authorization(body: string, hostname: string, creds: Credentials, timestamp: number, service: string = SERVICE): string {
  return tc3AuthorizationWithKey({
    secretId: creds.secretId,
    signingKey: signingKey(creds.secretKey, tc3Date(timestamp), service),
    service,
    timestamp,
    request: { method: "POST", path: "/", query: "", headers: { "content-type": CONTENT_TYPE, host: hostname }, signedHeaders: SIGNED_HEADERS, payload: body },
  });
}

export function signedHeaders(action: string, body: string, hostname: string, creds: Credentials, product: Product = KMS): Record<string, string> {
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    "Content-Type": CONTENT_TYPE,
    "Content-Length": String(Buffer.byteLength(body)),
    "X-TC-Action": action,
    "X-TC-Version": product.version,
    "X-TC-Timestamp": String(timestamp),
    "X-TC-Region": creds.region,
    Authorization: authorization(body, hostname, creds, timestamp, product.service),
  };
}

/** One signed request as wrk sends it (Host with the port; the signature covers the host name only). */
export function signedRequest(url: URL, action: string, params: object, creds: Credentials): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify(params);
  const headers = signedHeaders(action, body, url.hostname, creds);
  delete headers["Content-Length"]; // wrk.format sets it
  return { headers: { Host: url.host, ...headers }, body };
}

export interface RawResponse {
  status: number;
  body: string;
}

/** One POST; resolves with status and body whatever the status, rejects only on transport errors. */
export function post(url: URL, headers: OutgoingHttpHeaders, body: string, agent?: Agent): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: url.hostname, port: url.port, path: "/", method: "POST", headers, ...(agent ? { agent } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Why a Tencent API response is not a success, or undefined when it is one. */
export function responseFailure(res: RawResponse): string | undefined {
  if (res.status !== 200) return `HTTP ${res.status}: ${res.body.slice(0, 200)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    return `body is not JSON: ${res.body.slice(0, 200)}`;
  }
  const response = (parsed as { Response?: unknown } | null)?.Response;
  if (typeof response !== "object" || response === null) return `no "Response" object: ${res.body.slice(0, 200)}`;
  const error = (response as { Error?: { Code?: unknown; Message?: unknown } }).Error;
  if (error !== undefined) return `${String(error.Code)}: ${String(error.Message)}`;
  return undefined;
}

/** Calls one action and returns `Response`; throws with the server's error code on any failure. */
export async function callAction(
  url: URL,
  action: string,
  params: object,
  creds: Credentials,
  product: Product = KMS,
): Promise<Record<string, unknown>> {
  const body = JSON.stringify(params);
  const res = await post(url, signedHeaders(action, body, url.hostname, creds, product), body);
  const failure = responseFailure(res);
  if (failure !== undefined) throw new Error(`${action} failed: ${failure}`);
  return (JSON.parse(res.body) as { Response: Record<string, unknown> }).Response;
}

/** Refuses anything but a loopback http URL: the load generator must never point elsewhere. */
export function loopbackUrl(raw: string): URL {
  const url = new URL(raw);
  if (url.protocol !== "http:") throw new Error(`"url" must be http://, got ${raw}`);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new Error(`"url" must be a loopback address, got ${url.hostname}`);
  }
  return url;
}
