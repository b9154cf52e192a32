// Streams `bytes` of plaintext through encryptStream and decryptStream in a child process and
// reports its peak resident memory: the Encryption SDK's constant-memory check. The child is this
// file, run with TRESOR_ENCRYPTION_MEMORY_CHILD=1.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { decryptStream, encryptStream, RawKeyring, type SuiteName } from "../../src/sdk/encryption/index.js";

export interface MemoryReport {
  bytes: number;
  maxRssMiB: number;
  plaintextSha256: string;
  decryptedSha256: string;
  decryptedBytes: number;
  seconds: number;
}

const CHUNK = 64 * 1024;

export function measureStreamMemory(bytes: number, suite: SuiteName, timeoutMs: number): Promise<MemoryReport> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [fileURLToPath(import.meta.url)],
      { env: { ...process.env, TRESOR_ENCRYPTION_MEMORY_CHILD: "1", BYTES: String(bytes), SUITE: suite }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`memory child failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split("\n").pop()!) as MemoryReport);
      },
    );
  });
}

async function child(): Promise<void> {
  const bytes = Number(process.env["BYTES"]);
  const suite = process.env["SUITE"] as SuiteName;
  const keyring = new RawKeyring([{ name: "memory", algorithm: "AES-256-GCM", key: randomBytes(32) }]);
  const base = randomBytes(CHUNK);
  const inHash = createHash("sha256");
  const outHash = createHash("sha256");
  let produced = 0;
  let decrypted = 0;
  const source = new Readable({
    read() {
      if (produced >= bytes) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, bytes - produced);
      const chunk = Buffer.from(base.subarray(0, n));
      chunk.writeUInt32BE(produced / CHUNK, 0); // every chunk differs
      produced += n;
      inHash.update(chunk);
      this.push(chunk);
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      decrypted += chunk.length;
      outHash.update(chunk);
      cb();
    },
  });
  const started = performance.now();
  await pipeline(source, encryptStream({ keyring, suite }), decryptStream({ keyring }), sink);
  const report: MemoryReport = {
    bytes,
    maxRssMiB: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
    plaintextSha256: inHash.digest("hex"),
    decryptedSha256: outHash.digest("hex"),
    decryptedBytes: decrypted,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

if (process.env["TRESOR_ENCRYPTION_MEMORY_CHILD"] === "1") await child();
