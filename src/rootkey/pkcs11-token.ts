// The PKCS#11 module, shared by every root of trust in the process, and the token side of a
// connection: finding the token, opening sessions, logging in, finding and checking keys.

import { endianness } from "node:os";
import pkcs11js from "pkcs11js";
import { GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { Pkcs11Error, call, translate } from "./pkcs11-errors.js";

export type Handle = Buffer;
export type Api = pkcs11js.PKCS11;

/**
 * An AES-256 token key that never leaves the token: sensitive, not extractable, only for
 * encryption and decryption (not wrapping, signing or derivation), its attributes fixed.
 */
export function nonExtractableAes256Template(label: string, id: Buffer): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: KEY_LENGTH },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_MODIFIABLE, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
}

export const KEY_LENGTH = 32;
export const KEY_ID_LENGTH = 16;
/** The least time between two module re-initialisations (C_Finalize + C_Initialize) while a token is missing. */
const REINITIALIZE_INTERVAL_MS = 1000;

// --- the module, shared by every root of trust in the process --------------------------------

// C_Initialize and C_Finalize act on the whole process, and session and object handles are only
// meaningful between them. So each module path is loaded and initialised once, counted by its
// users; `generation` changes whenever it is finalised, and a handle from another generation is
// never used again (handle numbers restart, so it might name someone else's session).
// Key-pair generation (seconds for RSA-4096) runs on libuv's thread pool, one at a time per
// module, while the main thread goes on with other sessions: the module is initialised for OS
// locking, and it is neither finalised nor re-initialised while such a call runs.
export class SharedModule {
  static readonly #byPath = new Map<string, SharedModule>();

  readonly path: string;
  readonly api: Api;
  generation = 0;
  #initialized = false;
  // False when someone else in the process had already initialised it: then it is not ours to finalise.
  #ownsInitialization = true;
  #users = 0;
  #lastReinitialization = Number.NEGATIVE_INFINITY;
  /** The calls running or queued on the thread pool (see offThread). */
  #offThread = 0;
  #offThreadTail: Promise<unknown> = Promise.resolve();

  private constructor(path: string, api: Api) {
    this.path = path;
    this.api = api;
  }

  static acquire(path: string): SharedModule {
    let shared = SharedModule.#byPath.get(path);
    if (shared === undefined) {
      const api = new pkcs11js.PKCS11();
      try {
        api.load(path);
      } catch (err) {
        const detail = err instanceof Error ? err.message.split("\n")[0] : String(err);
        throw new Error(`cannot load the PKCS#11 module ${path}: ${detail}`);
      }
      shared = new SharedModule(path, api);
      SharedModule.#byPath.set(path, shared);
    }
    if (!shared.#initialized) shared.#initialize();
    shared.#users++;
    return shared;
  }

  get initialized(): boolean {
    return this.#initialized;
  }

  release(): void {
    if (this.#users === 0) return;
    this.#users--;
    if (this.#users === 0) this.#finalize();
  }

  /**
   * Runs `fn`, which makes one call on libuv's thread pool, after the ones before it. Until all
   * have ended the module is not re-initialised, and `settled()` waits for them.
   */
  offThread<T>(fn: () => Promise<T>): Promise<T> {
    this.#offThread++;
    const run = this.#offThreadTail.then(fn, fn).finally(() => this.#offThread--);
    this.#offThreadTail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once no call runs on the thread pool (before the module may be finalised). */
  async settled(): Promise<void> {
    while (this.#offThread > 0) await this.#offThreadTail;
  }

  /** Finalises and initialises again, so the module rescans its slots; at most once per interval, never during a thread-pool call. */
  reinitialize(): boolean {
    if (this.#offThread > 0) return false;
    const now = performance.now();
    if (now - this.#lastReinitialization < REINITIALIZE_INTERVAL_MS) return false;
    this.#lastReinitialization = now;
    this.#finalize();
    this.#initialize();
    return true;
  }

  #initialize(): void {
    try {
      // The main thread and one thread-pool call (key-pair generation) may be in the module at once.
      this.api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      this.#ownsInitialization = true;
    } catch (err) {
      const translated = translate("C_Initialize", err, `cannot initialise the PKCS#11 module ${this.path}`);
      if (!(translated instanceof Pkcs11Error && translated.ckr === "CKR_CRYPTOKI_ALREADY_INITIALIZED")) throw translated;
      this.#ownsInitialization = false;
    }
    this.#initialized = true;
  }

  #finalize(): void {
    this.generation++;
    if (!this.#initialized) return;
    this.#initialized = false;
    if (!this.#ownsInitialization) return;
    try {
      this.api.C_Finalize();
    } catch {
      // A module that fails to finalise is being dropped anyway.
    }
  }
}

// --- attribute and handle helpers ------------------------------------------------------------

const LITTLE_ENDIAN = endianness() === "LE";

/** A CK_ULONG as the binding returns it: native width and byte order. */
function ulong(value: Buffer): number {
  if (value.length === 8) return Number(LITTLE_ENDIAN ? value.readBigUInt64LE() : value.readBigUInt64BE());
  if (value.length === 4) return LITTLE_ENDIAN ? value.readUInt32LE() : value.readUInt32BE();
  throw new Error(`unexpected CK_ULONG of ${value.length} bytes`);
}

export function bool(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}

export function trimLabel(label: string): string {
  // Token labels are blank-padded to 32 bytes.
  return label.replace(/ +$/, "");
}

export function closeQuietly(api: Api, session: Handle): void {
  try {
    api.C_CloseSession(session);
  } catch {
    // Already gone with its token or module; nothing to release.
  }
}

export function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  // CK_GCM_PARAMS as PKCS#11 v2.40 has it: the caller supplies the IV.
  const parameter: pkcs11js.AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: GCM_IV_LENGTH * 8, tagBits: GCM_TAG_LENGTH * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

// --- connections ------------------------------------------------------------------------------

export interface Token {
  slot: Handle;
  label: string;
}

export interface Connection {
  generation: number;
  slot: Handle;
  key: Handle;
  /**
   * The session that logged in, held open and never used for operations: login state belongs to
   * the application and token, and ends with the token's last session (taking the private key
   * handle with it), while operation sessions are closed whenever an operation fails.
   */
  anchor: Handle;
  idle: Handle[];
  /** Handles of HSM-protected key objects found so far, by CKA_LABEL; valid for this connection only. */
  objects: Map<string, Handle>;
}

// --- connecting: token, session, login, key ---------------------------------------------------

export function findToken(module: SharedModule, config: { tokenLabel?: string | undefined; slot?: number | undefined }): Token {
  const { api } = module;
  const slots = call("C_GetSlotList", () => api.C_GetSlotList(true), "cannot list the slots");
  const tokens: Token[] = [];
  for (const slot of slots) {
    let label: string;
    try {
      label = trimLabel(api.C_GetTokenInfo(slot).label);
    } catch {
      continue; // A token that cannot describe itself cannot be the one asked for.
    }
    tokens.push({ slot, label });
  }
  const wanted = config.tokenLabel === undefined ? undefined : trimLabel(config.tokenLabel);
  const present = tokens.map((t) => `"${t.label}"`).join(", ") || "none";
  if (config.slot !== undefined) {
    const token = tokens.find((t) => ulong(t.slot) === config.slot);
    if (token === undefined) throw new Error(`no token present in slot ${config.slot} of PKCS#11 module ${module.path}`);
    if (wanted !== undefined && token.label !== wanted) throw new Error(`the token in slot ${config.slot} is labelled "${token.label}", not "${wanted}"`);
    return token;
  }
  const matching = tokens.filter((t) => t.label === wanted);
  if (matching.length === 0) throw new Error(`no token labelled "${wanted}" in PKCS#11 module ${module.path} (tokens present: ${present})`);
  if (matching.length > 1) throw new Error(`${matching.length} tokens are labelled "${wanted}" in PKCS#11 module ${module.path}; name the slot as well`);
  return matching[0]!;
}

export function openSession(api: Api, slot: Handle, readWrite: boolean, tokenLabel?: string): Handle {
  const flags = pkcs11js.CKF_SERIAL_SESSION | (readWrite ? pkcs11js.CKF_RW_SESSION : 0);
  return call("C_OpenSession", () => api.C_OpenSession(slot, flags), tokenLabel === undefined ? undefined : `cannot open a session with token "${tokenLabel}"`);
}

export function login(api: Api, session: Handle, pin: string, tokenLabel: string): void {
  try {
    api.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    // Login state belongs to the application and token, not the session: another session may have logged in.
    const translated = translate("C_Login", err, `cannot log in to token "${tokenLabel}"`);
    if (translated instanceof Pkcs11Error && translated.ckr === "CKR_USER_ALREADY_LOGGED_IN") return;
    throw translated;
  }
}

export function checkMechanisms(api: Api, token: Token): void {
  const mechanisms = call("C_GetMechanismList", () => api.C_GetMechanismList(token.slot), `cannot list the mechanisms of token "${token.label}"`);
  if (!mechanisms.includes(pkcs11js.CKM_AES_GCM)) {
    throw new Error(`token "${token.label}" does not offer CKM_AES_GCM, which the PKCS#11 root of trust requires`);
  }
  const info = call("C_GetMechanismInfo", () => api.C_GetMechanismInfo(token.slot, pkcs11js.CKM_AES_GCM), `cannot describe CKM_AES_GCM on token "${token.label}"`);
  const needed = pkcs11js.CKF_ENCRYPT | pkcs11js.CKF_DECRYPT;
  if ((info.flags & needed) !== needed) throw new Error(`token "${token.label}" offers CKM_AES_GCM but not for both encryption and decryption`);
}

export function findKeys(api: Api, session: Handle, keyLabel: string, keyId?: Buffer): Handle[] {
  return findMatching(api, session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }], keyLabel, keyId);
}

/** Refuses a key that is not a sensitive, non-extractable AES-256 encryption key; returns its CKA_ID. */
export function checkKey(api: Api, session: Handle, key: Handle, keyLabel: string, tokenLabel: string): Buffer {
  const types = [
    pkcs11js.CKA_KEY_TYPE,
    pkcs11js.CKA_VALUE_LEN,
    pkcs11js.CKA_SENSITIVE,
    pkcs11js.CKA_EXTRACTABLE,
    pkcs11js.CKA_ENCRYPT,
    pkcs11js.CKA_DECRYPT,
    pkcs11js.CKA_TOKEN,
    pkcs11js.CKA_ID,
  ];
  const values = call(
    "C_GetAttributeValue",
    () => api.C_GetAttributeValue(session, key, types.map((type) => ({ type }))),
    `cannot read the attributes of key "${keyLabel}" on token "${tokenLabel}"`,
  );
  const value = (type: number): Buffer => values.find((a) => a.type === type)?.value ?? Buffer.alloc(0);
  const what = `key "${keyLabel}" on token "${tokenLabel}"`;
  const problems: string[] = [];
  if (ulong(value(pkcs11js.CKA_KEY_TYPE)) !== pkcs11js.CKK_AES) problems.push("is not an AES key");
  else if (ulong(value(pkcs11js.CKA_VALUE_LEN)) !== KEY_LENGTH) problems.push(`is not ${KEY_LENGTH * 8} bits long`);
  if (!bool(value(pkcs11js.CKA_SENSITIVE))) problems.push("is not sensitive (CKA_SENSITIVE is false)");
  if (bool(value(pkcs11js.CKA_EXTRACTABLE))) problems.push("is extractable (CKA_EXTRACTABLE is true)");
  if (!bool(value(pkcs11js.CKA_ENCRYPT)) || !bool(value(pkcs11js.CKA_DECRYPT))) problems.push("does not allow both encryption and decryption");
  if (!bool(value(pkcs11js.CKA_TOKEN))) problems.push("is not a token object");
  if (problems.length > 0) throw new Error(`refusing ${what} as the root key: it ${problems.join(", ")}`);
  return Buffer.from(value(pkcs11js.CKA_ID));
}

/**
 * Opens a session, logs in, and finds the key: by label alone on first open (exactly one), by label
 * and the CKA_ID seen then on reconnect, so a different key given the same label is not taken.
 */
export function connect(module: SharedModule, token: Token, pin: string, keyLabel: string, keyId: Buffer | undefined): { connection: Connection; keyId: Buffer } {
  const { api } = module;
  const generation = module.generation;
  const session = openSession(api, token.slot, false, token.label);
  try {
    login(api, session, pin, token.label);
    checkMechanisms(api, token);
    const keys = findKeys(api, session, keyLabel, keyId);
    if (keys.length === 0) {
      throw new Error(`no secret key labelled "${keyLabel}"${keyId === undefined ? "" : " with the CKA_ID opened before"} on token "${token.label}"`);
    }
    if (keys.length > 1) throw new Error(`${keys.length} secret keys are labelled "${keyLabel}" on token "${token.label}"; refusing to guess which is the root key`);
    const key = keys[0]!;
    const id = checkKey(api, session, key, keyLabel, token.label);
    return { connection: { generation, slot: token.slot, key, anchor: session, idle: [], objects: new Map() }, keyId: id };
  } catch (err) {
    closeQuietly(api, session);
    throw err;
  }
}

export function findObjects(api: Api, session: Handle, label: string, id?: Buffer): Handle[] {
  return findMatching(api, session, [], label, id);
}

/** Every object matching `template` plus the label (and the id when given), in batches of 16. */
function findMatching(api: Api, session: Handle, template: pkcs11js.Template, label: string, id?: Buffer): Handle[] {
  const search: pkcs11js.Template = [...template, { type: pkcs11js.CKA_LABEL, value: label }];
  if (id !== undefined) search.push({ type: pkcs11js.CKA_ID, value: id });
  call("C_FindObjectsInit", () => api.C_FindObjectsInit(session, search));
  try {
    const found: Handle[] = [];
    for (;;) {
      const batch = call("C_FindObjects", () => api.C_FindObjects(session, 16));
      if (batch.length === 0) return found;
      found.push(...batch);
    }
  } finally {
    try {
      api.C_FindObjectsFinal(session);
    } catch {
      // The search ends with the session if not here.
    }
  }
}
