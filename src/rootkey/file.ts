// The default root of trust: a 256-bit AES key in a file only its owner can read. Wrapped values
// are AES-256-GCM, laid out as 0x01 (format) || iv (12) || ciphertext || tag (16).

import { constants } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { inspect } from "node:util";
import { aesGcmDecrypt, aesGcmEncrypt, GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { randomBytes } from "../crypto/random.js";
import { RootOfTrustError, type RootOfTrust } from "./root-of-trust.js";

export const ROOT_KEY_LENGTH = 32;
const FORMAT_AES_256_GCM = 0x01;
const HEADER_LENGTH = 1 + GCM_IV_LENGTH;

export class FileRootOfTrust implements RootOfTrust {
  readonly description: string;
  // Private so that nothing reaches it by enumeration, JSON or inspection; wiped by close().
  readonly #key: Buffer;
  #closed = false;

  private constructor(path: string, key: Buffer) {
    this.description = `file:${path}`;
    this.#key = key;
  }

  /** Writes a new random root key to `path`, which must not exist, readable by its owner only. */
  static async create(path: string): Promise<FileRootOfTrust> {
    const fullPath = resolve(path);
    // Buffer.alloc never hands out a slice of the shared pool, so wiping it wipes the only copy.
    const key = Buffer.alloc(ROOT_KEY_LENGTH);
    const fresh = randomBytes(ROOT_KEY_LENGTH);
    fresh.copy(key);
    fresh.fill(0);

    let file: FileHandle | undefined;
    try {
      // O_EXCL: never overwrite a root key (nor follow a symlink planted at the path).
      file = await open(fullPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      key.fill(0);
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`root key file ${fullPath} already exists; refusing to overwrite it`);
      throw err;
    }
    try {
      // The umask can only have narrowed the mode; set it exactly so the owner can read the key back.
      await file.chmod(0o600);
      await file.writeFile(key);
      await file.sync();
      await file.close();
      file = undefined;
      await syncDirectory(dirname(fullPath));
    } catch (err) {
      await file?.close().catch(() => undefined);
      await unlink(fullPath).catch(() => undefined);
      key.fill(0);
      throw err;
    }
    return new FileRootOfTrust(fullPath, key);
  }

  /** Reads the root key at `path`; refuses a file of the wrong size or one readable by group or others. */
  static async open(path: string): Promise<FileRootOfTrust> {
    const fullPath = resolve(path);
    const file = await open(fullPath, constants.O_RDONLY);
    const key = Buffer.alloc(ROOT_KEY_LENGTH);
    try {
      // fstat the open file, not the path, so the checks apply to what is read.
      const stat = await file.stat();
      if (!stat.isFile()) throw new Error(`root key file ${fullPath} is not a regular file`);
      if ((stat.mode & 0o077) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, "0");
        throw new Error(`root key file ${fullPath} has mode ${mode}, which grants access to group or others; it must be 0600 or 0400`);
      }
      if (stat.size !== ROOT_KEY_LENGTH) {
        throw new Error(`root key file ${fullPath} must be exactly ${ROOT_KEY_LENGTH} bytes, found ${stat.size}`);
      }
      // Read one byte more than expected to catch a file that grew after fstat.
      const probe = Buffer.alloc(ROOT_KEY_LENGTH + 1);
      let length = 0;
      try {
        for (;;) {
          const { bytesRead } = await file.read(probe, length, probe.length - length, length);
          if (bytesRead === 0) break;
          length += bytesRead;
          if (length === probe.length) break;
        }
        probe.copy(key, 0, 0, ROOT_KEY_LENGTH);
      } finally {
        probe.fill(0);
      }
      if (length !== ROOT_KEY_LENGTH) {
        throw new Error(`root key file ${fullPath} must be exactly ${ROOT_KEY_LENGTH} bytes, but its size changed while reading`);
      }
    } catch (err) {
      key.fill(0);
      throw err;
    } finally {
      await file.close();
    }
    return new FileRootOfTrust(fullPath, key);
  }

  async wrap(plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    checkBuffer("plaintext", plaintext);
    checkBuffer("aad", aad);
    // A fresh random IV per wrap: GCM breaks if an IV repeats under one key. Random 96-bit IVs
    // stay safe for far more wraps (2^32) than a root key will ever make.
    const iv = randomBytes(GCM_IV_LENGTH);
    const { ciphertext, tag } = aesGcmEncrypt(this.#key, iv, plaintext, aad);
    return Buffer.concat([Buffer.of(FORMAT_AES_256_GCM), iv, ciphertext, tag]);
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    checkBuffer("wrapped", wrapped);
    checkBuffer("aad", aad);
    // One message for every failure: which check failed is no business of the caller's.
    if (wrapped.length < HEADER_LENGTH + GCM_TAG_LENGTH || wrapped[0] !== FORMAT_AES_256_GCM) throw unwrapFailed();
    const iv = wrapped.subarray(1, HEADER_LENGTH);
    const ciphertext = wrapped.subarray(HEADER_LENGTH, wrapped.length - GCM_TAG_LENGTH);
    const tag = wrapped.subarray(wrapped.length - GCM_TAG_LENGTH);
    try {
      return aesGcmDecrypt(this.#key, iv, ciphertext, tag, aad);
    } catch {
      throw unwrapFailed();
    }
  }

  /** Wipes the key; every later wrap or unwrap throws. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#key.fill(0);
  }

  toJSON(): { description: string } {
    return { description: this.description };
  }

  [inspect.custom](): string {
    return `FileRootOfTrust { description: ${JSON.stringify(this.description)} }`;
  }

  #live(): void {
    if (this.#closed) throw new Error(`root of trust ${this.description} is closed`);
  }
}

function unwrapFailed(): RootOfTrustError {
  return new RootOfTrustError("the wrapped value could not be unwrapped");
}

function checkBuffer(name: string, value: unknown): void {
  if (!Buffer.isBuffer(value)) throw new TypeError(`"${name}" must be a Buffer`);
}

async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
