// A PostgresStore in a fresh schema of TRESOR_TEST_PG_URL's database, dropped by cleanup(); the
// tests that need one share this instead of each repeating the schema dance.

import { randomUUID } from "node:crypto";
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres.js";

export async function postgresSchemaStore(baseUrl: string, prefix: string): Promise<{ store: PostgresStore; cleanup(): Promise<void> }> {
  const admin = new pg.Pool({ connectionString: baseUrl, max: 1 });
  admin.on("error", () => undefined);
  const schema = `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  await admin.query(`CREATE SCHEMA ${schema}`);
  const url = new URL(baseUrl);
  url.searchParams.set("options", `-c search_path=${schema}`);
  const store = await PostgresStore.open(url.toString(), { poolSize: 4 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}
