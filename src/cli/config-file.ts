// The client commands' config file with named profiles, like the AWS and Tencent CLIs':
// $TRESOR_CONFIG, else $XDG_CONFIG_HOME/tresor/config.toml, else ~/.config/tresor/config.toml.
// It is read with a small parser of the TOML it needs (tables and string values), so no
// dependency comes with it:
//
//   [default]
//   endpoint = "http://127.0.0.1:8400"
//   data_dir = "/home/me/tresor-data"
//
//   [prod]
//   endpoint = "https://kms-1.example:8400,https://kms-2.example:8400"
//   region = "east"
//   ca = "/etc/tresor/ca.pem"
//   credentials_file = "/home/me/.config/tresor/prod.json"
//
// A flag or a TRESOR_* variable wins over the profile; the profile wins over the built-in default.

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { UsageError } from "./vocabulary.js";

/** What a profile may set: the client options, and where the access key is. */
export interface Profile {
  endpoint?: string;
  region?: string;
  dataDir?: string;
  ca?: string;
  /** A JSON file with secretId and secretKey (as admin-credentials.json). */
  credentialsFile?: string;
}

const FIELDS: Readonly<Record<string, keyof Profile>> = {
  endpoint: "endpoint",
  region: "region",
  data_dir: "dataDir",
  ca: "ca",
  credentials_file: "credentialsFile",
};

/** The config file's path: TRESOR_CONFIG, else under XDG_CONFIG_HOME or ~/.config. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env["TRESOR_CONFIG"]) return env["TRESOR_CONFIG"];
  const base = env["XDG_CONFIG_HOME"] || path.join(homedir(), ".config");
  return path.join(base, "tresor", "config.toml");
}

/**
 * The profile `name` (default: "default"). A missing file gives an empty profile, unless a
 * profile was asked for by name; a missing named profile is a usage error.
 */
export function loadProfile(name: string | undefined, env: NodeJS.ProcessEnv = process.env): Profile {
  const file = configPath(env);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && name === undefined) return {};
    throw new UsageError(`cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const profiles = parseConfig(text, file);
  const wanted = name ?? "default";
  const profile = profiles.get(wanted);
  if (profile === undefined) {
    if (name === undefined) return {};
    throw new UsageError(`--profile ${name}: no [${name}] in ${file} (it has ${[...profiles.keys()].map((p) => `[${p}]`).join(", ") || "no profile"})`);
  }
  return profile;
}

/** The tables of the file as profiles; a line it does not understand is an error naming the line. */
export function parseConfig(text: string, file: string): Map<string, Profile> {
  const profiles = new Map<string, Profile>();
  let current: Profile | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line === "" || line.startsWith("#")) return;
    const table = /^\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$/.exec(line);
    if (table) {
      if (profiles.has(table[1]!)) throw new UsageError(`${where}: [${table[1]}] appears twice`);
      current = {};
      profiles.set(table[1]!, current);
      return;
    }
    const pair = /^([A-Za-z_]+)\s*=\s*"((?:[^"\\]|\\["\\])*)"\s*(#.*)?$/.exec(line);
    if (!pair) throw new UsageError(`${where}: expected [profile] or key = "value", got ${JSON.stringify(line)}`);
    if (current === undefined) throw new UsageError(`${where}: ${pair[1]} is outside a [profile]`);
    const field = FIELDS[pair[1]!];
    if (field === undefined) throw new UsageError(`${where}: unknown setting ${pair[1]} (known: ${Object.keys(FIELDS).join(", ")})`);
    current[field] = pair[2]!.replace(/\\(["\\])/g, "$1");
  });
  return profiles;
}
