// KmsClient with several endpoints: which failures move a call on to the next node, which do not,
// that the client stays on the node that answered, and the options' checks.

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { KmsClient, KmsClientError } from "../../src/sdk/index.js";
import type { KmsClientOptions } from "../../src/sdk/index.js";

const CREDENTIALS = { secretId: "AKIDfailoverTest", secretKey: "failover-secret-key" };

type Answer = (res: http.ServerResponse) => void;

interface Fake {
  url: string;
  /** Actions received, in order. */
  seen: string[];
  close(): Promise<void>;
}

const ok: Answer = (res) => void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ Response: { Regions: ["local"], RequestId: "r-ok" } }));
const errorAnswer =
  (code: string): Answer =>
  (res) =>
    void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ Response: { Error: { Code: code, Message: `${code} here` }, RequestId: "r-err" } }));
const status =
  (code: number): Answer =>
  (res) =>
    void res.writeHead(code).end("no");

async function startFake(answer: Answer): Promise<Fake> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      assert.match(String(req.headers.authorization), /^TC3-HMAC-SHA256 /);
      seen.push(String(req.headers["x-tc-action"]));
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on: a server bound it, then let it go. */
async function closedPortUrl(): Promise<string> {
  const fake = await startFake(ok);
  await fake.close();
  return fake.url;
}

async function rejection(promise: Promise<unknown>): Promise<KmsClientError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof KmsClientError, String(err));
    return err;
  }
  assert.fail("expected a rejection");
}

describe("KmsClient with several endpoints", () => {
  it("moves on from a node that refuses connections, and stays on the one that answered", async () => {
    const dead = await closedPortUrl();
    const live = await startFake(ok);
    const kms = new KmsClient({ ...CREDENTIALS, endpoints: [dead, live.url], maxRetries: 0 });
    try {
      assert.equal(kms.endpoint, dead);
      assert.deepEqual((await kms.getRegions()).Regions, ["local"]);
      assert.equal(kms.endpoint, live.url);
      await kms.getRegions();
      assert.deepEqual(live.seen, ["GetRegions", "GetRegions"]);
    } finally {
      kms.close();
      await live.close();
    }
  });

  for (const [name, answer] of [
    ["a ServiceUnavailable answer", errorAnswer("ServiceUnavailable")],
    ["HTTP 503 from a proxy", status(503)],
    ["HTTP 502 from a proxy", status(502)],
  ] as const) {
    it(`moves on after ${name}`, async () => {
      const sick = await startFake(answer);
      const live = await startFake(ok);
      const kms = new KmsClient({ ...CREDENTIALS, endpoints: [sick.url, live.url] });
      try {
        await kms.getRegions();
        assert.equal(sick.seen.length, 1);
        assert.equal(live.seen.length, 1);
      } finally {
        kms.close();
        await sick.close();
        await live.close();
      }
    });
  }

  it("does not move on after any other answer", async () => {
    for (const answer of [errorAnswer("ResourceUnavailable.CmkDisabled"), errorAnswer("InternalError"), status(500)]) {
      const first = await startFake(answer);
      const second = await startFake(ok);
      const kms = new KmsClient({ ...CREDENTIALS, endpoints: [first.url, second.url] });
      try {
        await rejection(kms.getRegions());
        assert.equal(first.seen.length, 1);
        assert.equal(second.seen.length, 0, "the answer was final");
      } finally {
        kms.close();
        await first.close();
        await second.close();
      }
    }
  });

  it("tries every endpoint once even with maxRetries 0, then reports the last failure", async () => {
    const fakes = await Promise.all([1, 2, 3].map(() => startFake(errorAnswer("ServiceUnavailable"))));
    const kms = new KmsClient({ ...CREDENTIALS, endpoints: fakes.map((f) => f.url), maxRetries: 0 });
    try {
      const err = await rejection(kms.getRegions());
      assert.equal(err.code, "ServiceUnavailable");
      assert.deepEqual(
        fakes.map((f) => f.seen.length),
        [1, 1, 1],
      );
    } finally {
      kms.close();
      for (const f of fakes) await f.close();
    }
  });

  it("goes round the endpoints up to maxRetries when all fail", async () => {
    const fakes = await Promise.all([1, 2].map(() => startFake(errorAnswer("ServiceUnavailable"))));
    const kms = new KmsClient({ ...CREDENTIALS, endpoints: fakes.map((f) => f.url), maxRetries: 3 });
    try {
      assert.equal((await rejection(kms.getRegions())).code, "ServiceUnavailable");
      assert.deepEqual(
        fakes.map((f) => f.seen.length),
        [2, 2],
      );
    } finally {
      kms.close();
      for (const f of fakes) await f.close();
    }
  });

  it("retries a ServiceUnavailable answer on its single endpoint too", async () => {
    let calls = 0;
    const fake = await startFake((res) => (++calls === 1 ? errorAnswer("ServiceUnavailable")(res) : ok(res)));
    const kms = new KmsClient({ ...CREDENTIALS, endpoint: fake.url });
    try {
      await kms.getRegions();
      assert.equal(calls, 2);
    } finally {
      kms.close();
      await fake.close();
    }
  });
});

describe("KmsClient endpoints option", () => {
  const cases: Array<[string, Partial<Record<keyof KmsClientOptions, unknown>>, string]> = [
    ["neither endpoint nor endpoints", {}, '"endpoint"'],
    ["both endpoint and endpoints", { endpoint: "http://127.0.0.1:1", endpoints: ["http://127.0.0.1:2"] }, "not both"],
    ["an empty list", { endpoints: [] }, '"endpoints"'],
    ["not a list", { endpoints: "http://127.0.0.1:1" }, '"endpoints"'],
    ["a bad entry", { endpoints: ["http://127.0.0.1:1", "ftp://x"] }, '"endpoints[1]"'],
    ["an entry with a path", { endpoints: ["http://127.0.0.1:1/kms"] }, '"endpoints[0]"'],
    ["a duplicate", { endpoints: ["http://127.0.0.1:1", "http://127.0.0.1:1/"] }, "twice"],
    ["mixed schemes", { endpoints: ["http://127.0.0.1:1", "https://127.0.0.1:2"] }, "all https"],
  ];
  for (const [name, patch, mention] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => new KmsClient({ ...CREDENTIALS, ...patch } as KmsClientOptions),
        (err: unknown) => err instanceof TypeError && err.message.includes(mention),
      );
    });
  }

  it("keeps the list in order, normalised", () => {
    const kms = new KmsClient({ ...CREDENTIALS, endpoints: ["http://127.0.0.1:2/", "http://127.0.0.1:1"] });
    assert.deepEqual(kms.endpoints, ["http://127.0.0.1:2", "http://127.0.0.1:1"]);
    assert.equal(kms.endpoint, "http://127.0.0.1:2");
    kms.close();
  });
});
