// ML-DSA (FIPS 204) with @noble/post-quantum (Node 20's OpenSSL 3.0 has none): key pairs from a
// 32-byte seed ξ (FIPS 204 Algorithm 6, ML-DSA.KeyGen_internal), pure ML-DSA signing with an
// optional context string of at most 255 bytes (Algorithm 2, hedged: fresh randomness each time),
// and public keys as the SubjectPublicKeyInfo of RFC 9881 (id-ml-dsa-44/65/87, no parameters).
// A message that arrives as a stream is signed through its "external mu" (FIPS 204 Algorithm 7,
// line 6): the same signature as pure ML-DSA over the whole message, from a running hash.

import { createHash, type Hash } from "node:crypto";
import { ml_dsa44, ml_dsa65, ml_dsa87 } from "@noble/post-quantum/ml-dsa.js";
import { DerReader, derSequence, derTlv, TAG_BIT_STRING, TAG_OID } from "./asn1.js";
import { randomBytes } from "./random.js";

export const ML_DSA_PARAMETER_SETS = ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] as const;
export type MlDsaParameterSet = (typeof ML_DSA_PARAMETER_SETS)[number];
export const ML_DSA_SEED_LENGTH = 32;
export const ML_DSA_MAX_CONTEXT = 255;

interface SetInfo {
  readonly noble: typeof ml_dsa44;
  /** DER content of the OID 2.16.840.1.101.3.4.3.{17,18,19} (RFC 9881 section 2). */
  readonly oid: Buffer;
  readonly publicKeyLength: number;
  readonly signatureLength: number;
}

const oid = (last: number) => Buffer.from([0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, last]);
const SETS: Readonly<Record<MlDsaParameterSet, SetInfo>> = Object.freeze({
  "ML-DSA-44": { noble: ml_dsa44, oid: oid(17), publicKeyLength: 1312, signatureLength: 2420 },
  "ML-DSA-65": { noble: ml_dsa65, oid: oid(18), publicKeyLength: 1952, signatureLength: 3309 },
  "ML-DSA-87": { noble: ml_dsa87, oid: oid(19), publicKeyLength: 2592, signatureLength: 4627 },
});

export function mlDsaSignatureLength(set: MlDsaParameterSet): number {
  return SETS[set].signatureLength;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== ML_DSA_SEED_LENGTH) throw new RangeError(`"seed" must be ${ML_DSA_SEED_LENGTH} bytes`);
}

function checkContext(context: Uint8Array): void {
  if (context.length > ML_DSA_MAX_CONTEXT) throw new RangeError(`"context" must be at most ${ML_DSA_MAX_CONTEXT} bytes`);
}

/** A fresh seed and the SPKI of its public key. */
export function mlDsaGenerateKeyPair(set: MlDsaParameterSet): { seed: Buffer; publicKey: Buffer } {
  const seed = randomBytes(ML_DSA_SEED_LENGTH);
  return { seed, publicKey: mlDsaPublicKeyToSpki(set, mlDsaKeyPairFromSeed(set, seed).publicKey) };
}

/** The expanded key pair of a seed (FIPS 204 ML-DSA.KeyGen_internal); wipe `secretKey` after use. */
export function mlDsaKeyPairFromSeed(set: MlDsaParameterSet, seed: Uint8Array): { publicKey: Buffer; secretKey: Buffer } {
  checkSeed(seed);
  const pair = SETS[set].noble.keygen(seed);
  return { publicKey: Buffer.from(pair.publicKey), secretKey: Buffer.from(pair.secretKey) };
}

export function mlDsaSign(set: MlDsaParameterSet, secretKey: Uint8Array, message: Uint8Array, context: Uint8Array): Buffer {
  checkContext(context);
  return Buffer.from(SETS[set].noble.sign(message, secretKey, { context, extraEntropy: randomBytes(32) }));
}

/** False, never an exception, for a signature that does not verify or has the wrong length. */
export function mlDsaVerify(set: MlDsaParameterSet, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, context: Uint8Array): boolean {
  checkContext(context);
  if (signature.length !== SETS[set].signatureLength) return false;
  try {
    return SETS[set].noble.verify(signature, message, publicKey, { context });
  } catch {
    return false;
  }
}

export const ML_DSA_MU_LENGTH = 64;

/**
 * The running hash whose digest is μ = SHAKE256(tr ‖ M′, 64) for pure ML-DSA with context `context`
 * (FIPS 204 Algorithms 2 and 7: tr = SHAKE256(pk, 64), M′ = 0 ‖ len(ctx) ‖ ctx ‖ M): feed it M.
 */
export function mlDsaMuHash(set: MlDsaParameterSet, publicKey: Uint8Array, context: Uint8Array): Hash {
  checkContext(context);
  if (publicKey.length !== SETS[set].publicKeyLength) throw new RangeError(`"publicKey" must be ${SETS[set].publicKeyLength} bytes for ${set}`);
  const tr = createHash("shake256", { outputLength: 64 }).update(publicKey).digest();
  return createHash("shake256", { outputLength: ML_DSA_MU_LENGTH }).update(tr).update(Buffer.of(0, context.length)).update(context);
}

/** The pure ML-DSA signature of the message whose μ (mlDsaMuHash's digest) is `mu`; hedged, as mlDsaSign. */
export function mlDsaSignMu(set: MlDsaParameterSet, secretKey: Uint8Array, mu: Uint8Array): Buffer {
  if (mu.length !== ML_DSA_MU_LENGTH) throw new RangeError(`"mu" must be ${ML_DSA_MU_LENGTH} bytes`);
  return Buffer.from(SETS[set].noble.internal.sign(mu, secretKey, { externalMu: true, extraEntropy: randomBytes(32) }));
}

/** As mlDsaVerify, for the message whose μ is `mu`; false, never an exception, for a bad signature. */
export function mlDsaVerifyMu(set: MlDsaParameterSet, publicKey: Uint8Array, mu: Uint8Array, signature: Uint8Array): boolean {
  if (mu.length !== ML_DSA_MU_LENGTH || signature.length !== SETS[set].signatureLength || publicKey.length !== SETS[set].publicKeyLength) return false;
  try {
    return SETS[set].noble.internal.verify(signature, mu, publicKey, { externalMu: true });
  } catch {
    return false;
  }
}

/** RFC 9881 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID }, BIT STRING (the raw public key) }. */
export function mlDsaPublicKeyToSpki(set: MlDsaParameterSet, publicKey: Uint8Array): Buffer {
  const info = SETS[set];
  if (publicKey.length !== info.publicKeyLength) throw new RangeError(`"publicKey" must be ${info.publicKeyLength} bytes for ${set}`);
  return derSequence(derSequence(derTlv(TAG_OID, info.oid)), derTlv(TAG_BIT_STRING, Buffer.concat([Buffer.of(0), publicKey])));
}

/** The raw public key of an RFC 9881 SubjectPublicKeyInfo of `set`; RangeError for anything else. */
export function mlDsaPublicKeyFromSpki(set: MlDsaParameterSet, spki: Uint8Array): Buffer {
  const info = SETS[set];
  try {
    const outer = new DerReader(spki);
    const seq = outer.readSequence();
    outer.end();
    const algorithm = seq.readSequence();
    const algorithmOid = algorithm.read(TAG_OID);
    algorithm.end();
    const bits = seq.read(TAG_BIT_STRING);
    seq.end();
    if (!algorithmOid.equals(info.oid) || bits[0] !== 0 || bits.length !== 1 + info.publicKeyLength) throw new RangeError("mismatch");
    return Buffer.from(bits.subarray(1));
  } catch {
    throw new RangeError(`"spki" is not an RFC 9881 SubjectPublicKeyInfo of an ${set} public key`);
  }
}
