// Parameter schemas for the Tencent protocol: each action declares its parameters once, and
// `parseParams` checks presence, type and value, naming the parameter in every error.

import { KmsError, type ErrorCode } from "../../service/errors.js";
import type { EncryptionContext } from "../../keys/blob.js";

export interface Param<T> {
  readonly required: boolean;
  parse(value: unknown, name: string): T;
}

export type Schema = Readonly<Record<string, Param<unknown>>>;

export type Parsed<S extends Schema> = {
  [K in keyof S]: S[K] extends Param<infer T> ? (S[K]["required"] extends true ? T : T | undefined) : never;
};

interface Required<T> extends Param<T> {
  readonly required: true;
}
export interface Optional<T> extends Param<T> {
  readonly required: false;
}

function required<T>(parse: (value: unknown, name: string) => T): Required<T> {
  return { required: true, parse };
}

export function optional<T>(param: Param<T>): Optional<T> {
  return { required: false, parse: param.parse };
}

/** Unknown parameters, then missing ones, then each value: the first problem is the answer. */
export function parseParams<S extends Schema>(schema: S, body: Record<string, unknown>): Parsed<S> {
  return parseFields(schema, body, "");
}

/** The fields of `body` per `schema`; `prefix` names nested ones ("Tags.0."). */
function parseFields<S extends Schema>(schema: S, body: Record<string, unknown>, prefix: string): Parsed<S> {
  for (const name of Object.keys(body)) {
    if (!Object.hasOwn(schema, name)) throw new KmsError("UnknownParameter", `the parameter "${prefix}${name}" is not recognized`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, param] of Object.entries(schema)) {
    const value = body[name];
    if (value === undefined || value === null) {
      if (param.required) throw new KmsError("MissingParameter", `the parameter "${prefix}${name}" is required`);
      continue;
    }
    out[name] = param.parse(value, `${prefix}${name}`);
  }
  return out as Parsed<S>;
}

function typeError(name: string, expected: string): KmsError {
  return new KmsError("InvalidParameter", `"${name}" must be ${expected}`);
}

/** A UTF-16 surrogate without its pair: not a character, and not storable as UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

export interface StringOptions {
  min?: number;
  max: number;
  /** Count the limit in UTF-8 bytes instead of characters. */
  bytes?: boolean;
  pattern?: RegExp;
  patternText?: string;
  code?: ErrorCode;
}

export function string(options: StringOptions): Required<string> {
  return required((value, name) => {
    if (typeof value !== "string") throw typeError(name, "a string");
    if (LONE_SURROGATE.test(value)) throw new KmsError("InvalidParameterValue", `"${name}" must be well-formed Unicode`);
    const length = options.bytes ? Buffer.byteLength(value, "utf8") : value.length;
    const unit = options.bytes ? "bytes" : "characters";
    const code = options.code ?? "InvalidParameterValue";
    const min = options.min ?? 0;
    if (length < min || length > options.max) {
      throw new KmsError(code, `"${name}" must be ${min === 0 ? "at most" : `${min} to`} ${options.max} ${unit}`);
    }
    if (options.pattern && !options.pattern.test(value)) throw new KmsError(code, `"${name}" must be ${options.patternText}`);
    return value;
  });
}

export function integer(min: number, max: number, code: ErrorCode = "InvalidParameterValue"): Required<number> {
  return required((value, name) => {
    if (typeof value !== "number" || !Number.isInteger(value)) throw typeError(name, "an integer");
    if (value < min || value > max) throw new KmsError(code, `"${name}" must be between ${min} and ${max}`);
    return value;
  });
}

export function oneOf<const T extends string>(values: readonly T[], code: ErrorCode = "InvalidParameterValue"): Required<T> {
  return required((value, name) => {
    if (typeof value !== "string") throw typeError(name, "a string");
    if (!(values as readonly string[]).includes(value)) throw new KmsError(code, `"${name}" must be one of ${values.join(", ")}`);
    return value as T;
  });
}

export function integerOneOf<const T extends number>(values: readonly T[]): Required<T> {
  return required((value, name) => {
    if (typeof value !== "number" || !Number.isInteger(value)) throw typeError(name, "an integer");
    if (!(values as readonly number[]).includes(value)) throw new KmsError("InvalidParameterValue", `"${name}" must be one of ${values.join(", ")}`);
    return value as T;
  });
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding, decoding to `min`..`max` bytes. */
export function base64(options: { min?: number; max: number; code?: ErrorCode }): Required<Buffer> {
  const min = options.min ?? 1;
  return required((value, name) => {
    if (typeof value !== "string") throw typeError(name, "a base64 string");
    const code = options.code ?? "InvalidParameterValue";
    const text = `"${name}" must be base64 of ${min} to ${options.max} bytes`;
    // Check the encoded length first so an enormous value is refused before it is scanned.
    if (value.length > Math.ceil(options.max / 3) * 4 || !BASE64.test(value)) throw new KmsError(code, text);
    const bytes = Buffer.from(value, "base64");
    if (bytes.length < min || bytes.length > options.max) throw new KmsError(code, text);
    return bytes;
  });
}

export function array<T>(item: Param<T>, options: { min?: number; max: number }): Required<T[]> {
  const min = options.min ?? 0;
  return required((value, name) => {
    if (!Array.isArray(value)) throw typeError(name, "an array");
    if (value.length < min || value.length > options.max) throw new KmsError("InvalidParameterValue", `"${name}" must have ${min} to ${options.max} items`);
    return value.map((v, i) => item.parse(v, `${name}.${i}`));
  });
}

export function object<S extends Schema>(schema: S): Required<Parsed<S>> {
  return required((value, name) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw typeError(name, "an object");
    return parseFields(schema, value as Record<string, unknown>, `${name}.`);
  });
}

export const KEY_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function keyId(): Required<string> {
  return string({ min: 1, max: 128, pattern: KEY_ID_PATTERN, patternText: "a key id (a lower-case UUID)", code: "InvalidKeyId" });
}

export const ENCRYPTION_CONTEXT_MAX = 1024;

/** A JSON object of string values, at most 1024 characters, as Tencent documents it. */
export function encryptionContext(): Required<EncryptionContext> {
  return required((value, name) => {
    if (typeof value !== "string") throw typeError(name, "a string");
    const problem = `"${name}" must be a JSON object of string values, at most ${ENCRYPTION_CONTEXT_MAX} characters`;
    if (value.length > ENCRYPTION_CONTEXT_MAX) throw new KmsError("InvalidParameterValue", problem);
    if (value === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new KmsError("InvalidParameterValue", problem);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new KmsError("InvalidParameterValue", problem);
    const context: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== "string") throw new KmsError("InvalidParameterValue", problem);
      context[k] = v;
    }
    return context;
  });
}
