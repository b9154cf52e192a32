// Drives `tresor kms-plugin` as kube-apiserver would: the plugin runs as a child process, and a
// gRPC client built at run time from the .proto in the repository (proto/kubernetes/kms/v2/
// api.proto, written from kubernetes' staging/src/k8s.io/kms/apis/v2/api.proto) calls it over
// the unix socket.

import { spawn } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { KMS_V2_PROTO } from "../../src/cli/kms-plugin/grpc.js";
import type { DecryptRequest, EncryptResponse, StatusResponse } from "../../src/cli/kms-plugin/plugin.js";
import { CLI_MAIN, childEnv } from "./server.js";

export type { DecryptRequest, EncryptResponse, StatusResponse } from "../../src/cli/kms-plugin/plugin.js";

export interface KmsV2Client {
  status(): Promise<StatusResponse>;
  encrypt(request: { plaintext: Buffer; uid: string }): Promise<EncryptResponse>;
  decrypt(request: DecryptRequest): Promise<{ plaintext: Buffer }>;
  close(): void;
}

/** The proto as the apiserver's side sees it: names as written (key_id), bytes as Buffers. */
export function loadKmsV2Definition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(KMS_V2_PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
}

type UnaryMethod = (request: object, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

export function kmsV2Client(socketPath: string, deadlineMs = 10_000): KmsV2Client {
  const loaded = grpc.loadPackageDefinition(loadKmsV2Definition()) as unknown as { v2: { KeyManagementService: grpc.ServiceClientConstructor } };
  const client = new loaded.v2.KeyManagementService(`unix:${socketPath}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, UnaryMethod>;
  const call = <T>(method: string, request: object) =>
    new Promise<T>((resolve, reject) => {
      client[method]!.call(client, request, { deadline: Date.now() + deadlineMs }, (err, response) => (err ? reject(err) : resolve(response as T)));
    });
  return {
    status: () => call<StatusResponse>("Status", {}),
    encrypt: (request) => call<EncryptResponse>("Encrypt", request),
    decrypt: (request) => call<{ plaintext: Buffer }>("Decrypt", request),
    close: () => client.close(),
  };
}

export interface RunningPlugin {
  /** Everything written so far on stdout and stderr. */
  output(): string;
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after 10 s; the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Spawns `tresor kms-plugin ...args` with credentials from env; resolves once it logs "listening",
 * rejects with its output if it exits first.
 */
export async function startPlugin(args: readonly string[], env: Record<string, string>, timeoutMs = 20_000): Promise<RunningPlugin> {
  const plugin = spawnPlugin(args, env);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      plugin.kill("SIGKILL");
      reject(new Error(`kms-plugin did not log "listening" within ${timeoutMs} ms:\n${plugin.output()}`));
    }, timeoutMs);
    const check = setInterval(() => {
      if (/"msg":"listening"/.test(plugin.output())) {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    }, 20);
    void plugin.exited.then((code) => {
      clearTimeout(timer);
      clearInterval(check);
      reject(new Error(`kms-plugin exited with ${code} before listening:\n${plugin.output()}`));
    });
  });
  return plugin;
}

/** Spawns the plugin without waiting (for runs expected to fail at startup). */
export function spawnPlugin(args: readonly string[], env: Record<string, string>): RunningPlugin {
  const child = spawn(process.execPath, [CLI_MAIN, "kms-plugin", ...args], { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    kill: (signal) => {
      child.kill(signal);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    },
  };
}
