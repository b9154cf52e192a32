// The Kubernetes KMS v2 plugin under load: `node dist/bench/kms-plugin.js` starts a throwaway
// `tresor serve` and `tresor kms-plugin`, then makes PAIRS Encrypt+Decrypt pairs (32-byte
// plaintexts, as the apiserver's seeds) with CONCURRENCY callers, once through the plugin's unix
// socket and, as the baseline in the same run, directly through tresor/sdk with the same purpose
// context (measured first and last, the faster kept). Every pair must decrypt to its plaintext.
// Prints one JSON line: pairs per second each way and the plugin's ratio to the baseline.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PURPOSE_CONTEXT } from "../src/cli/kms-plugin/plugin.js";
import { KmsClient } from "../src/sdk/index.js";
import { kmsV2Client } from "../test/helpers/kms-plugin.js";
import { startPlugin } from "../test/helpers/kms-plugin.js";
import { startServer } from "../test/helpers/server.js";

const PAIRS = Number(process.env["BENCH_PLUGIN_PAIRS"] ?? 1000);
const CONCURRENCY = Number(process.env["BENCH_PLUGIN_CONCURRENCY"] ?? 16);

/** Runs `pairs` round trips with `concurrency` callers; counts failures and mismatches. */
async function drive(pairs: number, concurrency: number, roundTrip: (plaintext: Buffer, index: number) => Promise<Buffer>) {
  let next = 0;
  let errors = 0;
  let mismatches = 0;
  const started = performance.now();
  const caller = async () => {
    for (let i = next++; i < pairs; i = next++) {
      const plaintext = randomBytes(32);
      try {
        if (!(await roundTrip(plaintext, i)).equals(plaintext)) mismatches++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const seconds = (performance.now() - started) / 1000;
  return { pairs, errors, mismatches, seconds: Number(seconds.toFixed(3)), pairsPerSecond: Math.round(pairs / seconds) };
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), "tresor-bench-plugin-"));
  const server = await startServer();
  try {
    const sdk = new KmsClient({ endpoint: server.url, secretId: server.secretId, secretKey: server.secretKey, region: server.region });
    const { KeyId } = await sdk.createKey({ Alias: "bench-kek" });
    const socket = path.join(work, "kms.sock");
    const plugin = await startPlugin(["--socket", socket, "--key-id", KeyId!, "--endpoint", server.url], {
      TRESOR_SECRET_ID: server.secretId,
      TRESOR_SECRET_KEY: server.secretKey,
      TRESOR_REGION: server.region,
    });
    const kms = kmsV2Client(socket);
    try {
      const direct = () =>
        drive(PAIRS, CONCURRENCY, async (plaintext) => sdk.decryptBytes(await sdk.encryptBytes(KeyId!, plaintext, PURPOSE_CONTEXT), PURPOSE_CONTEXT));
      const throughPlugin = () =>
        drive(PAIRS, CONCURRENCY, async (plaintext, i) => {
          const sealed = await kms.encrypt({ plaintext, uid: `bench-${i}` });
          return (await kms.decrypt({ ciphertext: sealed.ciphertext, uid: `bench-${i}`, key_id: sealed.key_id, annotations: sealed.annotations })).plaintext;
        });
      const before = await direct();
      const viaPlugin = await throughPlugin();
      const after = await direct();
      const baseline = before.pairsPerSecond >= after.pairsPerSecond ? before : after;
      const result = { pairs: PAIRS, concurrency: CONCURRENCY, plugin: viaPlugin, sdkBaseline: baseline, ratioToSdk: Number((viaPlugin.pairsPerSecond / baseline.pairsPerSecond).toFixed(2)) };
      process.stdout.write(`${JSON.stringify(result)}\n`);
      if ([viaPlugin, before, after].some((r) => r.errors > 0 || r.mismatches > 0)) process.exitCode = 1;
    } finally {
      kms.close();
      await plugin.stop();
      sdk.close();
    }
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
