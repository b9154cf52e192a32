// `tresor rootkey rotate`: a new root key, every wrapped value rewrapped under it while nodes keep
// serving, the old key retired. Works on the store directly, like init and backup; running it
// again resumes a rotation that stopped. See docs/operations.md, "Rotating the root key".

import type { Command } from "commander";
import { DEFAULT_DATA_DIR, rotateDataDirRootKey } from "../node/data-dir.js";
import { pkcs11Pin } from "./init.js";
import { printErrorLines, printJson, printLines } from "./output.js";

interface RotateFlags {
  dataDir: string;
  store?: string;
  pkcs11PinFile?: string;
  graceSeconds: string;
  pageSize: string;
  json?: boolean;
  quiet?: boolean;
}

export function registerRootKeyCommands(program: Command): void {
  const rootkey = program.command("rootkey").description("manage the root key that wraps every stored key");
  rootkey
    .command("rotate")
    .description("make a new root key and rewrap everything under it online; run again to resume after a failure")
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR); with --store it holds only the credentials", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
    .option("--store <url>", "a shared PostgreSQL store, postgres://… (env TRESOR_STORE); pkcs11 root of trust only", process.env.TRESOR_STORE)
    .option("--pkcs11-pin-file <file>", "file holding the HSM token PIN (mode 0600); otherwise env TRESOR_PKCS11_PIN")
    .option("--grace-seconds <n>", "how long serving nodes get to start wrapping with the new key before the rewrap (they look every second)", "5")
    .option("--page-size <n>", "values rewrapped per page; the progress cursor is recorded after each", "200")
    .option("--json", "print the result as one JSON object")
    .option("--quiet", "no progress lines")
    .action(async (flags: RotateFlags) => {
      const grace = Number(flags.graceSeconds);
      if (!/^[0-9]+$/.test(flags.graceSeconds) || grace > 3600) throw new Error(`--grace-seconds must be a whole number from 0 to 3600, got ${flags.graceSeconds}`);
      const pageSize = Number(flags.pageSize);
      if (!/^[0-9]+$/.test(flags.pageSize) || pageSize < 1 || pageSize > 10_000) throw new Error(`--page-size must be a whole number from 1 to 10000, got ${flags.pageSize}`);
      const result = await rotateDataDirRootKey(flags.dataDir, {
        pageSize,
        ...(flags.pkcs11PinFile !== undefined || process.env.TRESOR_PKCS11_PIN !== undefined ? { pkcs11Pin: pkcs11Pin(flags.pkcs11PinFile) } : {}),
        ...(flags.store === undefined ? {} : { store: flags.store }),
        graceMs: grace * 1000,
        ...(flags.quiet ? {} : { progress: (line: string) => printErrorLines(line) }),
      });
      if (flags.json) {
        printJson(result);
        return;
      }
      printLines(
        `Root key rotated from generation ${result.from} to ${result.to}${result.resumed ? " (resumed)" : ""}; ${result.rewrapped} values rewrapped.`,
        result.retiredFile === undefined
          ? "The old root key stays in the token under its label until you destroy it (keep it while backups made before need it)."
          : `The old root key is kept as ${result.retiredFile}: keep a copy while backups made before need it, then remove it.`,
      );
    });
}
