// SM4-GCM: GCM (NIST SP 800-38D) over the SM4 block cipher, the AEAD_SM4_GCM of RFC 8998.
// node:crypto has no sm4-gcm, so it is assembled from native SM4 (./sm4.ts) and the GHASH of
// @noble/ciphers. 96-bit IVs and 128-bit tags only: the IV must never
// repeat under one key, so callers take it from randomBytes for every message.

import { timingSafeEqual } from "node:crypto";
import { ghash } from "@noble/ciphers/_polyval.js";
import { CryptoError } from "./errors.js";
import { Ghash } from "./ghash.js";
import { _checkBytes, Sm4BlockEncryptor, SM4_BLOCK_LENGTH, SM4_KEY_LENGTH, sm4CtrXor, sm4EncryptBlocks } from "./sm4.js";

export const SM4_GCM_IV_LENGTH = 12;
export const SM4_GCM_TAG_LENGTH = 16;

/**
 * Longest plaintext (and ciphertext) accepted: 64 MiB, that is 2^22 blocks.
 *
 * The CTR part runs on native `sm4-ctr`, which increments the whole 128-bit counter block, while
 * GCM's inc32 increments only its low 32 bits modulo 2^32. From inc32(J0) = IV || 00000002 the low
 * word reaches 0xffffffff only after 2^32 - 2 blocks (GCM's own limit, about 64 GiB), so up to
 * there the two increments give the same counter blocks; past it they would differ. We stop far
 * below: the whole message is held in memory and hashed by JS GHASH (~130 MB/s), and Tresor's
 * largest single messages (Encrypt takes 4 KiB; the Encryption SDK frames bulk data) are far
 * smaller. Raising this bound is safe up to (2^32 - 2) * 16 bytes and no further.
 */
export const SM4_GCM_MAX_PLAINTEXT_LENGTH = 64 * 1024 * 1024;

function checkArgs(key: Buffer, iv: Buffer, text: Buffer, textName: string, aad: Buffer): void {
  _checkBytes("key", key, SM4_KEY_LENGTH);
  _checkBytes("iv", iv, SM4_GCM_IV_LENGTH);
  _checkBytes(textName, text);
  _checkBytes("aad", aad);
  if (text.length > SM4_GCM_MAX_PLAINTEXT_LENGTH) {
    throw new RangeError(`"${textName}" must be at most ${SM4_GCM_MAX_PLAINTEXT_LENGTH} bytes, got ${text.length}`);
  }
}

/** [len(A)]64 || [len(C)]64, in bits. Byte lengths here are below 2^53 / 8, so doubles are exact. */
function lengthBlock(aadLength: number, textLength: number): Buffer {
  const block = Buffer.alloc(SM4_BLOCK_LENGTH);
  block.writeBigUInt64BE(BigInt(aadLength) * 8n, 0);
  block.writeBigUInt64BE(BigInt(textLength) * 8n, 8);
  return block;
}

/**
 * The key-derived blocks of one message: H = E_K(0^128) and E_K(J0) with J0 = IV || 0^31 || 1,
 * encrypted together in one native call. The caller wipes the returned buffer.
 */
function hashKeyAndMask(key: Buffer, iv: Buffer): Buffer {
  const blocks = Buffer.alloc(2 * SM4_BLOCK_LENGTH);
  iv.copy(blocks, SM4_BLOCK_LENGTH);
  blocks[2 * SM4_BLOCK_LENGTH - 1] = 1;
  return sm4EncryptBlocks(key, blocks);
}

/** inc32(J0) = IV || 00000002, the first counter block of the payload. */
function firstCounter(iv: Buffer): Buffer {
  const counter = Buffer.alloc(SM4_BLOCK_LENGTH);
  iv.copy(counter, 0);
  counter[SM4_BLOCK_LENGTH - 1] = 2;
  return counter;
}

/** T = E_K(J0) xor GHASH_H(A || 0^v || C || 0^u || [len(A)]64 || [len(C)]64). */
function computeTag(keyBlocks: Buffer, aad: Buffer, ciphertext: Buffer): Buffer {
  const h = keyBlocks.subarray(0, SM4_BLOCK_LENGTH);
  const mask = keyBlocks.subarray(SM4_BLOCK_LENGTH);
  // Each update() is zero-padded to a whole block on its own, which is exactly GCM's A || 0^v || C || 0^u.
  const mac = ghash.create(h, aad.length + ciphertext.length + SM4_BLOCK_LENGTH);
  let s: Uint8Array | undefined;
  try {
    mac.update(aad).update(ciphertext).update(lengthBlock(aad.length, ciphertext.length));
    s = mac.digest();
    const tag = Buffer.alloc(SM4_GCM_TAG_LENGTH);
    for (let i = 0; i < SM4_GCM_TAG_LENGTH; i++) tag[i] = s[i]! ^ mask[i]!;
    return tag;
  } finally {
    mac.destroy(); // wipes the H-derived multiplication table (digest() does too; this covers throws)
    s?.fill(0);
  }
}

export function sm4GcmEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
  checkArgs(key, iv, plaintext, "plaintext", aad);
  const keyBlocks = hashKeyAndMask(key, iv);
  try {
    const ciphertext = sm4CtrXor(key, firstCounter(iv), plaintext);
    return { ciphertext, tag: computeTag(keyBlocks, aad, ciphertext) };
  } finally {
    keyBlocks.fill(0);
  }
}

/**
 * Throws CryptoError when the tag does not match the key, IV, ciphertext and AAD. The tag is
 * checked before any plaintext is produced, so unauthenticated plaintext never exists.
 */
export function sm4GcmDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  checkArgs(key, iv, ciphertext, "ciphertext", aad);
  _checkBytes("tag", tag);
  if (tag.length !== SM4_GCM_TAG_LENGTH) throw new CryptoError("authentication failed");
  const keyBlocks = hashKeyAndMask(key, iv);
  try {
    const expected = computeTag(keyBlocks, aad, ciphertext);
    if (!timingSafeEqual(expected, tag)) throw new CryptoError("authentication failed");
    return sm4CtrXor(key, firstCounter(iv), ciphertext);
  } finally {
    keyBlocks.fill(0);
  }
}

/**
 * One SM4-GCM key prepared for many messages: H = E_K(0^128), its GHASH table and the SM4 key
 * schedule are computed once instead of per message. The table is ./ghash.ts's flat 64 KiB one
 * (8-bit windows): GHASH of a 1 KiB message costs 3 µs there against 14 µs with noble's (which the
 * one-shot functions keep: a table per message). Same results as sm4GcmEncrypt/Decrypt.
 * `destroy()` wipes the key and the table; the object is unusable after it.
 */
export class Sm4GcmKey {
  readonly #key: Buffer;
  readonly #blocks: Sm4BlockEncryptor;
  readonly #ghash: Ghash;
  #destroyed = false;

  constructor(key: Buffer) {
    _checkBytes("key", key, SM4_KEY_LENGTH);
    this.#key = Buffer.from(key);
    this.#blocks = new Sm4BlockEncryptor(this.#key);
    const h = this.#blocks.encryptBlock(Buffer.alloc(SM4_BLOCK_LENGTH));
    try {
      this.#ghash = new Ghash(h);
    } finally {
      h.fill(0);
    }
  }

  encrypt(iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
    this.#check(iv, plaintext, "plaintext", aad);
    const ciphertext = sm4CtrXor(this.#key, firstCounter(iv), plaintext);
    return { ciphertext, tag: this.#tag(iv, aad, ciphertext) };
  }

  /** Throws CryptoError on any mismatch; checks the tag before producing any plaintext. */
  decrypt(iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
    this.#check(iv, ciphertext, "ciphertext", aad);
    _checkBytes("tag", tag);
    if (tag.length !== SM4_GCM_TAG_LENGTH) throw new CryptoError("authentication failed");
    if (!timingSafeEqual(this.#tag(iv, aad, ciphertext), tag)) throw new CryptoError("authentication failed");
    return sm4CtrXor(this.#key, firstCounter(iv), ciphertext);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#key.fill(0);
    this.#ghash.destroy();
  }

  #check(iv: Buffer, text: Buffer, textName: string, aad: Buffer): void {
    if (this.#destroyed) throw new Error("Sm4GcmKey: used after destroy()");
    checkArgs(this.#key, iv, text, textName, aad);
  }

  /** T = E_K(J0) xor GHASH_H(A || 0^v || C || 0^u || [len(A)]64 || [len(C)]64). */
  #tag(iv: Buffer, aad: Buffer, ciphertext: Buffer): Buffer {
    const j0 = Buffer.alloc(SM4_BLOCK_LENGTH);
    iv.copy(j0, 0);
    j0[SM4_BLOCK_LENGTH - 1] = 1;
    const mask = this.#blocks.encryptBlock(j0);
    const s = Buffer.alloc(SM4_BLOCK_LENGTH);
    try {
      this.#ghash.reset().update(aad).update(ciphertext).update(lengthBlock(aad.length, ciphertext.length)).digestInto(s);
      for (let i = 0; i < SM4_GCM_TAG_LENGTH; i++) s[i]! ^= mask[i]!;
      return s;
    } finally {
      mask.fill(0);
    }
  }
}
