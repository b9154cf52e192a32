// The decrypting stream: a Node Transform that releases a frame's plaintext only after that frame's
// tag verifies, and fails (never ends quietly) when the message is cut short or, for signed suites,
// when the footer signature does not verify.

import { Transform, type TransformCallback } from "node:stream";
import type { Hash } from "node:crypto";
import { decryptionPartition, type DataKeyCache } from "./cache.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, needs } from "./errors.js";
import {
  DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
  DEFAULT_MAX_HEADER_BYTES,
  FINAL_FRAME_MARKER,
  FINAL_FRAME_PREFIX,
  FRAME_TYPE_FINAL,
  FRAME_TYPE_REGULAR,
  frameAad,
  MAX_FRAME_LENGTH,
  MIN_FRAME_LENGTH,
  parseHeader,
  readUint64,
  type ContextPairs,
  type Header,
} from "./format.js";
import type { Keyring } from "./keyring.js";
import { ParallelFrames } from "./parallel.js";
import { ByteQueue, checkCallerContext, info, maxInFlight, onThisThread, OrderedOutput, PARALLEL_FROM_SEQ, PARALLEL_MIN_FRAME } from "./stream-frames.js";
import {
  checkPublicKey,
  commitmentMatches,
  DATA_KEY_LENGTH,
  deriveMessageKeys,
  PUBLIC_KEY_CONTEXT_KEY,
  RESERVED_CONTEXT_PREFIX,
  signatureHash,
  SUITE_NAMES,
  TAG_LENGTH,
  verifySignature,
  type FrameCipher,
  type SuiteName,
} from "./suites.js";

export interface DecryptOptions {
  keyring: Keyring;
  /** Refuse messages with more encrypted data keys than this before any KMS call; default 5. */
  maxEncryptedDataKeys?: number;
  /** Refuse headers larger than this many bytes; default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Refuse messages whose header declares frames longer than this many bytes, before any KMS call;
   * default 16 MiB (MAX_FRAME_LENGTH, the format's limit). Decryption buffers about one frame, so
   * this bounds the memory a message can make the reader hold.
   */
  maxFrameLength?: number;
  /** Pairs the message's encryption context must contain, with these values. */
  requiredContext?: Readonly<Record<string, string>>;
  /** Only these suites are accepted; default all. */
  allowedSuites?: readonly SuiteName[];
  cache?: DataKeyCache;
  /** Open frames on worker threads; off by default (see EncryptOptions.parallel). */
  parallel?: boolean;
}

interface PreparedDecryption {
  header: Header;
  cipher: FrameCipher;
  /** A copy of the data key for worker threads (parallel only); wiped at the end. */
  dataKey: Buffer | undefined;
  hash: Hash | undefined;
  publicKey: Buffer | undefined;
}

type State = "header" | "frames" | "footer" | "done";

const invalid = (why: string): EncryptionSdkError => new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidMessage, `not a valid message: ${why}`);

/** Decrypts one message written to it. Emits "header" (MessageInfo) once the header authenticates. */
export class DecryptStream extends Transform {
  readonly #options: DecryptOptions;
  readonly #maxEdks: number;
  readonly #maxHeaderBytes: number;
  readonly #maxFrameLength: number;
  readonly #required: Record<string, string>;
  readonly #allowed: ReadonlySet<string>;
  readonly #queue = new ByteQueue();
  #state: State = "header";
  #p: PreparedDecryption | undefined;
  #parallel = false;
  #workers: ParallelFrames | undefined;
  readonly #output = new OrderedOutput<Buffer[]>((plaintext) => {
    for (const b of plaintext) {
      this.released += b.length;
      this.push(b);
    }
  });
  #expectSeq = 1;
  /** The footer's signature check (an ML-DSA verification runs in the post-quantum thread). */
  #verification: Promise<void> | undefined;
  /** Plaintext bytes released so far, each from a frame whose tag verified. */
  released = 0;

  constructor(options: DecryptOptions) {
    super();
    needs(typeof options === "object" && options !== null, `"options" must be an object`);
    needs(options.keyring !== undefined && typeof options.keyring.decryptDataKey === "function", `"keyring" must be a Keyring`);
    const maxEdks = options.maxEncryptedDataKeys ?? DEFAULT_MAX_ENCRYPTED_DATA_KEYS;
    needs(Number.isInteger(maxEdks) && maxEdks >= 1 && maxEdks <= 0xffff, `"maxEncryptedDataKeys" must be an integer from 1 to 65535`);
    const maxHeader = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    needs(Number.isInteger(maxHeader) && maxHeader >= 128 && maxHeader <= 16 * 1024 * 1024, `"maxHeaderBytes" must be an integer from 128 to 16 MiB`);
    const maxFrame = options.maxFrameLength ?? MAX_FRAME_LENGTH;
    needs(
      Number.isInteger(maxFrame) && maxFrame >= MIN_FRAME_LENGTH && maxFrame <= MAX_FRAME_LENGTH,
      `"maxFrameLength" must be an integer from ${MIN_FRAME_LENGTH} to ${MAX_FRAME_LENGTH}`,
    );
    const allowed = options.allowedSuites ?? SUITE_NAMES;
    needs(Array.isArray(allowed) && allowed.every((s) => (SUITE_NAMES as readonly string[]).includes(s)), `"allowedSuites" must list suites of ${SUITE_NAMES.join(", ")}`);
    this.#options = options;
    this.#maxEdks = maxEdks;
    this.#maxHeaderBytes = maxHeader;
    this.#maxFrameLength = maxFrame;
    this.#required = checkCallerContext(options.requiredContext, "requiredContext");
    this.#allowed = new Set(allowed);
    this.#parallel = options.parallel === true;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#queue.push(chunk);
    const afterPump = (): void => {
      const max = this.#p ? maxInFlight(this.#p.header.frameLength) : 0;
      const drained = this.#output.length > max ? this.#output.drain(max) : undefined;
      if (drained === undefined && this.#verification === undefined) callback();
      else Promise.all([drained, this.#verification]).then(() => callback(), callback);
    };
    if (this.#state !== "header") {
      try {
        this.#pump();
      } catch (err) {
        callback(err as Error);
        return;
      }
      afterPump();
      return;
    }
    this.#readHeader().then(() => {
      try {
        this.#pump();
      } catch (err) {
        callback(err as Error);
        return;
      }
      afterPump();
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    Promise.all([this.#output.drain(0), this.#verification]).then(() => {
      if (this.#state === "done") {
        this.#end();
        callback();
        return;
      }
      const where =
        this.#state === "header"
          ? "inside its header"
          : this.#state === "frames"
            ? "before its final frame"
            : "before its signature footer was complete";
      callback(
        new EncryptionSdkError(
          ENCRYPTION_ERROR_CODES.Truncated,
          `the message is cut short: it ends ${where}. ${this.released} bytes of plaintext had been released, each from a frame whose tag verified; the message as a whole is not complete, so discard them`,
        ),
      );
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#end();
    callback(error);
  }

  #end(): void {
    this.#workers?.end();
    this.#p?.cipher.destroy();
    this.#p?.dataKey?.fill(0);
  }

  async #readHeader(): Promise<void> {
    const limits = { maxEncryptedDataKeys: this.#maxEdks, maxHeaderBytes: this.#maxHeaderBytes, maxFrameLength: this.#maxFrameLength };
    const parsed = parseHeader(this.#queue.peek(this.#maxHeaderBytes), limits);
    if (parsed === undefined) return;
    const { header } = parsed;
    const suite = header.suite;
    if (!this.#allowed.has(suite.name)) {
      throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.SuiteNotAllowed, `the message's suite ${suite.name} is not in "allowedSuites"`);
    }
    for (const key of Object.keys(header.context)) {
      if (key.startsWith(RESERVED_CONTEXT_PREFIX) && !(key === PUBLIC_KEY_CONTEXT_KEY && suite.signature)) {
        throw invalid(`reserved context key ${JSON.stringify(key)} does not belong in a ${suite.name} message`);
      }
    }
    let publicKey: Buffer | undefined;
    if (suite.signature) {
      const encoded = header.context[PUBLIC_KEY_CONTEXT_KEY];
      if (encoded === undefined) throw invalid(`a ${suite.name} message must carry "${PUBLIC_KEY_CONTEXT_KEY}" in its context`);
      publicKey = Buffer.from(encoded, "base64");
      if (publicKey.toString("base64") !== encoded) throw invalid(`"${PUBLIC_KEY_CONTEXT_KEY}" is not canonical base64`);
      checkPublicKey(suite, publicKey);
    }
    // Checked before any KMS call; the header tag below then proves the context is the sender's.
    this.#checkRequired(header.context);

    const { keyring, cache } = this.#options;
    const partition = cache && decryptionPartition(keyring.cacheId, suite, header.context, header.encryptedDataKeys);
    let got = cache && partition ? cache.getDecryption(partition) : undefined;
    if (got === undefined) {
      got = await keyring.decryptDataKey(header.encryptedDataKeys, header.context, DATA_KEY_LENGTH);
      if (cache && partition) cache.putDecryption(partition, got.dataKey, got.decryptedWith);
    }
    let keys;
    let dataKey: Buffer | undefined;
    try {
      keys = deriveMessageKeys(suite, got.dataKey, header.messageId);
      if (this.#parallel && header.frameLength >= PARALLEL_MIN_FRAME) dataKey = Buffer.from(got.dataKey);
    } finally {
      got.dataKey.fill(0);
    }
    if (!commitmentMatches(keys.commitment, header.commitment)) {
      keys.cipher.destroy();
      throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.AuthenticationFailed, "authentication failed: the key commitment does not match the data key");
    }
    try {
      keys.cipher.open(0, parsed.body, Buffer.alloc(0), parsed.tag);
    } catch (err) {
      keys.cipher.destroy();
      throw err;
    }
    const headerBytes = this.#queue.take(parsed.length);
    const hash = publicKey ? signatureHash(suite, publicKey) : undefined;
    hash?.update(headerBytes);
    this.#p = { header, cipher: keys.cipher, dataKey, hash, publicKey };
    this.#state = "frames";
    this.emit("header", info(header, got.decryptedWith));
  }

  #checkRequired(context: ContextPairs): void {
    for (const [k, v] of Object.entries(this.#required)) {
      if (!Object.hasOwn(context, k)) {
        throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.ContextMismatch, `the message's encryption context lacks the required key ${JSON.stringify(k)}`);
      }
      if (context[k] !== v) {
        throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.ContextMismatch, `the message's encryption context has another value for ${JSON.stringify(k)}`);
      }
    }
  }

  #consume(n: number): Buffer {
    const b = this.#queue.take(n);
    this.#p!.hash?.update(b);
    return b;
  }

  /** #consume without joining: views of the received chunks. */
  #consumeParts(n: number): Buffer[] {
    const parts = this.#queue.takeParts(n);
    for (const b of parts) this.#p!.hash?.update(b);
    return parts;
  }

  #pump(): void {
    const q = this.#queue;
    for (;;) {
      const p = this.#p;
      if (this.#state === "header" || p === undefined) return;
      if (this.#state === "done") {
        if (q.length > 0) throw invalid("bytes follow the end of the message");
        return;
      }
      const frameLength = p.header.frameLength;
      if (this.#state === "footer") {
        if (q.length < 2) return;
        const len = q.peek(2).readUInt16BE();
        if (q.length < 2 + len) return;
        const digest = p.hash!.digest();
        const signature = Buffer.from(q.take(2 + len).subarray(2));
        // Settled before the stream takes more input or ends (#settled).
        this.#verification = verifySignature(p.header.suite, p.publicKey!, digest, signature).then((valid) => {
          if (!valid) {
            throw new EncryptionSdkError(
              ENCRYPTION_ERROR_CODES.SignatureInvalid,
              `the message's signature does not verify. ${this.released} bytes of plaintext had been released, each from a frame whose tag verified, but the message as a whole is not authentic: discard them`,
            );
          }
        });
        // Marked handled: when the stream fails first (bytes after the footer), nothing awaits it.
        this.#verification.catch(() => undefined);
        this.#state = "done";
        continue;
      }
      // frames
      if (q.length < 4) return;
      const marker = q.peek(4).readUInt32BE();
      if (marker !== FINAL_FRAME_MARKER) {
        if (q.length < 4 + frameLength + TAG_LENGTH) return;
        if (marker !== this.#expectSeq) throw invalid(`frame ${marker} where frame ${this.#expectSeq} was expected`);
        const seq = marker;
        this.#consume(4);
        const ciphertext = this.#consumeParts(frameLength);
        const tag = this.#consume(TAG_LENGTH);
        this.#open(seq, frameAad(p.header.messageId, FRAME_TYPE_REGULAR, seq, frameLength), ciphertext, tag);
        this.#expectSeq++;
        continue;
      }
      if (q.length < FINAL_FRAME_PREFIX) return;
      const prefix = q.peek(FINAL_FRAME_PREFIX);
      const seq = prefix.readUInt32BE(4);
      if (seq !== this.#expectSeq) throw invalid(`final frame numbered ${seq} where frame ${this.#expectSeq} was expected`);
      const total = readUint64(prefix, 8);
      const before = (seq - 1) * frameLength;
      const n = total === undefined ? -1 : total - before;
      if (total === undefined || n < 0 || n > frameLength || (seq > 1 && n === 0)) {
        throw invalid(`the final frame's total length does not fit its sequence number and the frame length`);
      }
      if (q.length < FINAL_FRAME_PREFIX + n + TAG_LENGTH) return;
      this.#consume(FINAL_FRAME_PREFIX);
      const ciphertext = n === 0 ? [Buffer.alloc(0)] : this.#consumeParts(n);
      const tag = this.#consume(TAG_LENGTH);
      this.#open(seq, frameAad(p.header.messageId, FRAME_TYPE_FINAL, seq, total!), ciphertext, tag);
      this.#state = p.header.suite.signature ? "footer" : "done";
    }
  }

  /** Opens here, or on a worker once the message has shown it is long; output stays in order. */
  #open(seq: number, aad: Buffer, ciphertext: Buffer[], tag: Buffer): void {
    const p = this.#p!;
    if (p.dataKey && seq >= PARALLEL_FROM_SEQ) this.#workers ??= new ParallelFrames(p.header.suite, p.dataKey, p.header.messageId);
    if (this.#workers && !onThisThread(seq)) {
      const whole = ciphertext.length === 1 ? ciphertext[0]! : Buffer.concat(ciphertext);
      this.#output.add(this.#workers.open(seq, aad, whole, tag).then((r) => [r.data]));
    } else if (this.#workers) {
      // Frames before this one may still be on workers: a failure here must surface after them, in order.
      let opened: Buffer[] | Promise<Buffer[]>;
      try {
        opened = p.cipher.openParts(seq, aad, ciphertext, tag);
      } catch (err) {
        opened = Promise.reject(err as Error);
      }
      this.#output.add(opened);
    } else this.#output.add(p.cipher.openParts(seq, aad, ciphertext, tag));
  }
}

export function decryptStream(options: DecryptOptions): DecryptStream {
  return new DecryptStream(options);
}
