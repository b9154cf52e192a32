// `tresor kms-plugin`: the Kubernetes KMS v2 plugin. A long-running client of Tresor's API (through
// tresor/sdk, so the access key's policies and the audit log apply) that serves kube-apiserver
// gRPC on a unix socket. Startup refuses a key the access key may not use; SIGTERM or SIGINT lets
// calls in flight finish, removes the socket and exits. docs/kubernetes.md says how to deploy it.

import { Command, Option } from "commander";
import { pino } from "pino";
import type { KmsClient } from "../sdk/index.js";
import { KmsClientError } from "../sdk/index.js";
import { UsageError, addClientOptions, integerArg, runWithClient } from "./client-options.js";
import { createPluginServer } from "./kms-plugin/grpc.js";
import { HealthCache } from "./kms-plugin/health.js";
import { KmsPlugin, ProbeError, healthReason } from "./kms-plugin/plugin.js";
import { bindPrivateSocket, socketPathArg } from "./kms-plugin/socket.js";
import { KEY_HELP, aliasOf, isKeyId, resolveKeyId } from "./vocabulary.js";
import type * as grpc from "@grpc/grpc-js";
import { ServerCredentials } from "@grpc/grpc-js";

const DEFAULT_STATUS_CACHE_MS = 5_000;
/** A Status probe that takes longer reports not ok (kube-apiserver's own KMS call time-out defaults to 3 s). */
const PROBE_TIMEOUT_MS = 2_500;
/** How long calls in flight may take to finish after SIGTERM before they are cut. */
const SHUTDOWN_GRACE_MS = 5_000;
const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

interface PluginFlags {
  socket: string;
  keyId: string;
  statusCacheMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

export function registerKmsPluginCommand(program: Command): void {
  const command = addClientOptions(
    program
      .command("kms-plugin")
      .description("serve the Kubernetes KMS v2 plugin API on a unix socket, encrypting under one Tresor key")
      .requiredOption("--socket <path>", "unix socket to serve on (created with mode 0600; a stale one is replaced, a live one refused)")
      .requiredOption("--key-id <key>", `${KEY_HELP}, that encrypts the cluster's data keys (an alias is looked up once, at start)`)
      .addOption(
        new Option("--status-cache-ms <ms>", "how long a Status probe (DescribeKey, Encrypt, Decrypt) is reused, in milliseconds")
          .argParser(integerArg(0, 600_000))
          .default(DEFAULT_STATUS_CACHE_MS),
      )
      .addOption(new Option("--log-level <level>", "log level of the JSON lines on stdout").choices(LOG_LEVELS).default("info")),
  );
  // The client options' --json has nothing to print here: the output is the JSON log.
  command.options.find((o) => o.long === "--json")?.hideHelp();
  command.action(async (flags: PluginFlags, cmd: Command) => {
    await runWithClient(
      cmd,
      () => {
        if (!isKeyId(flags.keyId) && aliasOf(flags.keyId) === "") {
          throw new UsageError(`--key-id must be a KeyId, an alias or alias/NAME, got ${JSON.stringify(flags.keyId)}`);
        }
        return { socketPath: socketPathArg(flags.socket) };
      },
      (client, { socketPath }) => runPlugin(client, flags, socketPath),
    );
  });
}

async function runPlugin(client: KmsClient, flags: PluginFlags, socketPath: string): Promise<void> {
  const logger = pino({ level: flags.logLevel, base: { service: "tresor-kms-plugin" } });
  const cmk = await pluginKey(client, flags.keyId);
  const plugin = new KmsPlugin(client, cmk);
  let keyId: string;
  try {
    keyId = await plugin.probe();
  } catch (err) {
    // Exit code 1, as for any request that failed.
    throw new Error(`cannot use key ${cmk}: ${startupReason(err)}`);
  }
  const health = new HealthCache(() => plugin.probe(), healthReason, { cacheMs: flags.statusCacheMs, timeoutMs: PROBE_TIMEOUT_MS });
  health.succeeded(keyId);
  const { server, idle } = createPluginServer(plugin, health, logger);
  let address = "";
  const socket = await bindPrivateSocket(socketPath, async (temporary) => {
    await bind(server, temporary);
    address = temporary;
  });
  process.once("exit", () => socket.remove());
  logger.info({ socket: socket.path, keyId, endpoint: client.endpoint }, "listening");

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  logger.info({ signal }, "shutting down");
  await shutdown(server, address, idle);
  socket.remove();
  logger.info("stopped");
}

/**
 * The KeyId --key-id names. An alias is looked up once, here: the plugin keeps that key until it
 * restarts, since it decrypts only what that key encrypted (docs/kubernetes.md).
 */
async function pluginKey(client: KmsClient, ref: string): Promise<string> {
  try {
    return await resolveKeyId(client, ref);
  } catch (err) {
    const what = `cannot look up the alias ${JSON.stringify(aliasOf(ref))}`;
    if (!(err instanceof KmsClientError)) throw new Error(`${what}: ${healthReason(err)}`);
    const hint = err.code === "UnauthorizedOperation" ? " (an alias needs kms:ListKeyDetail in the access key's policy; or give the KeyId, docs/kubernetes.md)" : "";
    throw new Error(`${what}: ${err.code}: ${err.message}${hint}`);
  }
}

/** The startup refusal: what Tresor said, and what the access key needs. */
function startupReason(err: unknown): string {
  if (err instanceof KmsClientError) {
    const hint = err.code === "UnauthorizedOperation" ? " (the access key needs kms:DescribeKey, kms:Encrypt and kms:Decrypt on this key, docs/kubernetes.md)" : "";
    return `${err.code}: ${err.message}${hint}`;
  }
  if (err instanceof ProbeError) return err.message;
  return healthReason(err);
}

function bind(server: grpc.Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Stops taking calls, lets those in flight finish (for at most SHUTDOWN_GRACE_MS), then closes
 * every connection: the apiserver holds its connection open, so waiting for it to go would
 * always take the whole grace period.
 */
async function shutdown(server: grpc.Server, address: string, idle: () => Promise<void>): Promise<void> {
  server.unbind(address);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([idle(), new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
  clearTimeout(timer);
  server.forceShutdown();
}
