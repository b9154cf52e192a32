// Hybrid key encapsulation: ML-KEM (FIPS 203) joined with an elliptic-curve exchange, so that a
// secret stays safe while either part holds. Two combinations from @noble/post-quantum (Node 20's
// OpenSSL 3.0 has no ML-KEM):
// - X-Wing (draft-connolly-cfrg-xwing-kem): ML-KEM-768 + X25519, shared secret
//   SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\");
// - MLKEM1024-P384 (draft-ietf-hpke-pq): ML-KEM-1024 + P-384, shared secret
//   SHA3-256(ss_M || ss_E || ct_E || pk_E || "MLKEM1024-P384").
// Each key pair is expanded from a 32-byte seed with SHAKE256, as both drafts specify.

import { ml_kem1024_p384, ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { randomBytes } from "./random.js";

export const HYBRID_KEMS = ["X-Wing", "MLKEM1024-P384"] as const;
export type HybridKem = (typeof HYBRID_KEMS)[number];
export const HYBRID_KEM_SEED_LENGTH = 32;
export const HYBRID_KEM_SECRET_LENGTH = 32;

/** The hybrid KEM operations the post-quantum ciphertext needs (pq-ciphertext.ts); PqThread (pq-worker.ts) is one. */
export interface HybridKemOps {
  encapsulate(kem: HybridKem, publicKey: Uint8Array): Promise<{ ciphertext: Buffer; sharedSecret: Buffer }>;
  decapsulate(kem: HybridKem, seed: Uint8Array, ciphertext: Uint8Array): Promise<Buffer>;
}

interface KemInfo {
  readonly noble: typeof ml_kem768_x25519;
  readonly publicKeyLength: number;
  readonly ciphertextLength: number;
}

const KEMS: Readonly<Record<HybridKem, KemInfo>> = Object.freeze({
  "X-Wing": { noble: ml_kem768_x25519, publicKeyLength: 1216, ciphertextLength: 1120 },
  "MLKEM1024-P384": { noble: ml_kem1024_p384, publicKeyLength: 1665, ciphertextLength: 1665 },
});

export function hybridKemCiphertextLength(kem: HybridKem): number {
  return KEMS[kem].ciphertextLength;
}

export function hybridKemPublicKeyLength(kem: HybridKem): number {
  return KEMS[kem].publicKeyLength;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== HYBRID_KEM_SEED_LENGTH) throw new RangeError(`"seed" must be ${HYBRID_KEM_SEED_LENGTH} bytes`);
}

/** A fresh seed (the private key) and its encapsulation key. */
export function hybridKemGenerateKeyPair(kem: HybridKem): { seed: Buffer; publicKey: Buffer } {
  const seed = randomBytes(HYBRID_KEM_SEED_LENGTH);
  return { seed, publicKey: hybridKemPublicKey(kem, seed) };
}

export function hybridKemPublicKey(kem: HybridKem, seed: Uint8Array): Buffer {
  checkSeed(seed);
  return Buffer.from(KEMS[kem].noble.getPublicKey(seed));
}

/**
 * A fresh shared secret and its ciphertext for `publicKey`. RangeError when the key is not an
 * encapsulation key of `kem` (wrong length, or its curve point or ML-KEM key fails the checks).
 */
export function hybridKemEncapsulate(kem: HybridKem, publicKey: Uint8Array): { ciphertext: Buffer; sharedSecret: Buffer } {
  const info = KEMS[kem];
  if (publicKey.length !== info.publicKeyLength) throw new RangeError(`"publicKey" must be ${info.publicKeyLength} bytes for ${kem}`);
  let result: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    result = info.noble.encapsulate(publicKey);
  } catch {
    throw new RangeError(`"publicKey" is not a valid ${kem} encapsulation key`);
  }
  return { ciphertext: Buffer.from(result.cipherText), sharedSecret: Buffer.from(result.sharedSecret) };
}

/**
 * The shared secret of `ciphertext`. ML-KEM rejects implicitly: a tampered ciphertext gives an
 * unrelated secret, not an error. RangeError only for a wrong length or an invalid curve point.
 */
export function hybridKemDecapsulate(kem: HybridKem, seed: Uint8Array, ciphertext: Uint8Array): Buffer {
  checkSeed(seed);
  const info = KEMS[kem];
  if (ciphertext.length !== info.ciphertextLength) throw new RangeError(`"ciphertext" must be ${info.ciphertextLength} bytes for ${kem}`);
  try {
    return Buffer.from(info.noble.decapsulate(ciphertext, seed));
  } catch {
    throw new RangeError(`"ciphertext" is not a valid ${kem} ciphertext`);
  }
}
