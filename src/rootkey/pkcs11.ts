// A root of trust whose AES-256 key never leaves a PKCS#11 token (an HSM; SoftHSM2 in tests). Wrapped
// values are AES-256-GCM computed inside the token, laid out as 0x02 (format) || iv (12) ||
// ciphertext || tag (16); 0x02 so they are never mistaken for the file root of trust's 0x01 values.
//
// pkcs11js calls are synchronous (measured with SoftHSM2: ~40 µs for a 32-byte wrap, ~220 µs for
// 64 KiB). They block the event loop that long, but every operation runs from C_*Init to its end in
// one turn of the loop, so no two operations ever share a session and no call is in flight when a
// session or the module is reset. The `*Async` variants (libuv thread pool) reached only about 60%
// of the synchronous rate with SoftHSM2, even over several sessions.

import { createHash, createPublicKey } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { inspect } from "node:util";
import pkcs11js from "pkcs11js";
import { GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { randomBytes } from "../crypto/random.js";
import { HsmUnsupportedError, RootOfTrustError, RootOfTrustUnavailableError, type HsmKeyPairSpec, type HsmKeys, type HsmSignatureAlgorithm, type RootOfTrust } from "./root-of-trust.js";

type Handle = Buffer;
type Api = pkcs11js.PKCS11;

export interface Pkcs11Config {
  /** Path of the PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  /** The token's label; with `slot` too, the token in that slot must carry it. */
  tokenLabel?: string;
  /** The slot id; with neither, the config is refused. */
  slot?: number;
  /** The user PIN. Kept for re-login after the token returns; never shown. */
  pin: string;
  /** CKA_LABEL of the root key. */
  keyLabel: string;
}

const FORMAT_PKCS11_AES_256_GCM = 0x02;

/**
 * An AES-256 token key that never leaves the token: sensitive, not extractable, only for
 * encryption and decryption (not wrapping, signing or derivation), its attributes fixed.
 */
function nonExtractableAes256Template(label: string, id: Buffer): pkcs11js.Template {
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
const HEADER_LENGTH = 1 + GCM_IV_LENGTH;
const KEY_LENGTH = 32;
const KEY_ID_LENGTH = 16;
const MAX_IDLE_SESSIONS = 4;
/** The least time between two module re-initialisations (C_Finalize + C_Initialize) while a token is missing. */
const REINITIALIZE_INTERVAL_MS = 1000;

/** A PKCS#11 function returned something other than CKR_OK. Carries the CKR name and the function, never arguments. */
export class Pkcs11Error extends Error {
  override readonly name = "Pkcs11Error";
  constructor(
    /** The PKCS#11 function, e.g. "C_Login". */
    readonly fn: string,
    /** The return value's name, e.g. "CKR_PIN_INCORRECT" (or CKR_VENDOR_DEFINED+0x… / CKR_0x…). */
    readonly ckr: string,
    /** The raw CK_RV. */
    readonly code: number,
    context?: string,
  ) {
    super(`${context === undefined ? "" : `${context}: `}${fn} returned ${ckr}`);
  }
}

// --- errors and their meaning ----------------------------------------------------------------

const CKR_NAMES = (() => {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(pkcs11js)) {
    if (name.startsWith("CKR_") && typeof value === "number" && !names.has(value)) names.set(value, name);
  }
  return names;
})();
const CKR_VENDOR_DEFINED = 0x80000000;

function ckrName(code: number): string {
  const known = CKR_NAMES.get(code);
  if (known !== undefined) return known;
  if (code >= CKR_VENDOR_DEFINED) return `CKR_VENDOR_DEFINED+0x${(code - CKR_VENDOR_DEFINED).toString(16)}`;
  return `CKR_0x${code.toString(16)}`;
}

/** A failure inside the module or binding that carries no CK_RV (a crashed or unloaded module). */
class Pkcs11ModuleError extends Error {
  override readonly name = "Pkcs11ModuleError";
}

/** Runs one PKCS#11 call, turning what the binding throws into a `Pkcs11Error` named after `fn`. */
function call<T>(fn: string, thunk: () => T, context?: string): T {
  try {
    return thunk();
  } catch (err) {
    throw translate(fn, err, context);
  }
}

function translate(fn: string, err: unknown, context?: string): Error {
  // A TypeError is a wrong argument from this file: a bug, not a token condition.
  if (err instanceof TypeError) return err;
  if (err instanceof pkcs11js.Pkcs11Error) {
    // The binding's message is the CKR name; take only that (the binding's stack is not ours to show).
    const name = /^CKR_[A-Z0-9_]+$/.test(err.message) ? err.message : ckrName(err.code);
    return new Pkcs11Error(fn, name, err.code, context);
  }
  const detail = err instanceof Error ? err.message.split("\n")[0] ?? "" : "unknown failure";
  return new Pkcs11ModuleError(`${context === undefined ? "" : `${context}: `}${fn} failed in the PKCS#11 module: ${detail}`);
}

// Return values that mean the token, session or module is gone or broken rather than the request.
const UNAVAILABLE = new Set([
  "CKR_DEVICE_REMOVED",
  "CKR_DEVICE_ERROR",
  "CKR_DEVICE_MEMORY",
  "CKR_TOKEN_NOT_PRESENT",
  "CKR_TOKEN_NOT_RECOGNIZED",
  "CKR_SESSION_HANDLE_INVALID",
  "CKR_SESSION_CLOSED",
  "CKR_SLOT_ID_INVALID",
  "CKR_CRYPTOKI_NOT_INITIALIZED",
  "CKR_USER_NOT_LOGGED_IN",
  // The key handle was valid a moment ago: SoftHSM2 answers this when the token's storage vanished.
  "CKR_OBJECT_HANDLE_INVALID",
  "CKR_KEY_HANDLE_INVALID",
  "CKR_HOST_MEMORY",
]);
// Also unavailability, except from C_Decrypt, where SoftHSM2 reports a GCM tag mismatch this way.
const FAILED = new Set(["CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED"]);

function isUnavailable(err: unknown): boolean {
  if (err instanceof Pkcs11ModuleError) return true;
  return err instanceof Pkcs11Error && (UNAVAILABLE.has(err.ckr) || FAILED.has(err.ckr));
}

// --- the module, shared by every root of trust in the process --------------------------------

// C_Initialize and C_Finalize act on the whole process, and session and object handles are only
// meaningful between them. So each module path is loaded and initialised once, counted by its
// users; `generation` changes whenever it is finalised, and a handle from another generation is
// never used again (handle numbers restart, so it might name someone else's session).
// Key-pair generation (seconds for RSA-4096) runs on libuv's thread pool, one at a time per
// module, while the main thread goes on with other sessions: the module is initialised for OS
// locking, and it is neither finalised nor re-initialised while such a call runs.
class SharedModule {
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

function bool(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}

function trimLabel(label: string): string {
  // Token labels are blank-padded to 32 bytes.
  return label.replace(/ +$/, "");
}

function closeQuietly(api: Api, session: Handle): void {
  try {
    api.C_CloseSession(session);
  } catch {
    // Already gone with its token or module; nothing to release.
  }
}

function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  // CK_GCM_PARAMS as PKCS#11 v2.40 has it: the caller supplies the IV.
  const parameter: pkcs11js.AesGCM = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: GCM_IV_LENGTH * 8, tagBits: GCM_TAG_LENGTH * 8 };
  return { mechanism: pkcs11js.CKM_AES_GCM, parameter };
}

// --- the root of trust -----------------------------------------------------------------------

interface Token {
  slot: Handle;
  label: string;
}

interface Connection {
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

export class Pkcs11RootOfTrust implements RootOfTrust {
  readonly description: string;
  readonly #module: SharedModule;
  readonly #config: { tokenLabel: string | undefined; slot: number | undefined; keyLabel: string };
  // Private so that nothing reaches it by enumeration, JSON or inspection. A string cannot be wiped;
  // close() drops the reference.
  #pin: string;
  readonly #keyId: Buffer;
  #connection: Connection | undefined;
  #closed = false;
  readonly hsmKeys: HsmKeys;

  private constructor(module: SharedModule, config: Pkcs11Config, tokenLabel: string, keyId: Buffer, connection: Connection) {
    this.#module = module;
    this.#config = { tokenLabel: config.tokenLabel, slot: config.slot, keyLabel: config.keyLabel };
    this.#pin = config.pin;
    this.#keyId = keyId;
    this.#connection = connection;
    this.description = `pkcs11:${tokenLabel}/${config.keyLabel}`;
    this.hsmKeys = Object.freeze({
      description: this.description,
      belongsTo: hsmReferenceBelongsTo,
      generateAes256: async (keyId: string, version: number) => this.#hsmGenerateAes256(keyId, version),
      aesGcmEncrypt: async (reference: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer) => this.#hsmEncrypt(reference, iv, plaintext, aad),
      aesGcmDecrypt: async (reference: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer) => this.#hsmDecrypt(reference, iv, ciphertext, tag, aad),
      generateKeyPair: async (spec: HsmKeyPairSpec, purpose: "sign" | "decrypt", keyId: string, version: number) => this.#hsmGenerateKeyPair(spec, purpose, keyId, version),
      sign: async (reference: Buffer, algorithm: HsmSignatureAlgorithm, digest: Buffer) => this.#hsmSign(reference, algorithm, digest),
      rsaOaepDecrypt: async (reference: Buffer, hash: "sha1" | "sha256", ciphertext: Buffer) => this.#hsmRsaOaepDecrypt(reference, hash, ciphertext),
      destroy: async (reference: Buffer) => this.#hsmDestroy(reference),
    });
  }

  /** Generates a new non-extractable AES-256 root key in the token; refuses a label already in use. */
  static async create(config: Pkcs11Config): Promise<Pkcs11RootOfTrust> {
    checkConfig(config);
    const module = SharedModule.acquire(config.module);
    try {
      const { api } = module;
      const token = findToken(module, config);
      const session = openSession(api, token.slot, true, token.label);
      try {
        login(api, session, config.pin, token.label);
        checkMechanisms(api, token);
        const existing = findKeys(api, session, config.keyLabel);
        if (existing.length > 0) {
          throw new Error(`token "${token.label}" already holds a secret key labelled "${config.keyLabel}"; refusing to create another`);
        }
        const keyId = randomBytes(KEY_ID_LENGTH);
        const key = call(
          "C_GenerateKey",
          () =>
            api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, nonExtractableAes256Template(config.keyLabel, keyId)),
          `cannot generate the root key in token "${token.label}"`,
        );
        try {
          checkKey(api, session, key, config.keyLabel, token.label);
        } catch (err) {
          // The token did not honour the template; the key wraps nothing yet, so take it back.
          try {
            api.C_DestroyObject(session, key);
          } catch {
            // Reported below through the original error.
          }
          throw err;
        }
      } finally {
        closeQuietly(api, session);
      }
      return Pkcs11RootOfTrust.#connectNew(module, config);
    } catch (err) {
      module.release();
      throw err;
    }
  }

  /** Opens the one secret key labelled `keyLabel`; refuses none, several, or one that is extractable or not sensitive. */
  static async open(config: Pkcs11Config): Promise<Pkcs11RootOfTrust> {
    checkConfig(config);
    const module = SharedModule.acquire(config.module);
    try {
      return Pkcs11RootOfTrust.#connectNew(module, config);
    } catch (err) {
      module.release();
      throw err;
    }
  }

  static #connectNew(module: SharedModule, config: Pkcs11Config): Pkcs11RootOfTrust {
    const token = findToken(module, config);
    const { connection, keyId } = connect(module, token, config.pin, config.keyLabel, undefined);
    return new Pkcs11RootOfTrust(module, config, token.label, keyId, connection);
  }

  async wrap(plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    checkBuffer("plaintext", plaintext);
    checkBuffer("aad", aad);
    // The IV comes from node:crypto (OpenSSL's CSPRNG), not C_GenerateRandom: one token round trip
    // less, the same quality, and PKCS#11 v2.40 GCM takes the IV from the caller anyway. A fresh
    // random 96-bit IV per wrap stays safe for far more wraps (2^32) than a root key will make.
    const iv = randomBytes(GCM_IV_LENGTH);
    const sealed = this.#withSession((api, session, key) => {
      call("C_EncryptInit", () => api.C_EncryptInit(session, gcmMechanism(iv, aad), key));
      const out = Buffer.alloc(plaintext.length + GCM_TAG_LENGTH);
      // The binding passes an empty input as a null pointer, which tokens refuse; a multi-part
      // operation with no update part encrypts the empty string.
      const result =
        plaintext.length === 0
          ? call("C_EncryptFinal", () => api.C_EncryptFinal(session, out))
          : call("C_Encrypt", () => api.C_Encrypt(session, plaintext, out));
      if (result.length !== out.length) throw new Error(`the token returned ${result.length} bytes of AES-GCM output, expected ${out.length}`);
      return result;
    });
    return Buffer.concat([Buffer.of(FORMAT_PKCS11_AES_256_GCM), iv, sealed]);
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    this.#live();
    checkBuffer("wrapped", wrapped);
    checkBuffer("aad", aad);
    // One message for every failure: which check failed is no business of the caller's.
    if (wrapped.length < HEADER_LENGTH + GCM_TAG_LENGTH || wrapped[0] !== FORMAT_PKCS11_AES_256_GCM) throw unwrapFailed();
    const iv = wrapped.subarray(1, HEADER_LENGTH);
    const sealed = wrapped.subarray(HEADER_LENGTH);
    return this.#withSession((api, session, key) => {
      call("C_DecryptInit", () => api.C_DecryptInit(session, gcmMechanism(iv, aad), key));
      const out = Buffer.alloc(sealed.length);
      try {
        let result: Buffer;
        try {
          result = api.C_Decrypt(session, sealed, out);
        } catch (err) {
          const translated = translate("C_Decrypt", err);
          if (!(translated instanceof Pkcs11Error) || UNAVAILABLE.has(translated.ckr)) throw translated;
          // An authentication failure, unless the session itself went away: ask it.
          call("C_GetSessionInfo", () => api.C_GetSessionInfo(session));
          throw unwrapFailed();
        }
        if (result.length !== sealed.length - GCM_TAG_LENGTH) throw unwrapFailed();
        // Buffer.alloc never hands out a slice of the shared pool, so the caller's wipe reaches the only copy.
        const plaintext = Buffer.alloc(result.length);
        result.copy(plaintext);
        return plaintext;
      } finally {
        out.fill(0);
      }
    });
  }

  /** Closes the sessions and, with the last user of the module in the process, C_Finalize. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pin = "";
    await this.#module.settled();
    this.#drop();
    this.#module.release();
  }

  toJSON(): { description: string } {
    return { description: this.description };
  }

  [inspect.custom](): string {
    return `Pkcs11RootOfTrust { description: ${JSON.stringify(this.description)} }`;
  }

  #live(): void {
    if (this.#closed) throw new Error(`root of trust ${this.description} is closed`);
  }

  /**
   * Runs `fn` on an idle session (or a new one), all in one turn of the event loop. A session whose
   * operation failed is closed rather than reused: after a failure its operation state is unknown
   * (SoftHSM2 leaves some operations active). Unavailability closes everything and is reported as
   * RootOfTrustUnavailableError; the next call reconnects.
   */
  #withSession<T>(fn: (api: Api, session: Handle, key: Handle, connection: Connection) => T, readWrite = false): T {
    const api = this.#module.api;
    const connection = this.#ensureConnection();
    let session: Handle;
    try {
      // Read-write sessions (creating and destroying token objects) are rare: opened for the call only.
      session = (readWrite ? undefined : connection.idle.pop()) ?? openSession(api, connection.slot, readWrite);
    } catch (err) {
      throw this.#unavailable(err);
    }
    let result: T;
    try {
      result = fn(api, session, connection.key, connection);
    } catch (err) {
      closeQuietly(api, session);
      if (isUnavailable(err)) throw this.#unavailable(err);
      throw err;
    }
    if (!readWrite && connection.idle.length < MAX_IDLE_SESSIONS) connection.idle.push(session);
    else closeQuietly(api, session);
    return result;
  }

  // --- HSM-protected keys: token objects named by key id and version --------------------------

  #hsmGenerateAes256(keyId: string, version: number): Buffer {
    this.#live();
    const reference = newHsmKeyReference(keyId, version);
    const label = hsmLabel(reference);
    this.#withSession((api, session, _root, connection) => {
      const key = call(
        "C_GenerateKey",
        () =>
          api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, nonExtractableAes256Template(label, hsmObjectId(label))),
        `cannot generate HSM key ${label}`,
      );
      try {
        checkKey(api, session, key, label, this.description);
      } catch (err) {
        try {
          api.C_DestroyObject(session, key);
        } catch {
          // Reported below through the original error.
        }
        throw err;
      }
      connection.objects.set(label, key);
    }, true);
    return reference;
  }

  #hsmEncrypt(reference: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
    this.#live();
    checkBuffer("plaintext", plaintext);
    checkBuffer("aad", aad);
    if (!Buffer.isBuffer(iv) || iv.length !== GCM_IV_LENGTH) throw new RangeError(`"iv" must be ${GCM_IV_LENGTH} bytes`);
    const label = hsmLabel(reference);
    const sealed = this.#withSession((api, session, _root, connection) => {
      const key = this.#hsmObject(api, session, connection, label);
      call("C_EncryptInit", () => api.C_EncryptInit(session, gcmMechanism(iv, aad), key), `HSM key ${label}`);
      const out = Buffer.alloc(plaintext.length + GCM_TAG_LENGTH);
      // As in wrap(): an empty plaintext goes through C_EncryptFinal alone.
      const result =
        plaintext.length === 0
          ? call("C_EncryptFinal", () => api.C_EncryptFinal(session, out), `HSM key ${label}`)
          : call("C_Encrypt", () => api.C_Encrypt(session, plaintext, out), `HSM key ${label}`);
      if (result.length !== out.length) throw new Error(`the token returned ${result.length} bytes of AES-GCM output, expected ${out.length}`);
      return Buffer.from(result);
    });
    return { ciphertext: sealed.subarray(0, sealed.length - GCM_TAG_LENGTH), tag: sealed.subarray(sealed.length - GCM_TAG_LENGTH) };
  }

  #hsmDecrypt(reference: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
    this.#live();
    checkBuffer("ciphertext", ciphertext);
    checkBuffer("aad", aad);
    if (!Buffer.isBuffer(iv) || iv.length !== GCM_IV_LENGTH || !Buffer.isBuffer(tag) || tag.length !== GCM_TAG_LENGTH) throw unwrapFailed();
    const label = hsmLabel(reference);
    const sealed = Buffer.concat([ciphertext, tag]);
    return this.#withSession((api, session, _root, connection) => {
      const key = this.#hsmObject(api, session, connection, label);
      call("C_DecryptInit", () => api.C_DecryptInit(session, gcmMechanism(iv, aad), key), `HSM key ${label}`);
      const out = Buffer.alloc(sealed.length);
      try {
        let result: Buffer;
        try {
          result = api.C_Decrypt(session, sealed, out);
        } catch (err) {
          const translated = translate("C_Decrypt", err, `HSM key ${label}`);
          if (!(translated instanceof Pkcs11Error) || UNAVAILABLE.has(translated.ckr)) throw translated;
          // A tag mismatch, unless the session itself went away (as in unwrap()).
          call("C_GetSessionInfo", () => api.C_GetSessionInfo(session));
          throw unwrapFailed();
        }
        if (result.length !== ciphertext.length) throw unwrapFailed();
        const plaintext = Buffer.alloc(result.length);
        result.copy(plaintext);
        return plaintext;
      } finally {
        out.fill(0);
      }
    });
  }

  async #hsmGenerateKeyPair(spec: HsmKeyPairSpec, purpose: "sign" | "decrypt", keyId: string, version: number): Promise<{ reference: Buffer; publicKey: Buffer }> {
    this.#live();
    const shape = KEY_PAIR_SHAPES[spec];
    if (shape === undefined) throw new TypeError(`"spec" ${String(spec)} is not a key pair the token makes`);
    if (purpose === "decrypt" && shape.kind !== "RSA") throw new TypeError(`"purpose" decrypt needs an RSA key`);
    const reference = newHsmKeyReference(keyId, version);
    const label = hsmLabel(reference);
    const id = hsmObjectId(label);
    // The public half is a session object: it goes with the session, the caller keeps its SPKI.
    const publicTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_VERIFY, value: purpose === "sign" },
      { type: pkcs11js.CKA_ENCRYPT, value: purpose === "decrypt" },
      ...(shape.kind === "RSA"
        ? [
            { type: pkcs11js.CKA_MODULUS_BITS, value: shape.bits },
            { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ]
        : [{ type: pkcs11js.CKA_EC_PARAMS, value: shape.params }]),
    ];
    const privateTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: purpose === "sign" },
      { type: pkcs11js.CKA_DECRYPT, value: purpose === "decrypt" },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    const mechanism = shape.kind === "RSA" ? pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN;
    const publicKey = await this.#module.offThread(async () => {
      this.#live();
      const api = this.#module.api;
      const connection = this.#ensureConnection();
      let session: Handle;
      try {
        // A read-write session of its own, opened for this call only, as #withSession's.
        session = openSession(api, connection.slot, true);
      } catch (err) {
        throw this.#unavailable(err);
      }
      try {
        let pair: pkcs11js.KeyPair;
        try {
          pair = await api.C_GenerateKeyPairAsync(session, { mechanism }, publicTemplate, privateTemplate);
        } catch (err) {
          throw translate("C_GenerateKeyPair", err, `cannot generate HSM key pair ${label}`);
        }
        try {
          const flags = call("C_GetAttributeValue", () =>
            api.C_GetAttributeValue(session, pair.privateKey, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_TOKEN }]),
          );
          const flag = (type: number) => bool(flags.find((a) => a.type === type)?.value ?? Buffer.alloc(0));
          if (!flag(pkcs11js.CKA_SENSITIVE) || flag(pkcs11js.CKA_EXTRACTABLE) || !flag(pkcs11js.CKA_TOKEN)) {
            throw new Error(`the token did not make HSM key pair ${label} a sensitive, non-extractable token object`);
          }
          const spki = spkiOf(api, session, pair.publicKey, shape);
          connection.objects.set(label, pair.privateKey);
          return spki;
        } catch (err) {
          try {
            api.C_DestroyObject(session, pair.privateKey);
          } catch {
            // Reported below through the original error.
          }
          throw err;
        } finally {
          try {
            api.C_DestroyObject(session, pair.publicKey);
          } catch {
            // A session object; it goes with the session anyway.
          }
        }
      } catch (err) {
        if (isUnavailable(err)) throw this.#unavailable(err);
        throw err;
      } finally {
        closeQuietly(api, session);
      }
    });
    return { reference, publicKey };
  }

  #hsmSign(reference: Buffer, algorithm: HsmSignatureAlgorithm, digest: Buffer): Buffer {
    this.#live();
    checkBuffer("digest", digest);
    const label = hsmLabel(reference);
    let mechanism: pkcs11js.Mechanism;
    let input = digest;
    if (algorithm === "RSA_PKCS1_SHA_256" || algorithm === "RSA_PSS_SHA_256") {
      if (digest.length !== 32) throw new RangeError(`"digest" must be a 32-byte SHA-256 digest for ${algorithm}`);
      if (algorithm === "RSA_PKCS1_SHA_256") {
        // CKM_RSA_PKCS signs what it is given: the DigestInfo of RFC 8017 §9.2 around the digest.
        mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS };
        input = Buffer.concat([SHA256_DIGEST_INFO, digest]);
      } else {
        const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, saltLen: 32 };
        mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS_PSS, parameter };
      }
    } else if (algorithm === "ECDSA") {
      if (digest.length !== 32 && digest.length !== 48) throw new RangeError(`"digest" must be a SHA-256 or SHA-384 digest for ECDSA`);
      mechanism = { mechanism: pkcs11js.CKM_ECDSA };
    } else {
      throw new TypeError(`"algorithm" ${String(algorithm)} is not a signature algorithm of the token`);
    }
    return this.#withSession((api, session, _root, connection) => {
      const key = this.#hsmObject(api, session, connection, label);
      call("C_SignInit", () => api.C_SignInit(session, mechanism, key), `HSM key ${label}`);
      const signature = Buffer.from(call("C_Sign", () => api.C_Sign(session, input, Buffer.alloc(MAX_SIGNATURE_BYTES)), `HSM key ${label}`));
      // PKCS#11 gives ECDSA as r || s, each as long as the order; the API speaks DER (RFC 3279).
      return algorithm === "ECDSA" ? ecdsaRawToDer(signature) : signature;
    });
  }

  #hsmRsaOaepDecrypt(reference: Buffer, hash: "sha1" | "sha256", ciphertext: Buffer): Buffer {
    this.#live();
    checkBuffer("ciphertext", ciphertext);
    const label = hsmLabel(reference);
    const parameter: pkcs11js.RsaOAEP = {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === "sha1" ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
      mgf: hash === "sha1" ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
      source: CKZ_DATA_SPECIFIED,
    };
    return this.#withSession((api, session, _root, connection) => {
      const key = this.#hsmObject(api, session, connection, label);
      try {
        call("C_DecryptInit", () => api.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter }, key), `HSM key ${label}`);
      } catch (err) {
        if (err instanceof Pkcs11Error && REFUSED_PARAMETERS.has(err.ckr)) {
          throw new HsmUnsupportedError(`${this.description} does not offer RSAES-OAEP with ${hash.toUpperCase()} (C_DecryptInit returned ${err.ckr})`, { cause: err });
        }
        throw err;
      }
      const out = Buffer.alloc(MAX_SIGNATURE_BYTES);
      try {
        let result: Buffer;
        try {
          result = api.C_Decrypt(session, ciphertext, out);
        } catch (err) {
          const translated = translate("C_Decrypt", err, `HSM key ${label}`);
          if (!(translated instanceof Pkcs11Error) || UNAVAILABLE.has(translated.ckr)) throw translated;
          call("C_GetSessionInfo", () => api.C_GetSessionInfo(session));
          throw new RootOfTrustError("the ciphertext does not decrypt under the HSM key");
        }
        const plaintext = Buffer.alloc(result.length);
        result.copy(plaintext);
        return plaintext;
      } finally {
        out.fill(0);
      }
    });
  }

  #hsmDestroy(reference: Buffer): number {
    this.#live();
    const label = hsmLabel(reference);
    return this.#withSession((api, session, _root, connection) => {
      const found = findObjects(api, session, label);
      for (const object of found) call("C_DestroyObject", () => api.C_DestroyObject(session, object), `cannot destroy HSM key ${label}`);
      connection.objects.delete(label);
      return found.length;
    }, true);
  }

  /** The handle of the key object labelled `label`, found once per connection. */
  #hsmObject(api: Api, session: Handle, connection: Connection, label: string): Handle {
    const cached = connection.objects.get(label);
    if (cached !== undefined) return cached;
    const found = findObjects(api, session, label, hsmObjectId(label));
    if (found.length === 0) {
      // SoftHSM2 finds nothing on a token whose storage went away: ask the root key whether the
      // token is still there, so that an absent token is reported as unavailable, not as a lost key.
      call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, connection.key, [{ type: pkcs11js.CKA_KEY_TYPE }]));
    }
    if (found.length !== 1) throw new HsmKeyMissingError(`${found.length === 0 ? "no" : found.length} key object${found.length === 1 ? "" : "s"} labelled "${label}" on ${this.description}`);
    connection.objects.set(label, found[0]!);
    return found[0]!;
  }

  #ensureConnection(): Connection {
    const module = this.#module;
    const current = this.#connection;
    if (current !== undefined && current.generation === module.generation && module.initialized) return current;
    // Handles from an earlier generation are dead or belong to someone else now: forget, never close.
    this.#connection = undefined;
    try {
      if (!module.initialized) {
        if (!module.reinitialize()) throw new RootOfTrustUnavailableError(`root of trust ${this.description} is unavailable: the PKCS#11 module is not initialised; retrying shortly`);
        return (this.#connection = this.#reconnect());
      }
      try {
        return (this.#connection = this.#reconnect());
      } catch (err) {
        // A token that went away may only be seen again after the module rescans its slots.
        if (!module.reinitialize()) throw err;
        return (this.#connection = this.#reconnect());
      }
    } catch (err) {
      if (err instanceof RootOfTrustUnavailableError) throw err;
      throw this.#unavailable(err);
    }
  }

  #reconnect(): Connection {
    const token = findToken(this.#module, { tokenLabel: this.#config.tokenLabel, slot: this.#config.slot });
    if (`pkcs11:${token.label}/${this.#config.keyLabel}` !== this.description) throw new Error(`the token in the configured slot is now labelled "${token.label}"`);
    return connect(this.#module, token, this.#pin, this.#config.keyLabel, this.#keyId).connection;
  }

  /** Forgets the connection after a failure or on close, closing its sessions if they are still ours. */
  #drop(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection === undefined || connection.generation !== this.#module.generation || !this.#module.initialized) return;
    for (const session of connection.idle) closeQuietly(this.#module.api, session);
    closeQuietly(this.#module.api, connection.anchor);
  }

  #unavailable(cause: unknown): RootOfTrustUnavailableError {
    this.#drop();
    const reason = cause instanceof Error ? cause.message : "unknown failure";
    return new RootOfTrustUnavailableError(`root of trust ${this.description} is unavailable (${reason})`, { cause });
  }
}

// --- connecting: token, session, login, key ---------------------------------------------------

function checkConfig(config: Pkcs11Config): void {
  if (typeof config !== "object" || config === null) throw new TypeError(`"config" must be an object`);
  if (typeof config.module !== "string" || config.module.length === 0) throw new TypeError(`"module" must be the path of a PKCS#11 module`);
  if (config.tokenLabel !== undefined) {
    if (typeof config.tokenLabel !== "string" || trimLabel(config.tokenLabel).length === 0) throw new TypeError(`"tokenLabel" must be a non-empty string`);
    if (Buffer.byteLength(config.tokenLabel, "utf8") > 32) throw new RangeError(`"tokenLabel" must be at most 32 bytes in UTF-8, as PKCS#11 token labels are`);
  }
  if (config.slot !== undefined && (!Number.isSafeInteger(config.slot) || config.slot < 0)) throw new RangeError(`"slot" must be a non-negative integer`);
  if (config.tokenLabel === undefined && config.slot === undefined) throw new TypeError(`one of "tokenLabel" and "slot" is required`);
  if (typeof config.pin !== "string" || config.pin.length === 0) throw new TypeError(`"pin" must be a non-empty string`);
  if (typeof config.keyLabel !== "string" || config.keyLabel.length === 0) throw new TypeError(`"keyLabel" must be a non-empty string`);
}

function findToken(module: SharedModule, config: { tokenLabel?: string | undefined; slot?: number | undefined }): Token {
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

function openSession(api: Api, slot: Handle, readWrite: boolean, tokenLabel?: string): Handle {
  const flags = pkcs11js.CKF_SERIAL_SESSION | (readWrite ? pkcs11js.CKF_RW_SESSION : 0);
  return call("C_OpenSession", () => api.C_OpenSession(slot, flags), tokenLabel === undefined ? undefined : `cannot open a session with token "${tokenLabel}"`);
}

function login(api: Api, session: Handle, pin: string, tokenLabel: string): void {
  try {
    api.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    // Login state belongs to the application and token, not the session: another session may have logged in.
    const translated = translate("C_Login", err, `cannot log in to token "${tokenLabel}"`);
    if (translated instanceof Pkcs11Error && translated.ckr === "CKR_USER_ALREADY_LOGGED_IN") return;
    throw translated;
  }
}

function checkMechanisms(api: Api, token: Token): void {
  const mechanisms = call("C_GetMechanismList", () => api.C_GetMechanismList(token.slot), `cannot list the mechanisms of token "${token.label}"`);
  if (!mechanisms.includes(pkcs11js.CKM_AES_GCM)) {
    throw new Error(`token "${token.label}" does not offer CKM_AES_GCM, which the PKCS#11 root of trust requires`);
  }
  const info = call("C_GetMechanismInfo", () => api.C_GetMechanismInfo(token.slot, pkcs11js.CKM_AES_GCM), `cannot describe CKM_AES_GCM on token "${token.label}"`);
  const needed = pkcs11js.CKF_ENCRYPT | pkcs11js.CKF_DECRYPT;
  if ((info.flags & needed) !== needed) throw new Error(`token "${token.label}" offers CKM_AES_GCM but not for both encryption and decryption`);
}

function findKeys(api: Api, session: Handle, keyLabel: string, keyId?: Buffer): Handle[] {
  const template: pkcs11js.Template = [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_LABEL, value: keyLabel },
  ];
  if (keyId !== undefined) template.push({ type: pkcs11js.CKA_ID, value: keyId });
  call("C_FindObjectsInit", () => api.C_FindObjectsInit(session, template));
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

/** Refuses a key that is not a sensitive, non-extractable AES-256 encryption key; returns its CKA_ID. */
function checkKey(api: Api, session: Handle, key: Handle, keyLabel: string, tokenLabel: string): Buffer {
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
function connect(module: SharedModule, token: Token, pin: string, keyLabel: string, keyId: Buffer | undefined): { connection: Connection; keyId: Buffer } {
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

function unwrapFailed(): RootOfTrustError {
  return new RootOfTrustError("the wrapped value could not be unwrapped");
}

function checkBuffer(name: string, value: unknown): void {
  if (!Buffer.isBuffer(value)) throw new TypeError(`"${name}" must be a Buffer`);
}

// --- HSM-protected key references -------------------------------------------------------------

/** An HSM-protected key's token object is not in the token (destroyed, or a token restored without it). */
export class HsmKeyMissingError extends Error {
  override readonly name = "HsmKeyMissingError";
}

// A reference is what the store keeps for an HSM key version: 'H' (0x48), format 0x01, then the
// object's CKA_LABEL in UTF-8, `tresor-cmk/<key id>/v<version>/<16 hex digits>`. Never material.
// The random suffix makes every generation a distinct object: two nodes rotating one key at once
// each make their own, the loser destroys only its own, and a leftover of a crash between
// generating and committing never blocks a retry (it is an orphan, listed by its label).
const HSM_REFERENCE_MAGIC = 0x48;
const HSM_REFERENCE_FORMAT = 0x01;
const HSM_LABEL_PREFIX = "tresor-cmk/";

function newHsmKeyReference(keyId: string, version: number): Buffer {
  if (typeof keyId !== "string" || !/^[A-Za-z0-9-]{1,64}$/.test(keyId)) throw new TypeError(`"keyId" must be a key id`);
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`"version" must be a positive integer`);
  const label = `${HSM_LABEL_PREFIX}${keyId}/v${version}/${randomBytes(8).toString("hex")}`;
  return Buffer.concat([Buffer.of(HSM_REFERENCE_MAGIC, HSM_REFERENCE_FORMAT), Buffer.from(label, "utf8")]);
}

function hsmReferenceBelongsTo(reference: Buffer, keyId: string, version: number): boolean {
  try {
    const label = hsmLabel(reference);
    const prefix = `${HSM_LABEL_PREFIX}${keyId}/v${version}/`;
    return label.startsWith(prefix) && /^[0-9a-f]{16}$/.test(label.slice(prefix.length));
  } catch {
    return false;
  }
}

function hsmLabel(reference: Buffer): string {
  if (!Buffer.isBuffer(reference) || reference.length < 3 || reference[0] !== HSM_REFERENCE_MAGIC || reference[1] !== HSM_REFERENCE_FORMAT) {
    throw new TypeError(`"reference" is not an HSM key reference`);
  }
  return reference.subarray(2).toString("utf8");
}

/** CKA_ID of an HSM key object: the first 16 bytes of SHA-256 of its label, so another object given the label does not match. */
function hsmObjectId(label: string): Buffer {
  return createHash("sha256").update(`tresor/hsm-key-id/v1\0${label}`).digest().subarray(0, KEY_ID_LENGTH);
}

// Key pairs the token makes for HSM keys: RSA by modulus size, EC by named curve (CKA_EC_PARAMS is
// the curve's DER OID).
type KeyPairShape = { kind: "RSA"; bits: number } | { kind: "EC"; params: Buffer; crv: "P-256" | "P-384"; size: number };
const KEY_PAIR_SHAPES: Readonly<Record<HsmKeyPairSpec, KeyPairShape>> = {
  RSA_2048: { kind: "RSA", bits: 2048 },
  RSA_3072: { kind: "RSA", bits: 3072 },
  RSA_4096: { kind: "RSA", bits: 4096 },
  ECC_P256: { kind: "EC", params: Buffer.from("06082a8648ce3d030107", "hex"), crv: "P-256", size: 32 },
  ECC_P384: { kind: "EC", params: Buffer.from("06052b81040022", "hex"), crv: "P-384", size: 48 },
};
/** RSA-4096 signatures and decryption outputs are 512 bytes; ECDSA's are far shorter. */
const MAX_SIGNATURE_BYTES = 512;
/** What a token answers for a mechanism, or mechanism parameters, it does not offer. */
const REFUSED_PARAMETERS = new Set(["CKR_ARGUMENTS_BAD", "CKR_MECHANISM_INVALID", "CKR_MECHANISM_PARAM_INVALID"]);
/** PKCS#11's CKZ_DATA_SPECIFIED (OAEP label source), which pkcs11js does not export. */
const CKZ_DATA_SPECIFIED = 0x00000001;
const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

/** The public key object's SubjectPublicKeyInfo (DER), built through node:crypto from its attributes. */
function spkiOf(api: Api, session: Handle, publicKey: Handle, shape: KeyPairShape): Buffer {
  const b64url = (b: Buffer) => b.toString("base64url");
  if (shape.kind === "RSA") {
    const attrs = call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]));
    const n = attrs.find((a) => a.type === pkcs11js.CKA_MODULUS)?.value;
    const e = attrs.find((a) => a.type === pkcs11js.CKA_PUBLIC_EXPONENT)?.value;
    if (!Buffer.isBuffer(n) || !Buffer.isBuffer(e) || n.length * 8 !== shape.bits) throw new Error("the token returned an RSA public key of another size");
    return createPublicKey({ key: { kty: "RSA", n: b64url(n), e: b64url(e) }, format: "jwk" }).export({ type: "spki", format: "der" });
  }
  const attrs = call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }]));
  let point = attrs[0]?.value;
  if (!Buffer.isBuffer(point)) throw new Error("the token returned no EC point");
  // CKA_EC_POINT is DER OCTET STRING around the uncompressed point (some tokens give the bare point).
  const bare = 1 + 2 * shape.size;
  if (point.length !== bare && point[0] === 0x04 && point.length > bare) point = point.subarray(point.length - bare);
  if (point.length !== bare || point[0] !== 0x04) throw new Error("the token returned an EC point that is not uncompressed");
  const x = point.subarray(1, 1 + shape.size);
  const y = point.subarray(1 + shape.size);
  return createPublicKey({ key: { kty: "EC", crv: shape.crv, x: b64url(x), y: b64url(y) }, format: "jwk" }).export({ type: "spki", format: "der" });
}

/** r || s (each half of the input) as the DER SEQUENCE { INTEGER r, INTEGER s } of RFC 3279. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new RangeError(`an ECDSA signature r || s has an even, non-zero length, got ${raw.length}`);
  const integer = (bytes: Buffer): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let body = bytes.subarray(i);
    // A set high bit would make the INTEGER negative: prefix a zero byte.
    if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.of(0), body]);
    return Buffer.concat([Buffer.of(0x02), derLength(body.length), body]);
  };
  const half = raw.length / 2;
  const content = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.of(0x30), derLength(content.length), content]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  if (length < 0x100) return Buffer.of(0x81, length);
  return Buffer.of(0x82, length >> 8, length & 0xff);
}

function findObjects(api: Api, session: Handle, label: string, id?: Buffer): Handle[] {
  const template: pkcs11js.Template = [{ type: pkcs11js.CKA_LABEL, value: label }];
  if (id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: id });
  call("C_FindObjectsInit", () => api.C_FindObjectsInit(session, template));
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

// --- the PIN, for the CLI ---------------------------------------------------------------------

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
