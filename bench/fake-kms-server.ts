// A stand-in KMS for testing the bench harness itself (`node dist/bench/run.js --server fake`):
// it verifies every TC3 signature like a real server would (host without port, service from the
// scope, ±5 min skew) and answers CreateKey, Encrypt, Decrypt and GenerateDataKey with fake, NOT
// encrypted, values. Its figures say nothing about Tresor. Prints one JSON line with its URL and
// the throwaway credentials it accepts, then serves until SIGTERM.

import { createServer, type IncomingMessage } from "node:http";
import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import {
  parseTc3Authorization,
  tc3CanonicalRequest,
  tc3Signature,
  tc3SigningKey,
  tc3StringToSign,
} from "../src/crypto/tc3.js";

const SECRET_ID = `AKIDfake${randomBytes(8).toString("hex")}`;
const SECRET_KEY = randomBytes(24).toString("base64url");
const REGION = "ap-bench";
const MAX_SKEW_SECONDS = 300;

class ApiError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  if (typeof v !== "string") throw new ApiError("MissingParameter", `header ${name} is missing`);
  return v;
}

function verify(req: IncomingMessage, body: Buffer): void {
  const auth = parseTc3Authorization(header(req, "authorization"));
  if (!auth) throw new ApiError("AuthFailure.InvalidAuthorization", "malformed Authorization");
  if (auth.secretId !== SECRET_ID) throw new ApiError("AuthFailure.SecretIdNotFound", "unknown SecretId");
  const timestamp = Number(header(req, "x-tc-timestamp"));
  if (!Number.isInteger(timestamp) || Math.abs(timestamp - Date.now() / 1000) > MAX_SKEW_SECONDS) {
    throw new ApiError("AuthFailure.SignatureExpire", "timestamp out of range");
  }
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    // The canonical host is the hostname without port, as the SDK signs it.
    headers[name] = name === "host" ? header(req, "host").replace(/:\d+$/, "") : header(req, name);
  }
  const canonical = tc3CanonicalRequest({
    method: req.method ?? "",
    path: "/",
    query: "",
    headers,
    signedHeaders: auth.signedHeaders,
    payload: body,
  });
  const scope = `${auth.date}/${auth.service}/tc3_request`;
  const expected = tc3Signature(tc3SigningKey(SECRET_KEY, auth.date, auth.service), tc3StringToSign(timestamp, scope, canonical));
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature))) {
    throw new ApiError("AuthFailure.SignatureFailure", "signature mismatch");
  }
}

function str(params: Record<string, unknown>, name: string): string {
  const v = params[name];
  if (typeof v !== "string" || v === "") throw new ApiError("InvalidParameterValue", `"${name}" must be a non-empty string`);
  return v;
}

function act(action: string, params: Record<string, unknown>): Record<string, unknown> {
  switch (action) {
    case "CreateKey":
      return { KeyId: randomUUID(), Alias: str(params, "Alias"), KeyState: "Enabled" };
    case "Encrypt": {
      const keyId = str(params, "KeyId");
      const blob = Buffer.from(JSON.stringify({ k: keyId, p: str(params, "Plaintext") })).toString("base64");
      return { CiphertextBlob: blob, KeyId: keyId };
    }
    case "Decrypt": {
      const { k, p } = JSON.parse(Buffer.from(str(params, "CiphertextBlob"), "base64").toString("utf8")) as { k: string; p: string };
      return { KeyId: k, Plaintext: p };
    }
    case "GenerateDataKey": {
      const keyId = str(params, "KeyId");
      const plaintext = randomBytes(32).toString("base64");
      return { KeyId: keyId, Plaintext: plaintext, CiphertextBlob: Buffer.from(JSON.stringify({ k: keyId, p: plaintext })).toString("base64") };
    }
    default:
      throw new ApiError("InvalidAction", `unknown action ${action}`);
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const requestId = randomUUID();
    let response: Record<string, unknown>;
    try {
      const body = Buffer.concat(chunks);
      verify(req, body);
      response = { ...act(header(req, "x-tc-action"), JSON.parse(body.toString("utf8")) as Record<string, unknown>), RequestId: requestId };
    } catch (e) {
      const code = e instanceof ApiError ? e.code : "InternalError";
      response = { Error: { Code: code, Message: (e as Error).message }, RequestId: requestId };
    }
    const out = JSON.stringify({ Response: response });
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(out) });
    res.end(out);
  });
});

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("unexpected server address");
  const line = { msg: "listening", url: `http://127.0.0.1:${address.port}`, secretId: SECRET_ID, secretKey: SECRET_KEY, region: REGION };
  process.stdout.write(`${JSON.stringify(line)}\n`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
