// Server configuration: command-line flags first, then TRESOR_* environment variables, then defaults.

import { isIP } from "node:net";
import { SYMMETRIC_KEY_SPECS, type KeySpec } from "../keys/key.js";
import { DEFAULT_DATA_DIR, checkRegion, isPostgresUrl } from "./data-dir.js";
import { isNodeId } from "./node-id.js";

export interface ServeConfig {
  dataDir: string;
  host: string;
  port: number;
  /** undefined: the region recorded in the data directory. */
  region: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  insecureHttp: boolean;
  /** Refuse requests whose signature does not cover X-TC-Action. */
  requireSignedAction: boolean;
  /** Only warn (instead of refusing to start) when the data directory or its files are readable by group or others. */
  allowInsecurePermissions: boolean;
  defaultKeySpec: KeySpec;
  cmkLimit: number;
  bodyLimit: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** undefined: the embedded SQLite store in the data directory; else a PostgreSQL connection string. */
  store: string | undefined;
  /** Names this node in logs, metrics and audit records; default: the one kept in the data directory (node-id.ts). */
  nodeId: string | undefined;
  /** Audit records older than this many days are pruned (default 90). */
  auditRetentionDays: number;
  /** A JSON-lines file every committed audit record is appended to, for shipping to a log system. */
  auditSink: string | undefined;
  /** Requests per second per account; undefined: no limit. */
  rateLimit: number | undefined;
  /** Full audit records per source address and minute for requests refused before authentication. */
  authFailureRecords: number;
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** The KMIP listener: its port (undefined: none), its TLS files and the client CA. */
  kmip: { port: number; cert: string; key: string; clientCa: string; maxMessageBytes: number } | undefined;
}

export interface ServeFlags {
  dataDir?: string;
  host?: string;
  port?: string;
  region?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  requireSignedAction?: boolean;
  allowInsecurePermissions?: boolean;
  defaultKeySpec?: string;
  cmkLimit?: string;
  bodyLimit?: string;
  logLevel?: string;
  store?: string;
  nodeId?: string;
  auditRetentionDays?: string;
  auditSink?: string;
  rateLimit?: string;
  authFailureRecords?: string;
  maxConnections?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  keepAliveTimeout?: string;
  kmipPort?: string;
  kmipCert?: string;
  kmipKey?: string;
  kmipClientCa?: string;
  kmipMaxMessage?: string;
}

/** --kmip-port with its TLS files: all three files are required, since KMIP is always mutual TLS. */
function kmipSettings(flags: ServeFlags, env: NodeJS.ProcessEnv): ServeConfig["kmip"] {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] === "" ? undefined : env[name]);
  const port = pick(flags.kmipPort, "TRESOR_KMIP_PORT");
  const cert = pick(flags.kmipCert, "TRESOR_KMIP_CERT");
  const key = pick(flags.kmipKey, "TRESOR_KMIP_KEY");
  const clientCa = pick(flags.kmipClientCa, "TRESOR_KMIP_CLIENT_CA");
  if (port === undefined) {
    if (cert ?? key ?? clientCa) throw new ConfigError("--kmip-cert, --kmip-key and --kmip-client-ca need --kmip-port");
    return undefined;
  }
  if (!cert || !key || !clientCa) throw new ConfigError("--kmip-port needs --kmip-cert, --kmip-key and --kmip-client-ca: KMIP is served over mutual TLS only");
  return {
    port: integerSetting("--kmip-port", port, 0, 65535),
    cert,
    key,
    clientCa,
    maxMessageBytes: integerSetting("--kmip-max-message", pick(flags.kmipMaxMessage, "TRESOR_KMIP_MAX_MESSAGE") ?? String(1024 * 1024), 1024, 64 * 1024 * 1024),
  };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function integerSetting(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

/** An integer setting that is off when absent, empty or 0. */
function optionalInteger(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || text === "" || text === "0") return undefined;
  return integerSetting(name, text, min, max);
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

export function resolveServeConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const pick = (flag: string | undefined, envName: string) => flag ?? env[envName];
  const region = pick(flags.region, "TRESOR_REGION");
  if (region !== undefined) {
    try {
      checkRegion(region);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
  const keySpec = pick(flags.defaultKeySpec, "TRESOR_DEFAULT_KEY_SPEC") ?? "SM4";
  if (!(SYMMETRIC_KEY_SPECS as readonly string[]).includes(keySpec)) throw new ConfigError(`--default-key-spec must be one of ${SYMMETRIC_KEY_SPECS.join(", ")}`);
  const logLevel = pick(flags.logLevel, "TRESOR_LOG_LEVEL") ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new ConfigError(`--log-level must be debug, info, warn or error`);
  const config: ServeConfig = {
    dataDir: pick(flags.dataDir, "TRESOR_DATA_DIR") ?? DEFAULT_DATA_DIR,
    host: pick(flags.host, "TRESOR_HOST") ?? "127.0.0.1",
    port: integerSetting("--port", pick(flags.port, "TRESOR_PORT") ?? "8400", 0, 65535),
    region,
    tlsCert: pick(flags.tlsCert, "TRESOR_TLS_CERT"),
    tlsKey: pick(flags.tlsKey, "TRESOR_TLS_KEY"),
    insecureHttp: flags.insecureHttp ?? ["1", "true", "yes"].includes(env.TRESOR_INSECURE_HTTP ?? ""),
    requireSignedAction: flags.requireSignedAction ?? ["1", "true", "yes"].includes(env.TRESOR_REQUIRE_SIGNED_ACTION ?? ""),
    allowInsecurePermissions: flags.allowInsecurePermissions ?? ["1", "true", "yes"].includes(env.TRESOR_ALLOW_INSECURE_PERMISSIONS ?? ""),
    defaultKeySpec: keySpec as KeySpec,
    cmkLimit: integerSetting("--cmk-limit", pick(flags.cmkLimit, "TRESOR_CMK_LIMIT") ?? "10000", 1, 10_000_000),
    bodyLimit: integerSetting("--body-limit", pick(flags.bodyLimit, "TRESOR_BODY_LIMIT") ?? String(64 * 1024), 1024, 16 * 1024 * 1024),
    logLevel: logLevel as ServeConfig["logLevel"],
    store: pick(flags.store, "TRESOR_STORE"),
    nodeId: pick(flags.nodeId, "TRESOR_NODE_ID"),
    auditRetentionDays: integerSetting("--audit-retention-days", pick(flags.auditRetentionDays, "TRESOR_AUDIT_RETENTION_DAYS") ?? "90", 1, 36_500),
    auditSink: pick(flags.auditSink, "TRESOR_AUDIT_SINK"),
    rateLimit: optionalInteger("--rate-limit", pick(flags.rateLimit, "TRESOR_RATE_LIMIT"), 1, 1_000_000),
    authFailureRecords: integerSetting("--auth-failure-records", pick(flags.authFailureRecords, "TRESOR_AUTH_FAILURE_RECORDS") ?? "100", 1, 1_000_000),
    maxConnections: integerSetting("--max-connections", pick(flags.maxConnections, "TRESOR_MAX_CONNECTIONS") ?? "1024", 1, 1_000_000),
    headersTimeoutMs: 1000 * integerSetting("--headers-timeout", pick(flags.headersTimeout, "TRESOR_HEADERS_TIMEOUT") ?? "10", 1, 600),
    requestTimeoutMs: 1000 * integerSetting("--request-timeout", pick(flags.requestTimeout, "TRESOR_REQUEST_TIMEOUT") ?? "20", 1, 3600),
    keepAliveTimeoutMs: 1000 * integerSetting("--keep-alive-timeout", pick(flags.keepAliveTimeout, "TRESOR_KEEP_ALIVE_TIMEOUT") ?? "65", 1, 3600),
    kmip: kmipSettings(flags, env),
  };
  if (config.headersTimeoutMs > config.requestTimeoutMs) throw new ConfigError("--headers-timeout must not be longer than --request-timeout");
  if (config.store !== undefined && !isPostgresUrl(config.store)) {
    throw new ConfigError("--store must be a postgres:// or postgresql:// connection string (leave it out for the embedded SQLite store)");
  }
  if (config.nodeId !== undefined && !isNodeId(config.nodeId)) throw new ConfigError("--node-id must be 1-128 printable ASCII characters without spaces");
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) throw new ConfigError("--tls-cert and --tls-key must be given together");
  if (!config.tlsCert && !isLoopback(config.host) && !config.insecureHttp) {
    throw new ConfigError(`refusing to serve plain HTTP on the non-loopback address ${config.host}: give --tls-cert and --tls-key, or --insecure-http`);
  }
  return config;
}
