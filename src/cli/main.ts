#!/usr/bin/env node
// The `tresor` command line.

import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands.js";
import { registerCompletionCommand } from "./completion.js";
import { printErrorLines } from "./output.js";

// dist/src/cli/main.js → the package's own package.json, in the clone and once installed.
const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
const program = new Command("tresor").description("Tresor: a self-hosted key management service").version(version, "-V, --version").exitOverride();

try {
  // Only the command groups this command line names (commands.ts), so `tresor encrypt` never loads the server.
  await registerCommands(program, process.argv.slice(2));
  // Last: it describes the whole command tree.
  registerCompletionCommand(program);
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    printErrorLines(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
