// The console's one way to the API: a TC3-HMAC-SHA256 signed POST / to the page's own origin,
// signed in the browser with WebCrypto, exactly as the CLI and the SDK sign (src/crypto/tc3.ts,
// Tencent Cloud API 3.0 "Signature v3"). The SecretKey is imported once, at sign-in, as a
// non-extractable HMAC key ("TC3" + SecretKey is the first key of the derivation): the string is
// not kept, nothing is written to storage or cookies, and a reload forgets the credential.

export const VERSIONS = { kms: "2019-01-18", cam: "2019-01-16", sts: "2018-08-13", cloudaudit: "2019-03-19" } as const;
export type Product = keyof typeof VERSIONS;

const SIGNED_HEADERS = ["content-type", "host", "x-tc-action"] as const;
const CONTENT_TYPE = "application/json";
const encoder = new TextEncoder();

export interface Session {
  readonly secretId: string;
  /** HMAC-SHA256 keyed with "TC3" + SecretKey; not extractable. */
  readonly rootKey: CryptoKey;
  /** A role session's token (X-TC-Token), when signed in with temporary credentials. */
  readonly token: string | undefined;
}

/** An answer the API refused: its code and message as the server wrote them. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly requestId: string,
  ) {
    super(message);
  }
}

export async function openSession(secretId: string, secretKey: string, token: string | undefined): Promise<Session> {
  const rootKey = await crypto.subtle.importKey("raw", encoder.encode(`TC3${secretKey}`), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return { secretId, rootKey, token: token || undefined };
}

async function hmac(key: CryptoKey | ArrayBuffer, message: string): Promise<ArrayBuffer> {
  const k = key instanceof CryptoKey ? key : await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, encoder.encode(message));
}

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** The Authorization header for one request (TC3-HMAC-SHA256). */
export async function authorization(session: Session, product: Product, timestamp: number, headers: Readonly<Record<string, string>>, payload: string): Promise<string> {
  const date = new Date(timestamp * 1000).toISOString().slice(0, 10);
  const canonicalHeaders = SIGNED_HEADERS.map((name) => `${name}:${(headers[name] ?? "").trim()}\n`).join("");
  const canonicalRequest = ["POST", "/", "", canonicalHeaders, SIGNED_HEADERS.join(";"), await sha256Hex(payload)].join("\n");
  const scope = `${date}/${product}/tc3_request`;
  const stringToSign = `TC3-HMAC-SHA256\n${timestamp}\n${scope}\n${await sha256Hex(canonicalRequest)}`;
  const kDate = await hmac(session.rootKey, date);
  const kService = await hmac(kDate, product);
  const kSigning = await hmac(kService, "tc3_request");
  const signature = hex(await hmac(kSigning, stringToSign));
  return `TC3-HMAC-SHA256 Credential=${session.secretId}/${scope}, SignedHeaders=${SIGNED_HEADERS.join(";")}, Signature=${signature}`;
}

export type Json = Record<string, unknown>;

/** Calls `action` of `product`; resolves with the Response object, rejects with ApiError (the server's code and message). */
export async function call<T = Json>(session: Session, product: Product, action: string, params: Json = {}): Promise<T> {
  const body = JSON.stringify(params);
  const timestamp = Math.floor(Date.now() / 1000);
  // The signed host is the hostname without port, as the Tencent SDKs sign it.
  const signed = { "content-type": CONTENT_TYPE, host: location.hostname, "x-tc-action": action };
  const headers: Record<string, string> = {
    "Content-Type": CONTENT_TYPE,
    "X-TC-Action": action,
    "X-TC-Version": VERSIONS[product],
    "X-TC-Timestamp": String(timestamp),
    Authorization: await authorization(session, product, timestamp, signed, body),
  };
  if (session.token !== undefined) headers["X-TC-Token"] = session.token;
  let res: Response;
  try {
    res = await fetch("/", { method: "POST", headers, body, credentials: "omit", cache: "no-store", redirect: "error" });
  } catch {
    throw new ApiError("NetworkError", "the server could not be reached", "");
  }
  let parsed: { Response?: Json & { Error?: { Code: string; Message: string }; RequestId?: string } };
  try {
    parsed = (await res.json()) as typeof parsed;
  } catch {
    throw new ApiError(`HTTP${res.status}`, `the server answered HTTP ${res.status} without JSON`, "");
  }
  const response = parsed.Response ?? {};
  if (response.Error) throw new ApiError(response.Error.Code, response.Error.Message, String(response.RequestId ?? ""));
  return response as T;
}

/** Base64 of UTF-8 text (the API's Plaintext and Message parameters). */
export function textToBase64(text: string): string {
  let binary = "";
  for (const b of encoder.encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** UTF-8 text of base64, or undefined when it is not valid UTF-8 (then shown as base64). */
export function base64ToText(b64: string): string | undefined {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
