// KmsClient against a fake Tencent Cloud API 3.0 server that checks every TC3 signature with its
// own (independent) implementation, cross-checked with the official tencentcloud-sdk-nodejs client.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { KmsClient, KmsClientError } from "../../src/sdk/index.js";
import type { KmsClientOptions } from "../../src/sdk/index.js";

const SECRET_ID = "AKIDtresorTest0001";
const SECRET_KEY = "sk-VERY-SECRET-0123456789abcdef";
const SECRETS: Record<string, string> = { [SECRET_ID]: SECRET_KEY };

// ---------------------------------------------------------------------------------------------
// An independent TC3-HMAC-SHA256 verifier (Tencent Cloud API 3.0 signature v3), written from the
// protocol description rather than from src/crypto/tc3.ts, so a shared mistake cannot hide.

function hmac(key: Buffer | string, message: string): Buffer {
  return createHmac("sha256", key).update(message, "utf8").digest();
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function tc3Sign(args: {
  secretKey: string;
  service: string;
  timestamp: number;
  canonicalHeaders: string;
  signedHeaders: string;
  payload: Buffer | string;
}): string {
  const date = new Date(args.timestamp * 1000).toISOString().slice(0, 10);
  const canonicalRequest = `POST\n/\n\n${args.canonicalHeaders}\n${args.signedHeaders}\n${sha256(args.payload)}`;
  const scope = `${date}/${args.service}/tc3_request`;
  const stringToSign = `TC3-HMAC-SHA256\n${args.timestamp}\n${scope}\n${sha256(canonicalRequest)}`;
  const key = hmac(hmac(hmac(`TC3${args.secretKey}`, date), args.service), "tc3_request");
  return createHmac("sha256", key).update(stringToSign).digest("hex");
}

function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  return host.split(":")[0] ?? "";
}

type Verification = { ok: true; service: string; timestamp: number; signedHeaders: string } | { ok: false; reason: string };

function verify(req: http.IncomingMessage, body: Buffer): Verification {
  const m = /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([^/]+)\/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
    req.headers.authorization ?? "",
  );
  if (!m) return { ok: false, reason: "malformed Authorization" };
  const [, secretId, date, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string];
  const secretKey = SECRETS[secretId];
  if (secretKey === undefined) return { ok: false, reason: "unknown SecretId" };
  const timestamp = Number(req.headers["x-tc-timestamp"]);
  if (!Number.isInteger(timestamp)) return { ok: false, reason: "bad X-TC-Timestamp" };
  if (new Date(timestamp * 1000).toISOString().slice(0, 10) !== date) return { ok: false, reason: "date does not match timestamp" };
  if (req.url !== "/") return { ok: false, reason: `path ${req.url}` };
  const canonicalHeaders = signedHeaders
    .split(";")
    .map((name) => {
      const value = name === "host" ? hostWithoutPort(req.headers.host ?? "") : String(req.headers[name] ?? "");
      return `${name}:${value.trim()}\n`;
    })
    .join("");
  const expected = tc3Sign({ secretKey, service, timestamp, canonicalHeaders, signedHeaders, payload: body });
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return { ok: false, reason: "signature mismatch" };
  return { ok: true, service, timestamp, signedHeaders };
}

// ---------------------------------------------------------------------------------------------
// The fake server.

interface Seen {
  action: string;
  body: string;
  headers: http.IncomingHttpHeaders;
  verification: Verification;
}

type Handler = (seen: Seen, req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Fake {
  url: string;
  port: number;
  seen: Seen[];
  connections(): number;
  close(): Promise<void>;
}

let requestCounter = 0;

function reply(res: http.ServerResponse, response: Record<string, unknown>): void {
  const body = JSON.stringify({ Response: { ...response, RequestId: `req-${++requestCounter}` } });
  res.writeHead(200, { "Content-Type": "application/json" }).end(body);
}

/** Answers like Tresor would for a few actions; a bad signature gets AuthFailure.SignatureFailure. */
const standard: Handler = (seen, _req, res) => {
  if (!seen.verification.ok) {
    reply(res, { Error: { Code: "AuthFailure.SignatureFailure", Message: seen.verification.reason } });
    return;
  }
  const params = JSON.parse(seen.body || "{}") as Record<string, unknown>;
  switch (seen.action) {
    case "Encrypt":
      reply(res, { KeyId: params["KeyId"], CiphertextBlob: fakeBlob(String(params["EncryptionContext"] ?? ""), String(params["Plaintext"])) });
      return;
    case "Decrypt": {
      const { context, plaintext } = openFakeBlob(String(params["CiphertextBlob"]));
      if (context !== String(params["EncryptionContext"] ?? "")) {
        reply(res, { Error: { Code: "InvalidParameterValue.InvalidCiphertext", Message: "context mismatch" } });
        return;
      }
      reply(res, { KeyId: "k1", Plaintext: plaintext });
      return;
    }
    case "DisableKey":
      reply(res, { Error: { Code: "ResourceUnavailable.CmkNotFound", Message: `no key ${String(params["KeyId"])}` } });
      return;
    default:
      reply(res, { Echo: params, Action: seen.action });
  }
};

/** The fake's "ciphertext": base64 of the context and plaintext, enough to check what was sent. */
function fakeBlob(context: string, plaintext: string): string {
  return Buffer.from(JSON.stringify({ context, plaintext })).toString("base64");
}

function openFakeBlob(blob: string): { context: string; plaintext: string } {
  return JSON.parse(Buffer.from(blob, "base64").toString("utf8")) as { context: string; plaintext: string };
}

async function startFake(handler: Handler = standard, options: { tls?: { key: Buffer; cert: Buffer }; port?: number } = {}): Promise<Fake> {
  const seen: Seen[] = [];
  let connections = 0;
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const entry: Seen = {
        action: String(req.headers["x-tc-action"] ?? ""),
        body: body.toString("utf8"),
        headers: req.headers,
        verification: verify(req, body),
      };
      seen.push(entry);
      handler(entry, req, res);
    });
  };
  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener) : http.createServer(listener);
  // TCP connections, counted before any TLS handshake, so a refused certificate still counts.
  server.on("connection", () => connections++);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function client(url: string, options: Partial<KmsClientOptions> = {}): KmsClient {
  return new KmsClient({ endpoint: url, secretId: SECRET_ID, secretKey: SECRET_KEY, ...options });
}

async function rejection(promise: Promise<unknown>): Promise<KmsClientError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof KmsClientError, `expected a KmsClientError, got ${inspect(err)}`);
    return err;
  }
  assert.fail("expected the call to reject");
}

// ---------------------------------------------------------------------------------------------

describe("the test's own TC3 verifier", () => {
  it("reproduces the published signature vector (tencentcloud-sdk-nodejs test/common/sign.test.ts)", () => {
    const signature = tc3Sign({
      secretKey: "test-secret-key",
      service: "cvm",
      timestamp: 1640995200,
      canonicalHeaders: "content-type:application/json\nhost:cvm.tencentcloudapi.com\n",
      signedHeaders: "content-type;host",
      payload: '{"Action":"DescribeInstances","Version":"2017-03-12"}',
    });
    assert.equal(signature, "96473b50fe407833672a5d6d067238d88bb44c8abcc39ef83baa3132afbfadd3");
  });
});

describe("KmsClient requests", () => {
  let fake: Fake;
  before(async () => {
    fake = await startFake();
  });
  after(async () => {
    await fake.close();
  });

  it("signs a POST / with the documented headers and a compact JSON body", async () => {
    const kms = client(fake.url, { region: "ap-test" });
    try {
      const before = Math.floor(Date.now() / 1000);
      const res = await kms.encrypt({ KeyId: "k1", Plaintext: "aGk=", EncryptionContext: '{"a":"b"}' });
      const seen = fake.seen.at(-1)!;
      assert.deepEqual(seen.verification.ok && { service: seen.verification.service, signed: seen.verification.signedHeaders }, {
        service: "kms",
        signed: "content-type;host;x-tc-action",
      });
      assert.equal(seen.action, "Encrypt");
      assert.equal(seen.body, '{"KeyId":"k1","Plaintext":"aGk=","EncryptionContext":"{\\"a\\":\\"b\\"}"}');
      assert.equal(seen.headers["content-type"], "application/json");
      assert.equal(seen.headers["x-tc-version"], "2019-01-18");
      assert.equal(seen.headers["x-tc-region"], "ap-test");
      const ts = Number(seen.headers["x-tc-timestamp"]);
      assert.ok(ts >= before && ts <= Math.floor(Date.now() / 1000), `timestamp ${ts}`);
      assert.equal(res.KeyId, "k1");
      assert.deepEqual(openFakeBlob(res.CiphertextBlob ?? ""), { context: '{"a":"b"}', plaintext: "aGk=" });
      assert.match(res.RequestId, /^req-\d+$/);
    } finally {
      kms.close();
    }
  });

  it('defaults the region to "local" and sends {} for actions without parameters', async () => {
    const kms = client(fake.url);
    try {
      const res = await kms.getServiceStatus();
      const seen = fake.seen.at(-1)!;
      assert.equal(seen.headers["x-tc-region"], "local");
      assert.equal(seen.action, "GetServiceStatus");
      assert.equal(seen.body, "{}");
      assert.equal(typeof res.RequestId, "string");
    } finally {
      kms.close();
    }
  });

  it("maps each typed method to its action", async () => {
    const kms = client(fake.url);
    try {
      const calls: Array<[string, () => Promise<unknown>]> = [
        ["CreateKey", () => kms.createKey({ Alias: "a1", KeySpec: "SM4" })],
        ["DescribeKey", () => kms.describeKey({ KeyId: "k" })],
        ["DescribeKeys", () => kms.describeKeys({ KeyIds: ["k"] })],
        ["ListKeys", () => kms.listKeys()],
        ["ListKeyDetail", () => kms.listKeyDetail({ Limit: 5 })],
        ["EnableKey", () => kms.enableKey({ KeyId: "k" })],
        ["EnableKeys", () => kms.enableKeys({ KeyIds: ["k"] })],
        ["DisableKeys", () => kms.disableKeys({ KeyIds: ["k"] })],
        ["UpdateAlias", () => kms.updateAlias({ KeyId: "k", Alias: "b" })],
        ["UpdateKeyDescription", () => kms.updateKeyDescription({ KeyId: "k", Description: "d" })],
        ["ListResourceTags", () => kms.listResourceTags({ KeyId: "k" })],
        ["ReEncrypt", () => kms.reEncrypt({ CiphertextBlob: "x" })],
        ["GenerateDataKey", () => kms.generateDataKey({ KeyId: "k", KeySpec: "AES_128" })],
        ["GenerateRandom", () => kms.generateRandom({ NumberOfBytes: 8 })],
        ["ListAlgorithms", () => kms.listAlgorithms()],
        ["GetRegions", () => kms.getRegions()],
        ["ScheduleKeyDeletion", () => kms.call("ScheduleKeyDeletion", { KeyId: "k", PendingWindowInDays: 7 })],
      ];
      for (const [action, call] of calls) {
        const res = (await call()) as { Action?: string; RequestId?: string };
        assert.equal(res.Action, action);
        assert.equal(fake.seen.at(-1)!.action, action);
        assert.ok(fake.seen.at(-1)!.verification.ok);
      }
      assert.deepEqual(JSON.parse(fake.seen.find((s) => s.action === "CreateKey")!.body), { Alias: "a1", KeySpec: "SM4" });
    } finally {
      kms.close();
    }
  });

  it("reuses one keep-alive connection for sequential calls", async () => {
    const own = await startFake();
    const kms = client(own.url);
    try {
      await kms.getRegions();
      await kms.getRegions();
      await kms.getRegions();
      assert.equal(own.seen.length, 3);
      assert.equal(own.connections(), 1);
    } finally {
      kms.close();
      await own.close();
    }
  });

  it("rejects an error answer with KmsClientError carrying code, message and requestId, without retrying", async () => {
    const own = await startFake();
    const kms = client(own.url);
    try {
      const err = await rejection(kms.disableKey({ KeyId: "nope" }));
      assert.equal(err.code, "ResourceUnavailable.CmkNotFound");
      assert.equal(err.message, "no key nope");
      assert.match(err.requestId ?? "", /^req-\d+$/);
      assert.equal(err.status, 200);
      assert.equal(err.name, "KmsClientError");
      assert.equal(own.seen.length, 1);
    } finally {
      kms.close();
      await own.close();
    }
  });

  it("reports a wrong secret key as the server's AuthFailure.SignatureFailure", async () => {
    const kms = new KmsClient({ endpoint: fake.url, secretId: SECRET_ID, secretKey: "not-the-key" });
    try {
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "AuthFailure.SignatureFailure");
    } finally {
      kms.close();
    }
  });

  it("encryptBytes / decryptBytes round-trip bytes and send the context as compact JSON", async () => {
    const kms = client(fake.url);
    try {
      const data = Buffer.from([0, 1, 2, 250, 255]);
      const blob = await kms.encryptBytes("k1", data, { purpose: "test", n: "1" });
      assert.equal(JSON.parse(fake.seen.at(-1)!.body).EncryptionContext, '{"purpose":"test","n":"1"}');
      assert.deepEqual(await kms.decryptBytes(blob, { purpose: "test", n: "1" }), data);
      const err = await rejection(kms.decryptBytes(blob));
      assert.equal(err.code, "InvalidParameterValue.InvalidCiphertext");
    } finally {
      kms.close();
    }
  });

  it("refuses over-long plaintext and bad contexts before sending anything", async () => {
    const own = await startFake();
    const kms = client(own.url);
    try {
      await assert.rejects(kms.encryptBytes("k1", Buffer.alloc(4097)), (e: unknown) => e instanceof RangeError && /"data"/.test(e.message));
      await assert.rejects(
        kms.encryptBytes("k1", Buffer.alloc(1), { n: 1 } as unknown as Record<string, string>),
        (e: unknown) => e instanceof TypeError && /"context"/.test(e.message),
      );
      await assert.rejects(kms.call("bad action" as never, {}), TypeError);
      await assert.rejects(kms.call("Encrypt", null as never), TypeError);
      assert.equal(own.seen.length, 0);
    } finally {
      kms.close();
      await own.close();
    }
  });

  it("rejects after close() with code ClientClosed", async () => {
    const kms = client(fake.url);
    kms.close();
    const err = await rejection(kms.getRegions());
    assert.equal(err.code, "ClientClosed");
  });
});

describe("KmsClient answers that are not API responses", () => {
  it("HTTP 500 rejects with HttpError and the status, without retrying", async () => {
    const fake = await startFake((_seen, _req, res) => void res.writeHead(500).end("boom"));
    const kms = client(fake.url);
    try {
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "HttpError");
      assert.equal(err.status, 500);
      assert.equal(fake.seen.length, 1);
    } finally {
      kms.close();
      await fake.close();
    }
  });

  for (const [name, body] of [
    ["not JSON", "<html>"],
    ["no Response", '{"Result":{}}'],
    ["no RequestId", '{"Response":{"KeyId":"k"}}'],
    ["an Error without Code", '{"Response":{"Error":{"Message":"x"},"RequestId":"r"}}'],
  ] as const) {
    it(`a 200 with ${name} rejects with InvalidResponse, without retrying`, async () => {
      const fake = await startFake((_seen, _req, res) => void res.writeHead(200, { "Content-Type": "application/json" }).end(body));
      const kms = client(fake.url);
      try {
        const err = await rejection(kms.getRegions());
        assert.equal(err.code, "InvalidResponse");
        assert.equal(err.status, 200);
        assert.equal(fake.seen.length, 1);
      } finally {
        kms.close();
        await fake.close();
      }
    });
  }
});

describe("KmsClient retries", () => {
  it("retries a refused connection until the server is up", async () => {
    const port = await freePort();
    const kms = client(`http://127.0.0.1:${port}`, { maxRetries: 10 });
    let fake: Fake | undefined;
    try {
      const started = Date.now();
      const pending = kms.getRegions();
      await new Promise((resolve) => setTimeout(resolve, 250));
      fake = await startFake(standard, { port });
      const res = await pending;
      assert.equal(typeof res.RequestId, "string");
      assert.equal(fake.seen.length, 1);
      assert.ok(fake.seen[0]!.verification.ok);
      assert.ok(Date.now() - started >= 250);
    } finally {
      kms.close();
      await fake?.close();
    }
  });

  it("gives up after maxRetries on a refused connection, with bounded backoff", async () => {
    const port = await freePort();
    const kms = client(`http://127.0.0.1:${port}`, { maxRetries: 2 });
    try {
      const started = Date.now();
      const err = await rejection(kms.getRegions());
      // Two backoffs of at most 100 ms and 200 ms.
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
      assert.equal(err.code, "NetworkError");
      assert.equal((err.cause as NodeJS.ErrnoException).code, "ECONNREFUSED");
      assert.equal(err.status, undefined);
    } finally {
      kms.close();
    }
  });

  it("retries a socket destroyed before any response byte, and stops at maxRetries", async () => {
    let destroyFirst = 2;
    const fake = await startFake((seen, req, res) => {
      if (destroyFirst-- > 0) req.socket.destroy();
      else standard(seen, req, res);
    });
    const kms = client(fake.url, { maxRetries: 3 });
    try {
      const res = await kms.getRegions();
      assert.equal(typeof res.RequestId, "string");
      assert.equal(fake.seen.length, 3);
      assert.ok(fake.seen.every((s) => s.verification.ok));
    } finally {
      kms.close();
      await fake.close();
    }

    const always = await startFake((_seen, req) => void req.socket.destroy());
    const kms2 = client(always.url, { maxRetries: 2 });
    try {
      const err = await rejection(kms2.getRegions());
      assert.equal(err.code, "NetworkError");
      assert.equal(always.seen.length, 3);
    } finally {
      kms2.close();
      await always.close();
    }
  });

  it("signs each attempt afresh", async () => {
    let first = true;
    const fake = await startFake((seen, req, res) => {
      if (first) {
        first = false;
        // Hold the first attempt past a second boundary, then drop it.
        setTimeout(() => req.socket.destroy(), 1100);
      } else standard(seen, req, res);
    });
    const kms = client(fake.url, { maxRetries: 1 });
    try {
      await kms.getRegions();
      assert.equal(fake.seen.length, 2);
      const [a, b] = fake.seen.map((s) => s.verification);
      assert.ok(a?.ok && b?.ok);
      assert.ok(b.timestamp > a.timestamp, `timestamps ${a.timestamp} then ${b.timestamp}`);
      assert.notEqual(fake.seen[0]!.headers.authorization, fake.seen[1]!.headers.authorization);
    } finally {
      kms.close();
      await fake.close();
    }
  });

  it("times out when no response byte arrives, and retries that", async () => {
    const fake = await startFake(() => {
      /* never answer */
    });
    const kms = client(fake.url, { timeoutMs: 150, maxRetries: 1 });
    try {
      const started = Date.now();
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "Timeout");
      assert.equal(fake.seen.length, 2);
      assert.ok(Date.now() - started >= 300);
    } finally {
      kms.close();
      await fake.close();
    }
  });

  it("times out, without retrying, when a response started but did not finish", async () => {
    const fake = await startFake((_seen, _req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write('{"Response":');
    });
    const kms = client(fake.url, { timeoutMs: 200, maxRetries: 3 });
    try {
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "Timeout");
      assert.equal(fake.seen.length, 1);
    } finally {
      kms.close();
      await fake.close();
    }
  });

  it("does not retry when the connection drops in the middle of a response", async () => {
    const fake = await startFake((_seen, req, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "100" });
      res.write('{"Response":', () => req.socket.destroy());
    });
    const kms = client(fake.url, { maxRetries: 3 });
    try {
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "InvalidResponse");
      assert.equal(fake.seen.length, 1);
    } finally {
      kms.close();
      await fake.close();
    }
  });
});

describe("KmsClient options", () => {
  const good: KmsClientOptions = { endpoint: "http://127.0.0.1:8400", secretId: SECRET_ID, secretKey: SECRET_KEY };
  const cases: Array<[string, Partial<Record<keyof KmsClientOptions, unknown>>, typeof TypeError | typeof RangeError, string]> = [
    ["endpoint not a string", { endpoint: 8400 }, TypeError, '"endpoint"'],
    ["endpoint not a URL", { endpoint: "127.0.0.1:8400" }, TypeError, '"endpoint"'],
    ["endpoint ftp", { endpoint: "ftp://127.0.0.1" }, TypeError, '"endpoint"'],
    ["endpoint with a path", { endpoint: "http://127.0.0.1:8400/kms" }, TypeError, '"endpoint"'],
    ["endpoint with user info", { endpoint: "http://u:p@127.0.0.1" }, TypeError, '"endpoint"'],
    ["secretId missing", { secretId: undefined }, TypeError, '"secretId"'],
    ["secretId with a slash", { secretId: "a/b" }, TypeError, '"secretId"'],
    ["secretKey empty", { secretKey: "" }, TypeError, '"secretKey"'],
    ["secretKey not a string", { secretKey: 42 }, TypeError, '"secretKey"'],
    ["region with a newline", { region: "ap\nx" }, TypeError, '"region"'],
    ["region empty", { region: "" }, TypeError, '"region"'],
    ["timeoutMs a string", { timeoutMs: "100" }, TypeError, '"timeoutMs"'],
    ["timeoutMs zero", { timeoutMs: 0 }, RangeError, '"timeoutMs"'],
    ["timeoutMs fractional", { timeoutMs: 1.5 }, RangeError, '"timeoutMs"'],
    ["maxRetries negative", { maxRetries: -1 }, RangeError, '"maxRetries"'],
    ["maxRetries huge", { maxRetries: 1000 }, RangeError, '"maxRetries"'],
    ["ca a number", { endpoint: "https://127.0.0.1", ca: 1 }, TypeError, '"ca"'],
    ["ca with http", { ca: "-----BEGIN CERTIFICATE-----" }, TypeError, '"ca"'],
  ];
  for (const [name, patch, type, mention] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => new KmsClient({ ...good, ...patch } as KmsClientOptions),
        (err: unknown) => {
          assert.ok(err instanceof type, `expected ${type.name}, got ${inspect(err)}`);
          assert.ok(err.message.includes(mention), err.message);
          assert.ok(!err.message.includes(SECRET_KEY));
          return true;
        },
      );
    });
  }

  it("accepts good options and fills the defaults", () => {
    const kms = new KmsClient({ ...good, endpoint: "http://127.0.0.1:8400/" });
    assert.equal(kms.endpoint, "http://127.0.0.1:8400");
    assert.equal(kms.region, "local");
    assert.equal(kms.timeoutMs, 10_000);
    assert.equal(kms.maxRetries, 3);
    kms.close();
  });
});

describe("KmsClient keeps the secret key to itself", () => {
  it("is absent from inspect, JSON, toString and errors", async () => {
    const kms = client("http://127.0.0.1:1", { maxRetries: 0 });
    try {
      const shown = [
        inspect(kms),
        inspect(kms, { showHidden: true, depth: Infinity, getters: true }),
        JSON.stringify(kms),
        String(kms),
        Object.keys(kms).join(","),
        JSON.stringify(Object.getOwnPropertyNames(kms).map((name) => (kms as unknown as Record<string, unknown>)[name])),
      ];
      for (const text of shown) assert.ok(!text.includes(SECRET_KEY), text);
      assert.ok(inspect(kms).includes(SECRET_ID));

      const err = await rejection(kms.getRegions());
      const errorTexts = [err.message, String(err), inspect(err, { depth: Infinity, showHidden: true }), JSON.stringify(err), err.stack ?? ""];
      for (const text of errorTexts) assert.ok(!text.includes(SECRET_KEY), text);
    } finally {
      kms.close();
    }
  });
});

describe("KmsClient over https", () => {
  let dir: string;
  let tls: { key: Buffer; cert: Buffer };
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tresor-tls-"));
    const keyFile = path.join(dir, "key.pem");
    const certFile = path.join(dir, "cert.pem");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stdio: "ignore" },
    );
    tls = { key: readFileSync(keyFile), cert: readFileSync(certFile) };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("trusts a self-signed server given as ca, and only then", async () => {
    const fake = await startFake(standard, { tls });
    const trusted = client(fake.url, { ca: tls.cert });
    const untrusted = client(fake.url, { maxRetries: 3 });
    try {
      const res = await trusted.encrypt({ KeyId: "k1", Plaintext: "aGk=" });
      assert.deepEqual(openFakeBlob(res.CiphertextBlob ?? ""), { context: "", plaintext: "aGk=" });
      const seen = fake.seen.at(-1)!;
      assert.ok(seen.verification.ok, JSON.stringify(seen.verification));

      const connectionsBefore = fake.connections();
      const err = await rejection(untrusted.getRegions());
      assert.equal(err.code, "NetworkError");
      assert.match(err.message, /certificate/i);
      // A certificate failure is not transient: one connection, no retry.
      assert.equal(fake.connections() - connectionsBefore, 1);
      assert.equal(fake.seen.length, 1);
    } finally {
      trusted.close();
      untrusted.close();
      await fake.close();
    }
  });
});

describe("cross-check with the official tencentcloud-sdk-nodejs client", () => {
  interface OfficialClient {
    Encrypt(req: object): Promise<Record<string, unknown>>;
    DisableKey(req: object): Promise<Record<string, unknown>>;
  }
  type OfficialClientClass = new (config: object) => OfficialClient;

  let fake: Fake;
  let Official: OfficialClientClass;
  before(async () => {
    // The official SDK's fetch honours http_proxy even for loopback.
    for (const name of ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"]) delete process.env[name];
    const require = createRequire(import.meta.url);
    const sdk = require("tencentcloud-sdk-nodejs/tencentcloud/services/kms") as { kms: { v20190118: { Client: OfficialClientClass } } };
    Official = sdk.kms.v20190118.Client;
    fake = await startFake();
  });
  after(async () => {
    await fake.close();
  });

  it("the same verification accepts both clients' requests", async () => {
    const official = new Official({
      credential: { secretId: SECRET_ID, secretKey: SECRET_KEY },
      region: "local",
      profile: { httpProfile: { endpoint: `127.0.0.1:${fake.port}`, protocol: "http://", reqTimeout: 10 } },
    });
    const ours = client(fake.url);
    try {
      const theirs = await official.Encrypt({ KeyId: "k1", Plaintext: "aGk=" });
      const seenTheirs = fake.seen.at(-1)!;
      const mine = await ours.encrypt({ KeyId: "k1", Plaintext: "aGk=" });
      const seenMine = fake.seen.at(-1)!;

      assert.ok(seenTheirs.verification.ok, JSON.stringify(seenTheirs.verification));
      assert.ok(seenMine.verification.ok, JSON.stringify(seenMine.verification));
      // The official SDK derives the scope's service from the endpoint's first label ("127").
      assert.equal(seenTheirs.verification.service, "127");
      assert.equal(seenMine.verification.service, "kms");
      assert.equal(seenTheirs.verification.signedHeaders, "content-type;host");
      assert.equal(seenMine.verification.signedHeaders, "content-type;host;x-tc-action");
      assert.equal(seenTheirs.body, seenMine.body);
      for (const header of ["content-type", "x-tc-action", "x-tc-version", "x-tc-region"]) {
        assert.equal(seenMine.headers[header], seenTheirs.headers[header], header);
      }
      assert.equal(theirs["CiphertextBlob"], mine.CiphertextBlob);

      // Tampering is caught for both: the verifier is not a rubber stamp.
      const wrongKey = new Official({
        credential: { secretId: SECRET_ID, secretKey: "wrong" },
        region: "local",
        profile: { httpProfile: { endpoint: `127.0.0.1:${fake.port}`, protocol: "http://" } },
      });
      await assert.rejects(wrongKey.Encrypt({ KeyId: "k1", Plaintext: "aGk=" }), (e: { code?: string }) => e.code === "AuthFailure.SignatureFailure");
    } finally {
      ours.close();
    }
  });

  it("both clients read an error answer the same way", async () => {
    const official = new Official({
      credential: { secretId: SECRET_ID, secretKey: SECRET_KEY },
      region: "local",
      profile: { httpProfile: { endpoint: `127.0.0.1:${fake.port}`, protocol: "http://" } },
    });
    const ours = client(fake.url);
    try {
      const theirs = (await official.DisableKey({ KeyId: "gone" }).then(
        () => assert.fail("expected an error"),
        (e: unknown) => e,
      )) as { code?: string; message?: string; requestId?: string };
      const mine = await rejection(ours.disableKey({ KeyId: "gone" }));
      assert.equal(mine.code, theirs.code);
      assert.equal(mine.message, theirs.message);
      assert.match(theirs.requestId ?? "", /^req-\d+$/);
      assert.match(mine.requestId ?? "", /^req-\d+$/);
    } finally {
      ours.close();
    }
  });
});
