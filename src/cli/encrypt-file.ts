// `tresor encrypt-file` / `tresor decrypt-file`: files of any size through the Encryption SDK,
// streaming, with a progress bar on a terminal and atomic output (a temporary file beside OUT,
// renamed into place on success and removed on any failure).

import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, unlinkSync } from "node:fs";
import { open, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Command, Option } from "commander";
import {
  DEFAULT_FRAME_LENGTH,
  DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
  DecryptStream,
  EncryptionSdkError,
  EncryptStream,
  fetchPqRecipient,
  KMS_PROVIDER_ID,
  KmsKeyring,
  MAX_BACKUP_KEYS,
  MAX_FRAME_LENGTH,
  PostQuantumKeyring,
  PQ_PROVIDER_ID,
  SUITE_NAMES,
  type DecryptedDataKey,
  type EncryptedDataKey,
  type Keyring,
  type MasterKey,
  type MessageInfo,
  type SuiteName,
} from "../sdk/encryption/index.js";
import { noDataKey } from "../sdk/encryption/keyring.js";
import { addClientOptions, clientOptions, exitTwoOnUsageError, integerArg, printJson, reportError, UsageError, type ClientCommandOptions } from "./client-options.js";
import { masterKeys, resolveRegions, type FileKeyringOptions, type ResolvedRegions } from "./file-keyring.js";
import { drawProgress, printErrorLines } from "./output.js";
import { CONTEXT_HELP, contextArg, isKeyId, resolveKeyId } from "./vocabulary.js";

/** Inputs at least this large get a progress bar when stderr is a terminal. */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;
const PROGRESS_INTERVAL_MS = 200;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A pass-through that counts bytes and draws a bar with rate and ETA on stderr. */
class Progress extends Transform {
  #done = 0;
  #lastDraw = 0;
  readonly #started = Date.now();
  constructor(
    readonly total: number | undefined,
    readonly enabled: boolean,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.#done += chunk.length;
    if (this.enabled && Date.now() - this.#lastDraw >= PROGRESS_INTERVAL_MS) this.draw(false);
    this.push(chunk);
    cb();
  }
  draw(final: boolean): void {
    if (!this.enabled) return;
    this.#lastDraw = Date.now();
    const seconds = Math.max((Date.now() - this.#started) / 1000, 0.001);
    const rate = this.#done / seconds;
    const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    let line: string;
    if (this.total !== undefined && this.total > 0) {
      const fraction = Math.min(this.#done / this.total, 1);
      const width = 30;
      const filled = Math.round(fraction * width);
      const eta = rate > 0 ? (this.total - this.#done) / rate : 0;
      line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${mib(this.#done)} of ${mib(this.total)}, ${mib(rate)}/s, ETA ${clock(eta)}`;
    } else {
      line = `${mib(this.#done)}, ${mib(rate)}/s`;
    }
    drawProgress(line, final);
  }
  get bytes(): number {
    return this.#done;
  }
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function inputStream(source: string): Promise<{ stream: Readable; size: number | undefined }> {
  if (source === "-") return { stream: process.stdin, size: undefined };
  let size: number;
  try {
    const st = await stat(source);
    if (!st.isFile()) throw new UsageError(`${source} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${source}: ${(err as Error).message}`);
  }
  return { stream: createReadStream(source, { highWaterMark: 1024 * 1024 }), size };
}

/** Streams input → transform → OUT, atomically for a file. Returns the bytes read. */
async function runFile(inPath: string, outPath: string, transform: EncryptStream | DecryptStream): Promise<{ read: number; written: number }> {
  if (inPath !== "-" && outPath !== "-" && path.resolve(inPath) === path.resolve(outPath)) throw new UsageError("IN and OUT must differ");
  const { stream, size } = await inputStream(inPath);
  const progress = new Progress(size, process.stderr.isTTY === true && (size === undefined || size >= PROGRESS_MIN_BYTES));
  let written = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      written += chunk.length;
      cb(null, chunk);
    },
  });
  if (outPath === "-") {
    await pipeline(stream, progress, transform, counter, process.stdout as Writable, { end: false });
    progress.draw(true);
    return { read: progress.bytes, written };
  }
  const dir = path.dirname(path.resolve(outPath));
  const tmp = path.join(dir, `.${path.basename(outPath)}.${randomBytes(6).toString("hex")}.tmp`);
  const removeTmp = (): void => {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  };
  const onSignal = (): void => {
    removeTmp();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const handle = await open(tmp, "wx", 0o600).catch((err: Error) => {
      throw new UsageError(`cannot create a temporary file in ${dir}: ${err.message}`);
    });
    await pipeline(stream, progress, transform, counter, createWriteStream("", { fd: handle.fd, autoClose: false }));
    await handle.sync();
    await handle.close();
    await rename(tmp, outPath);
    progress.draw(true);
    return { read: progress.bytes, written };
  } catch (err) {
    if (progress.enabled) printErrorLines("");
    await unlink(tmp).catch(() => undefined);
    throw err;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
}

async function runCommand(cmd: Command, forEncryption: boolean, body: (opts: ClientCommandOptions, regions: ResolvedRegions) => Promise<void>): Promise<void> {
  let regions: ResolvedRegions | undefined;
  try {
    const opts = clientOptions(cmd) as FileKeyringOptions & { keyId?: string[] };
    // --key-id is the CLI's one name for a key; --key is its older spelling.
    if (opts.keyId !== undefined) opts.key = [...(opts.key ?? []), ...opts.keyId];
    regions = await resolveRegions(cmd, opts, forEncryption);
    await resolveAliases(regions);
    await body(opts, regions);
  } catch (err) {
    if (err instanceof EncryptionSdkError) {
      printErrorLines(`error: ${err.code}: ${err.message}`);
      process.exitCode = 1;
    } else reportError(err);
  } finally {
    regions?.close();
  }
}

/** Each --key given as an alias becomes its key id, looked up in the key's region. */
async function resolveAliases(regions: ResolvedRegions): Promise<void> {
  for (const key of regions.keys) {
    if (isKeyId(key.keyId)) key.keyId = key.keyId.toLowerCase();
    else key.keyId = await resolveKeyId(regions.clients.get(key.region)![0]!, key.keyId);
  }
}

/** The options that say where each region is and which credentials it takes (./file-keyring.ts). */
function addRegionOptions(cmd: Command): Command {
  return cmd
    .option("--region-endpoint <region=urls>", "a region's endpoint(s), comma-separated, tried in order (repeatable)", collect)
    .option(
      "--credentials <region=path>",
      "a region's credentials: a JSON file with secretId and secretKey, or a data directory holding admin-credentials.json (repeatable); regions without use the default credentials",
      collect,
    )
    .option("--keyring <file>", 'a JSON file {"keys": [{keyId, region, endpoints, credentialsFile | secretIdEnv + secretKeyEnv, ca}]} naming each region\'s endpoints and credentials');
}

/** encrypt-file --post-quantum: the keys' public keys (GetPublicKey, once each); the data key never goes to KMS. */
async function postQuantumKeyring(keys: readonly MasterKey[]): Promise<PostQuantumKeyring> {
  const recipients = [];
  for (const k of keys) recipients.push(await fetchPqRecipient(k));
  return new PostQuantumKeyring(recipients);
}

/**
 * decrypt-file's keyring: each region's CMKs for KMS copies (KmsKeyring), each region's
 * PostQuantumCryptoDecrypt for post-quantum ones; every failure is named.
 */
function regionsKeyring(regions: readonly MasterKey[]): Keyring {
  const [first, ...rest] = regions;
  const kms = new KmsKeyring({ primary: first!, backups: rest });
  const pq = new PostQuantumKeyring([], { decryptRegions: regions });
  return {
    cacheId: kms.cacheId,
    generateDataKey: () => Promise.reject(new Error("decrypt-file's keyring does not encrypt")),
    async decryptDataKey(encryptedDataKeys, context, length): Promise<DecryptedDataKey> {
      const failures: string[] = [];
      const of = (provider: string): EncryptedDataKey[] => encryptedDataKeys.filter((e) => e.provider === provider);
      for (const [keyring, copies] of [
        [kms, of(KMS_PROVIDER_ID)],
        [pq, of(PQ_PROVIDER_ID)],
      ] as const) {
        if (copies.length === 0) continue;
        try {
          return await keyring.decryptDataKey(copies, context, length);
        } catch (err) {
          if (!(err instanceof EncryptionSdkError && err.code === "NoDataKey")) throw err;
          failures.push(...err.failures);
        }
      }
      for (const e of encryptedDataKeys) {
        if (e.provider !== KMS_PROVIDER_ID && e.provider !== PQ_PROVIDER_ID) failures.push(`key ${e.keyId} in ${e.region}: provider "${e.provider}" needs another keyring`);
      }
      throw noDataKey(failures);
    },
  };
}

function summary(info: MessageInfo | undefined, read: number, written: number, outPath: string): Record<string, unknown> {
  return {
    Suite: info?.suite,
    MessageId: info?.messageId.toString("hex"),
    EncryptionContext: info?.encryptionContext,
    EncryptedDataKeys: info?.encryptedDataKeys,
    ...(info?.decryptedWith ? { DecryptedWith: info.decryptedWith } : {}),
    BytesRead: read,
    BytesWritten: written,
    Out: outPath,
  };
}

export function registerEncryptFileCommands(program: Command): void {
  addClientOptions(
    addRegionOptions(exitTwoOnUsageError(program.command("encrypt-file"))
      .description("encrypt a file of any size under one to five CMKs (Encryption SDK message); IN and OUT may be - for stdin/stdout")
      .argument("<in>", 'plaintext file, or "-" for stdin')
      .argument("<out>", 'where the message goes (written atomically), or "-" for stdout')
      .option(
        "--key-id <key>",
        `a CMK: [REGION:]KEY[@URL[,URL…]], KEY its id, alias or alias/NAME (no REGION: the default region; no URL: the region's endpoints from --region-endpoint, --keyring or --endpoint); the first is the primary, up to ${MAX_BACKUP_KEYS} more are backups; default: the keys of --keyring`,
        collect,
      )
      .addOption(new Option("--key <key>", "the older spelling of --key-id").argParser(collect).hideHelp())
      .option("--context <context>", CONTEXT_HELP, contextArg)
      .option("--post-quantum", "the keys are post-quantum (ASYMMETRIC_DECRYPT_ML_KEM_*) keys: the data key is made here and wrapped to their public keys (GetPublicKey, once each), not generated by KMS")
      .addOption(new Option("--suite <suite>", "algorithm suite (default SM4_GCM_SM3)").choices([...SUITE_NAMES]))
      .option("--frame-size <bytes>", `plaintext bytes per frame (default ${DEFAULT_FRAME_LENGTH})`, integerArg(1, MAX_FRAME_LENGTH)),
    ),
  ).action(
    async (
      inPath: string,
      outPath: string,
      opts: { key?: string[]; context?: Record<string, string>; suite?: SuiteName; frameSize?: number; postQuantum?: boolean },
      cmd: Command,
    ) => {
      await runCommand(cmd, true, async (copts, regions) => {
        const keys = masterKeys(regions);
        if (keys.length > 1 + MAX_BACKUP_KEYS) throw new UsageError(`at most ${1 + MAX_BACKUP_KEYS} keys: one primary and ${MAX_BACKUP_KEYS} backups, got ${keys.length}`);
        const keyring = opts.postQuantum ? await postQuantumKeyring(keys) : new KmsKeyring({ primary: keys[0]!, backups: keys.slice(1) });
        let info: MessageInfo | undefined;
        const transform = new EncryptStream({
          keyring,
          ...(opts.suite === undefined ? {} : { suite: opts.suite }),
          ...(opts.frameSize === undefined ? {} : { frameLength: opts.frameSize }),
          ...(opts.context === undefined ? {} : { encryptionContext: opts.context }),
        });
        transform.once("header", (i: MessageInfo) => (info = i));
        const { read, written } = await runFile(inPath, outPath, transform);
        if (copts.json) printJson(summary(info, read, written, outPath));
        else if (outPath !== "-") printErrorLines(`encrypted ${read} bytes into ${written} bytes: ${outPath}`);
      });
    },
  );

  addClientOptions(
    addRegionOptions(exitTwoOnUsageError(program.command("decrypt-file"))
      .description("decrypt an Encryption SDK message of any size; IN and OUT may be - for stdin/stdout")
      .argument("<in>", 'the message, or "-" for stdin')
      .argument("<out>", 'where the plaintext goes (written atomically), or "-" for stdout')
      .option("--context <context>", `pairs the message's encryption context must hold: ${CONTEXT_HELP}`, contextArg)
      .addOption(new Option("--require-context <key=value>", "the older spelling of --context").argParser(contextArg).hideHelp())
      .option("--max-data-keys <n>", `refuse messages with more encrypted data keys (default ${DEFAULT_MAX_ENCRYPTED_DATA_KEYS})`, integerArg(1, 100))
      .option("--max-frame-size <bytes>", `refuse messages whose frames are longer (default ${MAX_FRAME_LENGTH}, the format's limit)`, integerArg(1, MAX_FRAME_LENGTH)),
    ),
  ).action(async (inPath: string, outPath: string, opts: { context?: Record<string, string>; requireContext?: Record<string, string>; maxDataKeys?: number; maxFrameSize?: number }, cmd: Command) => {
    const required = opts.context === undefined && opts.requireContext === undefined ? undefined : { ...opts.requireContext, ...opts.context };
    await runCommand(cmd, false, async (copts, regions) => {
      if (outPath === "-" && process.stdout.isTTY && !copts.json) {
        throw new UsageError("refusing to write binary plaintext to a terminal; give OUT or use a pipe");
      }
      // Decryption finds each encrypted data key's CMK by its region; the key id comes from the message.
      const [first, ...rest] = [...regions.clients.entries()].map(([region, clients]) => ({ keyId: "(from the message)", region, clients }));
      if (first === undefined) throw new UsageError("no region to decrypt with: give --endpoint, --region-endpoint or --keyring");
      if (rest.length > MAX_BACKUP_KEYS) throw new UsageError(`at most ${1 + MAX_BACKUP_KEYS} regions, got ${1 + rest.length}`);
      const keyring = regionsKeyring([first, ...rest]);
      let info: MessageInfo | undefined;
      const transform = new DecryptStream({
        keyring,
        ...(required === undefined ? {} : { requiredContext: required }),
        ...(opts.maxDataKeys === undefined ? {} : { maxEncryptedDataKeys: opts.maxDataKeys }),
        ...(opts.maxFrameSize === undefined ? {} : { maxFrameLength: opts.maxFrameSize }),
      });
      transform.once("header", (i: MessageInfo) => (info = i));
      const { read, written } = await runFile(inPath, outPath, transform);
      if (copts.json) printJson(summary(info, read, written, outPath));
      else if (outPath !== "-") printErrorLines(`decrypted ${read} bytes into ${written} bytes: ${outPath}`);
    });
  });
}
