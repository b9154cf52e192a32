// The bench's PostgreSQL node: `tresor init --store` into a fresh schema of the database that
// TRESOR_TEST_PG_URL names, one `tresor serve --store` on it, an SM4 key; the schema is dropped
// afterwards. Its Encrypt rate is reported as a ratio to the SQLite node's in the same run.

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
    const server = await options.start(
      "tresor serve --store",
      [options.tresorMain, "serve", "--store", storeUrl.href, "--data-dir", dataDir, "--port", "0"],
      join(options.tmp, "server-pg.log"),
    );
    const url = loopbackUrl(server.listening.url);
    const key = await callAction(url, "CreateKey", { Alias: "bench-pg-sm4", KeySpec: "SM4" }, creds);
    return { server, creds, url, keyId: String(key.KeyId), dropSchema };
  } catch (e) {
    await dropSchema().catch(() => undefined);
    throw e;
  }
}
