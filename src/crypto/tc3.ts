// TC3-HMAC-SHA256, the Tencent Cloud API 3.0 request signature. Shared by the SDK (signing) and the
// server (verification) so both compute exactly the same canonical request.

import { createHash, createHmac } from "node:crypto";

export const TC3_ALGORITHM = "TC3-HMAC-SHA256";

export interface Tc3Request {
  method: string;
  /** Canonical URI; "/" for the API. */
  path: string;
  query: string;
  /** Lower-case header name to value for every signed header. `host` must be without port. */
  headers: Readonly<Record<string, string>>;
  /** Lower-case names, in the order they are signed. */
  signedHeaders: readonly string[];
  payload: Buffer | string;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

const SECONDS_PER_DAY = 86_400;
/** The last day formatted: every request of a day asks for the same one. */
let lastDay = { day: Number.NaN, date: "" };

/** The UTC date (YYYY-MM-DD) of unix `timestamp` seconds. */
export function tc3Date(timestamp: number): string {
  const day = Math.floor(timestamp / SECONDS_PER_DAY);
  if (day !== lastDay.day) lastDay = { day, date: new Date(day * SECONDS_PER_DAY * 1000).toISOString().slice(0, 10) };
  return lastDay.date;
}

export function tc3CanonicalRequest(req: Tc3Request): string {
  const canonicalHeaders = req.signedHeaders.map((name) => `${name}:${(req.headers[name] ?? "").trim()}\n`).join("");
  return [req.method, req.path, req.query, canonicalHeaders, req.signedHeaders.join(";"), sha256Hex(req.payload)].join("\n");
}

export function tc3StringToSign(timestamp: number, credentialScope: string, canonicalRequest: string): string {
  return `${TC3_ALGORITHM}\n${timestamp}\n${credentialScope}\n${sha256Hex(canonicalRequest)}`;
}

/** kSigning = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request"). */
export function tc3SigningKey(secretKey: string, date: string, service: string): Buffer {
  const kDate = createHmac("sha256", `TC3${secretKey}`).update(date).digest();
  const kService = createHmac("sha256", kDate).update(service).digest();
  return createHmac("sha256", kService).update("tc3_request").digest();
}

export function tc3Signature(signingKey: Buffer, stringToSign: string): string {
  return createHmac("sha256", signingKey).update(stringToSign).digest("hex");
}

export interface Tc3SignInput {
  secretId: string;
  secretKey: string;
  service: string;
  timestamp: number;
  request: Tc3Request;
}

/** The value of the Authorization header for a request. */
export function tc3Authorization(input: Tc3SignInput): string {
  const signingKey = tc3SigningKey(input.secretKey, tc3Date(input.timestamp), input.service);
  return tc3AuthorizationWithKey({ ...input, signingKey });
}

/** As tc3Authorization, with the signing key derived beforehand (it changes only with the UTC date). */
export function tc3AuthorizationWithKey(input: Omit<Tc3SignInput, "secretKey"> & { signingKey: Buffer }): string {
  const scope = `${tc3Date(input.timestamp)}/${input.service}/tc3_request`;
  const stringToSign = tc3StringToSign(input.timestamp, scope, tc3CanonicalRequest(input.request));
  const signature = tc3Signature(input.signingKey, stringToSign);
  return `${TC3_ALGORITHM} Credential=${input.secretId}/${scope}, SignedHeaders=${input.request.signedHeaders.join(";")}, Signature=${signature}`;
}

export interface Tc3Authorization {
  secretId: string;
  date: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTHORIZATION_PATTERN =
  /^TC3-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{4}-\d{2}-\d{2})\/([^/\s,]+)\/tc3_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Parses an Authorization header; undefined when it is not a well-formed TC3 header. */
export function parseTc3Authorization(header: string): Tc3Authorization | undefined {
  const m = AUTHORIZATION_PATTERN.exec(header);
  if (!m) return undefined;
  return {
    secretId: m[1]!,
    date: m[2]!,
    service: m[3]!,
    signedHeaders: m[4]!.split(";"),
    signature: m[5]!,
  };
}
