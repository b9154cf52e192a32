// `tresor encrypt | decrypt | datakey | random`: the symmetric crypto actions through the HTTP API.

import { writeFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { MAX_PLAINTEXT_BYTES, encodeEncryptionContext } from "../sdk/index.js";
import type { EncryptionContext } from "../sdk/index.js";
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
      .requiredOption("--key-id <keyId>", "the CMK")
      .option("--in <file>", 'plaintext file, or "-" for stdin', "-")
      .option("--context <json>", "encryption context, a JSON object of strings", contextArg),
  ).action(async (opts: { keyId: string; in: string; context?: EncryptionContext }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => readInput(opts.in, MAX_PLAINTEXT_BYTES, "the plaintext"),
      async (client, data, { json }) => {
        const res = await client.encrypt({
          KeyId: opts.keyId,
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
      .option("--context <json>", "the encryption context given to encrypt", contextArg)
      .option("--out <file>", "write the plaintext here (mode 0600)")
      .option("--asymmetric", "decrypt with an asymmetric key (AsymmetricSm2Decrypt / AsymmetricRsaDecrypt); needs --key-id")
      .option("--key-id <keyId>", "the ASYMMETRIC_DECRYPT_* key (with --asymmetric)")
      .addOption(
        new Option("--algorithm <algorithm>", "with --asymmetric: SM2 (default) or an RSA padding").choices(["SM2", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"]),
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
        const res = !opts.asymmetric
          ? await client.decrypt({ CiphertextBlob: blob, ...contextField(opts.context) })
          : opts.algorithm === undefined || opts.algorithm === "SM2"
            ? await client.asymmetricSm2Decrypt({ KeyId: opts.keyId!, Ciphertext: blob })
            : await client.asymmetricRsaDecrypt({ KeyId: opts.keyId!, Ciphertext: blob, Algorithm: opts.algorithm });
        const plaintext = Buffer.from(res.Plaintext ?? "", "base64");
        try {
          if (opts.out !== undefined) {
            await writeFile(opts.out, plaintext, { mode: 0o600 });
            if (json) printJson({ KeyId: res.KeyId, Out: opts.out, Bytes: plaintext.length, RequestId: res.RequestId });
            else printLines(`wrote ${plaintext.length} bytes to ${opts.out}`);
          } else if (json) {
            printJson(res);
          } else {
            await new Promise<void>((resolve, reject) =>
              process.stdout.write(plaintext, (err) => (err ? reject(err) : resolve())),
            );
          }
        } finally {
          plaintext.fill(0);
        }
      },
    );
  });

  addClientOptions(
    exitTwoOnUsageError(program.command("datakey"))
      .description("generate a data key under a CMK; prints its base64 plaintext and its CiphertextBlob")
      .requiredOption("--key-id <keyId>", "the CMK")
      .addOption(
        new Option("--key-spec <spec>", "data key size (default AES_256)").choices(["AES_128", "AES_256"]).conflicts("bytes"),
      )
      .addOption(
        new Option("--bytes <n>", `data key length in bytes (1-${MAX_DATA_KEY_BYTES})`).argParser(
          integerArg(1, MAX_DATA_KEY_BYTES),
        ),
      )
      .option("--context <json>", "encryption context, a JSON object of strings", contextArg),
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
            KeyId: opts.keyId,
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

function contextField(context: EncryptionContext | undefined): { EncryptionContext?: string } {
  return context === undefined ? {} : { EncryptionContext: encodeEncryptionContext(context) };
}
