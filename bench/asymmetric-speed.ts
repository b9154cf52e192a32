// In-process speed of Tresor's asymmetric primitives beside `openssl speed` measured in the same
// call (DESIGN.md: ratios to a baseline of the same run). SM2 is src/crypto/sm2.ts; ECDSA P-256 and
// RSA-2048 are node:crypto, so their ratios show the cost of the Node binding itself.
// Run alone: `node dist/bench/asymmetric-speed.js [seconds] [rounds]`.

import { execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { argv } from "node:process";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { median } from "./wrk.js";
import { sm2Decrypt, sm2Encrypt, sm2GenerateKeyPair, sm2PublicKeyToSpki, sm2Sign, sm2Verify, sm2VerifyWithPrivateKey } from "../src/crypto/sm2.js";
import { ecdhNist, ecdhPeerKey, ecdhSm2 } from "../src/crypto/ecdh.js";
import { ed25519Sign, ed25519Verify } from "../src/crypto/ed25519.js";
import { HmacKey } from "../src/crypto/hmac.js";
import { hybridKemDecapsulate, hybridKemEncapsulate, hybridKemGenerateKeyPair } from "../src/crypto/hybrid-kem.js";
import { mlDsaGenerateKeyPair, mlDsaKeyPairFromSeed, mlDsaSign, mlDsaVerify } from "../src/crypto/ml-dsa.js";

export interface AsymmetricSpeed {
  name: string;
  opsPerSec: number;
  opensslOpsPerSec: number | null;
  /** opsPerSec / opensslOpsPerSec. */
  ratio: number | null;
}

interface OpensslSpeeds {
  sm2Sign: number;
  sm2Verify: number;
  ecdsaP256Sign: number;
  rsa2048Sign: number;
}

/** The sign/s and verify/s columns of one row of `openssl speed`'s tables. */
function row(output: string, pattern: RegExp, what: string): { sign: number; verify: number } {
  const m = pattern.exec(output);
  if (!m) throw new Error(`openssl speed: no ${what} row in its output`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}

/** Parses the tables printed by `openssl speed … sm2 ecdsap256 rsa2048` (OpenSSL 3). */
export function parseOpensslSpeed(output: string): OpensslSpeeds {
  const cols = String.raw`\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)`;
  const sm2 = row(output, new RegExp(String.raw`256 bits SM2 \(CurveSM2\)${cols}`), "SM2");
  const ecdsa = row(output, new RegExp(String.raw`256 bits ecdsa \(nistp256\)${cols}`), "ECDSA P-256");
  const rsa = row(output, new RegExp(String.raw`rsa\s+2048 bits${cols}`), "RSA-2048");
  return { sm2Sign: sm2.sign, sm2Verify: sm2.verify, ecdsaP256Sign: ecdsa.sign, rsa2048Sign: rsa.sign };
}

async function opensslSpeed(seconds: number): Promise<OpensslSpeeds> {
  const { stdout } = await promisify(execFile)("openssl", ["speed", "-seconds", String(seconds), "-elapsed", "sm2", "ecdsap256", "rsa2048"], {
    maxBuffer: 1 << 20,
  });
  return parseOpensslSpeed(stdout);
}

/** Operations per second of `op` over about `seconds` of wall time, after a short warm-up. */
function measure(seconds: number, op: () => void): number {
  for (let i = 0; i < 20; i++) op();
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  let now = start;
  while (now < deadline) {
    op();
    count++;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

/** The in-process operations and the `openssl speed` figure each is compared with. */
function operations(): Array<[string, () => void, keyof OpensslSpeeds | null]> {
  const sm2Key = sm2GenerateKeyPair();
  const message = randomBytes(64);
  const sm2Signature = sm2Sign(sm2Key.privateKey, message);
  const sm2Ciphertext = sm2Encrypt(sm2Key.publicKey, randomBytes(64));
  const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  return [
    ["SM2 sign", () => sm2Sign(sm2Key.privateKey, message), "sm2Sign"],
    [
      "SM2 verify",
      () => {
        if (!sm2VerifyWithPrivateKey(sm2Key.privateKey, message, sm2Signature)) throw new Error("SM2 verify failed in the benchmark");
      },
      "sm2Verify",
    ],
    [
      "SM2 verify by the public key alone (Encryption SDK, KMIP)",
      () => {
        if (!sm2Verify(sm2Key.publicKey, message, sm2Signature)) throw new Error("SM2 verify failed in the benchmark");
      },
      "sm2Verify",
    ],
    ["SM2 decrypt (64 bytes)", () => sm2Decrypt(sm2Key.privateKey, sm2Ciphertext), null],
    ["ECDSA P-256 sign (node:crypto)", () => sign("sha256", message, p256), "ecdsaP256Sign"],
    ["RSA-2048 sign (node:crypto, PKCS#1 v1.5 SHA-256)", () => sign("sha256", message, rsa), "rsa2048Sign"],
    ...newKeyTypeOperations(message),
  ];
}

/** The key types of issue 22, each measured the same way in the same run (no openssl baseline: OpenSSL 3.0 has no ML-DSA or ML-KEM). */
function newKeyTypeOperations(message: Buffer): Array<[string, () => void, null]> {
  const ed25519 = generateKeyPairSync("ed25519");
  const edSignature = ed25519Sign(ed25519.privateKey, message);
  const hmac256 = new HmacKey("sha256", randomBytes(32));
  const hmacSm3 = new HmacKey("sm3", randomBytes(32));
  const ecdhPeer = ecdhPeerKey("P-256", generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ format: "der", type: "spki" }));
  const ecdhKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
  const sm2Peer = ecdhPeerKey("SM2", sm2PublicKeyToSpki(sm2GenerateKeyPair().publicKey));
  const sm2Scalar = sm2GenerateKeyPair().privateKey;
  const ops: Array<[string, () => void, null]> = [
    ["Ed25519 sign (node:crypto)", () => ed25519Sign(ed25519.privateKey, message), null],
    ["Ed25519 verify (node:crypto)", () => ed25519Verify(ed25519.publicKey, message, edSignature) || fail("Ed25519"), null],
    ["HMAC-SHA-256 (64 bytes)", () => hmac256.mac(message), null],
    ["HMAC-SM3 (64 bytes)", () => hmacSm3.mac(message), null],
    ["ECDH P-256 (node:crypto)", () => ecdhNist(ecdhKey, ecdhPeer), null],
    ["ECDH SM2 curve (node:crypto)", () => ecdhSm2(sm2Scalar, sm2Peer), null],
  ];
  for (const set of ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] as const) {
    const { seed } = mlDsaGenerateKeyPair(set);
    const { publicKey, secretKey } = mlDsaKeyPairFromSeed(set, seed);
    const signature = mlDsaSign(set, secretKey, message, Buffer.alloc(0));
    ops.push([`${set} sign (@noble/post-quantum)`, () => mlDsaSign(set, secretKey, message, Buffer.alloc(0)), null]);
    ops.push([`${set} verify`, () => mlDsaVerify(set, publicKey, message, signature, Buffer.alloc(0)) || fail(set), null]);
  }
  // PostQuantumCryptoEncrypt/Decrypt spend their time in the hybrid KEM (the AES-GCM of at most 4 KiB is native).
  for (const kem of ["X-Wing", "MLKEM1024-P384"] as const) {
    const { seed, publicKey } = hybridKemGenerateKeyPair(kem);
    const { ciphertext } = hybridKemEncapsulate(kem, publicKey);
    ops.push([`${kem} encapsulate (PQ encrypt)`, () => hybridKemEncapsulate(kem, publicKey), null]);
    ops.push([`${kem} decapsulate (PQ decrypt)`, () => hybridKemDecapsulate(kem, seed, ciphertext), null]);
  }
  return ops;
}

function fail(what: string): never {
  throw new Error(`${what} verify failed in the benchmark`);
}

/**
 * SM2 sign, verify, decrypt (64-byte plaintext), ECDSA P-256 sign and RSA-2048 sign (PKCS#1 v1.5,
 * SHA-256), each beside `openssl speed -seconds N -elapsed sm2 ecdsap256 rsa2048`: round after round,
 * openssl then the same operations in process (one at a time, so the two never compete for a core);
 * each figure is the median of its rounds, each ratio the median of the rounds' ratios.
 */
export async function measureAsymmetricSpeed(seconds: number, rounds = 1): Promise<AsymmetricSpeed[]> {
  if (!(seconds > 0)) throw new RangeError(`"seconds" must be a positive number, got ${seconds}`);
  const ops = operations();
  const samples = ops.map(() => ({ ours: [] as number[], theirs: [] as number[], ratios: [] as number[] }));
  for (let r = 0; r < rounds; r++) {
    const openssl = await opensslSpeed(Math.max(1, Math.round(seconds)));
    ops.forEach(([, op, baseline], i) => {
      const ours = measure(seconds, op);
      samples[i]!.ours.push(ours);
      if (baseline !== null) {
        samples[i]!.theirs.push(openssl[baseline]);
        samples[i]!.ratios.push(ours / openssl[baseline]);
      }
    });
  }
  return ops.map(([name], i) => {
    const s = samples[i]!;
    return {
      name,
      opsPerSec: median(s.ours),
      opensslOpsPerSec: s.theirs.length === 0 ? null : median(s.theirs),
      ratio: s.ratios.length === 0 ? null : median(s.ratios),
    };
  });
}

export function speedTable(rows: AsymmetricSpeed[]): string {
  const head = ["in process", "ops/s", "openssl speed ops/s", "ratio to openssl"];
  const body = rows.map((r) => [r.name, r.opsPerSec.toFixed(0), r.opensslOpsPerSec === null ? "-" : r.opensslOpsPerSec.toFixed(0), r.ratio === null ? "-" : r.ratio.toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

if (argv[1] !== undefined && import.meta.url === pathToFileURL(argv[1]).href) {
  console.log(speedTable(await measureAsymmetricSpeed(Number(argv[2] ?? 1), Number(argv[3] ?? 3))));
}
