// `tresor tang create|list|show|rotate|disable|enable|allow NAME`: Tang servers (docs/disk-encryption.md)
// through the HTTP API's Tang server actions, like every other client command.

import { Command, Option } from "commander";
import type { KmsClient, TangServer } from "../sdk/index.js";
import { addClientOptions, printJson, printLines, runWithClient } from "./client-options.js";

/** Lines for people: the URL path, state, networks and the thumbprints to pin. */
function describe(server: TangServer): string[] {
  const lines = [
    `${server.Name}: ${server.State}, ${server.ProtectionLevel}, served at /tang/${server.Name}`,
    `  allowed networks: ${server.AllowedNetworks.length === 0 ? "any" : server.AllowedNetworks.join(", ")}`,
  ];
  for (const [label, key] of [["signing key", server.SigningKey], ["exchange key", server.ExchangeKey]] as const) {
    lines.push(`  ${label} ${key.KeyId} (${key.KeyState})`);
    for (const v of [...key.Versions].reverse()) {
      const status = v.Advertised ? "advertised" : label === "exchange key" ? "rotated out, still recovers" : "rotated out";
      lines.push(`    version ${v.Version} (${status}): thp ${v.Thumbprint}  sha1 ${v.ThumbprintSha1}`);
    }
  }
  return lines;
}

function requireServer(server: TangServer | undefined): TangServer {
  if (!server) throw new Error(`invalid response: no "TangServer"`);
  return server;
}

/** A command taking one Tang server name. */
function nameCommand(tang: Command, name: string, description: string, run: (client: KmsClient, serverName: string) => Promise<string[] | TangServer>): void {
  addClientOptions(tang.command(name).description(description).argument("<name>")).action(async (serverName: string, _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const out = await run(client, serverName);
        if (Array.isArray(out)) {
          if (json) printJson({ Name: serverName });
          else printLines(...out);
        } else if (json) printJson(out);
        else printLines(...describe(out));
      },
    );
  });
}

export function registerTangCommands(program: Command): void {
  const tang = program.command("tang").description("Tang servers for Clevis network-bound disk encryption");

  addClientOptions(
    tang
      .command("create")
      .description("create a Tang server: an ES512 signing key and an ECMR exchange key, served at /tang/NAME")
      .argument("<name>")
      .option("--allow <cidr...>", "networks allowed to recover (default: any source)")
      .addOption(new Option("--protection-level <level>", "HSM: both keys made and used only inside the server's PKCS#11 token (default SOFTWARE)").choices(["SOFTWARE", "HSM"])),
  ).action(async (name: string, opts: { allow?: string[]; protectionLevel?: "SOFTWARE" | "HSM" }, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const res = await client.call("CreateTangServer", {
          Name: name,
          ...(opts.allow ? { AllowedNetworks: opts.allow } : {}),
          ...(opts.protectionLevel ? { ProtectionLevel: opts.protectionLevel } : {}),
        });
        if (json) printJson(requireServer(res.TangServer));
        else printLines(...describe(requireServer(res.TangServer)));
      },
    );
  });

  addClientOptions(tang.command("list").description("list the account's Tang servers")).action(async (_opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        const servers = (await client.call("ListTangServers", {})).TangServers ?? [];
        if (json) printJson(servers);
        else printLines(...servers.map((s) => `${s.Name}  ${s.State}  thp ${s.SigningKey.Versions.find((v) => v.Advertised)?.Thumbprint ?? "?"}`));
      },
    );
  });

  nameCommand(tang, "show", "show a Tang server and the thumbprints to pin", async (c, n) => requireServer((await c.call("DescribeTangServer", { Name: n })).TangServer));
  nameCommand(tang, "rotate", "advertise new keys; the old ones still recover (then run clevis luks regen)", async (c, n) =>
    requireServer((await c.call("RotateTangServer", { Name: n })).TangServer),
  );
  nameCommand(tang, "disable", "refuse advertisements and recoveries: bound disks no longer unlock", async (c, n) => {
    await c.call("DisableTangServer", { Name: n });
    return [`disabled Tang server ${n}`];
  });
  nameCommand(tang, "enable", "serve a disabled Tang server again", async (c, n) => {
    await c.call("EnableTangServer", { Name: n });
    return [`enabled Tang server ${n}`];
  });

  addClientOptions(
    tang
      .command("allow")
      .description("set the networks allowed to recover (none given: any source)")
      .argument("<name>")
      .argument("[cidr...]", "CIDR blocks, e.g. 10.1.0.0/16"),
  ).action(async (name: string, cidrs: string[], _opts: unknown, cmd: Command) => {
    await runWithClient(
      cmd,
      () => undefined,
      async (client, _input, { json }) => {
        await client.call("UpdateTangServer", { Name: name, AllowedNetworks: cidrs });
        if (json) printJson({ Name: name, AllowedNetworks: cidrs });
        else printLines(`Tang server ${name}: allowed networks ${cidrs.length === 0 ? "any" : cidrs.join(", ")}`);
      },
    );
  });
}
