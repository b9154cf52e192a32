// Streaming encryption and decryption: Node Transform streams with back-pressure and memory bounded
// by about one frame, whatever the message size. The decryptor releases a frame's plaintext only
// after that frame's tag verifies, and fails (never ends quietly) when the message is cut short or,
// for signed suites, when the footer signature does not verify.

import { Transform, type TransformCallback } from "node:stream";
import type { Hash } from "node:crypto";
import { randomBytes } from "../../crypto/random.js";
import { decryptionPartition, encryptionPartition, type CachedEncryptionMaterials, type DataKeyCache } from "./cache.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, needs } from "./errors.js";
import {
  DEFAULT_FRAME_LENGTH,
  DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
  DEFAULT_MAX_HEADER_BYTES,
  encodeHeaderBody,
  FINAL_FRAME_MARKER,
  FINAL_FRAME_PREFIX,
  FRAME_TYPE_FINAL,
  FRAME_TYPE_REGULAR,
  frameAad,
  MAX_FRAME_LENGTH,
  MAX_SEQUENCE_NUMBER,
  MIN_FRAME_LENGTH,
  parseHeader,
  readUint64,
  writeUint64,
  type ContextPairs,
  type EncryptedDataKey,
  type Header,
} from "./format.js";
import type { Keyring } from "./keyring.js";
import { ParallelFrames, poolSize } from "./parallel.js";
import {
  checkPublicKey,
  commitmentMatches,
  DATA_KEY_LENGTH,
  DEFAULT_SUITE,
  deriveMessageKeys,
  generateSigningKey,
  MESSAGE_ID_LENGTH,
  PUBLIC_KEY_CONTEXT_KEY,
  RESERVED_CONTEXT_PREFIX,
  signatureHash,
  signDigest,
  suiteByName,
  SUITE_NAMES,
  TAG_LENGTH,
  verifyDigest,
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

/** Frames below this size stay on the calling thread: a worker round trip would cost more. */
const PARALLEL_MIN_FRAME = 4096;
/** The worker pool starts with a message's second regular frame, so short messages never pay for it. */
const PARALLEL_FROM_SEQ = 2;

/** With workers, frame seq is sealed or opened on the calling thread when this holds: one share of poolSize() + 1. */
function onThisThread(seq: number): boolean {
  return seq % (poolSize() + 1) === 0;
}

/** Frames in flight at once: enough to keep every worker busy, and at most about 16 MiB. */
function maxInFlight(frameLength: number): number {
  return Math.max(2, Math.min(4 * poolSize(), Math.floor((16 * 1024 * 1024) / frameLength)));
}

/**
 * Output in message order, whether a frame was done here (at once) or on a worker (later). A
 * rejected entry surfaces, in order, from drain(); entries behind it are never emitted.
 */
class OrderedOutput<T> {
  readonly #pending: Array<Promise<T>> = [];
  constructor(readonly emit: (item: T) => void) {}
  get length(): number {
    return this.#pending.length;
  }
  add(item: T | Promise<T>): void {
    if (!(item instanceof Promise) && this.#pending.length === 0) {
      this.emit(item);
      return;
    }
    const p = Promise.resolve(item);
    p.catch(() => undefined); // surfaced by drain()
    this.#pending.push(p);
  }
  async drain(max: number): Promise<void> {
    while (this.#pending.length > max) {
      // Awaited in place, so that add() keeps queueing behind it; only then taken off.
      const item = await this.#pending[0]!;
      void this.#pending.shift();
      this.emit(item);
    }
  }
}

/** What the header told: emitted as the "header" event of both streams. */
export interface MessageInfo {
  suite: SuiteName;
  messageId: Buffer;
  /** The caller's pairs (reserved "tresor:" pairs left out). */
  encryptionContext: Record<string, string>;
  frameLength: number;
  encryptedDataKeys: ReadonlyArray<{ provider: string; region: string; keyId: string }>;
  /** Decryption only: the encrypted copy of the data key that was used. */
  decryptedWith?: { provider: string; region: string; keyId: string };
}

/** Byte queue over the received chunks: takes without copying when a piece lies inside one chunk. */
class ByteQueue {
  #chunks: Buffer[] = [];
  #offset = 0;
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.length += b.length;
  }

  take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#advance(first, n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length - this.#offset, n - filled);
      c.copy(out, filled, this.#offset, this.#offset + k);
      filled += k;
      this.#advance(c, k);
    }
    return out;
  }

  /** The next n bytes as views of the received chunks, in order: no copy. */
  takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length - this.#offset, left);
      out.push(c.subarray(this.#offset, this.#offset + k));
      left -= k;
      this.#advance(c, k);
    }
    return out;
  }

  /** A copy of the first min(n, length) bytes. */
  peek(n: number): Buffer {
    const size = Math.min(n, this.length);
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    let offset = this.#offset;
    for (const c of this.#chunks) {
      if (filled >= size) break;
      const k = Math.min(c.length - offset, size - filled);
      c.copy(out, filled, offset, offset + k);
      filled += k;
      offset = 0;
    }
    return out;
  }

  #advance(chunk: Buffer, n: number): void {
    this.#offset += n;
    this.length -= n;
    if (this.#offset === chunk.length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

function checkCallerContext(context: unknown, name: string): Record<string, string> {
  if (context === undefined) return {};
  needs(typeof context === "object" && context !== null && !Array.isArray(context), `"${name}" must be an object of string values`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(context)) {
    needs(typeof v === "string", `"${name}" value of ${JSON.stringify(k)} must be a string`);
    needs(!k.startsWith(RESERVED_CONTEXT_PREFIX), `"${name}" keys starting with "${RESERVED_CONTEXT_PREFIX}" are reserved, got ${JSON.stringify(k)}`);
    out[k] = v;
  }
  return out;
}

function callerPairs(context: ContextPairs): Record<string, string> {
  return Object.fromEntries(Object.entries(context).filter(([k]) => !k.startsWith(RESERVED_CONTEXT_PREFIX)));
}

function info(header: Header, decryptedWith?: MessageInfo["decryptedWith"]): MessageInfo {
  return {
    suite: header.suite.name,
    messageId: Buffer.from(header.messageId),
    encryptionContext: callerPairs(header.context),
    frameLength: header.frameLength,
    encryptedDataKeys: header.encryptedDataKeys.map(({ provider, region, keyId }) => ({ provider, region, keyId })),
    ...(decryptedWith === undefined ? {} : { decryptedWith }),
  };
}

// ---- encryption --------------------------------------------------------------------------------

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
    signingKey = generateSigningKey(suite);
    const full = signingKey ? { ...context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeySpki.toString("base64") } : context;
    const materials = await keyring.generateDataKey(DATA_KEY_LENGTH, full);
    ({ dataKey, encryptedDataKeys } = materials);
    if (cache && partition) cached = cache.putEncryption(partition, { dataKey, encryptedDataKeys, signingKey });
  }
  try {
    const fullContext = signingKey ? { ...context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeySpki.toString("base64") } : context;
    const messageId = randomBytes(MESSAGE_ID_LENGTH);
    const keys = deriveMessageKeys(suite, dataKey, messageId, frameLength);
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
        const signature = signDigest(p.signingKey, p.hash.digest());
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
    if (this.#parallel && seq >= PARALLEL_FROM_SEQ && p.dataKey) this.#workers ??= new ParallelFrames(p.header.suite, p.dataKey, p.header.messageId, p.header.frameLength);
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

// ---- decryption --------------------------------------------------------------------------------

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
      if (this.#output.length > max) this.#output.drain(max).then(() => callback(), callback);
      else callback();
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
    this.#output.drain(0).then(() => {
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
      keys = deriveMessageKeys(suite, got.dataKey, header.messageId, header.frameLength);
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
        const signature = q.take(2 + len).subarray(2);
        if (!verifyDigest(p.header.suite, p.publicKey!, digest, signature)) {
          throw new EncryptionSdkError(
            ENCRYPTION_ERROR_CODES.SignatureInvalid,
            `the message's signature does not verify. ${this.released} bytes of plaintext had been released, each from a frame whose tag verified, but the message as a whole is not authentic: discard them`,
          );
        }
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
    if (p.dataKey && seq >= PARALLEL_FROM_SEQ) this.#workers ??= new ParallelFrames(p.header.suite, p.dataKey, p.header.messageId, p.header.frameLength);
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

export function encryptStream(options: EncryptOptions): EncryptStream {
  return new EncryptStream(options);
}

export function decryptStream(options: DecryptOptions): DecryptStream {
  return new DecryptStream(options);
}
