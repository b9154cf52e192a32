// `tresor serve`: opens (or on first run creates) the data directory and serves the API until
// SIGTERM or SIGINT, then lets in-flight requests finish and closes the store.

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { pino } from "pino";
import { bootstrapDataDir } from "../node/bootstrap.js";
import { ConfigError, resolveServeConfig, type ServeFlags } from "../node/config.js";
import { ListenError, startNode, type RunningNode } from "../node/node.js";
import { stableNodeId } from "../node/node-id.js";
import { isSupervisor, resolveWorkers, supervise, workerRole } from "../node/workers.js";
import { pinOption, printNewCredentials } from "./init.js";
import { writeLines } from "./output.js";
import { listenFailure, logFormat, logSink, readyBanner, tlsFilesProblem } from "./serve-output.js";

/** The PIN is read only when one is offered: a data directory with a file root key needs none. */

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("serve the KMS API (creates the data directory on first run)")
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR, default ./tresor-data)")
    .option("--host <host>", "address to bind (env TRESOR_HOST, default 127.0.0.1)")
    .option("--port <port>", "port, 0 for any free one (env TRESOR_PORT, default 8400)")
    .option("--region <region>", "region served (env TRESOR_REGION, default: the data directory's)")
    .option("--tls-cert <file>", "PEM certificate chain: serve HTTPS (env TRESOR_TLS_CERT)")
    .option("--tls-key <file>", "PEM private key for --tls-cert (env TRESOR_TLS_KEY)")
    .option("--insecure-http", "allow plain HTTP on a non-loopback address (env TRESOR_INSECURE_HTTP=1)")
    .option("--require-signed-action", "refuse requests whose signature does not cover X-TC-Action (env TRESOR_REQUIRE_SIGNED_ACTION=1)")
    .option("--allow-insecure-permissions", "only warn when the data directory, database or credentials file is readable by group or others (env TRESOR_ALLOW_INSECURE_PERMISSIONS=1)")
    .option("--default-key-spec <spec>", "spec of new symmetric keys: SM4 or AES_256 (env TRESOR_DEFAULT_KEY_SPEC, default SM4)")
    .option("--cmk-limit <n>", "most keys the account may hold (env TRESOR_CMK_LIMIT, default 10000)")
    .option("--body-limit <bytes>", "largest request body (env TRESOR_BODY_LIMIT, default 65536)")
    .option("--log-level <level>", "debug, info, warn or error (env TRESOR_LOG_LEVEL, default info)")
    .option("--log-format <format>", "json or pretty (env TRESOR_LOG_FORMAT; default pretty on a terminal, json otherwise)")
    .option("--pkcs11-pin-file <file>", "file holding the HSM token PIN when the root key is in an HSM (otherwise env TRESOR_PKCS11_PIN)")
    .option("--store <url>", "a shared PostgreSQL store, postgres://… (env TRESOR_STORE); made by \"tresor init --store\"; default: SQLite in the data directory")
    .option("--node-id <id>", "this node's name in logs and metrics (env TRESOR_NODE_ID, default: <hostname>-<random>, made once and kept in the data directory's node-id file)")
    .option("--audit-retention-days <days>", "audit records older than this are pruned, keeping the chain verifiable (env TRESOR_AUDIT_RETENTION_DAYS, default 90)")
    .option("--audit-sink <file>", "also append every audit record to this JSON-lines file, for a log shipper (env TRESOR_AUDIT_SINK)")
    .option("--rate-limit <n>", "requests per second each account may send, RequestLimitExceeded above (env TRESOR_RATE_LIMIT, default 0: no limit)")
    .option("--auth-failure-records <n>", "audit records per source address and minute (ten times this for all sources) for requests refused before authentication; the rest are counted into summary records (env TRESOR_AUTH_FAILURE_RECORDS, default 100)")
    .option("--max-connections <n>", "open connections at most; keep it below the open-file limit (env TRESOR_MAX_CONNECTIONS, default 1024)")
    .option("--headers-timeout <seconds>", "a request's headers must arrive within this (env TRESOR_HEADERS_TIMEOUT, default 10)")
    .option("--request-timeout <seconds>", "a whole request, body included, must arrive within this (env TRESOR_REQUEST_TIMEOUT, default 20)")
    .option("--keep-alive-timeout <seconds>", "idle keep-alive connections are closed after this (env TRESOR_KEEP_ALIVE_TIMEOUT, default 65)")
    .option("--kmip-port <port>", "serve KMIP (TTLV over mutual TLS) on this port, 5696 by convention (env TRESOR_KMIP_PORT; default: no KMIP)")
    .option("--kmip-cert <file>", "PEM certificate chain of the KMIP listener (env TRESOR_KMIP_CERT)")
    .option("--kmip-key <file>", "PEM private key for --kmip-cert (env TRESOR_KMIP_KEY)")
    .option("--kmip-client-ca <file>", "PEM CA certificate(s) that issue KMIP client certificates; others fail the handshake (env TRESOR_KMIP_CLIENT_CA)")
    .option("--kmip-max-message <bytes>", "largest KMIP request message; a larger one closes the connection (env TRESOR_KMIP_MAX_MESSAGE, default 1048576)")
    .option("--workers <n>", "processes serving the port: auto (the default) for one per core, 1 for a single process (env TRESOR_WORKERS)")
    .option("--scheduler-interval <seconds>", "seconds between runs of the key job scheduler: rotation, deletion, material expiry (env TRESOR_SCHEDULER_INTERVAL, default 60)")
    .action(async (flags: ServeCommandFlags) => {
      await serve(flags);
    });
}

type ServeCommandFlags = ServeFlags & { pkcs11PinFile?: string; schedulerInterval?: string; logFormat?: string; workers?: string };

async function serve(flags: ServeCommandFlags): Promise<void> {
  let config;
  let schedulerIntervalSeconds: number;
  let format;
  let workers: number;
  try {
    config = resolveServeConfig(flags);
    schedulerIntervalSeconds = schedulerInterval(flags.schedulerInterval ?? process.env["TRESOR_SCHEDULER_INTERVAL"]);
    format = logFormat(flags.logFormat, process.stdout.isTTY === true);
    workers = resolveWorkers(flags.workers);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  const logDestination = logSink(format);
  const logger = pino({ level: config.logLevel, base: { service: "tresor" } }, logDestination.stream);
  const flushTimer = setInterval(() => logDestination.flush(), 1000).unref();

  // The banner of a data directory made now goes to stderr, away from the JSON log stream on stdout.
  await bootstrapDataDir(config, logger, (created) => printNewCredentials(created, process.stderr));
  const nodeId = config.nodeId ?? (await stableNodeId(config.dataDir));
  logger.setBindings({ node: nodeId });
  const tls = config.tlsCert && config.tlsKey ? { cert: await readFile(config.tlsCert), key: await readFile(config.tlsKey) } : undefined;
  const tlsProblem = tls && tlsFilesProblem(tls.cert, tls.key);
  if (tlsProblem) {
    writeLines(process.stderr, [`error: ${tlsProblem}`]);
    process.exitCode = 2;
    return;
  }
  const announce = (url: string) => {
    logDestination.flushSync();
    if (format === "pretty") writeLines(process.stderr, readyBanner(url, config.dataDir));
  };
  if (isSupervisor(workers)) {
    process.exitCode = await supervise(workers, logger, announce);
    clearInterval(flushTimer);
    logDestination.flushSync();
    return;
  }
  const worker = workerRole();
  // Workers are told apart in logs, metrics and audit records by their slot, stable across restarts.
  const processNodeId = worker ? `${nodeId}:w${worker.index}` : nodeId;
  if (worker) logger.setBindings({ node: processNodeId });
  const kmip = config.kmip
    ? {
        port: config.kmip.port,
        cert: await readFile(config.kmip.cert),
        key: await readFile(config.kmip.key),
        clientCa: await readFile(config.kmip.clientCa),
        maxMessageBytes: config.kmip.maxMessageBytes,
      }
    : undefined;
  let node: RunningNode;
  try {
    node = await startNode(
      {
        dataDir: config.dataDir,
        ...pinOption(flags.pkcs11PinFile),
        ...(config.store === undefined ? {} : { store: config.store }),
        host: config.host,
        port: config.port,
        ...(config.region === undefined ? {} : { region: config.region }),
        nodeId: processNodeId,
        ...(tls ? { tls } : {}),
        defaultKeySpec: config.defaultKeySpec,
        cmkLimit: config.cmkLimit,
        bodyLimit: config.bodyLimit,
        authentication: { requireSignedAction: config.requireSignedAction, ...(worker ? { signatureBindings: worker.signatureBindings } : {}) },
        ...(config.rateLimit === undefined ? {} : { rateLimit: config.rateLimit }),
        failedAuth: { threshold: config.authFailureRecords, totalThreshold: 10 * config.authFailureRecords },
        connections: { maxConnections: config.maxConnections, headersTimeoutMs: config.headersTimeoutMs, requestTimeoutMs: config.requestTimeoutMs, keepAliveTimeoutMs: config.keepAliveTimeoutMs },
        audit: { retentionDays: config.auditRetentionDays, ...(config.auditSink === undefined ? {} : { sinkPath: config.auditSink }) },
        ...(worker?.runsScheduler === false ? {} : { schedulerIntervalMs: schedulerIntervalSeconds * 1000 }),
        ...(kmip ? { kmip } : {}),
      },
      { logger },
    );
  } catch (e) {
    if (!(e instanceof ListenError)) throw e;
    logger.error({ err: { code: e.code }, host: config.host, port: config.port }, "could not listen");
    logDestination.flushSync();
    writeLines(process.stderr, [listenFailure(e.code, config.host, config.port)]);
    process.exitCode = 1;
    return;
  }
  const { dataDir } = node;
  logger.info(
    // The node's id is on every line (the logger's bindings).
    { url: node.url, ...(node.kmipPort === undefined ? {} : { kmipPort: node.kmipPort }), region: node.region, dataDir: dataDir.path, store: dataDir.storeDescription, rootOfTrust: dataDir.rootOfTrust.description },
    worker ? "worker listening" : "listening",
  );
  if (node.region !== dataDir.region) {
    logger.warn({ region: node.region, dataDirRegion: dataDir.region }, "--region differs from the data directory's region: clients of the data directory's region get UnsupportedRegion");
  }
  if (worker) {
    logDestination.flushSync();
    worker.listening(node.url, node.kmipPort);
  } else {
    announce(node.url);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    await node.close();
    logger.info("stopped");
    clearInterval(flushTimer);
    logDestination.flushSync();
    // A worker's channel to its supervisor would keep it alive.
    if (worker) process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
  worker?.onSupervisorGone(() => void stop("supervisor gone"));
}

/** --scheduler-interval: whole seconds, 1 to 86400; default 60. */
function schedulerInterval(value: string | undefined): number {
  if (value === undefined || value === "") return 60;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 86_400) throw new ConfigError(`--scheduler-interval must be a whole number of seconds from 1 to 86400, got ${value}`);
  return n;
}
