// The encrypting stream: a Node Transform that writes one message (header, frames, optional
// signature footer) with memory bounded by about one frame, sealing frames here or on workers.

import { Transform, type TransformCallback } from "node:stream";
import type { Hash } from "node:crypto";
import { randomBytes } from "../../crypto/random.js";
import { encryptionPartition, type CachedEncryptionMaterials, type DataKeyCache } from "./cache.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, needs } from "./errors.js";
import {
  DEFAULT_FRAME_LENGTH,
  encodeHeaderBody,
  FINAL_FRAME_MARKER,
  FINAL_FRAME_PREFIX,
  FRAME_TYPE_FINAL,
  FRAME_TYPE_REGULAR,
  frameAad,
  MAX_FRAME_LENGTH,
  MAX_SEQUENCE_NUMBER,
  MIN_FRAME_LENGTH,
  writeUint64,
  type EncryptedDataKey,
  type Header,
} from "./format.js";
import type { Keyring } from "./keyring.js";
import { ParallelFrames } from "./parallel.js";
import { ByteQueue, checkCallerContext, info, maxInFlight, onThisThread, OrderedOutput, PARALLEL_FROM_SEQ, PARALLEL_MIN_FRAME } from "./stream-frames.js";
import {
  DATA_KEY_LENGTH,
  DEFAULT_SUITE,
  deriveMessageKeys,
  generateSigningKey,
  MESSAGE_ID_LENGTH,
  PUBLIC_KEY_CONTEXT_KEY,
  signatureHash,
  signDigest,
  suiteByName,
  type FrameCipher,
  type SigningKey,
  type Suite,
  type SuiteName,
} from "./suites.js";

export interface EncryptOptions {
  keyring: Keyring;
  /** Default SM4_GCM_SM3. */
  suite?: SuiteName;
  /** Pairs authenticated with the message and returned on decryption; keys starting "tresor:" are reserved. */
  encryptionContext?: Readonly<Record<string, string>>;
  /** Plaintext bytes per frame, 1 B to 16 MiB; default DEFAULT_FRAME_LENGTH (256 KiB). */
  frameLength?: number;
  /** Reuse data keys across messages (off unless given). */
  cache?: DataKeyCache;
  /** The plaintext's length when known in advance: lets a cache with maxBytes decide up front; checked at the end. */
  plaintextLength?: number;
  /**
   * Seal frames on worker threads (one per core) once a message has several frames of at least
   * 4 KiB. Off by default: on a busy two-core machine it measured slower, and each worker adds
   * memory (docs/encryption-sdk.md).
   */
  parallel?: boolean;
}

interface PreparedEncryption {
  header: Header;
  headerBytes: Buffer;
  /** A copy of the data key, kept only to hand to worker threads; wiped at the end. */
  dataKey: Buffer | undefined;
  cipher: FrameCipher;
  signingKey: SigningKey | undefined;
  hash: Hash | undefined;
  cached: CachedEncryptionMaterials | undefined;
}

async function prepareEncryption(
  options: EncryptOptions,
  suite: Suite,
  context: Record<string, string>,
  frameLength: number,
  parallel: boolean,
): Promise<PreparedEncryption> {
  const { keyring, cache } = options;
  let dataKey: Buffer;
  let encryptedDataKeys: EncryptedDataKey[];
  let signingKey: SigningKey | undefined;
  let cached: CachedEncryptionMaterials | undefined;
  const partition = cache && encryptionPartition(keyring.cacheId, suite, context);
  if (cache && partition) cached = cache.takeEncryption(partition, options.plaintextLength);
  if (cached) {
    ({ dataKey, encryptedDataKeys, signingKey } = cached);
  } else {
    signingKey = await generateSigningKey(suite);
    const full = signingKey ? { ...context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeySpki.toString("base64") } : context;
    const materials = await keyring.generateDataKey(DATA_KEY_LENGTH, full);
    ({ dataKey, encryptedDataKeys } = materials);
    if (cache && partition) cached = cache.putEncryption(partition, { dataKey, encryptedDataKeys, signingKey });
  }
  try {
    const fullContext = signingKey ? { ...context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeySpki.toString("base64") } : context;
    const messageId = randomBytes(MESSAGE_ID_LENGTH);
    const keys = deriveMessageKeys(suite, dataKey, messageId);
    const header: Header = { suite, messageId, context: fullContext, encryptedDataKeys, frameLength, commitment: keys.commitment };
    const body = encodeHeaderBody(header);
    const { tag } = keys.cipher.seal(0, body, Buffer.alloc(0));
    const headerBytes = Buffer.concat([body, tag]);
    const hash = signingKey ? signatureHash(suite, signingKey.publicKeySpki) : undefined;
    return { header, headerBytes, dataKey: parallel ? Buffer.from(dataKey) : undefined, cipher: keys.cipher, signingKey, hash, cached };
  } finally {
    dataKey.fill(0);
  }
}

/** Encrypts what is written to it; the output is one message. Emits "header" (MessageInfo) first. */
export class EncryptStream extends Transform {
  readonly #options: EncryptOptions;
  readonly #frameLength: number;
  readonly #parallel: boolean;
  readonly #prepared: Promise<PreparedEncryption>;
  #p: PreparedEncryption | undefined;
  #workers: ParallelFrames | undefined;
  readonly #queue = new ByteQueue();
  readonly #output = new OrderedOutput<Buffer[]>((parts) => {
    for (const b of parts) this.#out(b);
  });
  #seq = 0;
  #total = 0;

  constructor(options: EncryptOptions) {
    super();
    needs(typeof options === "object" && options !== null, `"options" must be an object`);
    needs(options.keyring !== undefined && typeof options.keyring.generateDataKey === "function", `"keyring" must be a Keyring`);
    const suite = suiteByName(options.suite ?? DEFAULT_SUITE);
    const context = checkCallerContext(options.encryptionContext, "encryptionContext");
    const frameLength = options.frameLength ?? DEFAULT_FRAME_LENGTH;
    needs(
      Number.isInteger(frameLength) && frameLength >= MIN_FRAME_LENGTH && frameLength <= MAX_FRAME_LENGTH,
      `"frameLength" must be an integer from ${MIN_FRAME_LENGTH} to ${MAX_FRAME_LENGTH}, got ${String(frameLength)}`,
    );
    needs(
      options.plaintextLength === undefined || (Number.isSafeInteger(options.plaintextLength) && options.plaintextLength >= 0),
      `"plaintextLength" must be a non-negative integer`,
    );
    this.#options = options;
    this.#frameLength = frameLength;
    this.#parallel = options.parallel === true && frameLength >= PARALLEL_MIN_FRAME;
    this.#prepared = prepareEncryption(options, suite, context, frameLength, this.#parallel);
    this.#prepared.catch(() => undefined); // reported through the stream's callbacks
  }

  #out(buf: Buffer): void {
    this.#p!.hash?.update(buf);
    this.push(buf);
  }

  #start(p: PreparedEncryption): void {
    if (this.#p) return;
    this.#p = p;
    this.emit("header", info(p.header));
    this.#out(p.headerBytes);
  }

  #ready(work: () => void | Promise<void>, callback: TransformCallback): void {
    const run = (): void => {
      let result: void | Promise<void>;
      try {
        result = work();
      } catch (err) {
        callback(err as Error);
        return;
      }
      if (result instanceof Promise) result.then(() => callback(), callback);
      else callback();
    };
    if (this.#p) run();
    else
      this.#prepared.then((p) => {
        try {
          this.#start(p);
        } catch (err) {
          callback(err as Error);
          return;
        }
        run();
      }, callback);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#ready(() => {
      this.#queue.push(chunk);
      // A full frame is held back until more data shows it is not the last one.
      while (this.#queue.length > this.#frameLength) {
        // On this thread the frame is sealed piece by piece, as the chunks came; a worker needs one buffer.
        this.#regularFrame(this.#parallel && !onThisThread(this.#seq + 1) ? [this.#queue.take(this.#frameLength)] : this.#queue.takeParts(this.#frameLength));
      }
      const max = maxInFlight(this.#frameLength);
      if (this.#output.length > max) return this.#output.drain(max);
      return undefined;
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#ready(async () => {
      const p = this.#p!;
      const rest = this.#queue.take(this.#queue.length);
      this.#finalFrame(rest);
      await this.#output.drain(0);
      if (p.signingKey && p.hash) {
        const signature = await signDigest(p.signingKey, p.hash.digest());
        const len = Buffer.alloc(2);
        len.writeUInt16BE(signature.length);
        this.push(Buffer.concat([len, signature]));
      }
      if (this.#options.plaintextLength !== undefined && this.#options.plaintextLength !== this.#total) {
        throw new EncryptionSdkError(
          ENCRYPTION_ERROR_CODES.InvalidArgument,
          `"plaintextLength" was ${this.#options.plaintextLength} but ${this.#total} bytes were written`,
        );
      }
      p.cached?.addBytes(this.#total);
      this.#wipe();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#wipe();
    callback(error);
  }

  #wipe(): void {
    this.#workers?.end();
    this.#p?.cipher.destroy();
    this.#p?.signingKey?.privateKey.fill(0);
    this.#p?.dataKey?.fill(0);
  }

  #nextSeq(): number {
    if (this.#seq >= MAX_SEQUENCE_NUMBER) {
      throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, `the plaintext needs more than ${MAX_SEQUENCE_NUMBER} frames; use a larger frameLength`);
    }
    return ++this.#seq;
  }

  /** Seals here, or on a worker once the message has shown it is long. */
  #seal(seq: number, aad: Buffer, plaintext: Buffer[], prefix: Buffer): void {
    const p = this.#p!;
    if (this.#parallel && seq >= PARALLEL_FROM_SEQ && p.dataKey) this.#workers ??= new ParallelFrames(p.header.suite, p.dataKey, p.header.messageId);
    if (this.#workers && !onThisThread(seq)) {
      const whole = plaintext.length === 1 ? plaintext[0]! : Buffer.concat(plaintext);
      this.#output.add(this.#workers.seal(seq, aad, whole).then((r) => [prefix, r.data, r.tag!]));
      return;
    }
    const { ciphertext, tag } = p.cipher.sealParts(seq, aad, plaintext);
    this.#output.add([prefix, ...ciphertext, tag]);
  }

  #regularFrame(plaintext: Buffer[]): void {
    const p = this.#p!;
    const seq = this.#nextSeq();
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(seq);
    this.#total += this.#frameLength;
    this.#seal(seq, frameAad(p.header.messageId, FRAME_TYPE_REGULAR, seq, this.#frameLength), plaintext, prefix);
  }

  #finalFrame(plaintext: Buffer): void {
    const p = this.#p!;
    const seq = this.#nextSeq();
    this.#total += plaintext.length;
    const prefix = Buffer.alloc(FINAL_FRAME_PREFIX);
    prefix.writeUInt32BE(FINAL_FRAME_MARKER, 0);
    prefix.writeUInt32BE(seq, 4);
    writeUint64(prefix, this.#total, 8);
    this.#seal(seq, frameAad(p.header.messageId, FRAME_TYPE_FINAL, seq, this.#total), [plaintext], prefix);
  }
}

export function encryptStream(options: EncryptOptions): EncryptStream {
  return new EncryptStream(options);
}
