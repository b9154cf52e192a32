// Test helper: a real Tresor server started inside the test process on 127.0.0.1:0, over a fresh
// temporary data directory, with a clock the test moves and a log it reads. `raw` sends exactly the
// bytes it signs (TC3-HMAC-SHA256, host without port, the version's product as service) through
// node:http, so a test can break any one part of a request and nothing else.

import assert from "node:assert/strict";
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { API_VERSION, productOfVersion, type ServerOptions } from "../../src/api/server.js";
import {
  TC3_ALGORITHM,
  tc3Authorization,
  tc3CanonicalRequest,
  tc3Date,
  tc3Signature,
  tc3SigningKey,
  tc3StringToSign,
  type Tc3SignInput,
} from "../../src/crypto/tc3.js";
import { initDataDir, type DataDir } from "../../src/node/data-dir.js";
import { startNode } from "../../src/node/node.js";
import type { Clock } from "../../src/service/clock.js";
import type { AuditWriter } from "../../src/audit/writer.js";
import { rootCaller, type Caller } from "../../src/service/access-control.js";
import type { KmsService } from "../../src/service/kms-service.js";
import type { AuthenticatorOptions } from "../../src/api/tencent/authenticate.js";
import type { KeySpec } from "../../src/keys/key.js";

/** A clock the test owns: starts at the real time and moves only when told. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(startMs: number = Date.now()) {
    this.#ms = startMs;
  }
  now(): number {
    return this.#ms;
  }
  set(ms: number): void {
    this.#ms = ms;
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
  /** Unix seconds, as X-TC-Timestamp carries them. */
  seconds(): number {
    return Math.floor(this.#ms / 1000);
  }
}

export interface RawOptions {
  /** Headers to set or replace after signing (lower-case names); they are sent as given. */
  headers?: Record<string, string>;
  /** Headers not to send at all (lower-case names), e.g. "authorization", "x-tc-action". */
  omit?: readonly string[];
  secretId?: string;
  secretKey?: string;
  /** X-TC-Timestamp and the credential date; defaults to the server clock's time. */
  timestamp?: number;
  /** Sign with this timestamp's date while sending `timestamp`. */
  credentialTimestamp?: number;
  /** X-TC-Region; null leaves the header out. Defaults to the server's region. */
  region?: string | null;
  version?: string;
  contentType?: string;
  method?: string;
  /** Sign these bytes instead of the ones sent (a body changed after signing). */
  signedBody?: string | Buffer;
  /** Sign this host instead of the real one (a host changed after signing). */
  signedHost?: string;
  /** Sign these values for signed headers instead of the ones sent (lower-case names). */
  signedValues?: Record<string, string>;
  /** Rewrite the computed Authorization header before it is sent. */
  mutateAuthorization?: (authorization: string) => string;
  /** The service in the credential scope; by default the product of `version` ("kms"). */
  service?: string;
  /** Lower-case names; by default content-type, host and (when sent) x-tc-action. The official
   * SDK signs content-type and host only: pass those two to sign as it does. */
  signedHeaders?: readonly string[];
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The parsed body, or undefined when it was not JSON. */
  json: unknown;
  /** Response.Error when the call failed. */
  error: { Code: string; Message: string } | undefined;
  /** The Response object (without Error). */
  response: Record<string, unknown>;
}

export interface LogCapture {
  /** Every line pino wrote, as written. */
  readonly lines: string[];
  /** The lines parsed as JSON. */
  records(): Record<string, unknown>[];
  /** All lines joined, for "does not contain" checks. */
  text(): string;
}

export interface InProcessServer {
  url: string;
  host: string;
  port: number;
  region: string;
  secretId: string;
  secretKey: string;
  service: KmsService;
  /** The audit writer every request goes through. */
  auditor: AuditWriter;
  /** The account's root, for calling the service directly. */
  caller: Caller;
  dataDir: DataDir;
  clock: ManualClock;
  logs: LogCapture;
  app: FastifyInstance;
  /** The headers (host and authorization included, content-length not) and body raw() would send. */
  sign(action: string | undefined, body?: string | Buffer | object, options?: RawOptions): { headers: Record<string, string>; body: Buffer };
  /** Sends `body` (an object is JSON-encoded) as action `action`, signed as `options` says. */
  raw(action: string | undefined, body?: string | Buffer | object, options?: RawOptions): Promise<RawResponse>;
  /** raw() that must succeed: returns Response, throws with the error code otherwise. */
  call(action: string, params?: object): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface InProcessServerOptions {
  region?: string;
  bodyLimit?: number;
  /** `--require-signed-action` and the replay table's size. */
  authentication?: AuthenticatorOptions;
  cmkLimit?: number;
  defaultKeySpec?: KeySpec;
  clock?: ManualClock;
  materialCache?: { maxEntries: number; ttlMs: number };
  /** Abuse limits of the server (connections, rate limit, failed-authentication records). */
  limits?: Pick<ServerOptions, "connections" | "rateLimit" | "failedAuth">;
}

export function captureLogs(): { logger: pino.Logger; capture: LogCapture } {
  const lines: string[] = [];
  // pino writes each record synchronously to any object with write(); no worker thread involved.
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  return {
    logger,
    capture: {
      lines,
      records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
      text: () => lines.join(""),
    },
  };
}

export async function startInProcessServer(options: InProcessServerOptions = {}): Promise<InProcessServer> {
  const region = options.region ?? "local";
  const clock = options.clock ?? new ManualClock();
  const parent = await mkdtemp(path.join(tmpdir(), "tresor-inproc-"));
  const dir = path.join(parent, "data");
  const credentials = await initDataDir(dir, region, { clock });
  const { logger, capture } = captureLogs();
  const node = await startNode(
    {
      dataDir: dir,
      region,
      nodeId: "inproc-test",
      defaultKeySpec: options.defaultKeySpec ?? "SM4",
      cmkLimit: options.cmkLimit ?? 1000,
      ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
      ...(options.authentication === undefined ? {} : { authentication: options.authentication }),
      ...options.limits,
      audit: { pruneIntervalMs: 0 },
    },
    { clock, logger, ...(options.materialCache ? { materialCache: options.materialCache } : {}) },
  );
  const { url, service, dataDir, app } = node;
  const auditor = node.auditor!;
  const { port } = new URL(url);
  const host = "127.0.0.1";

  const sign: InProcessServer["sign"] = (action, body = {}, o = {}) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body), "utf8");
    const timestamp = o.timestamp ?? clock.seconds();
    // The headers as sent, Authorization last.
    const headers: Record<string, string> = {
      host: `${host}:${port}`,
      "content-type": o.contentType ?? "application/json",
      "x-tc-version": o.version ?? API_VERSION,
      "x-tc-timestamp": String(timestamp),
    };
    if (action !== undefined) headers["x-tc-action"] = action;
    const regionHeader = o.region === undefined ? region : o.region;
    if (regionHeader !== null) headers["x-tc-region"] = regionHeader;
    for (const [name, value] of Object.entries(o.headers ?? {})) {
      if (name.toLowerCase() !== "authorization") headers[name.toLowerCase()] = value;
    }
    for (const name of o.omit ?? []) {
      if (name.toLowerCase() !== "authorization") delete headers[name.toLowerCase()];
    }

    // Sign what is sent (host without its port), unless an override says otherwise.
    const signedHeaders = o.signedHeaders ?? ["content-type", "host", ...("x-tc-action" in headers ? ["x-tc-action"] : [])];
    const signedValues: Record<string, string> = {};
    for (const name of signedHeaders) signedValues[name] = name === "host" ? host : (headers[name] ?? "");
    if (o.signedHost !== undefined) signedValues.host = o.signedHost;
    Object.assign(signedValues, o.signedValues ?? {});
    const signInput: Tc3SignInput = {
      secretId: o.secretId ?? credentials.secretId,
      secretKey: o.secretKey ?? credentials.secretKey,
      service: o.service ?? productOfVersion(o.version ?? API_VERSION) ?? "kms",
      timestamp,
      request: { method: o.method ?? "POST", path: "/", query: "", headers: signedValues, signedHeaders, payload: o.signedBody ?? bytes },
    };
    // With credentialTimestamp only the credential scope's date differs: the string to sign still
    // carries the timestamp that is sent, so the date mismatch is the one thing wrong.
    let authorization = o.credentialTimestamp === undefined ? tc3Authorization(signInput) : tc3AuthorizationWithDate(signInput, tc3Date(o.credentialTimestamp));
    if (o.mutateAuthorization) authorization = o.mutateAuthorization(authorization);
    if (o.headers?.authorization !== undefined) authorization = o.headers.authorization;
    if (!(o.omit ?? []).some((n) => n.toLowerCase() === "authorization")) headers.authorization = authorization;
    return { headers, body: bytes };
  };
  const raw: InProcessServer["raw"] = (action, body = {}, o = {}) => {
    const signed = sign(action, body, o);
    return send(port, o.method ?? "POST", signed.headers, signed.body);
  };

  const call: InProcessServer["call"] = async (action, params = {}) => {
    const r = await raw(action, params);
    if (r.error) throw new Error(`${action} failed: ${r.error.Code}: ${r.error.Message}`);
    return r.response;
  };

  let stopped = false;
  return {
    url,
    host,
    port: Number(port),
    region,
    secretId: credentials.secretId,
    secretKey: credentials.secretKey,
    service,
    auditor,
    caller: rootCaller(dataDir.accountUin),
    dataDir,
    clock,
    logs: capture,
    app,
    sign,
    raw,
    call,
    async stop() {
      if (stopped) return;
      stopped = true;
      await node.close();
      await rm(parent, { recursive: true, force: true });
    },
  };
}

function tc3AuthorizationWithDate(input: Tc3SignInput, date: string): string {
  const scope = `${date}/${input.service}/tc3_request`;
  const stringToSign = tc3StringToSign(input.timestamp, scope, tc3CanonicalRequest(input.request));
  const signature = tc3Signature(tc3SigningKey(input.secretKey, date, input.service), stringToSign);
  return `${TC3_ALGORITHM} Credential=${input.secretId}/${scope}, SignedHeaders=${input.request.signedHeaders.join(";")}, Signature=${signature}`;
}

function send(port: string, method: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: Number(port), method, path: "/", headers: { ...headers, "content-length": String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const response = ((json as { Response?: Record<string, unknown> } | undefined)?.Response ?? {}) as Record<string, unknown>;
        const error = response.Error as { Code: string; Message: string } | undefined;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, error, response });
      });
    });
    // A server that answers before reading a huge body may reset the connection: once an answer
    // has arrived, a later write error is not the test's concern.
    let answered = false;
    req.on("response", () => (answered = true));
    req.on("error", (e) => {
      if (!answered) reject(e);
    });
    req.end(body);
  });
}

const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Asserts the protocol's error shape: HTTP 200, exactly `code`, a message naming each of `mentions`. */
export function assertError(r: RawResponse, code: string, ...mentions: string[]): void {
  if (r.status !== 200 || r.error === undefined || r.error.Code !== code) {
    throw new Error(`expected HTTP 200 with ${code}, got HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  }
  if (typeof r.error.Message !== "string" || r.error.Message.length === 0) throw new Error(`${code} without a message`);
  for (const m of mentions) {
    if (!r.error.Message.includes(m)) throw new Error(`the ${code} message does not mention ${JSON.stringify(m)}: ${r.error.Message}`);
  }
  if (typeof r.response.RequestId !== "string" || !REQUEST_ID.test(r.response.RequestId)) {
    throw new Error(`the error response has no RequestId: ${r.text.slice(0, 300)}`);
  }
  if (/\bat .+:\d+:\d+/.test(r.error.Message)) throw new Error(`the message carries a stack trace: ${r.error.Message}`);
}

/** Every key's record (never material) in a stable order, as a string to compare before and after. */
export async function snapshotKeys(service: KmsService, caller: Caller): Promise<string> {
  const { keys, totalCount } = await service.listKeyDetail(caller, { offset: 0, limit: 10_000, role: 0, order: "asc" });
  const sorted = [...keys].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)).map((k) => ({ ...k, tags: [...k.tags].sort((x, y) => (x.key < y.key ? -1 : 1)) }));
  return JSON.stringify({ totalCount, sorted });
}

/** `call(action, params)` fails with exactly `code`, its message naming `mention`, and no key record changes. */
export async function refusedWithoutChange(
  s: Pick<InProcessServer, "service" | "caller">,
  call: (action: string, params?: object) => Promise<unknown>,
  action: string,
  params: object,
  code: string,
  mention?: string,
): Promise<void> {
  const before = await snapshotKeys(s.service, s.caller);
  await assert.rejects(call(action, params), (e: { code?: unknown; message?: string }) => {
    assert.equal(e.code, code, `${action}: expected ${code}, got ${String(e.code)}: ${e.message}`);
    if (mention) assert.ok(e.message?.includes(mention), `the message names ${mention}: ${e.message}`);
    return true;
  });
  assert.equal(await snapshotKeys(s.service, s.caller), before);
}
