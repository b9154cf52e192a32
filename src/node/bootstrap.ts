// Before a node opens its data directory: on first run make it (the embedded store only: a shared
// store is initialised once for the whole cluster by `tresor init --store`, never implicitly by a
// starting node), and refuse one whose files others can read unless told to only warn.

import type { Logger } from "pino";
import { DEFAULT_REGION, dataDirExists, initDataDir, insecurePermissions, type AdminCredentials } from "./data-dir.js";

export interface BootstrapConfig {
  dataDir: string;
  /** A shared store: the data directory is never made implicitly. */
  store: string | undefined;
  /** The region of a data directory made now (default "local"). */
  region: string | undefined;
  allowInsecurePermissions: boolean;
}

/** Makes the data directory when missing (calling `created` with its new credentials), then checks its permissions. */
export async function bootstrapDataDir(
  config: BootstrapConfig,
  logger: Logger,
  created: (credentials: AdminCredentials & { credentialsPath: string }) => void,
): Promise<void> {
  if (config.store === undefined && !(await dataDirExists(config.dataDir))) {
    created(await initDataDir(config.dataDir, config.region ?? DEFAULT_REGION));
  }
  const insecure = await insecurePermissions(config.dataDir);
  if (insecure.length > 0 && !config.allowInsecurePermissions) {
    throw new Error(`refusing to serve: ${insecure.join("; ")} (or start with --allow-insecure-permissions to only warn)`);
  }
  for (const problem of insecure) logger.warn({ problem }, "the data directory is readable by group or others");
}
