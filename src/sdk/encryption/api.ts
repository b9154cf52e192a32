// encrypt() and decrypt() over whole values: a Buffer in, a Buffer out, built on the streams. For
// data of any size use encryptStream / decryptStream, whose memory stays bounded.

import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { needs } from "./errors.js";
import { DecryptStream, EncryptStream, type DecryptOptions, type EncryptOptions, type MessageInfo } from "./stream.js";

export type Input = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

export interface EncryptResult {
  message: Buffer;
  info: MessageInfo;
}

export interface DecryptResult {
  plaintext: Buffer;
  info: MessageInfo;
}

function source(input: Input): Readable {
  if (typeof input === "string") return Readable.from([Buffer.from(input, "utf8")]);
  if (input instanceof Uint8Array) return Readable.from([Buffer.from(input.buffer, input.byteOffset, input.byteLength)]);
  needs(typeof input === "object" && input !== null && Symbol.asyncIterator in input, `"input" must be a Buffer, Uint8Array, string, Readable or async iterable of bytes`);
  return input instanceof Readable ? input : Readable.from(input);
}

async function run(input: Input, transform: EncryptStream | DecryptStream): Promise<{ out: Buffer; info: MessageInfo }> {
  const chunks: Buffer[] = [];
  let info: MessageInfo | undefined;
  transform.once("header", (i: MessageInfo) => (info = i));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await pipeline(source(input), transform, sink);
  return { out: Buffer.concat(chunks), info: info! };
}

/** Encrypts the whole input into one message held in memory. */
export async function encrypt(input: Input, options: EncryptOptions): Promise<EncryptResult> {
  const known = input instanceof Uint8Array ? input.byteLength : typeof input === "string" ? Buffer.byteLength(input) : undefined;
  const stream = new EncryptStream(options.plaintextLength === undefined && known !== undefined ? { ...options, plaintextLength: known } : options);
  const { out, info } = await run(input, stream);
  return { message: out, info };
}

/**
 * Decrypts a whole message. Resolves only after every frame and (for signed suites) the signature
 * verified; on any failure the partial plaintext is wiped and never returned.
 */
export async function decrypt(input: Input, options: DecryptOptions): Promise<DecryptResult> {
  const stream = new DecryptStream(options);
  const chunks: Buffer[] = [];
  let info: MessageInfo | undefined;
  stream.once("header", (i: MessageInfo) => (info = i));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  try {
    await pipeline(source(input), stream, sink);
  } catch (err) {
    for (const c of chunks) c.fill(0);
    throw err;
  }
  return { plaintext: Buffer.concat(chunks), info: info! };
}
