// `tresor init`: creates a data directory and prints the first administrator's credentials once.

import type { Command } from "commander";
import { DEFAULT_DATA_DIR, DEFAULT_PKCS11_KEY_LABEL, DEFAULT_REGION, initDataDir, type AdminCredentials, type RootOfTrustSetting } from "../node/data-dir.js";
import { readPin } from "../rootkey/pkcs11.js";
import { printJson, writeLines } from "./output.js";

interface InitFlags {
  dataDir: string;
  region: string;
  json?: boolean;
  rootOfTrust: string;
  pkcs11Module?: string;
  pkcs11Token?: string;
  pkcs11KeyLabel: string;
  pkcs11Adopt?: boolean;
  pkcs11PinFile?: string;
  store?: string;
}

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description("create a data directory: root key, store and the first administrator access key")
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR)", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
    .option("--region <region>", "region this service answers for (env TRESOR_REGION)", process.env.TRESOR_REGION ?? DEFAULT_REGION)
    .option("--json", "print the credentials as one JSON object")
    .option("--root-of-trust <kind>", "where the root key lives: file (a 0600 file in the data directory) or pkcs11 (an HSM)", "file")
    .option("--pkcs11-module <path>", "the PKCS#11 module (shared library) of the HSM")
    .option("--pkcs11-token <label>", "the label of the token that holds the root key")
    .option("--pkcs11-key-label <label>", "the root key's label in the token", DEFAULT_PKCS11_KEY_LABEL)
    .option("--pkcs11-adopt", "use an existing root key with that label instead of creating one")
    .option("--pkcs11-pin-file <file>", "file holding the token PIN (mode 0600); otherwise env TRESOR_PKCS11_PIN")
    .option(
      "--store <url>",
      "initialise a shared PostgreSQL store, postgres://… (env TRESOR_STORE), once per cluster; the data directory then gets only the root key and the credentials",
      process.env.TRESOR_STORE,
    )
    .action(async (opts: InitFlags) => {
      const setting = rootOfTrustSetting(opts);
      const created = await initDataDir(opts.dataDir, opts.region, {
        ...(opts.store === undefined ? {} : { store: opts.store }),
        rootOfTrust: setting,
        ...(setting.kind === "pkcs11" ? { pkcs11Pin: pkcs11Pin(opts.pkcs11PinFile) } : {}),
      });
      if (opts.json) {
        const out: AdminCredentials = { secretId: created.secretId, secretKey: created.secretKey, region: created.region };
        printJson(out);
      } else {
        printNewCredentials(created, process.stdout);
      }
    });
}

function rootOfTrustSetting(opts: InitFlags): RootOfTrustSetting {
  if (opts.rootOfTrust === "file") return { kind: "file" };
  if (opts.rootOfTrust !== "pkcs11") throw new Error(`--root-of-trust must be file or pkcs11, got ${JSON.stringify(opts.rootOfTrust)}`);
  if (!opts.pkcs11Module || !opts.pkcs11Token) throw new Error("--root-of-trust pkcs11 needs --pkcs11-module and --pkcs11-token");
  return { kind: "pkcs11", module: opts.pkcs11Module, tokenLabel: opts.pkcs11Token, keyLabel: opts.pkcs11KeyLabel, adopt: opts.pkcs11Adopt ?? false };
}

/**
 * The token PIN from --pkcs11-pin-file, else from TRESOR_PKCS11_PIN (then removed from the
 * environment, so no child process inherits it); never from a flag's value.
 */
export function pkcs11Pin(file: string | undefined): string {
  if (file !== undefined) return readPin({ file });
  const pin = readPin({ env: "TRESOR_PKCS11_PIN" });
  delete process.env.TRESOR_PKCS11_PIN;
  return pin;
}

/** The PIN option of commands that open an existing data directory: only when a PIN is offered. */
export function pinOption(file: string | undefined): { pkcs11Pin?: string } {
  if (file !== undefined || process.env.TRESOR_PKCS11_PIN !== undefined) return { pkcs11Pin: pkcs11Pin(file) };
  return {};
}

export function printNewCredentials(created: AdminCredentials & { credentialsPath: string }, out: NodeJS.WritableStream): void {
  writeLines(out, [
    "Created a Tresor data directory. The administrator's access key (shown only this once):",
    `  SecretId:  ${created.secretId}`,
    `  SecretKey: ${created.secretKey}`,
    `  Region:    ${created.region}`,
    `Saved with mode 0600 in ${created.credentialsPath}`,
  ]);
}
