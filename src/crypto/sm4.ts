// SM4 block cipher, GB/T 32907-2016 (the same algorithm as GM/T 0002-2012), over node:crypto's
// native `sm4-ecb` and `sm4-ctr`: the encryption direction with its key expansion, checked against
// the standard's appendix A examples. No decryption: GCM and CTR only ever encrypt blocks. These are
// building blocks for SM4-GCM (./sm4-gcm.ts), never a way to encrypt data on their own.

import { createCipheriv, type Cipher } from "node:crypto";

export const SM4_KEY_LENGTH = 16;
export const SM4_BLOCK_LENGTH = 16;

/** Entry check shared by the SM4 files: `value` must be bytes, of exactly `length` when given. */
export function _checkBytes(name: string, value: unknown, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`"${name}" must be a Buffer or Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`"${name}" must be ${length} bytes, got ${value.length}`);
  }
}

function ecb(key: Uint8Array): Cipher {
  return createCipheriv("sm4-ecb", key, null).setAutoPadding(false);
}

/** E_K(block): one SM4 encryption of one 16-byte block. */
export function sm4EncryptBlock(key: Buffer, block: Buffer): Buffer {
  _checkBytes("key", key, SM4_KEY_LENGTH);
  _checkBytes("block", block, SM4_BLOCK_LENGTH);
  const cipher = ecb(key);
  const out = cipher.update(block);
  cipher.final();
  return out;
}

/**
 * E_K over each 16-byte block of `blocks` (ECB, no padding) in one native call, so that several
 * blocks under one key (GCM's H and E_K(J0)) need one key schedule.
 */
export function sm4EncryptBlocks(key: Buffer, blocks: Buffer): Buffer {
  _checkBytes("key", key, SM4_KEY_LENGTH);
  _checkBytes("blocks", blocks);
  if (blocks.length % SM4_BLOCK_LENGTH !== 0) {
    throw new RangeError(`"blocks" must be a multiple of ${SM4_BLOCK_LENGTH} bytes, got ${blocks.length}`);
  }
  const cipher = ecb(key);
  const out = cipher.update(blocks);
  cipher.final();
  return out;
}

/**
 * A reusable SM4 block encryptor: one key schedule, many blocks. For callers that encrypt many
 * single blocks in sequence (the 1,000,000-fold example of GB/T 32907 appendix A).
 */
export class Sm4BlockEncryptor {
  readonly #cipher: Cipher;

  constructor(key: Buffer) {
    _checkBytes("key", key, SM4_KEY_LENGTH);
    this.#cipher = ecb(key);
  }

  encryptBlock(block: Buffer): Buffer {
    _checkBytes("block", block, SM4_BLOCK_LENGTH);
    // With padding off, ECB returns every whole block from update() at once and holds nothing back.
    return this.#cipher.update(block);
  }
}

/**
 * XORs `data` with the SM4-CTR keystream E_K(ctr), E_K(ctr + 1), …, where the counter block is a
 * 128-bit big-endian integer incremented over all 128 bits (OpenSSL's CTR). Encrypts and decrypts.
 */
export function sm4CtrXor(key: Buffer, counter: Buffer, data: Buffer): Buffer {
  _checkBytes("key", key, SM4_KEY_LENGTH);
  _checkBytes("counter", counter, SM4_BLOCK_LENGTH);
  _checkBytes("data", data);
  if (data.length === 0) return Buffer.alloc(0);
  const cipher = createCipheriv("sm4-ctr", key, counter);
  const head = cipher.update(data);
  const tail = cipher.final();
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}
