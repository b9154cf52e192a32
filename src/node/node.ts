// One Tresor node, wired once: the data directory, the audit writer, the service, the scheduler
// and the HTTP server, in that order, and closed in the reverse one. `tresor serve`, the tests
// and the bench all start a node here, so each layer is built in one place.

import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { closeKmip, createKmipServer, listenKmip } from "../api/kmip/server.js";
import { buildServer, listen, type ServerOptions } from "../api/server.js";
import { openAuditWriter, type AuditWriter } from "../audit/writer.js";
import type { KeySpec } from "../keys/key.js";
import { systemClock, type Clock } from "../service/clock.js";
import { KmsService } from "../service/kms-service.js";
import { Scheduler } from "../service/scheduler.js";
import type { Store, StoreOperations } from "../store/store.js";
import { openDataDir, type DataDir } from "./data-dir.js";

/** What the node serves and how: the settings `tresor serve` resolves from flags and environment. */
export interface NodeConfig {
  /** The data directory, made by `tresor init`. */
  dataDir: string;
  /** A shared PostgreSQL store (postgres://…) instead of the data directory's SQLite file. */
  store?: string;
  /** The HSM token's PIN when the root key is in one. */
  pkcs11Pin?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Default: the region recorded in the data directory. */
  region?: string;
  /** Names this node in logs, metrics and audit records (default "tresor"). */
  nodeId?: string;
  tls?: { cert: Buffer; key: Buffer };
  defaultKeySpec: KeySpec;
  cmkLimit: number;
  bodyLimit?: number;
  authentication?: ServerOptions["authentication"];
  rateLimit?: number;
  failedAuth?: ServerOptions["failedAuth"];
  connections?: ServerOptions["connections"];
  /** The audit writer's settings; false: no audit writer at all (only the bench's baseline). */
  audit?: AuditConfig | false;
  /** Time between runs of the key job scheduler; absent: no scheduler (tests run the jobs themselves). */
  schedulerIntervalMs?: number;
  /** The KMIP listener (TTLV over mutual TLS); absent: none. */
  kmip?: KmipConfig;
}

export interface KmipConfig {
  /** Default: the HTTP server's host. */
  host?: string;
  /** 5696 is KMIP's port; 0: any free one. */
  port: number;
  /** PEM: the server's certificate chain and key, and the CA whose client certificates are accepted. */
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer;
  maxMessageBytes?: number;
}

export interface AuditConfig {
  /** Records older than this are pruned (the writer's default: 90). */
  retentionDays?: number;
  /** A JSON-lines file every committed record is also appended to. */
  sinkPath?: string;
  /** The writer's checkpoint timer (its default: 60 000 ms; 0: checkpoints by count only). */
  checkpointIntervalMs?: number;
  /** How often records past retention are pruned (default one hour; 0: never). */
  pruneIntervalMs?: number;
}

/** What tests and the bench put in place of the real thing. */
export interface NodeOptions {
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: a silent logger. */
  logger?: Logger;
  /** Bounds of the service's caches of prepared keys. */
  materialCache?: { maxEntries: number; ttlMs: number };
  /** How long found access keys and policies are remembered. */
  accessKeyCacheMs?: number;
  /** Tests: the store every layer uses, wrapped (to make it fail on demand). */
  wrapStore?: (store: Store) => Store;
}

export interface RunningNode {
  /** http(s)://host:port as listened on. */
  url: string;
  region: string;
  dataDir: DataDir;
  /** The store every layer uses (wrapped when NodeOptions.wrapStore says so). */
  store: Store;
  service: KmsService;
  /** Undefined when audit is off. */
  auditor: AuditWriter<StoreOperations> | undefined;
  app: FastifyInstance;
  /** The KMIP listener's port, when there is one. */
  kmipPort?: number;
  clock: Clock;
  /** Stops the scheduler and the server (letting requests in flight finish), then closes the writer, the service and the data directory. */
  close(): Promise<void>;
}

const AUDIT_PRUNE_INTERVAL_MS = 60 * 60_000;

/** The server could not listen on its address (in use, not permitted…); everything the node opened is closed again. */
export class ListenError extends Error {
  override readonly name = "ListenError";
  readonly code: string | undefined;
  constructor(cause: unknown) {
    super(`could not listen: ${(cause as Error).message}`, { cause });
    this.code = (cause as { code?: string }).code;
  }
}

export async function startNode(config: NodeConfig, options: NodeOptions = {}): Promise<RunningNode> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: "silent" });
  const nodeId = config.nodeId ?? "tresor";
  const dataDir = await openDataDir(config.dataDir, {
    ...(config.pkcs11Pin === undefined ? {} : { pkcs11Pin: config.pkcs11Pin }),
    ...(config.store === undefined ? {} : { store: config.store }),
  });
  const closers: (() => Promise<void> | void)[] = [() => dataDir.close()];
  const closeAll = async () => {
    let failure: unknown;
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  };
  try {
    const store = options.wrapStore ? options.wrapStore(dataDir.store) : dataDir.store;
    const region = config.region ?? dataDir.region;
    const audit = config.audit ?? {};
    const auditor = audit === false ? undefined : await openAuditor(store, dataDir, nodeId, clock, logger, audit);
    if (auditor) closers.push(() => auditor.close());
    const service = new KmsService({
      ...(auditor ? { auditor } : {}),
      store,
      rootOfTrust: dataDir.rootOfTrust,
      clock,
      region,
      defaultKeySpec: config.defaultKeySpec,
      cmkLimit: config.cmkLimit,
      logger,
      ...(options.materialCache === undefined ? {} : { materialCache: options.materialCache }),
      ...(options.accessKeyCacheMs === undefined ? {} : { accessKeyCacheMs: options.accessKeyCacheMs }),
    });
    closers.push(() => service.close());
    if (auditor && audit !== false) closers.push(pruneEvery(audit.pruneIntervalMs ?? AUDIT_PRUNE_INTERVAL_MS, auditor, logger));
    const app = buildServer({
      service,
      ...(auditor ? { auditor } : {}),
      clock,
      logger,
      region,
      nodeId,
      ...(config.tls === undefined ? {} : { tls: config.tls }),
      ...(config.bodyLimit === undefined ? {} : { bodyLimit: config.bodyLimit }),
      ...(config.authentication === undefined ? {} : { authentication: config.authentication }),
      ...(config.rateLimit === undefined ? {} : { rateLimit: config.rateLimit }),
      ...(config.failedAuth === undefined ? {} : { failedAuth: config.failedAuth }),
      ...(config.connections === undefined ? {} : { connections: config.connections }),
    });
    closers.push(() => app.close());
    const url = await listen(app, config.host ?? "127.0.0.1", config.port ?? 0, config.tls !== undefined).catch((e: unknown) => {
      throw new ListenError(e);
    });
    // The KMIP listener beside the HTTP server, over the same service, auditor and store.
    let kmipPort: number | undefined;
    if (config.kmip) {
      const kmip = createKmipServer({
        service,
        clock,
        logger,
        ...(auditor ? { auditor } : {}),
        tls: { cert: config.kmip.cert, key: config.kmip.key, clientCa: config.kmip.clientCa },
        ...(config.kmip.maxMessageBytes === undefined ? {} : { maxMessageBytes: config.kmip.maxMessageBytes }),
      });
      kmipPort = await listenKmip(kmip, config.kmip.host ?? config.host ?? "127.0.0.1", config.kmip.port).catch((e: unknown) => {
        throw new ListenError(e);
      });
      closers.push(() => closeKmip(kmip));
    }
    if (config.schedulerIntervalMs !== undefined) {
      const scheduler = new Scheduler(service, { intervalMs: config.schedulerIntervalMs, logger });
      scheduler.start();
      closers.push(() => scheduler.stop());
    }
    return { url, region, dataDir, store, service, auditor, app, ...(kmipPort === undefined ? {} : { kmipPort }), clock, close: closeAll };
  } catch (e) {
    await closeAll().catch(() => undefined);
    throw e;
  }
}

function openAuditor(store: Store, dataDir: DataDir, nodeId: string, clock: Clock, logger: Logger, audit: AuditConfig): Promise<AuditWriter<StoreOperations>> {
  return openAuditWriter({
    store,
    root: dataDir.rootOfTrust,
    nodeId,
    now: () => clock.now(),
    log: logger,
    ...(audit.retentionDays === undefined ? {} : { retentionDays: audit.retentionDays }),
    ...(audit.sinkPath === undefined ? {} : { sinkPath: audit.sinkPath }),
    ...(audit.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: audit.checkpointIntervalMs }),
  });
}

/** Retention: pruning records the pruned prefix's last hash in a signed checkpoint, so the rest still verifies. Returns the timer's stop. */
function pruneEvery(intervalMs: number, auditor: AuditWriter<StoreOperations>, logger: Logger): () => void {
  if (intervalMs === 0) return () => {};
  const timer = setInterval(() => {
    auditor.prune().then(
      ({ pruned }) => pruned > 0 && logger.info({ pruned }, "audit records past retention pruned"),
      (e: unknown) => logger.error({ err: { name: (e as Error).name, code: (e as { code?: unknown }).code } }, "audit pruning failed"),
    );
  }, intervalMs).unref();
  return () => clearInterval(timer);
}
