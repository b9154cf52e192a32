// `tresor key rotate|rotation|archive|unarchive|schedule-deletion|cancel-deletion|versions|import`:
// the key lifecycle through the HTTP API. `import` wraps local material with the server's import
// public key here, so the material never travels in the clear.

import { constants, createPublicKey, publicEncrypt } from "node:crypto";
import { Command, Option } from "commander";
import { sm2Encrypt, sm2PublicKeyFromSpki } from "../crypto/sm2.js";
import type { KmsClient, WrappingAlgorithm } from "../sdk/index.js";
import { UsageError, addClientOptions, integerArg, printJson, printLines, readInput, runWithClient } from "./client-options.js";
import { KEY_HELP, humanTime, resolveKeyId, timeArg, withIsoTimes } from "./vocabulary.js";

const WRAPPING_ALGORITHMS: readonly WrappingAlgorithm[] = ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5", "SM2PKE"];
/** Longest material file `import` reads: an AES-256 key is 32 bytes. */
const MAX_MATERIAL_BYTES = 64;

export function registerKeyLifecycleCommands(key: Command): void {
  /** A command taking one key id that calls one action and prints `done` (or the response as JSON). */
  const simple = (name: string, description: string, run: (client: KmsClient, keyId: string) => Promise<object>, done: (keyId: string, res: Record<string, unknown>) => string) =>
    addClientOptions(key.command(name).description(description).argument("<key>", KEY_HELP)).action(async (ref: string, _opts: unknown, cmd: Command) => {
      await runWithClient(
        cmd,
        () => undefined,
        async (client, _input, { json }) => {
          const keyId = await resolveKeyId(client, ref);
          const res = (await run(client, keyId)) as Record<string, unknown>;
          if (json) printJson({ ...res, KeyId: keyId });
          else printLines(done(keyId, res));
        },
      );
    });

  simple("rotate", "rotate a CMK now (rotation must be enabled; once per 24 hours)", (c, id) => c.rotateKey({ KeyId: id }), (id) => `rotated ${id}`);
  simple("archive", "archive a CMK: it decrypts but no longer encrypts", (c, id) => c.archiveKey({ KeyId: id }), (id) => `archived ${id}`);
  simple("unarchive", "return an archived CMK to Enabled", (c, id) => c.cancelKeyArchive({ KeyId: id }), (id) => `enabled ${id}`);
  simple("cancel-deletion", "cancel a scheduled deletion; the CMK returns to Disabled", (c, id) => c.cancelKeyDeletion({ KeyId: id }), (id) => `deletion of ${id} cancelled`);

  addClientOptions(
    key
      .command("schedule-deletion")
      .alias("delete")
      .description("schedule the destruction of a disabled CMK")
      .argument("<key>", KEY_HELP)
      .requiredOption("--days <n>", "pending window in days (7-30)", integerArg(7, 30)),
  ).action(async (ref: string, opts: { days: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        const res = await client.scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: opts.days });
        if (json) printJson(withIsoTimes(res));
        else printLines(`${keyId} will be deleted at ${humanTime(res.DeletionDate)}`);
      },
    );
  });

  addClientOptions(
    key
      .command("rotation")
      .description("show a CMK's automatic rotation, or turn it on (--enable) or off (--disable)")
      .argument("<key>", KEY_HELP)
      .option("--enable", "turn automatic rotation on")
      .option("--disable", "turn automatic rotation off")
      .option("--days <n>", "with --enable: the rotation period in days (7-365, default 365)", integerArg(7, 365)),
  ).action(async (ref: string, opts: { enable?: boolean; disable?: boolean; days?: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => {
        if (opts.enable && opts.disable) throw usage("--enable and --disable exclude each other");
        if (opts.days !== undefined && !opts.enable) throw usage("--days goes with --enable");
      },
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        if (opts.enable) await client.enableKeyRotation({ KeyId: keyId, ...(opts.days === undefined ? {} : { RotateDays: opts.days }) });
        if (opts.disable) await client.disableKeyRotation({ KeyId: keyId });
        const res = await client.getKeyRotationStatus({ KeyId: keyId });
        if (json) {
          printJson(withIsoTimes({ ...res, KeyId: keyId }));
          return;
        }
        printLines(
          res.KeyRotationEnabled
            ? `rotation of ${keyId}: enabled, every ${res.RotateDays ?? "?"} days, next ${humanTime(res.NextRotateTime)}, last ${humanTime(res.LastRotateTime)}`
            : `rotation of ${keyId}: disabled, last ${humanTime(res.LastRotateTime)}`,
        );
      },
    );
  });

  addClientOptions(key.command("versions").description("list a CMK's versions and when each was made (never material)").argument("<key>", KEY_HELP)).action(
    async (ref: string, _opts: unknown, cmd: Command) => {
      await runWithClient(
        cmd,
        () => undefined,
        async (client, _input, { json }) => {
          const res = await client.listKeyVersions({ KeyId: await resolveKeyId(client, ref) });
          if (json) {
            const { RequestId: _r, ...rest } = res;
            printJson(withIsoTimes(rest));
            return;
          }
          const versions = res.Versions ?? [];
          printLines("Version  Created", ...versions.map((v) => `${String(v.Version).padEnd(7)}${v.Version === res.CurrentVersion ? "*" : " "} ${humanTime(v.CreateTime)}`));
        },
      );
    },
  );

  addClientOptions(
    key
      .command("import")
      .description("import key material into an EXTERNAL CMK: fetch import parameters, wrap the material file locally, import")
      .argument("<key>", KEY_HELP)
      .requiredOption("--material <file>", "the raw key material (16 bytes for SM4, 32 for AES_256); - for stdin")
      .addOption(new Option("--wrapping-algorithm <alg>", "how the material is wrapped for transport").choices(WRAPPING_ALGORITHMS).default("RSAES_OAEP_SHA_256"))
      .option("--valid-to <time>", "when the material expires: unix seconds or an ISO 8601 date (default never)", timeArg),
  ).action(async (ref: string, opts: { material: string; wrappingAlgorithm: WrappingAlgorithm; validTo?: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => readInput(opts.material, MAX_MATERIAL_BYTES, "the material file"),
      async (client, material, { json }) => {
        try {
          const keyId = await resolveKeyId(client, ref);
          const algorithm = opts.wrappingAlgorithm;
          const params = await client.getParametersForImport({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: algorithm === "SM2PKE" ? "SM2" : "RSA_2048" });
          if (!params.PublicKey || !params.ImportToken) throw new Error("GetParametersForImport answered without PublicKey or ImportToken");
          const spki = Buffer.from(params.PublicKey, "base64");
          const encrypted = algorithm === "SM2PKE" ? sm2Encrypt(sm2PublicKeyFromSpki(spki), material) : rsaWrap(spki, algorithm, material);
          const res = await client.importKeyMaterial({
            KeyId: keyId,
            ImportToken: params.ImportToken,
            EncryptedKeyMaterial: encrypted.toString("base64"),
            ...(opts.validTo === undefined ? {} : { ValidTo: opts.validTo }),
          });
          if (json) printJson({ ...res, KeyId: keyId });
          else printLines(`imported material into ${keyId}`);
        } finally {
          material.fill(0);
        }
      },
    );
  });
}

function rsaWrap(spki: Buffer, algorithm: Exclude<WrappingAlgorithm, "SM2PKE">, material: Buffer): Buffer {
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  if (algorithm === "RSAES_PKCS1_V1_5") return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, material);
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256" }, material);
}

function usage(message: string): UsageError {
  return new UsageError(message);
}

