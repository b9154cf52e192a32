// `tresor account create | list`: adds an account (a fresh uin and its root's first access key) to
// an installation, or lists them. Like init they work on the store directly, so they run where the
// data directory is.

import type { Command } from "commander";
import { createAccount, DEFAULT_DATA_DIR, openDataDir } from "../node/data-dir.js";
import { pinOption } from "./init.js";
import { printJson, printLines } from "./output.js";
import { humanTime, isoTime } from "./vocabulary.js";

interface AccountFlags {
  dataDir: string;
  store?: string;
  pkcs11PinFile?: string;
  json?: boolean;
}

/** The options both commands take: where the data directory and the store are. */
function dataDirOptions(cmd: Command): Command {
  return cmd
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR); with --store it holds only the root key", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
    .option("--store <url>", "a shared PostgreSQL store, postgres://… (env TRESOR_STORE)", process.env.TRESOR_STORE)
    .option("--pkcs11-pin-file <file>", "file holding the HSM token PIN when the root key is in an HSM (otherwise env TRESOR_PKCS11_PIN)");
}

export function registerAccountCommands(program: Command): void {
  const account = program.command("account").description("accounts of this installation (each sees only its own keys, users and policies)");
  dataDirOptions(account.command("list").description("list the accounts: uin and when each was made"))
    .option("--json", "print the accounts as one JSON object")
    .action(async (flags: AccountFlags) => {
      const dataDir = await openDataDir(flags.dataDir, { ...pinOption(flags.pkcs11PinFile), ...(flags.store === undefined ? {} : { store: flags.store }) });
      try {
        const roots = await dataDir.store.listAccountRoots();
        if (flags.json) printJson({ Accounts: roots.map((r) => ({ AccountUin: r.accountUin, CreateTime: isoTime(r.createTime) })) });
        else printLines("AccountUin    Created", ...roots.map((r) => `${r.accountUin.padEnd(12)}  ${humanTime(r.createTime)}`));
      } finally {
        await dataDir.close();
      }
    });
  dataDirOptions(account.command("create").description("add an account and print its root access key, once"))
    .option("--json", "print the account as one JSON object")
    .action(async (flags: AccountFlags) => {
      const dataDir = await openDataDir(flags.dataDir, { ...pinOption(flags.pkcs11PinFile), ...(flags.store === undefined ? {} : { store: flags.store }) });
      try {
        const created = await createAccount(dataDir);
        if (flags.json) {
          printJson(created);
        } else {
          printLines(
            `Created account ${created.accountUin}. Its root access key (shown only this once):`,
            `  SecretId:  ${created.secretId}`,
            `  SecretKey: ${created.secretKey}`,
            `  Region:    ${created.region}`,
          );
        }
      } finally {
        await dataDir.close();
      }
    });
}
