// startNode, the one place the layers are wired: what it starts, and that it closes whatever it
// opened, on close() and when the server cannot listen.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { initDataDir } from "../../src/node/data-dir.js";
import { ListenError, startNode, type NodeConfig } from "../../src/node/node.js";
import type { Store } from "../../src/store/store.js";

describe("startNode", () => {
  let parent: string;
  let dataDir: string;
  const config = (): NodeConfig => ({ dataDir, defaultKeySpec: "SM4", cmkLimit: 10 });

  before(async () => {
    parent = await mkdtemp(path.join(tmpdir(), "tresor-node-"));
    dataDir = path.join(parent, "data");
    await initDataDir(dataDir, "local");
  });
  after(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it("serves the data directory's region with an audit writer, and close() releases the port and the store", async () => {
    let store: Store | undefined;
    const node = await startNode(config(), { wrapStore: (s) => (store = s) });
    assert.equal(node.region, "local");
    assert.ok(node.auditor, "auditing is on unless switched off");
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    await node.close();
    await assert.rejects(fetch(`${node.url}/healthz`), "the port is closed");
    await assert.rejects(async () => store!.getMeta("region"), "the store is closed");
  });

  it("starts no audit writer when audit is false", async () => {
    const node = await startNode({ ...config(), audit: false });
    try {
      assert.equal(node.auditor, undefined);
    } finally {
      await node.close();
    }
  });

  it("rejects with ListenError naming the code when the port is taken, having closed what it opened", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    let store: Store | undefined;
    try {
      await assert.rejects(
        startNode({ ...config(), port }, { wrapStore: (s) => (store = s) }),
        (e: unknown) => e instanceof ListenError && e.code === "EADDRINUSE",
      );
      await assert.rejects(async () => store!.getMeta("region"), "the store is closed again");
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
