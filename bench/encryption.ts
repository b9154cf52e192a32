// Encryption SDK throughput per suite, encrypting and decrypting one stream of BENCH_ENCRYPTION_BYTES
// (default 64 MiB), as ratios to raw node:crypto over the same bytes in the same run: AES-256-GCM
// for the AES suites, SM4-CTR for the SM4 suites (DESIGN.md: ratios to a baseline measured in the
// same run). No KMS in the loop: a RawKeyring gives the one data key per message, so the figures
// are the SDK's framing and cryptography. Decryption is timed as (encrypt piped into decrypt) minus
// (encrypt alone), so memory stays constant at any size. Run alone: node dist/bench/encryption.js

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { median } from "./wrk.js";
import {
  DEFAULT_FRAME_LENGTH,
  decrypt,
  decryptStream,
  encrypt,
  encryptStream,
  generatePqKeyPair,
  PostQuantumKeyring,
  RawKeyring,
  SUITE_NAMES,
  type Keyring,
  type SuiteName,
} from "../src/sdk/encryption/index.js";

/** The source's chunk size (a file read's). */
const CHUNK = 64 * 1024;
/** The raw baselines update in pieces of the SDK's default frame length, so neither side gets smaller calls. */
const RAW_PIECE = DEFAULT_FRAME_LENGTH;
export const ENCRYPTION_TARGETS = {
  /** AES_256_GCM_HKDF_SHA512_COMMIT against raw AES-256-GCM. */
  aes: 0.8,
  /** The fastest SM4 suite against raw SM4-CTR. */
  fastestSm4: 0.6,
  /** SM4_GCM_SM3 against raw SM4-CTR. */
  sm4Gcm: 0.45,
} as const;

export interface SuiteThroughput {
  suite: SuiteName;
  baseline: "AES-256-GCM" | "SM4-CTR";
  encryptMBps: number;
  decryptMBps: number;
  encryptRatio: number;
  decryptRatio: number;
}

/** Small messages: what a message costs beyond its bytes (data key wrapping, key pair, signature). */
export interface PerMessage {
  name: string;
  encryptPerSecond: number;
  decryptPerSecond: number;
}

export interface EncryptionBench {
  bytes: number;
  rounds: number;
  rawAesGcmMBps: number;
  rawSm4CtrMBps: number;
  suites: SuiteThroughput[];
  perMessage: PerMessage[];
  targets: Array<{ name: string; min: number; ratio: number; met: boolean }>;
}

/** BENCH_ENCRYPTION_BYTES, default 64 MiB (16 MiB in a quick run). */
export function encryptionBytes(quick = false): number {
  const raw = process.env["BENCH_ENCRYPTION_BYTES"];
  if (raw === undefined || raw === "") return (quick ? 16 : 64) * 1024 * 1024;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < CHUNK || n > 64 * 1024 ** 3) throw new Error(`BENCH_ENCRYPTION_BYTES must be an integer from ${CHUNK} to 64 GiB, got ${raw}`);
  return n;
}

const mbps = (bytes: number, ms: number): number => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;

/** The plaintext: `bytes` in 64 KiB chunks cut from one random buffer (the ciphers never see repeats as special). */
function plaintextSource(bytes: number, base: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, bytes - sent);
      sent += n;
      this.push(base.subarray(0, n));
    },
  });
}

function rawCipher(name: "aes-256-gcm" | "sm4-ctr", bytes: number, base: Buffer, decrypt: boolean): number {
  const key = randomBytes(name === "aes-256-gcm" ? 32 : 16);
  const iv = randomBytes(name === "aes-256-gcm" ? 12 : 16);
  const started = performance.now();
  if (name === "aes-256-gcm" && decrypt) {
    const d = createDecipheriv("aes-256-gcm", key, iv);
    d.setAuthTag(Buffer.alloc(16));
    for (let done = 0; done < bytes; done += RAW_PIECE) d.update(base.subarray(0, Math.min(RAW_PIECE, bytes - done)));
    try {
      d.final();
    } catch {
      // the tag is wrong on purpose: only the time to compute it counts
    }
    return performance.now() - started;
  }
  const c = decrypt ? createDecipheriv(name, key, iv) : createCipheriv(name, key, iv);
  for (let done = 0; done < bytes; done += RAW_PIECE) c.update(base.subarray(0, Math.min(RAW_PIECE, bytes - done)));
  c.final();
  return performance.now() - started;
}

async function suiteRun(suite: SuiteName, bytes: number, base: Buffer, keyring: RawKeyring): Promise<{ encMs: number; decMs: number }> {
  // Encryption alone, into a sink that drops its input as the raw baseline drops its output.
  let started = performance.now();
  await pipeline(plaintextSource(bytes, base), encryptStream({ keyring, suite }), new Writable({ write: (_c, _e, cb) => cb() }));
  const encMs = performance.now() - started;
  // Then encryption piped into decryption on the same thread: decryption's time is the difference.
  // (Holding a 1 GiB message in memory to decrypt it alone measured the garbage collector instead.)
  let out = 0;
  started = performance.now();
  await pipeline(
    plaintextSource(bytes, base),
    encryptStream({ keyring, suite }),
    decryptStream({ keyring }),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.length;
        cb();
      },
    }),
  );
  const bothMs = performance.now() - started;
  if (out !== bytes) throw new Error(`${suite}: decrypted ${out} bytes, expected ${bytes}`);
  const decMs = bothMs - encMs;
  if (decMs <= 0) throw new UnmeasurableError(`${suite}: decryption time not measurable (the machine was busy during the encrypt-only run); re-run`);
  return { encMs, decMs };
}

/** suiteRun, again (at most three times) when a busy moment made decryption's time unmeasurable. */
async function suiteRunSettled(suite: SuiteName, bytes: number, base: Buffer, keyring: RawKeyring): Promise<{ encMs: number; decMs: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await suiteRun(suite, bytes, base, keyring);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof UnmeasurableError)) throw e;
    }
  }
}

class UnmeasurableError extends Error {}

/**
 * Round after round, each suite right after its raw baseline (the faster of raw encrypt and raw
 * decrypt over the same bytes), so both see the same moment of the machine; every figure is the
 * median of its rounds, every ratio the median of the rounds' ratios.
 */
export async function measureEncryption(bytes: number, rounds: number, log: (line: string) => void): Promise<EncryptionBench> {
  const base = randomBytes(Math.max(CHUNK, RAW_PIECE));
  const keyring = new RawKeyring([{ name: "bench", algorithm: "AES-256-GCM", key: randomBytes(32) }]);
  const rawMs = (name: "aes-256-gcm" | "sm4-ctr"): number => Math.min(rawCipher(name, bytes, base, false), rawCipher(name, bytes, base, true));
  const samples = new Map<SuiteName, Array<{ baseMs: number; encMs: number; decMs: number }>>(SUITE_NAMES.map((n) => [n, []]));
  const rawSamples = { aes: [] as number[], sm4: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    for (const suite of SUITE_NAMES) {
      const aes = suite.startsWith("AES");
      const baseMs = rawMs(aes ? "aes-256-gcm" : "sm4-ctr");
      (aes ? rawSamples.aes : rawSamples.sm4).push(baseMs);
      const r = await suiteRunSettled(suite, bytes, base, keyring);
      samples.get(suite)!.push({ baseMs, ...r });
      log(`bench: encryption round ${round}/${rounds} ${suite}: encrypt ${mbps(bytes, r.encMs)} MB/s, decrypt ${mbps(bytes, r.decMs)} MB/s, raw ${mbps(bytes, baseMs)} MB/s`);
    }
  }
  const perMessage = await measurePerMessage(rounds, keyring, log);
  const suites: SuiteThroughput[] = SUITE_NAMES.map((suite) => {
    const runs = samples.get(suite)!;
    return {
      suite,
      baseline: suite.startsWith("AES") ? "AES-256-GCM" : "SM4-CTR",
      encryptMBps: mbps(bytes, median(runs.map((r) => r.encMs))),
      decryptMBps: mbps(bytes, median(runs.map((r) => r.decMs))),
      encryptRatio: Math.round(median(runs.map((r) => r.baseMs / r.encMs)) * 1000) / 1000,
      decryptRatio: Math.round(median(runs.map((r) => r.baseMs / r.decMs)) * 1000) / 1000,
    };
  });
  const ratio = (name: SuiteName): number => {
    const s = suites.find((x) => x.suite === name)!;
    return Math.min(s.encryptRatio, s.decryptRatio);
  };
  const sm4Names = SUITE_NAMES.filter((n) => n.startsWith("SM4"));
  const fastest = Math.max(...sm4Names.map(ratio));
  const targets = [
    { name: "AES_256_GCM_HKDF_SHA512_COMMIT vs raw AES-256-GCM", min: ENCRYPTION_TARGETS.aes, ratio: ratio("AES_256_GCM_HKDF_SHA512_COMMIT") },
    { name: "fastest SM4 suite vs raw SM4-CTR", min: ENCRYPTION_TARGETS.fastestSm4, ratio: fastest },
    { name: "SM4_GCM_SM3 vs raw SM4-CTR", min: ENCRYPTION_TARGETS.sm4Gcm, ratio: ratio("SM4_GCM_SM3") },
  ].map((t) => ({ ...t, met: t.ratio >= t.min }));
  return { bytes, rounds, rawAesGcmMBps: mbps(bytes, median(rawSamples.aes)), rawSm4CtrMBps: mbps(bytes, median(rawSamples.sm4)), suites, perMessage, targets };
}

const PER_MESSAGE_BYTES = 1024;
const PER_MESSAGE_COUNT = 40;

/**
 * 1 KiB messages, each with its own data key: a raw keyring, the post-quantum keyring (X-Wing,
 * decrypting with the local seed, the work PostQuantumCryptoDecrypt does in the server), and the
 * signed suites; interleaved round by round, medians of the rounds.
 */
async function measurePerMessage(rounds: number, raw: RawKeyring, log: (line: string) => void): Promise<PerMessage[]> {
  const pair = generatePqKeyPair("ML_KEM_768_X25519_AES_256_GCM");
  const pq = new PostQuantumKeyring([{ keyId: "00000000-0000-4000-8000-000000000001", region: "bench", publicKey: pair.publicKey, seed: pair.seed }]);
  const cases: Array<{ name: string; keyring: Keyring; suite: SuiteName }> = [
    { name: "raw keyring, AES_256_GCM_HKDF_SHA512_COMMIT", keyring: raw, suite: "AES_256_GCM_HKDF_SHA512_COMMIT" },
    { name: "raw keyring, AES_256_GCM_HKDF_SHA512_COMMIT_ECDSA_P384", keyring: raw, suite: "AES_256_GCM_HKDF_SHA512_COMMIT_ECDSA_P384" },
    { name: "raw keyring, AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65", keyring: raw, suite: "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65" },
    { name: "post-quantum keyring (X-Wing), AES_256_GCM_HKDF_SHA512_COMMIT", keyring: pq, suite: "AES_256_GCM_HKDF_SHA512_COMMIT" },
    { name: "post-quantum keyring (X-Wing), AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65", keyring: pq, suite: "AES_256_GCM_HKDF_SHA512_COMMIT_ML_DSA_65" },
  ];
  const plaintext = randomBytes(PER_MESSAGE_BYTES);
  const samples = cases.map(() => ({ enc: [] as number[], dec: [] as number[] }));
  for (let round = 1; round <= rounds; round++) {
    for (const [i, c] of cases.entries()) {
      let started = performance.now();
      const messages: Buffer[] = [];
      for (let n = 0; n < PER_MESSAGE_COUNT; n++) messages.push((await encrypt(plaintext, { keyring: c.keyring, suite: c.suite })).message);
      const enc = (PER_MESSAGE_COUNT * 1000) / (performance.now() - started);
      started = performance.now();
      for (const m of messages) await decrypt(m, { keyring: c.keyring });
      const dec = (PER_MESSAGE_COUNT * 1000) / (performance.now() - started);
      samples[i]!.enc.push(enc);
      samples[i]!.dec.push(dec);
      log(`bench: encryption round ${round}/${rounds} 1 KiB messages, ${c.name}: encrypt ${Math.round(enc)}/s, decrypt ${Math.round(dec)}/s`);
    }
  }
  return cases.map((c, i) => ({ name: c.name, encryptPerSecond: Math.round(median(samples[i]!.enc)), decryptPerSecond: Math.round(median(samples[i]!.dec)) }));
}

export function encryptionTable(b: EncryptionBench): string {
  const head = ["suite", "baseline", "enc MB/s", "dec MB/s", "enc ratio", "dec ratio"];
  const body = b.suites.map((s) => [s.suite, s.baseline, s.encryptMBps.toFixed(1), s.decryptMBps.toFixed(1), s.encryptRatio.toFixed(3), s.decryptRatio.toFixed(3)]);
  body.push(["raw AES-256-GCM", "", b.rawAesGcmMBps.toFixed(1), "", "1.000", ""], ["raw SM4-CTR", "", b.rawSm4CtrMBps.toFixed(1), "", "1.000", ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const targets = b.targets.map((t) => `target: ${t.name} >= ${t.min} (lower of enc/dec): ${t.ratio.toFixed(3)} (${t.met ? "met" : "NOT met"})`);
  const messages = b.perMessage.map((m) => `1 KiB messages, ${m.name}: encrypt ${m.encryptPerSecond}/s, decrypt ${m.decryptPerSecond}/s`);
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line), "", ...messages, "", ...targets].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bytes = encryptionBytes();
  const log = (l: string): void => void process.stdout.write(`${l}\n`);
  log(`bench: encryption SDK, ${bytes} bytes per suite and direction`);
  const result = await measureEncryption(bytes, Number(process.env["BENCH_ROUNDS"] ?? 3), log);
  log("");
  log(encryptionTable(result));
}
