// The benchmark's "audit disabled" build of `tresor serve`: the same server over a data directory
// made by `tresor init`, with the same buffered JSON request log, but no audit writer. Only the
// bench starts it, to report Encrypt with audit as a ratio to Encrypt without, in one run.
// Usage: node no-audit-server.js <data-dir>. Prints the `listening` line `tresor serve` prints.

import { pino } from "pino";
import { buildServer, listen } from "../src/api/server.js";
import { openDataDir } from "../src/node/data-dir.js";
import { systemClock } from "../src/service/clock.js";
import { KmsService } from "../src/service/kms-service.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: no-audit-server.js <data-dir>");
const logDestination = pino.destination({ dest: 1, sync: false, minLength: 8192 });
const logger = pino({ level: "info", base: { service: "tresor", node: "bench-no-audit" } }, logDestination);
setInterval(() => logDestination.flush(), 1000).unref();
const dataDir = await openDataDir(dir);
const service = new KmsService({ store: dataDir.store, rootOfTrust: dataDir.rootOfTrust, clock: systemClock, region: dataDir.region, defaultKeySpec: "SM4", cmkLimit: 10_000, logger });
const app = buildServer({ service, clock: systemClock, logger, region: dataDir.region, nodeId: "bench-no-audit" });
const url = await listen(app, "127.0.0.1", 0, false);
logger.info({ url, audit: false }, "listening");
logDestination.flushSync();
process.once("SIGTERM", () => {
  void app.close().then(async () => {
    service.close();
    await dataDir.close();
    logDestination.flushSync();
  });
});
