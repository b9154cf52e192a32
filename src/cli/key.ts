// `tresor key …`: create, list, describe, enable, disable and rename CMKs through the HTTP API.

import { randomBytes } from "node:crypto";
import { Command, Option } from "commander";
import { KEY_USAGES, type KeyMetadata, type KeyUsage } from "../sdk/index.js";
import {
  addClientOptions,
  exitTwoOnUsageError,
  integerArg,
  printJson,
  printLines,
  runWithClient,
} from "./client-options.js";
import { registerKeyLifecycleCommands } from "./key-lifecycle.js";
import { escapeControls } from "./output.js";


export function registerKeyCommands(program: Command): void {
  const key = exitTwoOnUsageError(program.command("key").description("manage customer master keys (CMKs)"));

  addClientOptions(
    key
      .command("create")
      .description("create a CMK")
      .option("--alias <alias>", "unique alias (default: key-<random>)")
      .option("--description <text>", "description")
      .addOption(new Option("--usage <usage>", "what the key is for (default ENCRYPT_DECRYPT); an asymmetric usage fixes its key pair").choices(KEY_USAGES))
      .addOption(new Option("--key-spec <spec>", "symmetric key algorithm (default: the server's)").choices(["SM4", "AES_256"]))
      .option("--external", "create it without material (Type 2, PendingImport): bring your own with `tresor key import`")
      .addOption(new Option("--protection-level <level>", "HSM: material made and used only inside the server's PKCS#11 token (default SOFTWARE)").choices(["SOFTWARE", "HSM"])),
  ).action(async (opts: { alias?: string; description?: string; usage?: KeyUsage; keySpec?: "SM4" | "AES_256"; external?: boolean; protectionLevel?: "SOFTWARE" | "HSM" }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        // The API requires an alias; the CLI makes one up so `key create` works bare.
        const alias = opts.alias ?? `key-${randomBytes(6).toString("hex")}`;
        const res = await client.createKey({
          Alias: alias,
          ...(opts.description === undefined ? {} : { Description: opts.description }),
          ...(opts.usage === undefined ? {} : { KeyUsage: opts.usage }),
          ...(opts.keySpec === undefined ? {} : { KeySpec: opts.keySpec }),
          ...(opts.external ? { Type: 2 } : {}),
          ...(opts.protectionLevel === undefined ? {} : { ProtectionLevel: opts.protectionLevel }),
        });
        if (json) printJson(res);
        else printLines(`${res.KeyId ?? "?"}  ${res.Alias ?? alias}  ${res.KeyState ?? ""}`.trimEnd());
      },
    );
  });

  addClientOptions(
    key
      .command("list")
      .description("list CMKs, newest first")
      .option("--offset <n>", "skip this many keys", integerArg(0, Number.MAX_SAFE_INTEGER))
      .option("--limit <n>", "show at most this many keys (1-200, default 10)", integerArg(1, 200)),
  ).action(async (opts: { offset?: number; limit?: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.listKeyDetail({
          ...(opts.offset === undefined ? {} : { Offset: opts.offset }),
          ...(opts.limit === undefined ? {} : { Limit: opts.limit }),
        });
        if (json) {
          printJson(res);
          return;
        }
        const keys = res.KeyMetadatas ?? [];
        const rows = keys.map((k) => [k.KeyId ?? "", k.Alias ?? "", k.KeyState ?? "", k.KeySpec ?? "-", formatTime(k.CreateTime)]);
        printLines(...table(["KeyId", "Alias", "State", "Spec", "Created"], rows));
        const shown = keys.length;
        const total = res.TotalCount ?? shown;
        if (total > shown) printLines(`(${shown} of ${total}; use --offset and --limit for more)`);
      },
    );
  });

  addClientOptions(key.command("describe").description("show one CMK").argument("<keyId>")).action(
    async (keyId: string, _opts: unknown, cmd: Command) => {
      await runWithClient(
        cmd,
        () => undefined,
        async (client, _input, { json }) => {
          const res = await client.describeKey({ KeyId: keyId });
          if (json) printJson(res);
          else printLines(...describe(res.KeyMetadata ?? {}));
        },
      );
    },
  );

  for (const [name, verb] of [
    ["enable", "enabled"],
    ["disable", "disabled"],
  ] as const) {
    addClientOptions(key.command(name).description(`${name} a CMK`).argument("<keyId>")).action(
      async (keyId: string, _opts: unknown, cmd: Command) => {
        await runWithClient(
          cmd,
          () => undefined,
          async (client, _input, { json }) => {
            const res = name === "enable" ? await client.enableKey({ KeyId: keyId }) : await client.disableKey({ KeyId: keyId });
            if (json) printJson({ ...res, KeyId: keyId });
            else printLines(`${verb} ${keyId}`);
          },
        );
      },
    );
  }

  addClientOptions(
    key.command("alias").description("give a CMK a new alias").argument("<keyId>").argument("<alias>"),
  ).action(async (keyId: string, alias: string, _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.updateAlias({ KeyId: keyId, Alias: alias });
        if (json) printJson({ ...res, KeyId: keyId, Alias: alias });
        else printLines(`${keyId} is now ${alias}`);
      },
    );
  });

  registerKeyLifecycleCommands(key);
}

function formatTime(unixSeconds: number | undefined): string {
  if (unixSeconds === undefined || !Number.isFinite(unixSeconds)) return "-";
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Cells are escaped before they are measured, so a column stays aligned when a value holds control characters. */
function table(header: string[], cells: string[][]): string[] {
  const rows = cells.map((r) => r.map(escapeControls));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function describe(meta: KeyMetadata): string[] {
  const fields: Array<[string, string | number | boolean | undefined]> = [
    ["KeyId", meta.KeyId],
    ["Alias", meta.Alias],
    ["Description", meta.Description],
    ["State", meta.KeyState],
    ["Spec", meta.KeySpec],
    ["Usage", meta.KeyUsage],
    ["Origin", meta.Origin],
    ["Protection", meta.ProtectionLevel],
    ["Created", meta.CreateTime === undefined ? undefined : formatTime(meta.CreateTime)],
    ["Rotation", meta.KeyRotationEnabled === undefined ? undefined : meta.KeyRotationEnabled ? `every ${meta.RotateDays ?? "?"} days` : "disabled"],
    ["NextRotate", meta.NextRotateTime ? formatTime(meta.NextRotateTime) : undefined],
    ["LastRotate", meta.LastRotateTime ? formatTime(meta.LastRotateTime) : undefined],
    ["ValidTo", meta.ValidTo ? formatTime(meta.ValidTo) : undefined],
    ["DeletionDate", meta.DeletionDate ? formatTime(meta.DeletionDate) : undefined],
  ];
  const present = fields.filter((f): f is [string, string | number | boolean] => f[1] !== undefined && f[1] !== "");
  const width = Math.max(...present.map(([name]) => name.length));
  return present.map(([name, value]) => `${`${name}:`.padEnd(width + 1)} ${String(value)}`);
}
