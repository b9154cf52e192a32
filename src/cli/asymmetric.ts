// `tresor pubkey | sign | verify`: the asymmetric-key actions through the HTTP API. Asymmetric
// decryption is `tresor decrypt --asymmetric` (crypto.ts).

import { readFile } from "node:fs/promises";
import { Command, Option } from "commander";
import type { SigningAlgorithm } from "../sdk/index.js";
import type { KmsClient } from "../sdk/index.js";
import { UsageError, addClientOptions, exitTwoOnUsageError, printJson, printLines, readInput, runWithClient } from "./client-options.js";
import { isPostQuantumSigningKey } from "./mac-pq.js";
import { keyAlgorithm, resolveKeyId } from "./vocabulary.js";

/** Sign/Verify take a message of at most 4096 bytes (RAW) or a digest (DIGEST). */
const MAX_MESSAGE_BYTES = 4096;
/** The largest signature (ML-DSA-87, 4627 bytes) base64-encoded, with room for a trailing newline. */
const MAX_SIGNATURE_TEXT = 7000;
export const SIGNING_ALGORITHM_CHOICES: readonly SigningAlgorithm[] = ["SM2DSA", "ECC_P256_R1", "ECDSA_P384_SHA_384", "RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256", "ED25519"];

interface SignOptions {
  keyId: string;
  algorithm?: SigningAlgorithm;
  in: string;
  digest?: boolean;
}

function signOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--key-id <key>", "an ASYMMETRIC_SIGN_VERIFY_* key (ML-DSA keys sign through PostQuantumCryptoSign): its id, alias, or alias/NAME")
    .addOption(new Option("--algorithm <algorithm>", "signing algorithm (default: the key's only one; RSA keys need it)").choices(SIGNING_ALGORITHM_CHOICES))
    .option("--in <file>", `the message (at most ${MAX_MESSAGE_BYTES} bytes), or "-" for stdin`, "-")
    .option("--digest", "the input is a digest already (MessageType DIGEST), not the message");
}

/** The key id and algorithm of sign/verify: the algorithm inferred when the key allows one. */
async function signingKey(client: KmsClient, opts: SignOptions): Promise<{ KeyId: string; Algorithm: SigningAlgorithm }> {
  const keyId = await resolveKeyId(client, opts.keyId);
  return { KeyId: keyId, Algorithm: (await keyAlgorithm(client, keyId, "sign", opts.algorithm)) as SigningAlgorithm };
}

export function registerAsymmetricCommands(program: Command): void {
  addClientOptions(
    exitTwoOnUsageError(program.command("pubkey"))
      .description("print an asymmetric key's public key as PEM (or base64 DER with --der)")
      .argument("<key>", "the key: its id, alias, or alias/NAME")
      .option("--der", "print base64 of the DER SubjectPublicKeyInfo instead of PEM"),
  ).action(async (keyId: string, opts: { der?: boolean }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.getPublicKey({ KeyId: await resolveKeyId(client, keyId) });
        if (json) printJson(res);
        else if (opts.der) printLines(res.PublicKey ?? "");
        else printLines(...(res.PublicKeyPem ?? "").trimEnd().split("\n"));
      },
    );
  });

  addClientOptions(signOptions(exitTwoOnUsageError(program.command("sign")).description("sign a message with an asymmetric key; prints the base64 signature"))).action(
    async (opts: SignOptions, cmd: Command) => {
      await runWithClient(
        cmd,
        () => readInput(opts.in, MAX_MESSAGE_BYTES, "the message"),
        async (client, message, { json }) => {
          const keyId = await resolveKeyId(client, opts.keyId);
          if (await isPostQuantumSigningKey(client, keyId)) {
            const pq = await client.postQuantumCryptoSign({ KeyId: keyId, Message: message.toString("base64") });
            if (json) printJson(pq);
            else printLines(pq.Signature ?? "");
            return;
          }
          const res = await client.signByAsymmetricKey({
            ...(await signingKey(client, opts)),
            Message: message.toString("base64"),
            MessageType: opts.digest ? "DIGEST" : "RAW",
          });
          if (json) printJson(res);
          else printLines(res.Signature ?? "");
        },
      );
    },
  );

  addClientOptions(
    signOptions(exitTwoOnUsageError(program.command("verify")).description("verify a signature; prints valid or invalid and exits 0 or 1"))
      .option("--signature <base64>", "the signature, base64")
      .option("--signature-file <file>", "a file holding the base64 signature"),
  ).action(async (opts: SignOptions & { signature?: string; signatureFile?: string }, cmd: Command) => {
    await runWithClient(
      cmd,
      async () => {
        if ((opts.signature === undefined) === (opts.signatureFile === undefined)) throw new UsageError("give one of --signature and --signature-file");
        let signature = opts.signature;
        if (opts.signatureFile !== undefined) {
          let text: string;
          try {
            text = await readFile(opts.signatureFile, "utf8");
          } catch (err) {
            throw new UsageError(`cannot read --signature-file ${opts.signatureFile}: ${(err as Error).message}`);
          }
          if (text.length > MAX_SIGNATURE_TEXT) throw new UsageError(`--signature-file ${opts.signatureFile} is larger than ${MAX_SIGNATURE_TEXT} bytes`);
          signature = text;
        }
        return { message: await readInput(opts.in, MAX_MESSAGE_BYTES, "the message"), signature: (signature ?? "").trim() };
      },
      async (client, { message, signature }, { json }) => {
        const keyId = await resolveKeyId(client, opts.keyId);
        const res = (await isPostQuantumSigningKey(client, keyId))
          ? await client.postQuantumCryptoVerify({ KeyId: keyId, Message: message.toString("base64"), SignatureValue: signature })
          : await client.verifyByAsymmetricKey({
              ...(await signingKey(client, opts)),
              Message: message.toString("base64"),
              MessageType: opts.digest ? "DIGEST" : "RAW",
              SignatureValue: signature,
            });
        const valid = res.SignatureValid === true;
        if (json) printJson(res);
        else printLines(valid ? "valid" : "invalid");
        if (!valid) process.exitCode = 1;
      },
    );
  });
}
