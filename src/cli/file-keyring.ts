// Where encrypt-file / decrypt-file find each region's endpoints and credentials: every region
// (Tresor cluster) of a multi-region keyring can have its own endpoints and its own access key.
//
// Sources, merged per region (docs/encryption-sdk.md, "Command line"):
//   --key [REGION:]KEYID[@URL[,URL…]]     a CMK, optionally with its region's endpoints
//   --region-endpoint REGION=URL[,URL…]   a region's endpoints
//   --credentials REGION=PATH             a region's credentials: a JSON file {secretId, secretKey}
//                                         (admin-credentials.json) or a data directory holding one
//   --keyring FILE                        a JSON file: {"keys": [{keyId?, region, endpoints,
//                                         credentialsFile | secretIdEnv + secretKeyEnv, ca?}, …]}
//   --endpoint / --region / --data-dir    the default region, its endpoints and the default
//                                         credentials (TRESOR_SECRET_ID/KEY or the data dir)
// A region given endpoints (or credentials) by two sources that disagree is a usage error, never a
// silent choice. A region without credentials of its own uses the default credentials.

import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { KmsClient } from "../sdk/index.js";
import type { MasterKey } from "../sdk/encryption/index.js";
import { CREDENTIALS_FILE, loadCredentials, UsageError, type ClientCommandOptions } from "./client-options.js";

interface Credentials {
  secretId: string;
  secretKey: string;
}

/** How a region's credentials are found, with where that was said (for messages). */
type CredentialSource =
  | { kind: "file"; path: string; from: string }
  | { kind: "env"; secretIdEnv: string; secretKeyEnv: string; from: string };

interface RegionConfig {
  endpoints?: { urls: string[]; from: string };
  credentials?: CredentialSource;
  ca?: { path: string; from: string };
}

export interface FileKeyringOptions extends ClientCommandOptions {
  key?: string[];
  regionEndpoint?: string[];
  credentials?: string[];
  keyring?: string;
}

/** The regions, resolved to clients, and the CMKs (encrypt-file) in order: primary first. */
export interface ResolvedRegions {
  defaultRegion: string;
  /** Every region that has endpoints, default region first when it takes part. */
  clients: Map<string, KmsClient[]>;
  keys: Array<{ keyId: string; region: string }>;
  close(): void;
}

const KEYRING_FIELDS = new Set(["keyId", "region", "endpoints", "endpoint", "credentialsFile", "secretIdEnv", "secretKeyEnv", "ca"]);

function splitUrls(value: string, what: string): string[] {
  const urls = value.split(",").map((u) => u.trim());
  if (urls.length === 0 || urls.some((u) => u === "")) throw new UsageError(`${what}: give URLs separated by single commas, got ${JSON.stringify(value)}`);
  if (new Set(urls).size !== urls.length) throw new UsageError(`${what}: an endpoint is listed twice`);
  return urls;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameCredentials(a: CredentialSource, b: CredentialSource): boolean {
  if (a.kind === "file" && b.kind === "file") return a.path === b.path;
  if (a.kind === "env" && b.kind === "env") return a.secretIdEnv === b.secretIdEnv && a.secretKeyEnv === b.secretKeyEnv;
  return false;
}

function regionPair(value: string, option: string): [string, string] {
  const eq = value.indexOf("=");
  if (eq <= 0 || eq === value.length - 1) throw new UsageError(`${option} must be REGION=VALUE, got ${JSON.stringify(value)}`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** Parses `[REGION:]KEYID[@URL[,URL…]]`. Key ids and aliases hold neither ":" nor "@". */
export function parseKeySpec(spec: string): { region: string | undefined; keyId: string; endpoints: string[] | undefined } {
  const at = spec.indexOf("@");
  const head = at === -1 ? spec : spec.slice(0, at);
  const endpoints = at === -1 ? undefined : splitUrls(spec.slice(at + 1), `--key ${spec}`);
  const colon = head.indexOf(":");
  const region = colon === -1 ? undefined : head.slice(0, colon);
  const keyId = colon === -1 ? head : head.slice(colon + 1);
  if (keyId === "" || region === "" || keyId.includes(":")) throw new UsageError(`--key ${spec}: must be [REGION:]KEYID[@URL[,URL…]]`);
  return { region, keyId, endpoints };
}

class Regions {
  readonly #map = new Map<string, RegionConfig>();
  readonly order: string[] = [];

  get(region: string): RegionConfig {
    let c = this.#map.get(region);
    if (c === undefined) {
      c = {};
      this.#map.set(region, c);
      this.order.push(region);
    }
    return c;
  }

  has(region: string): boolean {
    return this.#map.has(region);
  }

  setEndpoints(region: string, urls: string[], from: string): void {
    const c = this.get(region);
    if (c.endpoints && !sameList(c.endpoints.urls, urls)) {
      throw new UsageError(`region ${region}: endpoints given twice and different (${c.endpoints.from}: ${c.endpoints.urls.join(",")}; ${from}: ${urls.join(",")})`);
    }
    c.endpoints ??= { urls, from };
  }

  setCredentials(region: string, source: CredentialSource): void {
    const c = this.get(region);
    if (c.credentials && !sameCredentials(c.credentials, source)) {
      throw new UsageError(`region ${region}: credentials given twice and different (${c.credentials.from}; ${source.from})`);
    }
    c.credentials ??= source;
  }

  setCa(region: string, file: string, from: string): void {
    const c = this.get(region);
    if (c.ca && c.ca.path !== file) throw new UsageError(`region ${region}: "ca" given twice and different (${c.ca.from}; ${from})`);
    c.ca ??= { path: file, from };
  }
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`${what} ${file} is not valid JSON`);
  }
}

/** Reads --keyring FILE into `regions`; returns its CMKs (entries with a keyId) in file order. */
function readKeyringFile(file: string, regions: Regions): Array<{ keyId: string; region: string }> {
  const parsed = readJson(file, "--keyring");
  const entries = (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>)["keys"] : undefined) as unknown;
  if (!Array.isArray(entries) || entries.length === 0) throw new UsageError(`--keyring ${file} must be a JSON object {"keys": [ … ]} with at least one entry`);
  const extra = Object.keys(parsed as object).filter((k) => k !== "keys");
  if (extra.length > 0) throw new UsageError(`--keyring ${file}: unknown field ${JSON.stringify(extra[0])} (expected only "keys")`);
  const base = path.dirname(path.resolve(file));
  const keys: Array<{ keyId: string; region: string }> = [];
  entries.forEach((raw: unknown, i) => {
    const where = `--keyring ${file} keys[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new UsageError(`${where} must be an object`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!KEYRING_FIELDS.has(k)) throw new UsageError(`${where}: unknown field ${JSON.stringify(k)}`);
    const str = (name: string): string | undefined => {
      const v = e[name];
      if (v === undefined) return undefined;
      if (typeof v !== "string" || v === "") throw new UsageError(`${where}: "${name}" must be a non-empty string`);
      return v;
    };
    const region = str("region");
    if (region === undefined) throw new UsageError(`${where}: "region" is required`);
    const keyId = str("keyId");
    if (keyId !== undefined) {
      if (keyId.includes(":") || keyId.includes("@")) throw new UsageError(`${where}: "keyId" must be a key id or alias`);
      keys.push({ keyId, region });
    }
    const endpoint = str("endpoint");
    const endpoints = e["endpoints"];
    if (endpoint !== undefined && endpoints !== undefined) throw new UsageError(`${where}: give "endpoints" or "endpoint", not both`);
    if (endpoints !== undefined) {
      if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((u) => typeof u === "string" && u !== "")) {
        throw new UsageError(`${where}: "endpoints" must be a non-empty array of URLs`);
      }
      regions.setEndpoints(region, endpoints as string[], where);
    } else if (endpoint !== undefined) regions.setEndpoints(region, [endpoint], where);
    const credentialsFile = str("credentialsFile");
    const secretIdEnv = str("secretIdEnv");
    const secretKeyEnv = str("secretKeyEnv");
    if ((secretIdEnv === undefined) !== (secretKeyEnv === undefined)) throw new UsageError(`${where}: give both "secretIdEnv" and "secretKeyEnv", or neither`);
    if (credentialsFile !== undefined && secretIdEnv !== undefined) throw new UsageError(`${where}: give "credentialsFile" or "secretIdEnv"/"secretKeyEnv", not both`);
    if (credentialsFile !== undefined) regions.setCredentials(region, { kind: "file", path: path.resolve(base, credentialsFile), from: where });
    if (secretIdEnv !== undefined) regions.setCredentials(region, { kind: "env", secretIdEnv, secretKeyEnv: secretKeyEnv!, from: where });
    const ca = str("ca");
    if (ca !== undefined) regions.setCa(region, path.resolve(base, ca), where);
  });
  return keys;
}

/** A credentials file ({secretId, secretKey}) or a data directory holding admin-credentials.json. */
function credentialsFromFile(file: string, region: string): Credentials {
  let target = file;
  try {
    if (statSync(file).isDirectory()) target = path.join(file, CREDENTIALS_FILE);
  } catch (err) {
    throw new UsageError(`region ${region}: cannot read credentials ${file}: ${(err as Error).message}`);
  }
  const parsed = readJson(target, `region ${region}: credentials`);
  const r = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (typeof r["secretId"] !== "string" || typeof r["secretKey"] !== "string" || r["secretId"] === "" || r["secretKey"] === "") {
    throw new UsageError(`region ${region}: ${target} must hold "secretId" and "secretKey" strings`);
  }
  return { secretId: r["secretId"], secretKey: r["secretKey"] };
}

function credentialsFromEnv(source: { secretIdEnv: string; secretKeyEnv: string; from: string }, region: string): Credentials {
  const secretId = process.env[source.secretIdEnv];
  const secretKey = process.env[source.secretKeyEnv];
  if (!secretId || !secretKey) throw new UsageError(`region ${region}: set ${source.secretIdEnv} and ${source.secretKeyEnv} (${source.from})`);
  return { secretId, secretKey };
}

/**
 * Builds the regions of an encrypt-file (`forEncryption`: the CMKs come from --key, else the
 * keyring file) or decrypt-file (every configured region) command. The caller closes the result.
 */
export async function resolveRegions(cmd: Command, opts: FileKeyringOptions, forEncryption: boolean): Promise<ResolvedRegions> {
  const explicit = (name: string): boolean => {
    const source = cmd.getOptionValueSourceWithGlobals(name);
    return source !== undefined && source !== "default";
  };
  // The default credentials are needed only for a region without its own; read them once, lazily.
  let defaults: Promise<Awaited<ReturnType<typeof loadCredentials>>> | undefined;
  const defaultCredentials = (): Promise<Awaited<ReturnType<typeof loadCredentials>>> => (defaults ??= loadCredentials(opts.dataDir, opts.credentialsFile));
  let defaultRegion = opts.region;
  if (defaultRegion === undefined) {
    // As before: the region recorded in the data dir's credentials, else "local".
    defaultRegion = await defaultCredentials().then(
      (c) => c.region ?? "local",
      () => "local",
    );
  }

  const regions = new Regions();
  const fileKeys = opts.keyring === undefined ? [] : readKeyringFile(opts.keyring, regions);
  for (const value of opts.regionEndpoint ?? []) {
    const [region, urls] = regionPair(value, "--region-endpoint");
    regions.setEndpoints(region, splitUrls(urls, `--region-endpoint ${value}`), `--region-endpoint ${value}`);
  }
  for (const value of opts.credentials ?? []) {
    const [region, file] = regionPair(value, "--credentials");
    regions.setCredentials(region, { kind: "file", path: path.resolve(file), from: `--credentials ${value}` });
  }
  let keys: Array<{ keyId: string; region: string }> = [];
  if (forEncryption) {
    if (opts.key !== undefined && opts.key.length > 0) {
      keys = opts.key.map((spec) => {
        const k = parseKeySpec(spec);
        const region = k.region ?? defaultRegion!;
        if (k.endpoints) regions.setEndpoints(region, k.endpoints, `--key ${spec}`);
        return { keyId: k.keyId, region };
      });
    } else keys = fileKeys;
    if (keys.length === 0) throw new UsageError(`give --key, or a --keyring file whose entries have "keyId"`);
  }
  // The default region takes its endpoints from --endpoint (TRESOR_ENDPOINT): always when given
  // explicitly; otherwise (the built-in default URL) only when nothing else names its endpoints and
  // it is used: by a --key, or for decryption when --region names it or no other region is given.
  const defaultUsed = forEncryption
    ? keys.some((k) => k.region === defaultRegion)
    : explicit("region") || !regions.order.some((r) => regions.get(r).endpoints !== undefined);
  if (explicit("endpoint")) regions.setEndpoints(defaultRegion, splitUrls(opts.endpoint, "--endpoint"), "--endpoint");
  else if (defaultUsed && !regions.get(defaultRegion).endpoints) regions.setEndpoints(defaultRegion, splitUrls(opts.endpoint, "--endpoint"), "--endpoint");

  const used = forEncryption ? [...new Set(keys.map((k) => k.region))] : regions.order.filter((r) => regions.get(r).endpoints !== undefined);
  // Default region first, then the others in the order they were named.
  used.sort((a, b) => (a === defaultRegion ? -1 : b === defaultRegion ? 1 : 0));
  if (!forEncryption) {
    // Credentials for a region that has no endpoint are a mistake, not something to ignore.
    for (const region of regions.order) {
      const c = regions.get(region);
      if (c.endpoints === undefined && (c.credentials || c.ca)) {
        throw new UsageError(`region ${region}: credentials given but no endpoint; add --region-endpoint ${region}=URL`);
      }
    }
  }

  let globalCa: Buffer | undefined;
  if (opts.ca !== undefined) {
    try {
      globalCa = readFileSync(opts.ca);
    } catch (err) {
      throw new UsageError(`cannot read --ca ${opts.ca}: ${(err as Error).message}`);
    }
  }
  const clients = new Map<string, KmsClient[]>();
  const close = (): void => {
    for (const list of clients.values()) for (const c of list) c.close();
  };
  try {
    for (const region of used) {
      const c = regions.get(region);
      if (c.endpoints === undefined) {
        throw new UsageError(`no endpoint for region ${region}; add --region-endpoint ${region}=URL, or --key ${region}:KEYID@URL`);
      }
      let creds: Credentials;
      if (c.credentials?.kind === "file") creds = credentialsFromFile(c.credentials.path, region);
      else if (c.credentials?.kind === "env") creds = credentialsFromEnv(c.credentials, region);
      else creds = await defaultCredentials();
      let ca = globalCa;
      if (c.ca) {
        try {
          ca = readFileSync(c.ca.path);
        } catch (err) {
          throw new UsageError(`region ${region}: cannot read "ca" ${c.ca.path}: ${(err as Error).message}`);
        }
      }
      const list: KmsClient[] = [];
      clients.set(region, list);
      for (const endpoint of c.endpoints.urls) {
        try {
          list.push(
            new KmsClient({
              endpoint,
              region,
              secretId: creds.secretId,
              secretKey: creds.secretKey,
              ...(ca !== undefined && endpoint.startsWith("https:") ? { ca } : {}),
            }),
          );
        } catch (err) {
          throw new UsageError(`region ${region} (${c.endpoints.from}): ${(err as Error).message}`);
        }
      }
    }
  } catch (err) {
    close();
    throw err;
  }
  return { defaultRegion, clients, keys, close };
}

/** The CMKs of encrypt-file as MasterKeys, primary first. */
export function masterKeys(r: ResolvedRegions): MasterKey[] {
  return r.keys.map((k) => ({ keyId: k.keyId, region: k.region, clients: r.clients.get(k.region)! }));
}
