// The bench's PostgreSQL nodes: `tresor init --store` into a fresh schema of the database that
// TRESOR_TEST_PG_URL names, one `tresor serve --store` on it, an SM4 key; then more nodes on the
// same schema, each with its own data directory holding a copy of the root key (as
// docs/operations.md sets a cluster up). The schema is dropped afterwards. Their Encrypt rates
// are reported as ratios to the SQLite node's in the same run.

import { chmodSync, copyFileSync, mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { callAction, loopbackUrl, type Credentials } from "./signed-request.js";

export interface PostgresNode<S> {
  server: S;
  creds: Credentials;
  url: URL;
  keyId: string;
  /** Drops the schema; call after the server has stopped. */
  dropSchema(): Promise<void>;
  /** Starts `count` more nodes on the same store (node ids pg-node-1, …), each with a copy of the root key. */
  startMoreNodes(count: number): Promise<S[]>;
}

export async function startPostgresNode<S extends { listening: { url: string } }>(options: {
  pgUrl: string;
  tmp: string;
  tresorMain: string;
  run: (args: string[], timeoutMs: number) => Promise<string>;
  start: (name: string, args: string[], logPath: string) => Promise<S>;
}): Promise<PostgresNode<S>> {
  const schema = `tresor_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: options.pgUrl });
  await admin.connect();
  const dropSchema = async (): Promise<void> => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  };
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const storeUrl = new URL(options.pgUrl);
    storeUrl.searchParams.set("options", `-c search_path=${schema}`);
    const dataDir = join(options.tmp, "pg-node");
    const out = await options.run([options.tresorMain, "init", "--store", storeUrl.href, "--data-dir", dataDir, "--json"], 60_000);
    const initLine = out.trim().split("\n").reverse().find((l) => l.includes('"secretId"'));
    if (initLine === undefined) throw new Error(`tresor init --store printed no credentials:\n${out}`);
    const creds = JSON.parse(initLine) as Credentials;
    const serve = (dir: string, id: string, log: string) =>
      options.start(`tresor serve --store (${id})`, [options.tresorMain, "serve", "--store", storeUrl.href, "--data-dir", dir, "--port", "0", "--node-id", id, "--workers", "1"], join(options.tmp, log));
    const server = await serve(dataDir, "pg-node-0", "server-pg.log");
    const url = loopbackUrl(server.listening.url);
    const key = await callAction(url, "CreateKey", { Alias: "bench-pg-sm4", KeySpec: "SM4" }, creds);
    let started = 1;
    const startMoreNodes = async (count: number): Promise<S[]> => {
      const servers: S[] = [];
      for (let i = 0; i < count; i++, started++) {
        const dir = join(options.tmp, `pg-node-${started}`);
        mkdirSync(dir, { mode: 0o700 });
        copyFileSync(join(dataDir, "root.key"), join(dir, "root.key"));
        chmodSync(join(dir, "root.key"), 0o600);
        servers.push(await serve(dir, `pg-node-${started}`, `server-pg-${started}.log`));
      }
      return servers;
    };
    return { server, creds, url, keyId: String(key.KeyId), dropSchema, startMoreNodes };
  } catch (e) {
    await dropSchema().catch(() => undefined);
    throw e;
  }
}
