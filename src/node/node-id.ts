// A node's default name, kept in its data directory so it survives restarts: logs, metrics series
// and audit records keep naming the same node. --node-id (TRESOR_NODE_ID) overrides it.

import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";

export const NODE_ID_FILE = "node-id";

/** 1-128 printable ASCII characters without spaces. */
export function isNodeId(value: string): boolean {
  return /^[\x21-\x7e]{1,128}$/.test(value);
}

/** The node id saved in `dataDir`, made on first call as <hostname>-<6 random hex>. */
export async function stableNodeId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, NODE_ID_FILE);
  try {
    const saved = (await readFile(file, "utf8")).trim();
    if (isNodeId(saved)) return saved;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const made = `${hostname().replace(/[^\x21-\x7e]/g, "") || "tresor"}-${randomBytes(3).toString("hex")}`.slice(-128);
  // "wx": when two processes start at once, the first one's id wins and the other reads it.
  try {
    await writeFile(file, `${made}\n`, { mode: 0o600, flag: "wx" });
    return made;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return (await readFile(file, "utf8")).trim();
  }
}
