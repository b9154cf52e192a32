// The `tresor` command tree, one entry per command group (one file each). A group's module is
// imported only when the command line names one of its commands, so `tresor --version` or
// `tresor encrypt` never loads the server (fastify, the stores, gRPC, PKCS#11): each group pulls in
// only what its own commands use.
//
// To add a command group: a file exporting `register…(program)`, and one line below naming the
// top-level commands it registers. A name missing here still works (an unknown word loads every
// group), only slower; test/cli/commands.test.ts fails until the line is right.

import type { Command } from "commander";

type Register = (program: Command) => void;

export interface CommandGroup {
  /** The top-level commands the group's register function adds, in the order it adds them. */
  readonly commands: readonly string[];
  readonly load: () => Promise<Register>;
}

/** In the order `tresor --help` lists them. */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { commands: ["init"], load: async () => (await import("./init.js")).registerInitCommand },
  { commands: ["account"], load: async () => (await import("./account.js")).registerAccountCommands },
  { commands: ["admin"], load: async () => (await import("./admin.js")).registerAdminCommands },
  { commands: ["serve"], load: async () => (await import("./serve.js")).registerServeCommand },
  { commands: ["key"], load: async () => (await import("./key.js")).registerKeyCommands },
  { commands: ["encrypt", "decrypt", "re-encrypt", "datakey", "random"], load: async () => (await import("./crypto.js")).registerCryptoCommands },
  { commands: ["pubkey", "sign", "verify"], load: async () => (await import("./asymmetric.js")).registerAsymmetricCommands },
  { commands: ["mac", "verify-mac", "pq-encrypt", "pq-decrypt"], load: async () => (await import("./mac-pq.js")).registerMacAndPostQuantumCommands },
  { commands: ["encrypt-file", "decrypt-file"], load: async () => (await import("./encrypt-file.js")).registerEncryptFileCommands },
  { commands: ["backup"], load: async () => (await import("./backup.js")).registerBackupCommands },
  { commands: ["rootkey"], load: async () => (await import("./rootkey.js")).registerRootKeyCommands },
  { commands: ["audit"], load: async () => (await import("./audit.js")).registerAuditCommands },
  { commands: ["kms-plugin"], load: async () => (await import("./kms-plugin.js")).registerKmsPluginCommand },
  { commands: ["tang"], load: async () => (await import("./tang.js")).registerTangCommands },
];

const ROOT_ONLY_FLAGS = new Set(["-V", "--version"]);

/**
 * The groups a command line needs: the one that owns its command word; none for a bare
 * `--version`; every group otherwise (no command, `help`, `completion`, an unknown word or a typo,
 * so top-level help, completion and "did you mean" see the whole tree).
 */
export function groupsFor(args: readonly string[], groups: readonly CommandGroup[] = COMMAND_GROUPS): readonly CommandGroup[] {
  // The root program's only options (-V, -h) take no value: the first other word is the command.
  const word = args.find((a) => !a.startsWith("-"));
  if (word === undefined) return args.length > 0 && args.every((a) => ROOT_ONLY_FLAGS.has(a)) ? [] : groups;
  const owner = groups.find((g) => g.commands.includes(word));
  return owner === undefined ? groups : [owner];
}

/** Adds the command groups `args` (process.argv without node and the script) needs to `program`. */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const registers = await Promise.all(groupsFor(args).map((g) => g.load()));
  for (const register of registers) register(program);
}
