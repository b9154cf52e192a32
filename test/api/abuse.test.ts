// Quotas and abuse (issue 13): each test names the finding it reproduces. A per-account request
// rate; floods of unauthenticated failures summarized in the audit instead of a record each;
// metrics labels only for catalogued actions; capped log and audit fields; a connection cap and
// short header and request time-outs; a record for requests refused before routing; shutdown
// answers in the protocol's error shape.

import assert from "node:assert/strict";
import { get } from "node:http";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { AccountRateLimiter, FailedAuthLimiter } from "../../src/api/limits.js";
import type { AuditRecord } from "../../src/audit/record.js";
import type { KmsService } from "../../src/service/kms-service.js";
import { snapshotKeys, startInProcessServer, type InProcessServer, type RawResponse } from "./helpers-inprocess.js";
import { allAuditRecords } from "../helpers/audit-fixtures.js";

/** Polls `probe` every 20 ms until it returns a value other than undefined; fails after `ms`. */
async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function requestIdOf(r: RawResponse): string {
  return String((r.json as { Response: { RequestId: string } }).Response.RequestId);
}

async function recordWithId(s: InProcessServer, requestId: string): Promise<AuditRecord> {
  return waitFor(`the audit record of ${requestId}`, 5000, async () => (await allAuditRecords(s.dataDir.store)).find((r) => r.requestId === requestId));
}

/** One HTTP response read off a raw socket. */
interface ParsedResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Reads `count` responses (each with Content-Length) from the socket, failing after `ms`. */
function readResponses(socket: Socket, count: number, ms: number): Promise<ParsedResponse[]> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const out: ParsedResponse[] = [];
    const timer = setTimeout(() => reject(new Error(`${out.length} of ${count} responses within ${ms} ms: ${buffer.toString("latin1").slice(0, 300)}`)), ms);
    const parse = () => {
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end === -1) return;
        const [statusLine, ...lines] = buffer.subarray(0, end).toString("latin1").split("\r\n");
        const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as const));
        const length = Number(headers.get("content-length") ?? "0");
        if (buffer.length < end + 4 + length) return;
        out.push({ status: Number(statusLine!.split(" ")[1]), headers, body: buffer.subarray(end + 4, end + 4 + length).toString("utf8") });
        buffer = buffer.subarray(end + 4 + length);
        if (out.length === count) {
          clearTimeout(timer);
          resolve(out);
          return;
        }
      }
    };
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      parse();
    });
    socket.on("error", () => undefined);
  });
}

/** A request as bytes, from the headers and body InProcessServer.sign gives. */
function httpRequest(signed: { headers: Record<string, string>; body: Buffer }): Buffer {
  const head = Object.entries({ ...signed.headers, "content-length": String(signed.body.length) })
    .map(([n, v]) => `${n}: ${v}\r\n`)
    .join("");
  return Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\n${head}\r\n`, "latin1"), signed.body]);
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** GET /healthz on a fresh connection: the status, or the error's code when the connection failed. */
function healthz(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
}

describe("per-account request rate (issue 13: no quota; Tencent answers RequestLimitExceeded)", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer({ limits: { rateLimit: 3 } });
  });
  after(async () => {
    await s?.stop();
  });

  it("refuses requests above the account's rate with RequestLimitExceeded, records them, changes nothing, and serves again once the bucket refills", async () => {
    await s.call("CreateKey", { Alias: "rate-1" });
    await s.call("ListKeys", {});
    await s.call("ListKeys", {});
    const before = await snapshotKeys(s.service, s.caller);
    const refused = await s.raw("CreateKey", { Alias: "rate-2" });
    assert.equal(refused.error?.Code, "RequestLimitExceeded", refused.text);
    assert.match(refused.error.Message, /3 requests per second/);
    assert.equal(await snapshotKeys(s.service, s.caller), before, "the refused CreateKey made no key");
    const record = await recordWithId(s, requestIdOf(refused));
    assert.equal(record.result, "RequestLimitExceeded");
    assert.equal(record.accountUin, s.dataDir.accountUin, "the refusal names the account");

    s.clock.advance(1000);
    for (let i = 0; i < 3; i++) assert.equal((await s.raw("ListKeys", {})).error, undefined, `request ${i} after the refill`);
    assert.equal((await s.raw("ListKeys", {})).error?.Code, "RequestLimitExceeded");
  });

  it("keeps at most its cap of account buckets, however many accounts call", () => {
    let now = 0;
    const limiter = new AccountRateLimiter(5, () => now);
    for (let i = 0; i < AccountRateLimiter.MAX_TRACKED + 50; i++) limiter.take(`acct-${i}`);
    assert.ok(limiter.tracked <= AccountRateLimiter.MAX_TRACKED, `${limiter.tracked} buckets`);
    now += 1;
    assert.equal(limiter.take(`acct-${AccountRateLimiter.MAX_TRACKED + 49}`), true, "a recent account keeps its bucket");
  });
});

describe("floods of unauthenticated failures (issue 13: each bad-signature request added ~2.5 KB of audit)", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer({ limits: { failedAuth: { threshold: 5, windowMs: 60_000 } } });
  });
  after(async () => {
    await s?.stop();
  });

  it("records the first failures of a source in full, then one summary record with the source, count, window and codes; authenticated requests are still recorded each", async () => {
    const start = (await allAuditRecords(s.dataDir.store)).length;
    const answers: RawResponse[] = [];
    for (let i = 0; i < 25; i++) answers.push(await s.raw("ListKeys", {}, { secretKey: `guess-${i}` }));
    const honest = await s.raw("ListKeys", {});
    for (let i = 0; i < 5; i++) answers.push(await s.raw("ListKeys", {}, { version: "2000-01-01" }));
    assert.ok(answers.slice(0, 25).every((r) => r.error?.Code === "AuthFailure.SignatureFailure"), "every bad signature is still refused");
    assert.ok(answers.slice(25).every((r) => r.error?.Code === "NoSuchVersion"));
    assert.equal(honest.error, undefined);

    const during = (await allAuditRecords(s.dataDir.store)).slice(start);
    assert.equal(during.filter((r) => r.accountUin === "").length, 5, "only the first 5 failures of the window have records of their own");
    assert.ok(during.some((r) => r.requestId === requestIdOf(honest)), "the authenticated request has its record");

    s.clock.advance(60_000);
    const next = await s.raw("ListKeys", {}, { secretKey: "after-the-window" });
    const summary = await waitFor("the summary record", 5000, async () => (await allAuditRecords(s.dataDir.store)).find((r) => r.flags.includes("failed-auth-summary")));
    assert.equal(summary.sourceIp, "127.0.0.1");
    assert.equal(summary.result, "AuthFailure.SignatureFailure", "the most frequent code");
    assert.ok(summary.flags.includes("count=25"), summary.flags.join(" "));
    assert.ok(summary.flags.includes("code=AuthFailure.SignatureFailure:20"), summary.flags.join(" "));
    assert.ok(summary.flags.includes("code=NoSuchVersion:5"), summary.flags.join(" "));
    assert.ok(summary.flags.some((f) => /^window=\d{4}-.+Z\/\d{4}-.+Z$/.test(f)), summary.flags.join(" "));
    await recordWithId(s, requestIdOf(next)); // a new window: recorded in full again
  });

  it("writes the summary of a window still open when the server closes", async () => {
    const t = await startInProcessServer({ limits: { failedAuth: { threshold: 2, windowMs: 60_000 } } });
    try {
      for (let i = 0; i < 5; i++) await t.raw("ListKeys", {}, { secretKey: `guess-${i}` });
      await t.app.close();
      const summary = (await allAuditRecords(t.dataDir.store)).find((r) => r.flags.includes("failed-auth-summary"));
      assert.ok(summary, "a summary was written on close");
      assert.ok(summary.flags.includes("count=3"), summary.flags.join(" "));
    } finally {
      await t.stop();
    }
  });

  it("tracks at most its cap of sources, bounds full records over all sources, and loses no count", () => {
    const now = 0;
    const limiter = new FailedAuthLimiter({ threshold: 2, totalThreshold: 10, windowMs: 60_000, maxSources: 3 }, () => now);
    let full = 0;
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 3; j++) if (!limiter.failed(`10.0.0.${i}`, "AuthFailure.SignatureFailure")) full++;
      assert.ok(limiter.tracked <= 3);
    }
    assert.equal(full, 6, "2 full records for each of the 3 tracked sources; the others only counted");
    const summaries = limiter.drain();
    assert.equal(summaries.length, 4, "one summary per tracked source and one for the untracked ones");
    assert.equal(summaries.find((x) => x.sourceIp === "")?.suppressed, 21);
    assert.equal(
      summaries.reduce((n, x) => n + x.suppressed, 0),
      30 - full,
      "every failure without a record is in a summary",
    );
  });

  it("gives no more than totalThreshold full records in a window, however many sources fail", () => {
    const now = 0;
    const limiter = new FailedAuthLimiter({ threshold: 5, totalThreshold: 4, windowMs: 60_000, maxSources: 100 }, () => now);
    let full = 0;
    for (let i = 0; i < 50; i++) if (!limiter.failed(`10.0.1.${i}`, "AuthFailure.SecretIdNotFound")) full++;
    assert.equal(full, 4);
  });
});

describe("metrics labels (issue 13: 250 junk action names filled the 200-label cap)", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer();
  });
  after(async () => {
    await s?.stop();
  });

  it("counts unknown action names as other, so a real action keeps its own label", async () => {
    for (let i = 0; i < 250; i++) await s.raw(`Junk${i}`, {}, { secretKey: "wrong" });
    await s.call("ListKeys", {});
    const text = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(text, /^tresor_requests_total\{node="inproc-test",action="ListKeys",code="Success"\} 1$/m);
    assert.match(text, /^tresor_requests_total\{node="inproc-test",action="other",code="AuthFailure.SignatureFailure"\} 250$/m);
    assert.doesNotMatch(text, /Junk/);
  });
});

describe("field lengths (issue 13: a 15 KB X-TC-Action made a 15 KB log line)", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer();
  });
  after(async () => {
    await s?.stop();
  });

  it("caps the action, trace id, user agent and region in log lines and audit records", async () => {
    const huge = await s.raw("A".repeat(15_000), {});
    assert.equal(huge.error?.Code, "InvalidAction");
    const long = await s.raw("ListKeys", {}, { headers: { "user-agent": "U".repeat(4000), "x-tc-traceid": "T".repeat(4000) } });
    const regionLong = await s.raw("ListKeys", {}, { region: "r".repeat(4000) });
    for (const line of s.logs.lines) assert.ok(line.length < 2000, `a log line of ${line.length} characters: ${line.slice(0, 200)}`);
    for (const r of [huge, long, regionLong]) {
      const record = await recordWithId(s, requestIdOf(r));
      for (const field of ["action", "traceId", "userAgent", "region"] as const) assert.ok(record[field].length <= 256, `${field} of ${record[field].length} characters`);
    }
    assert.equal((await recordWithId(s, requestIdOf(long))).userAgent, `${"U".repeat(255)}…`);
  });
});

describe("requests refused before routing (issue 13: 404, 431 and 400 left no audit record)", () => {
  let s: InProcessServer;
  before(async () => {
    s = await startInProcessServer();
  });
  after(async () => {
    await s?.stop();
  });

  /** Sends raw bytes on a new connection and reads the one response. */
  async function rawExchange(bytes: string): Promise<ParsedResponse> {
    const socket = await openSocket(s.port);
    try {
      const answer = readResponses(socket, 1, 5000);
      socket.write(bytes);
      return (await answer)[0]!;
    } finally {
      socket.destroy();
    }
  }

  function tencentError(r: ParsedResponse): { code: string; requestId: string } {
    const json = JSON.parse(r.body) as { Response: { Error: { Code: string; Message: string }; RequestId: string } };
    assert.ok(json.Response.Error.Message.length > 0);
    return { code: json.Response.Error.Code, requestId: json.Response.RequestId };
  }

  it("answers another path 404 in the protocol's shape, and records it", async () => {
    const r = await rawExchange("GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert.equal(r.status, 404);
    const { code, requestId } = tencentError(r);
    assert.equal(code, "UnsupportedProtocol");
    const record = await recordWithId(s, requestId);
    assert.equal(record.result, "UnsupportedProtocol");
    assert.equal(record.sourceIp, "127.0.0.1");
  });

  it("answers headers too large 431 and bad framing 400 in the protocol's shape, and records both", async () => {
    const big = await rawExchange(`POST / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    assert.equal(big.status, 431);
    const bigError = tencentError(big);
    assert.equal(bigError.code, "RequestSizeLimitExceeded");
    assert.equal((await recordWithId(s, bigError.requestId)).result, "RequestSizeLimitExceeded");

    const garbled = await rawExchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
    assert.equal(garbled.status, 400);
    const garbledError = tencentError(garbled);
    assert.equal(garbledError.code, "UnsupportedProtocol");
    const record = await recordWithId(s, garbledError.requestId);
    assert.equal(record.result, "UnsupportedProtocol");
    assert.equal(record.sourceIp, "127.0.0.1");
  });
});

describe("connections (issue 13: no cap; idle and trickling connections held ~58 s (headers) and ~88 s (bodies))", () => {
  let s: InProcessServer;
  const limits = { maxConnections: 4, headersTimeoutMs: 400, requestTimeoutMs: 800 };
  /** Room for a loaded machine; the old server held such connections for about 60 s. */
  const SLACK_MS = 3000;
  before(async () => {
    s = await startInProcessServer({ limits: { connections: limits } });
  });
  after(async () => {
    await s?.stop();
  });

  /** Milliseconds until the server closes the socket; fails after `ms`. */
  function closedWithin(socket: Socket, ms: number): Promise<number> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server still holds the connection after ${ms} ms`)), ms);
      socket.on("error", () => undefined);
      socket.resume(); // a paused socket never sees the server's FIN
      socket.once("close", () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
  }

  it("closes a connection that trickles its headers (slowloris) within the headers time-out, answering 408", async () => {
    const socket = await openSocket(s.port);
    const answer = readResponses(socket, 1, 5000);
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    const trickle = setInterval(() => socket.writable && socket.write("a"), 50);
    try {
      const ms = await closedWithin(socket, 10_000);
      assert.ok(ms < limits.headersTimeoutMs + SLACK_MS, `closed after ${ms} ms`);
      assert.equal((await answer)[0]!.status, 408);
    } finally {
      clearInterval(trickle);
    }
  });

  it("closes a connection that trickles its body within the request time-out", async () => {
    const socket = await openSocket(s.port);
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
    const trickle = setInterval(() => socket.writable && socket.write(" "), 50);
    try {
      const ms = await closedWithin(socket, 10_000);
      assert.ok(ms < limits.requestTimeoutMs + SLACK_MS, `closed after ${ms} ms`);
    } finally {
      clearInterval(trickle);
    }
  });

  it("refuses connections beyond the cap, and idle ones stop locking clients out within the headers time-out", async () => {
    const idle = await Promise.all(Array.from({ length: limits.maxConnections }, () => openSocket(s.port)));
    const opened = Date.now();
    const closed = idle.map((socket) => closedWithin(socket, 10_000));
    assert.notEqual(await healthz(s.port), 200, "a connection beyond the cap is refused");
    const served = await waitFor("a new client to be served", 10_000, async () => ((await healthz(s.port)) === 200 ? Date.now() - opened : undefined));
    assert.ok(served < limits.headersTimeoutMs + SLACK_MS, `locked out for ${served} ms`);
    await Promise.all(closed);
  });
});

describe("shutdown (issue 13: a raw HTTP 503 instead of the Tencent error shape)", () => {
  it("answers a request arriving on an open connection while closing with ServiceUnavailable in the protocol's shape and HTTP 503, and records it", async () => {
    const s = await startInProcessServer();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let socket: Socket | undefined;
    try {
      const keyId = String((await s.call("CreateKey", { Alias: "closing" })).KeyId);
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const original = s.service.encrypt.bind(s.service);
      (s.service as { encrypt: KmsService["encrypt"] }).encrypt = async (...args) => {
        entered();
        await gate;
        return original(...args);
      };

      socket = await openSocket(s.port);
      const answers = readResponses(socket, 2, 10_000);
      socket.write(httpRequest(s.sign("Encrypt", { KeyId: keyId, Plaintext: Buffer.from("x").toString("base64") })));
      await inside;
      const closing = s.app.close();
      await waitFor("the server to stop listening", 5000, () => (s.app.server.listening ? undefined : true));
      socket.write(httpRequest(s.sign("ListKeys", {})));
      // The second request is handled (its answer queued behind the first) before the gate opens.
      await waitFor("the closing answer's record", 5000, async () => (await allAuditRecords(s.dataDir.store)).find((r) => r.result === "ServiceUnavailable"));
      release();
      const [first, second] = await answers;
      socket.destroy();
      await closing;

      assert.equal(first!.status, 200, first!.body);
      assert.equal(second!.status, 503);
      assert.equal(second!.headers.get("retry-after"), "1");
      const json = JSON.parse(second!.body) as { Response: { Error: { Code: string; Message: string }; RequestId: string } };
      assert.equal(json.Response.Error.Code, "ServiceUnavailable");
      assert.match(json.Response.Error.Message, /shutting down/);
      const record = await recordWithId(s, json.Response.RequestId);
      assert.equal(record.result, "ServiceUnavailable");
      assert.equal(record.action, "ListKeys");
    } finally {
      release(); // never leave the first request (and so the close) hanging when an assertion failed
      socket?.destroy();
      await s.stop();
    }
  });
});
