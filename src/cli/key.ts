// `tresor key …`: create, list, get (describe), enable, disable, rename and describe CMKs through the HTTP API.

import { randomBytes } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import { KEY_USAGES, type CmkKeySpec, type KeyMetadata, type KeyState, type KeyUsage } from "../sdk/index.js";
import {
  addClientOptions,
  exitTwoOnUsageError,
  integerArg,
  printJson,
  printLines,
  runWithClient,
} from "./client-options.js";
import { registerKeyLifecycleCommands } from "./key-lifecycle.js";
import { HMAC_KEY_SPECS } from "./mac-pq.js";
import { escapeControls } from "./output.js";
import { KEY_HELP, humanTime, resolveKeyId, withIsoTimes } from "./vocabulary.js";

/** ListKeyDetail's KeyState filter numbers. */
const STATE_FILTER: Readonly<Record<KeyState, number>> = { Enabled: 1, Disabled: 2, PendingDelete: 3, PendingImport: 4, Archived: 5 };

/** --tag key=value, repeatable. */
function tagArg(value: string, previous: Array<{ TagKey: string; TagValue: string }> = []): Array<{ TagKey: string; TagValue: string }> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("must be key=value.");
  return [...previous, { TagKey: value.slice(0, eq), TagValue: value.slice(eq + 1) }];
}


export function registerKeyCommands(program: Command): void {
  const key = exitTwoOnUsageError(program.command("key").description("manage customer master keys (CMKs)"));

  addClientOptions(
    key
      .command("create")
      .description("create a CMK")
      .option("--alias <alias>", "unique alias (default: key-<random>)")
      .option("--description <text>", "description")
      .addOption(new Option("--usage <usage>", "what the key is for (default ENCRYPT_DECRYPT); an asymmetric usage fixes its key pair").choices(KEY_USAGES))
      .addOption(new Option("--key-spec <spec>", "symmetric key algorithm (default: the server's), or an HMAC key's with --usage GENERATE_VERIFY_MAC").choices(["SM4", "AES_256", ...HMAC_KEY_SPECS]))
      .option("--tag <key=value>", "a tag (repeatable); `key list --tag` filters on it", tagArg)
      .option("--external", "create it without material (Type 2, PendingImport): bring your own with `tresor key import`")
      .addOption(new Option("--protection-level <level>", "HSM: material made and used only inside the server's PKCS#11 token (default SOFTWARE)").choices(["SOFTWARE", "HSM"])),
  ).action(async (opts: { alias?: string; description?: string; usage?: KeyUsage; keySpec?: CmkKeySpec; tag?: Array<{ TagKey: string; TagValue: string }>; external?: boolean; protectionLevel?: "SOFTWARE" | "HSM" }, cmd: Command) => {
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
          ...(opts.tag === undefined ? {} : { Tags: opts.tag }),
          ...(opts.external ? { Type: 2 } : {}),
          ...(opts.protectionLevel === undefined ? {} : { ProtectionLevel: opts.protectionLevel }),
        });
        if (json) printJson(withIsoTimes(res));
        else printLines(`${res.KeyId ?? "?"}  ${res.Alias ?? alias}  ${res.KeyState ?? ""}`.trimEnd());
      },
    );
  });

  addClientOptions(
    key
      .command("list")
      .description("list CMKs of every usage and state, newest first")
      .addOption(new Option("--usage <usage>", "only keys of this usage").choices(KEY_USAGES))
      .addOption(new Option("--state <state>", "only keys in this state").choices(Object.keys(STATE_FILTER)))
      .option("--tag <key=value>", "only keys with this tag (repeatable: all must match)", tagArg)
      .option("--offset <n>", "skip this many keys", integerArg(0, Number.MAX_SAFE_INTEGER))
      .option("--limit <n>", "show at most this many keys (1-200, default 10)", integerArg(1, 200)),
  ).action(async (opts: { usage?: KeyUsage; state?: KeyState; tag?: Array<{ TagKey: string; TagValue: string }>; offset?: number; limit?: number }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.listKeyDetail({
          // The API lists ENCRYPT_DECRYPT keys only unless told ALL.
          KeyUsage: opts.usage ?? "ALL",
          ...(opts.state === undefined ? {} : { KeyState: STATE_FILTER[opts.state] }),
          ...(opts.tag === undefined ? {} : { TagFilters: opts.tag.map((t) => ({ TagKey: t.TagKey, TagValue: [t.TagValue] })) }),
          ...(opts.offset === undefined ? {} : { Offset: opts.offset }),
          ...(opts.limit === undefined ? {} : { Limit: opts.limit }),
        });
        if (json) {
          printJson(withIsoTimes(res));
          return;
        }
        const keys = res.KeyMetadatas ?? [];
        const rows = keys.map((k) => [k.KeyId ?? "", k.Alias ?? "", k.KeyUsage ?? "", k.KeyState ?? "", k.KeySpec ?? "-", humanTime(k.CreateTime)]);
        printLines(...table(["KeyId", "Alias", "Usage", "State", "Spec", "Created"], rows));
        const shown = keys.length;
        const total = res.TotalCount ?? shown;
        if (total > shown) printLines(`(${shown} of ${total}; use --offset and --limit for more)`);
      },
    );
  });

  addClientOptions(key.command("get").alias("describe").description("show one CMK").argument("<key>", KEY_HELP)).action(
    async (keyId: string, _opts: unknown, cmd: Command) => {
      await runWithClient(
        cmd,
        () => undefined,
        async (client, _input, { json }) => {
          const res = await client.describeKey({ KeyId: await resolveKeyId(client, keyId) });
          if (json) printJson(withIsoTimes(res));
          else printLines(...describe(res.KeyMetadata ?? {}));
        },
      );
    },
  );

  for (const [name, verb] of [
    ["enable", "enabled"],
    ["disable", "disabled"],
  ] as const) {
    addClientOptions(key.command(name).description(`${name} a CMK`).argument("<key>", KEY_HELP)).action(
      async (ref: string, _opts: unknown, cmd: Command) => {
        await runWithClient(
          cmd,
          () => undefined,
          async (client, _input, { json }) => {
            const keyId = await resolveKeyId(client, ref);
            const res = name === "enable" ? await client.enableKey({ KeyId: keyId }) : await client.disableKey({ KeyId: keyId });
            if (json) printJson({ ...res, KeyId: keyId });
            else printLines(`${verb} ${keyId}`);
          },
        );
      },
    );
  }

  addClientOptions(
    key.command("alias").description("give a CMK a new alias").argument("<key>", KEY_HELP).argument("<alias>"),
  ).action(async (ref: string, alias: string, _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        const res = await client.updateAlias({ KeyId: keyId, Alias: alias });
        if (json) printJson({ ...res, KeyId: keyId, Alias: alias });
        else printLines(`${keyId} is now ${alias}`);
      },
    );
  });

  addClientOptions(
    key.command("update-description").description("change a CMK's description").argument("<key>", KEY_HELP).argument("<description>"),
  ).action(async (ref: string, description: string, _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        const res = await client.updateKeyDescription({ KeyId: keyId, Description: description });
        if (json) printJson({ ...res, KeyId: keyId, Description: description });
        else printLines(`described ${keyId}`);
      },
    );
  });

  const tag = key.command("tag").description("show, add, change or remove a CMK's tags");
  addClientOptions(
    tag.command("set").description("add tags to a CMK, or give tag keys it has new values").argument("<key>", KEY_HELP)
      .requiredOption("--tag <key=value>", "a tag (repeatable)", tagArg),
  ).action(async (ref: string, opts: { tag: Array<{ TagKey: string; TagValue: string }> }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        const res = await client.tagResource({ KeyId: keyId, Tags: opts.tag });
        if (json) printJson({ ...res, KeyId: keyId, Tags: opts.tag });
        else printLines(`tagged ${keyId}: ${opts.tag.map((t) => `${t.TagKey}=${t.TagValue}`).join(", ")}`);
      },
    );
  });
  addClientOptions(
    tag.command("remove").description("remove tags from a CMK by tag key").argument("<key>", KEY_HELP).argument("<tag-keys...>", "the tag keys to remove"),
  ).action(async (ref: string, tagKeys: string[], _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const keyId = await resolveKeyId(client, ref);
        const res = await client.untagResource({ KeyId: keyId, TagKeys: tagKeys });
        if (json) printJson({ ...res, KeyId: keyId, TagKeys: tagKeys });
        else printLines(`removed from ${keyId}: ${tagKeys.join(", ")}`);
      },
    );
  });
  addClientOptions(tag.command("list").description("show a CMK's tags").argument("<key>", KEY_HELP)).action(async (ref: string, _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.listResourceTags({ KeyId: await resolveKeyId(client, ref) });
        if (json) printJson(res);
        else if (res.Tags.length === 0) printLines(`${res.KeyId} has no tags`);
        else printLines(...table(["TagKey", "TagValue"], res.Tags.map((t) => [t.TagKey, t.TagValue])));
      },
    );
  });

  registerKeyLifecycleCommands(key);
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
    ["Created", meta.CreateTime === undefined ? undefined : humanTime(meta.CreateTime)],
    ["Rotation", meta.KeyRotationEnabled === undefined ? undefined : meta.KeyRotationEnabled ? `every ${meta.RotateDays ?? "?"} days` : "disabled"],
    ["NextRotate", meta.NextRotateTime ? humanTime(meta.NextRotateTime) : undefined],
    ["LastRotate", meta.LastRotateTime ? humanTime(meta.LastRotateTime) : undefined],
    ["ValidTo", meta.ValidTo ? humanTime(meta.ValidTo) : undefined],
    ["DeletionDate", meta.DeletionDate ? humanTime(meta.DeletionDate) : undefined],
  ];
  const present = fields.filter((f): f is [string, string | number | boolean] => f[1] !== undefined && f[1] !== "");
  const width = Math.max(...present.map(([name]) => name.length));
  return present.map(([name, value]) => `${`${name}:`.padEnd(width + 1)} ${String(value)}`);
}
