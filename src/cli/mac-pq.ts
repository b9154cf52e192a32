// `tresor mac | verify-mac | pq-encrypt | pq-decrypt`: HMAC keys (GenerateMac, VerifyMac) and
// post-quantum encryption (PostQuantumCryptoEncrypt/Decrypt) through the HTTP API. ML-DSA signing
// is `tresor sign/verify` (asymmetric.ts), which sends ML-DSA keys to PostQuantumCryptoSign/Verify.

import type { Command } from "commander";
import type { KmsClient, MacAlgorithm } from "../sdk/index.js";
import { UsageError, addClientOptions, exitTwoOnUsageError, printJson, printLines, readInput, runWithClient } from "./client-options.js";
import { emitPlaintext } from "./crypto.js";
import { resolveKeyId } from "./vocabulary.js";

/** Messages and plaintexts of these actions: at most 4096 bytes. */
const MAX_MESSAGE_BYTES = 4096;
/** The largest post-quantum ciphertext (ML-KEM-1024, 4096 bytes), base64, with room for a newline. */
const MAX_PQ_CIPHERTEXT_TEXT = 7800;
const MAC_ALGORITHM_OF: Readonly<Record<string, MacAlgorithm>> = { HMAC_SHA256: "HMAC_SHA_256", HMAC_SHA384: "HMAC_SHA_384", HMAC_SHA512: "HMAC_SHA_512", HMAC_SM3: "HMAC_SM3" };

/** The key id and its MAC algorithm (from its spec). */
async function macKey(client: KmsClient, key: string): Promise<{ KeyId: string; MacAlgorithm: MacAlgorithm }> {
  const keyId = await resolveKeyId(client, key);
  const meta = (await client.describeKey({ KeyId: keyId })).KeyMetadata ?? {};
  const algorithm = MAC_ALGORITHM_OF[meta.KeySpec ?? ""];
  if (algorithm === undefined) throw new UsageError(`key ${keyId} is a ${meta.KeyUsage ?? "?"} key: mac and verify-mac need a GENERATE_VERIFY_MAC key`);
  return { KeyId: keyId, MacAlgorithm: algorithm };
}

function macOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--key-id <key>", "a GENERATE_VERIFY_MAC key: its id, alias, or alias/NAME")
    .option("--in <file>", `the message (at most ${MAX_MESSAGE_BYTES} bytes), or "-" for stdin`, "-");
}

export function registerMacAndPostQuantumCommands(program: Command): void {
  addClientOptions(macOptions(exitTwoOnUsageError(program.command("mac")).description("HMAC of a message with an HMAC key; prints the base64 MAC"))).action(
    async (opts: { keyId: string; in: string }, cmd: Command) => {
      await runWithClient(
        cmd,
        () => readInput(opts.in, MAX_MESSAGE_BYTES, "the message"),
        async (client, message, { json }) => {
          const res = await client.generateMac({ ...(await macKey(client, opts.keyId)), Message: message.toString("base64") });
          if (json) printJson(res);
          else printLines(res.Mac ?? "");
        },
      );
    },
  );

  addClientOptions(
    macOptions(exitTwoOnUsageError(program.command("verify-mac")).description("check a MAC; prints valid or invalid and exits 0 or 1")).requiredOption("--mac <base64>", "the MAC, base64"),
  ).action(async (opts: { keyId: string; in: string; mac: string }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => readInput(opts.in, MAX_MESSAGE_BYTES, "the message"),
      async (client, message, { json }) => {
        const res = await client.verifyMac({ ...(await macKey(client, opts.keyId)), Message: message.toString("base64"), Mac: opts.mac.trim() });
        const valid = res.MacValid === true;
        if (json) printJson(res);
        else printLines(valid ? "valid" : "invalid");
        if (!valid) process.exitCode = 1;
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("pq-encrypt"))
      .description(`encrypt at most ${MAX_MESSAGE_BYTES} bytes to an ML-KEM key (hybrid, docs/formats.md); prints the CiphertextBlob`)
      .requiredOption("--key-id <key>", "an ASYMMETRIC_DECRYPT_ML_KEM_* key: its id, alias, or alias/NAME")
      .option("--in <file>", 'plaintext file, or "-" for stdin', "-"),
  ).action(async (opts: { keyId: string; in: string }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => readInput(opts.in, MAX_MESSAGE_BYTES, "the plaintext"),
      async (client, data, { json }) => {
        const res = await client.postQuantumCryptoEncrypt({ KeyId: await resolveKeyId(client, opts.keyId), PlainText: data.toString("base64") });
        data.fill(0);
        if (json) printJson(res);
        else printLines(res.CiphertextBlob ?? "");
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("pq-decrypt"))
      .description("decrypt a pq-encrypt CiphertextBlob; writes the raw plaintext to stdout or --out")
      .option("--in <file>", 'file holding the CiphertextBlob, or "-" for stdin', "-")
      .option("--out <file>", "write the plaintext here (mode 0600)"),
  ).action(async (opts: { in: string; out?: string }, cmd: Command) => {
    await runWithClient(
      cmd,
      async ({ json }) => {
        if (opts.out === undefined && !json && process.stdout.isTTY) throw new UsageError("refusing to write binary plaintext to a terminal; use --out FILE, --json or a pipe");
        const blob = (await readInput(opts.in, MAX_PQ_CIPHERTEXT_TEXT, "the ciphertext")).toString("utf8").trim();
        if (blob === "") throw new UsageError("no ciphertext on input");
        return blob;
      },
      async (client, blob, { json }) => {
        const res = await client.postQuantumCryptoDecrypt({ CiphertextBlob: blob });
        await emitPlaintext(res, res.PlainText, opts.out, json === true);
      },
    );
  });
}

/** Whether `keyId` is an ML-DSA key, which `tresor sign/verify` send to the post-quantum actions. */
export async function isPostQuantumSigningKey(client: KmsClient, keyId: string): Promise<boolean> {
  const usage = (await client.describeKey({ KeyId: keyId })).KeyMetadata?.KeyUsage ?? "";
  return usage.startsWith("ASYMMETRIC_SIGN_VERIFY_ML_DSA_");
}

/** `key create --key-spec` values of HMAC keys. */
export const HMAC_KEY_SPECS: readonly string[] = Object.keys(MAC_ALGORITHM_OF);
