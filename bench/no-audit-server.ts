// The benchmark's "audit disabled" build of `tresor serve`: the same server over a data directory
// made by `tresor init`, with the same buffered JSON request log, but no audit writer. Only the
// bench starts it, to report Encrypt with audit as a ratio to Encrypt without, in one run.
// Usage: node no-audit-server.js <data-dir>. Prints the `listening` line `tresor serve` prints.

import { pino } from "pino";
import { startNode } from "../src/node/node.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: no-audit-server.js <data-dir>");
const logDestination = pino.destination({ dest: 1, sync: false, minLength: 8192 });
const logger = pino({ level: "info", base: { service: "tresor", node: "bench-no-audit" } }, logDestination);
setInterval(() => logDestination.flush(), 1000).unref();
const node = await startNode({ dataDir: dir, nodeId: "bench-no-audit", defaultKeySpec: "SM4", cmkLimit: 10_000, audit: false }, { logger });
logger.info({ url: node.url, audit: false }, "listening");
logDestination.flushSync();
process.once("SIGTERM", () => {
  void node.close().then(() => logDestination.flushSync());
});
