// Shared plumbing of the client commands: connection options, credentials, output and exit codes.
// Exit codes: 0 success, 1 the request failed, 2 usage error (bad options or input).

import { readFile } from "node:fs/promises";
import { createReadStream } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { KmsClient, KmsClientError } from "../sdk/index.js";
import { printErrorLines } from "./output.js";
import { loadProfile } from "./config-file.js";
import { UsageError, cliErrorLines } from "./vocabulary.js";

export { printJson, printLines } from "./output.js";
export { contextArg, UsageError } from "./vocabulary.js";

export const DEFAULT_ENDPOINT = "http://127.0.0.1:8400";
export const DEFAULT_DATA_DIR = "./tresor-data";
export const CREDENTIALS_FILE = "admin-credentials.json";

export interface ClientCommandOptions {
  endpoint: string;
  region?: string;
  dataDir: string;
  json?: boolean;
  ca?: string;
  profile?: string;
  /** From the profile only: a JSON file with secretId and secretKey, read instead of <data-dir>/admin-credentials.json. */
  credentialsFile?: string;
}


/** Adds --endpoint, --region, --data-dir, --json and --ca to a command that talks to the server. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--endpoint <url>", "server URL, or several nodes' URLs separated by commas (tried in turn when one cannot serve)")
        .env("TRESOR_ENDPOINT")
        .default(DEFAULT_ENDPOINT),
    )
    .addOption(new Option("--region <region>", "region sent with each request").env("TRESOR_REGION"))
    .addOption(
      new Option("--data-dir <dir>", `where ${CREDENTIALS_FILE} is read when TRESOR_SECRET_ID/KEY are unset`)
        .env("TRESOR_DATA_DIR")
        .default(DEFAULT_DATA_DIR),
    )
    .addOption(new Option("--json", "print one JSON object on stdout"))
    .addOption(new Option("--ca <file>", "extra trusted CA certificate (PEM) for an https endpoint").env("TRESOR_CA"))
    .addOption(new Option("--profile <name>", "a profile of the config file (~/.config/tresor/config.toml, or TRESOR_CONFIG); default: [default]").env("TRESOR_PROFILE"));
}

/**
 * Makes commander's own usage errors (missing option, bad argument, unknown option) exit with 2.
 * Set on a command before its subcommands are added: they inherit it.
 */
export function exitTwoOnUsageError(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });
}

interface Credentials {
  secretId: string;
  secretKey: string;
  /** Temporary credentials' token (from STS AssumeRole). */
  token?: string;
  region?: string;
}

/** Env TRESOR_SECRET_ID + TRESOR_SECRET_KEY (+ TRESOR_TOKEN for temporary ones), else `credentialsFile`, else <data-dir>/admin-credentials.json. */
export async function loadCredentials(dataDir: string, credentialsFile?: string): Promise<Credentials> {
  const envId = process.env["TRESOR_SECRET_ID"];
  const envKey = process.env["TRESOR_SECRET_KEY"];
  const envToken = process.env["TRESOR_TOKEN"];
  if (envId || envKey) {
    if (!envId || !envKey) throw new UsageError("set both TRESOR_SECRET_ID and TRESOR_SECRET_KEY, or neither");
    return { secretId: envId, secretKey: envKey, ...(envToken ? { token: envToken } : {}) };
  }
  if (envToken) throw new UsageError("TRESOR_TOKEN needs TRESOR_SECRET_ID and TRESOR_SECRET_KEY (the temporary ones it belongs to)");
  const file = credentialsFile ?? path.join(dataDir, CREDENTIALS_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UsageError(
        `no credentials: set TRESOR_SECRET_ID and TRESOR_SECRET_KEY, or point --data-dir at a directory made by "tresor init" (no ${file})`,
      );
    }
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${file} is not valid JSON`);
  }
  const record = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const { secretId, secretKey, region } = record;
  if (typeof secretId !== "string" || typeof secretKey !== "string" || secretId === "" || secretKey === "") {
    throw new UsageError(`${file} must hold "secretId" and "secretKey" strings`);
  }
  return typeof region === "string" && region !== "" ? { secretId, secretKey, region } : { secretId, secretKey };
}

/** Builds a client from the command's options; the caller closes it. */
export async function createClient(opts: ClientCommandOptions): Promise<KmsClient> {
  const credentials = await loadCredentials(opts.dataDir, opts.credentialsFile);
  let ca: Buffer | undefined;
  if (opts.ca !== undefined) {
    try {
      ca = await readFile(opts.ca);
    } catch (err) {
      throw new UsageError(`cannot read --ca ${opts.ca}: ${(err as Error).message}`);
    }
  }
  const region = opts.region ?? credentials.region;
  const endpoints = opts.endpoint.split(",").map((e) => e.trim());
  if (endpoints.some((e) => e === "")) throw new UsageError(`--endpoint has an empty entry: give URLs separated by single commas`);
  try {
    return new KmsClient({
      ...(endpoints.length === 1 ? { endpoint: endpoints[0]! } : { endpoints }),
      secretId: credentials.secretId,
      secretKey: credentials.secretKey,
      ...(credentials.token === undefined ? {} : { token: credentials.token }),
      ...(region === undefined ? {} : { region }),
      ...(ca === undefined ? {} : { ca }),
    });
  } catch (err) {
    // The client's messages name the option and never include the secret.
    throw new UsageError((err as Error).message.replace(/^"(\w+)(?:\[\d+\])?"/, (_, name: string) => optionLabel(name)));
  }
}

function optionLabel(name: string): string {
  switch (name) {
    case "endpoint":
    case "endpoints":
      return "--endpoint";
    case "region":
      return "--region";
    case "ca":
      return "--ca";
    default:
      return `"${name}"`;
  }
}

/** The command's options, including any that an ancestor command parsed; a profile's settings fill what no flag or variable gave. */
export function clientOptions(cmd: Command): ClientCommandOptions {
  const opts = cmd.optsWithGlobals<ClientCommandOptions>();
  const profile = loadProfile(opts.profile);
  const fromProfile = (name: "endpoint" | "region" | "dataDir" | "ca"): boolean => {
    const source = cmd.getOptionValueSourceWithGlobals(name);
    return profile[name] !== undefined && (source === undefined || source === "default");
  };
  for (const name of ["endpoint", "region", "dataDir", "ca"] as const) if (fromProfile(name)) opts[name] = profile[name]!;
  if (profile.credentialsFile !== undefined) opts.credentialsFile = profile.credentialsFile;
  return opts;
}

/**
 * Runs a command body with a client, prints errors as `error: <Code>: <Message>` and sets the exit
 * code. `prepare` runs first, without a client, so bad input fails before any request.
 */
export async function runWithClient<T>(
  cmd: Command,
  prepare: (opts: ClientCommandOptions) => Promise<T> | T,
  body: (client: KmsClient, input: T, opts: ClientCommandOptions) => Promise<void>,
): Promise<void> {
  let client: KmsClient | undefined;
  try {
    const opts = clientOptions(cmd);
    const input = await prepare(opts);
    client = await createClient(opts);
    await body(client, input, opts);
  } catch (err) {
    reportError(err);
  } finally {
    client?.close();
  }
}

export function reportError(err: unknown): void {
  if (err instanceof UsageError) {
    printErrorLines(`error: ${err.message}`);
    process.exitCode = 2;
  } else if (err instanceof KmsClientError) {
    printErrorLines(...cliErrorLines(err));
    process.exitCode = 1;
  } else {
    printErrorLines(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

/** An argParser for an integer option in [min, max]. */
export function integerArg(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}.`);
    return n;
  };
}

/** Reads a file, or stdin for "-", refusing more than maxBytes without reading it all. */
export async function readInput(source: string, maxBytes: number, what: string): Promise<Buffer> {
  let stream: NodeJS.ReadableStream & { destroy(): void };
  if (source === "-") {
    stream = process.stdin;
  } else {
    stream = createReadStream(source);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
      size += buf.length;
      if (size > maxBytes) {
        throw new UsageError(`${what} is larger than ${maxBytes} bytes`);
      }
      chunks.push(buf);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${source === "-" ? "stdin" : source}: ${(err as Error).message}`);
  } finally {
    if (source !== "-") stream.destroy();
  }
  return Buffer.concat(chunks);
}
