// Signed checkpoints of the audit chain: the head (seq and hash) at one moment and how far the
// chain has been pruned, signed with Ed25519 by the audit signing key. A verifier that trusts the
// public key learns that no record up to `seq` can be changed, dropped or cut off unnoticed.

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { hashBytes } from "./record.js";

export interface Checkpoint {
  /** The last record seq covered (the chain head when it was made). */
  seq: number;
  /** Unix milliseconds. */
  time: number;
  /** The hash of the record at `seq` (GENESIS_HASH when seq is 0). */
  headHash: string;
  /** The seq of the last pruned record, or 0. */
  prunedThrough: number;
  /** The hash of the record at `prunedThrough`, or GENESIS_HASH. */
  prunedHeadHash: string;
  /** Ed25519 signature of checkpointSignedBytes, lower-case hex (64 bytes). */
  signature: string;
}

export type UnsignedCheckpoint = Omit<Checkpoint, "signature">;

export const CHECKPOINT_DOMAIN = "tresor/audit-checkpoint/v1\0";

export interface AuditSigner {
  /** An Ed25519 signature (64 bytes) of `data`. */
  sign(data: Buffer): Buffer;
  /** The raw 32-byte Ed25519 public key (RFC 8032). */
  readonly publicKey: Buffer;
}

function u64(name: string, value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`checkpoint "${name}" must be a non-negative safe integer, got ${value}`);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(value / 2 ** 32), 0);
  b.writeUInt32BE(value % 2 ** 32, 4);
  return b;
}

/**
 * What the signature covers: the ASCII domain "tresor/audit-checkpoint/v1" and a zero byte, then
 * seq, time (8-byte big-endian each), headHash (32 bytes), prunedThrough (8 bytes) and
 * prunedHeadHash (32 bytes).
 */
export function checkpointSignedBytes(cp: UnsignedCheckpoint): Buffer {
  return Buffer.concat([
    Buffer.from(CHECKPOINT_DOMAIN, "ascii"),
    u64("seq", cp.seq),
    u64("time", cp.time),
    hashBytes("headHash", cp.headHash),
    u64("prunedThrough", cp.prunedThrough),
    hashBytes("prunedHeadHash", cp.prunedHeadHash),
  ]);
}

export function signCheckpoint(cp: UnsignedCheckpoint, signer: AuditSigner): Checkpoint {
  if (cp.prunedThrough > cp.seq) throw new RangeError("a checkpoint cannot have pruned past its own head");
  return { ...cp, signature: signer.sign(checkpointSignedBytes(cp)).toString("hex") };
}

/** Whether `cp` is signed by the holder of `publicKey` (raw 32 bytes); false for any malformed field. */
export function verifyCheckpoint(cp: Checkpoint, publicKey: Buffer): boolean {
  try {
    if (!/^[0-9a-f]{128}$/.test(cp.signature)) return false;
    return verify(null, checkpointSignedBytes(cp), ed25519PublicKey(publicKey), Buffer.from(cp.signature, "hex"));
  } catch {
    return false;
  }
}

// ---- Ed25519 keys through node:crypto ----------------------------------------------------------

/** A public key object from the raw 32 bytes. */
export function ed25519PublicKey(raw: Buffer): KeyObject {
  if (!Buffer.isBuffer(raw) || raw.length !== 32) throw new RangeError('"publicKey" must be a raw 32-byte Ed25519 public key');
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}

/** A fresh signing key: its PKCS#8 DER (to wrap and store) and raw public key. */
export function generateAuditSigningKey(): { privateKeyDer: Buffer; publicKey: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKeyDer: privateKey.export({ format: "der", type: "pkcs8" }), publicKey: rawPublicKey(publicKey) };
}

function rawPublicKey(key: KeyObject): Buffer {
  const x = key.export({ format: "jwk" }).x;
  if (typeof x !== "string") throw new Error("not an Ed25519 key");
  return Buffer.from(x, "base64url");
}

/**
 * A signer over a PKCS#8 DER Ed25519 private key. The key lives in a KeyObject (OpenSSL memory);
 * the caller wipes its DER buffer.
 */
export function ed25519Signer(privateKeyDer: Buffer): AuditSigner {
  const privateKey = createPrivateKey({ key: privateKeyDer, format: "der", type: "pkcs8" });
  if (privateKey.asymmetricKeyType !== "ed25519") throw new TypeError("the audit signing key must be Ed25519");
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { publicKey, sign: (data) => sign(null, data, privateKey) };
}
