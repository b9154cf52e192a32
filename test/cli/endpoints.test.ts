// The CLI's --endpoint (and TRESOR_ENDPOINT) as a comma-separated list of nodes: a node that is
// down is passed over; a malformed list is a usage error naming --endpoint.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { runCli, startServer, type TestServer } from "../helpers/server.js";

/** A loopback URL nothing listens on. */
async function deadEndpoint(): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
  return `http://127.0.0.1:${port}`;
}

describe("--endpoint with several nodes", () => {
  let server: TestServer;
  let dead: string;
  let env: Record<string, string>;
  before(async () => {
    server = await startServer();
    dead = await deadEndpoint();
    env = { TRESOR_SECRET_ID: server.secretId, TRESOR_SECRET_KEY: server.secretKey, TRESOR_REGION: server.region };
  });
  after(async () => {
    await server?.stop();
  });

  it("passes over a node that is down, from the flag and from TRESOR_ENDPOINT", async () => {
    const fromFlag = await runCli(["random", "--bytes", "8", "--json", "--endpoint", `${dead}, ${server.url}`], { env });
    assert.equal(fromFlag.code, 0, fromFlag.stderr);
    assert.equal(Buffer.from((JSON.parse(fromFlag.stdout) as { Plaintext: string }).Plaintext, "base64").length, 8);
    const fromEnv = await runCli(["random", "--bytes", "8"], { env: { ...env, TRESOR_ENDPOINT: `${dead},${server.url}` } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
  });

  it("fails with the last node's error when every node is down", async () => {
    const r = await runCli(["random", "--bytes", "8", "--endpoint", `${dead},${dead.replace("127.0.0.1", "localhost")}`], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: NetworkError: GenerateRandom: cannot reach http:\/\/localhost:\d+/);
  });

  it("refuses a malformed list as a usage error", async () => {
    for (const list of [`${server.url},`, `${server.url},,${dead}`, `${server.url},ftp://x`]) {
      const r = await runCli(["random", "--bytes", "8", "--endpoint", list], { env });
      assert.equal(r.code, 2, `${list}: ${r.stderr}`);
      assert.match(r.stderr, /--endpoint/);
    }
  });
});
