// `tresor encrypt | decrypt | datakey | random`: the symmetric crypto actions through the HTTP API.

import { writeFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { MAX_PLAINTEXT_BYTES, encodeEncryptionContext } from "../sdk/index.js";
import type { EncryptionContext, KmsClient } from "../sdk/index.js";
import {
  UsageError,
  addClientOptions,
  contextArg,
  exitTwoOnUsageError,
  integerArg,
  printJson,
  printLines,
  readInput,
  runWithClient,
} from "./client-options.js";
import { CONTEXT_HELP, KEY_HELP, keyAlgorithm, resolveKeyId } from "./vocabulary.js";

/** A ciphertext blob of a 4096-byte plaintext is well under this; anything bigger is not a blob. */
const MAX_CIPHERTEXT_INPUT_BYTES = 64 * 1024;
const MAX_DATA_KEY_BYTES = 1024;
/** One RSA-4096 block; SM2 ciphertexts are at most 256 bytes. */
const MAX_ASYMMETRIC_CIPHERTEXT_BYTES = 512;

interface DecryptOptions {
  in: string;
  context?: EncryptionContext;
  out?: string;
  asymmetric?: boolean;
  keyId?: string;
  algorithm?: "SM2" | "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "RSAES_PKCS1_V1_5";
}

export function registerCryptoCommands(program: Command): void {
  addClientOptions(
    exitTwoOnUsageError(program.command("encrypt"))
      .description(`encrypt at most ${MAX_PLAINTEXT_BYTES} bytes under a CMK; prints the CiphertextBlob`)
      .requiredOption("--key-id <key>", KEY_HELP)
      .option("--in <file>", 'plaintext file, or "-" for stdin', "-")
      .option("--context <context>", CONTEXT_HELP, contextArg),
  ).action(async (opts: { keyId: string; in: string; context?: EncryptionContext }, cmd: Command) => {
    await runWithClient(
      cmd,
      () =>
        readInput(opts.in, MAX_PLAINTEXT_BYTES, "the plaintext").catch((err: unknown) => {
          throw err instanceof UsageError && err.message.includes("larger than") ? new UsageError(`${err.message}: for larger data use tresor encrypt-file`) : err;
        }),
      async (client, data, { json }) => {
        const res = await client.encrypt({
          KeyId: await resolveKeyId(client, opts.keyId),
          Plaintext: data.toString("base64"),
          ...contextField(opts.context),
        });
        data.fill(0);
        if (json) printJson(res);
        else printLines(res.CiphertextBlob ?? "");
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("decrypt"))
      .description("decrypt a CiphertextBlob, or with --asymmetric a raw SM2 or RSA ciphertext; writes the raw plaintext to stdout or --out")
      .option("--in <file>", 'file holding the CiphertextBlob (or the binary ciphertext with --asymmetric), or "-" for stdin', "-")
      .option("--context <context>", `the ${CONTEXT_HELP} given to encrypt`, contextArg)
      .option("--out <file>", "write the plaintext here (mode 0600)")
      .option("--asymmetric", "decrypt with an asymmetric key (AsymmetricSm2Decrypt / AsymmetricRsaDecrypt); needs --key-id")
      .option("--key-id <key>", "the ASYMMETRIC_DECRYPT_* key (with --asymmetric): its id, alias, or alias/NAME")
      .addOption(
        new Option("--algorithm <algorithm>", "with --asymmetric: SM2 or an RSA padding (default: the key's only algorithm; RSA keys need it)").choices(["SM2", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"]),
      ),
  ).action(async (opts: DecryptOptions, cmd: Command) => {
    await runWithClient(
      cmd,
      async ({ json }) => {
        if (opts.out === undefined && !json && process.stdout.isTTY) {
          throw new UsageError("refusing to write binary plaintext to a terminal; use --out FILE, --json or a pipe");
        }
        if (!opts.asymmetric) {
          if (opts.keyId !== undefined || opts.algorithm !== undefined) throw new UsageError("--key-id and --algorithm go with --asymmetric");
          const blob = (await readInput(opts.in, MAX_CIPHERTEXT_INPUT_BYTES, "the ciphertext")).toString("utf8").trim();
          if (blob === "") throw new UsageError("no ciphertext on input");
          return blob;
        }
        if (opts.keyId === undefined) throw new UsageError("--asymmetric needs --key-id");
        if (opts.context !== undefined) throw new UsageError("--context does not go with --asymmetric");
        const raw = await readInput(opts.in, MAX_ASYMMETRIC_CIPHERTEXT_BYTES, "the ciphertext");
        if (raw.length === 0) throw new UsageError("no ciphertext on input");
        return raw.toString("base64");
      },
      async (client, blob, { json }) => {
        const res = opts.asymmetric ? await asymmetricDecrypt(client, opts.keyId!, opts.algorithm, blob) : await client.decrypt({ CiphertextBlob: blob, ...contextField(opts.context) });
        await emitPlaintext(res, res.Plaintext, opts.out, json === true);
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("re-encrypt"))
      .description("re-encrypt a CiphertextBlob under another CMK (or the newest version of its own) without the plaintext leaving the server; prints the new blob")
      .option("--in <file>", 'file holding the CiphertextBlob, or "-" for stdin', "-")
      .option("--key-id <key>", `the destination CMK (default: the blob's own): its id, alias, or alias/NAME`)
      .option("--context <context>", `the source ${CONTEXT_HELP}`, contextArg)
      .option("--new-context <context>", `the destination ${CONTEXT_HELP} (default: none)`, contextArg),
  ).action(async (opts: { in: string; keyId?: string; context?: EncryptionContext; newContext?: EncryptionContext }, cmd: Command) => {
    await runWithClient(
      cmd,
      async () => {
        const blob = (await readInput(opts.in, MAX_CIPHERTEXT_INPUT_BYTES, "the ciphertext")).toString("utf8").trim();
        if (blob === "") throw new UsageError("no ciphertext on input");
        return blob;
      },
      async (client, blob, { json }) => {
        const res = await client.reEncrypt({
          CiphertextBlob: blob,
          ...(opts.keyId === undefined ? {} : { DestinationKeyId: await resolveKeyId(client, opts.keyId) }),
          ...(opts.context === undefined ? {} : { SourceEncryptionContext: encodeEncryptionContext(opts.context) }),
          ...(opts.newContext === undefined ? {} : { DestinationEncryptionContext: encodeEncryptionContext(opts.newContext) }),
        });
        if (json) printJson(res);
        else printLines(res.CiphertextBlob ?? "");
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("datakey"))
      .description("generate a data key under a CMK; prints its base64 plaintext and its CiphertextBlob")
      .requiredOption("--key-id <key>", KEY_HELP)
      .addOption(
        new Option("--key-spec <spec>", "data key size (default AES_256)").choices(["AES_128", "AES_256"]).conflicts("bytes"),
      )
      .addOption(
        new Option("--bytes <n>", `data key length in bytes (1-${MAX_DATA_KEY_BYTES})`).argParser(
          integerArg(1, MAX_DATA_KEY_BYTES),
        ),
      )
      .option("--context <context>", CONTEXT_HELP, contextArg),
  ).action(
    async (
      opts: { keyId: string; keySpec?: "AES_128" | "AES_256"; bytes?: number; context?: EncryptionContext },
      cmd: Command,
    ) => {
      await runWithClient(
        cmd,
        () => undefined,
        async (client, _input, { json }) => {
          const res = await client.generateDataKey({
            KeyId: await resolveKeyId(client, opts.keyId),
            ...(opts.bytes === undefined ? { KeySpec: opts.keySpec ?? "AES_256" } : { NumberOfBytes: opts.bytes }),
            ...contextField(opts.context),
          });
          if (json) printJson(res);
          else printLines(`Plaintext: ${res.Plaintext ?? ""}`, `CiphertextBlob: ${res.CiphertextBlob ?? ""}`);
        },
      );
    },
  );

  addClientOptions(
    exitTwoOnUsageError(program.command("random"))
      .description("random bytes from the server, base64")
      .requiredOption(`--bytes <n>`, `how many bytes (1-${MAX_DATA_KEY_BYTES})`, integerArg(1, MAX_DATA_KEY_BYTES)),
  ).action(async (opts: { bytes: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.generateRandom({ NumberOfBytes: opts.bytes });
        if (json) printJson(res);
        else printLines(res.Plaintext);
      },
    );
  });
}

/** SM2 or RSA decryption of a raw ciphertext, the algorithm inferred from the key when not given. */
async function asymmetricDecrypt(client: KmsClient, ref: string, given: DecryptOptions["algorithm"], ciphertext: string): Promise<{ KeyId?: string; Plaintext?: string; RequestId?: string }> {
  const keyId = await resolveKeyId(client, ref);
  const algorithm = await keyAlgorithm(client, keyId, "decrypt", given);
  if (algorithm === "SM2") return client.asymmetricSm2Decrypt({ KeyId: keyId, Ciphertext: ciphertext });
  return client.asymmetricRsaDecrypt({ KeyId: keyId, Ciphertext: ciphertext, Algorithm: algorithm as Exclude<NonNullable<DecryptOptions["algorithm"]>, "SM2"> });
}

function contextField(context: EncryptionContext | undefined): { EncryptionContext?: string } {
  return context === undefined ? {} : { EncryptionContext: encodeEncryptionContext(context) };
}

/** A decryption's plaintext (base64 from the API) to --out (mode 0600), as JSON, or raw to stdout; wiped after. */
export async function emitPlaintext(res: { KeyId?: string; RequestId?: string }, base64: string | undefined, out: string | undefined, json: boolean): Promise<void> {
  const plaintext = Buffer.from(base64 ?? "", "base64");
  try {
    if (out !== undefined) {
      await writeFile(out, plaintext, { mode: 0o600 });
      if (json) printJson({ KeyId: res.KeyId, Out: out, Bytes: plaintext.length, RequestId: res.RequestId });
      else printLines(`wrote ${plaintext.length} bytes to ${out}`);
    } else if (json) {
      printJson(res);
    } else {
      await new Promise<void>((resolve, reject) => process.stdout.write(plaintext, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    plaintext.fill(0);
  }
}
