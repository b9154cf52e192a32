// `tresor init`: creates a data directory and prints the first administrator's credentials once.

import type { Command } from "commander";
import { DEFAULT_DATA_DIR, DEFAULT_REGION, initDataDir, type AdminCredentials } from "../data-dir.js";

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description("create a data directory: root key, store and the first administrator access key")
    .option("--data-dir <dir>", "data directory (env TRESOR_DATA_DIR)", process.env.TRESOR_DATA_DIR ?? DEFAULT_DATA_DIR)
    .option("--region <region>", "region this service answers for (env TRESOR_REGION)", process.env.TRESOR_REGION ?? DEFAULT_REGION)
    .option("--json", "print the credentials as one JSON object")
    .action(async (opts: { dataDir: string; region: string; json?: boolean }) => {
      const created = await initDataDir(opts.dataDir, opts.region);
      if (opts.json) {
        const out: AdminCredentials = { secretId: created.secretId, secretKey: created.secretKey, region: created.region };
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        printNewCredentials(created, process.stdout);
      }
    });
}

export function printNewCredentials(created: AdminCredentials & { credentialsPath: string }, out: NodeJS.WritableStream): void {
  out.write(
    [
      "Created a Tresor data directory. The administrator's access key (shown only this once):",
      `  SecretId:  ${created.secretId}`,
      `  SecretKey: ${created.secretKey}`,
      `  Region:    ${created.region}`,
      `Saved with mode 0600 in ${created.credentialsPath}`,
      "",
    ].join("\n"),
  );
}
