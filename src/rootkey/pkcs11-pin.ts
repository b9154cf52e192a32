// The PKCS#11 token PIN, for the CLI: from an environment variable or an owner-only file.

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

const MAX_PIN_FILE_BYTES = 1024;

/**
 * Reads the token PIN from an environment variable (by name) or a file, never from a flag. A file
 * must be readable by its owner only, like the root key file; one trailing line break is dropped.
 * Errors name the source, never the content.
 */
export function readPin(source: { env?: string; file?: string }): string {
  const { env, file } = source;
  if ((env === undefined) === (file === undefined)) throw new TypeError(`exactly one of "env" and "file" must name where the PIN is`);
  let pin: string;
  let where: string;
  if (env !== undefined) {
    if (typeof env !== "string" || env.length === 0) throw new TypeError(`"env" must name an environment variable`);
    where = `environment variable ${env}`;
    const value = process.env[env];
    if (value === undefined) throw new Error(`the PIN ${where} is not set`);
    pin = value;
  } else {
    if (typeof file !== "string" || file.length === 0) throw new TypeError(`"file" must be a path`);
    where = `file ${file}`;
    pin = readPinFile(file);
  }
  pin = pin.replace(/\r?\n$/, "");
  if (pin.length === 0) throw new Error(`the PIN in ${where} is empty`);
  if (/[\r\n\0]/.test(pin)) throw new Error(`the PIN in ${where} must be a single line without NUL characters`);
  return pin;
}

function readPinFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY);
  const buffer = Buffer.alloc(MAX_PIN_FILE_BYTES + 1);
  try {
    // fstat the open file, not the path, so the checks apply to what is read.
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`PIN file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, "0");
      throw new Error(`PIN file ${path} has mode ${mode}, which grants access to group or others; it must be 0600 or 0400`);
    }
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length === buffer.length) throw new Error(`PIN file ${path} is larger than ${MAX_PIN_FILE_BYTES} bytes`);
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
    } catch {
      throw new Error(`PIN file ${path} is not UTF-8 text`);
    }
  } finally {
    buffer.fill(0);
    closeSync(fd);
  }
}
