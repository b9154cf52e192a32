// AWS Signature Version 4 (AWS4-HMAC-SHA256), as the AWS General Reference ("Create a signed AWS
// API request") specifies it: the canonical request, the string to sign and the derived signing key.
// The server verifies with it; the tests sign with the AWS SDK's own signer, an independent one.

import { createHmac } from "node:crypto";
import { sha256Hex } from "./tc3.js";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";

export interface SigV4Request {
  method: string;
  /** The path as received, "/" for the AWS JSON protocols. */
  path: string;
  /** The query string as received (without "?"). */
  query: string;
  /** Lower-case header name to value for every signed header, as received. */
  headers: Readonly<Record<string, string>>;
  /** Lower-case names, in the order the Authorization header lists them. */
  signedHeaders: readonly string[];
  /** Hex SHA-256 of the body. */
  payloadHash: string;
}

/** RFC 3986 percent-encoding of everything but the unreserved characters, as SigV4 asks. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Decodes a query component; a malformed escape is kept as is (the signature then fails). */
function decodeComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    return value;
  }
}

/** Parameters sorted by encoded name, then value; each name and value encoded once. */
function canonicalQuery(query: string): string {
  if (query === "") return "";
  const pairs = query.split("&").map((part) => {
    const eq = part.indexOf("=");
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? "" : part.slice(eq + 1);
    return [uriEncode(decodeComponent(name)), uriEncode(decodeComponent(value))] as const;
  });
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join("&");
}

/** Every path segment encoded twice, as for every service but S3. */
function canonicalPath(path: string): string {
  return path
    .split("/")
    .map((segment) => uriEncode(uriEncode(decodeComponent(segment))))
    .join("/");
}

/** Header values trimmed, runs of spaces made one. */
function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/ +/g, " ");
}

export function sigV4CanonicalRequest(req: SigV4Request): string {
  const headers = req.signedHeaders.map((name) => `${name}:${canonicalHeaderValue(req.headers[name] ?? "")}\n`).join("");
  return [req.method, canonicalPath(req.path), canonicalQuery(req.query), headers, req.signedHeaders.join(";"), req.payloadHash].join("\n");
}

export function sigV4StringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
export function sigV4SigningKey(secretKey: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac("sha256", `AWS4${secretKey}`).update(date).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  return createHmac("sha256", kService).update("aws4_request").digest();
}

export function sigV4Signature(signingKey: Buffer, stringToSign: string): Buffer {
  return createHmac("sha256", signingKey).update(stringToSign).digest();
}

export interface SigV4Authorization {
  accessKeyId: string;
  /** YYYYMMDD */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  /** Lower-case hex. */
  signature: string;
}

const AUTHORIZATION_PATTERN =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]{1,128})\/(\d{8})\/([^/\s,]{1,64})\/([^/\s,]{1,64})\/aws4_request, ?SignedHeaders=([a-z0-9;-]{1,1024}), ?Signature=([0-9a-f]{64})$/;

/** Parses an Authorization header; undefined when it is not a well-formed SigV4 header. */
export function parseSigV4Authorization(header: string): SigV4Authorization | undefined {
  const m = AUTHORIZATION_PATTERN.exec(header);
  if (!m) return undefined;
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(";"), signature: m[6]! };
}

/** The unix seconds of an X-Amz-Date (YYYYMMDD'T'HHMMSS'Z'); undefined when malformed. */
export function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms / 1000;
}
