#!/usr/bin/env node
// The `tresor` command line.

import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerAccountCommands } from "./account.js";
import { registerAdminCommands } from "./admin.js";
import { registerAsymmetricCommands } from "./asymmetric.js";
import { registerMacAndPostQuantumCommands } from "./mac-pq.js";
import { registerAuditCommands } from "./audit.js";
import { registerBackupCommands } from "./backup.js";
import { registerCompletionCommand } from "./completion.js";
import { registerCryptoCommands } from "./crypto.js";
import { registerEncryptFileCommands } from "./encrypt-file.js";
import { registerInitCommand } from "./init.js";
import { registerKeyCommands } from "./key.js";
import { registerKmsPluginCommand } from "./kms-plugin.js";
import { registerRootKeyCommands } from "./rootkey.js";
import { registerServeCommand } from "./serve.js";
import { registerTangCommands } from "./tang.js";
import { printErrorLines } from "./output.js";

// dist/src/cli/main.js → the package's own package.json, in the clone and once installed.
const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
const program = new Command("tresor").description("Tresor: a self-hosted key management service").version(version, "-V, --version").exitOverride();
registerInitCommand(program);
registerAccountCommands(program);
registerAdminCommands(program);
registerServeCommand(program);
registerKeyCommands(program);
registerCryptoCommands(program);
registerAsymmetricCommands(program);
registerMacAndPostQuantumCommands(program);
registerEncryptFileCommands(program);
registerBackupCommands(program);
registerRootKeyCommands(program);
registerAuditCommands(program);
registerKmsPluginCommand(program);
registerTangCommands(program);
// Last: it describes the whole command tree.
registerCompletionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    printErrorLines(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
