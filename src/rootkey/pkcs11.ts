// A root of trust whose AES-256 key never leaves a PKCS#11 token (an HSM; SoftHSM2 in tests). Wrapped
// values are AES-256-GCM computed inside the token, laid out as 0x02 (format) || iv (12) ||
// ciphertext || tag (16); 0x02 so they are never mistaken for the file root of trust's 0x01 values.
//
// pkcs11js calls are synchronous (measured with SoftHSM2: ~40 µs for a 32-byte wrap, ~220 µs for
// 64 KiB). They block the event loop that long, but every operation runs from C_*Init to its end in
// one turn of the loop, so no two operations ever share a session and no call is in flight when a
// session or the module is reset. The `*Async` variants (libuv thread pool) reached only about 60%
// of the synchronous rate with SoftHSM2, even over several sessions.

// The module and sessions are in pkcs11-token.ts, errors in pkcs11-errors.ts, HSM-protected keys
// in pkcs11-hsm-keys.ts and the PIN in pkcs11-pin.ts; this file is the root of trust itself and
// what importers use.

import { inspect } from "node:util";
import pkcs11js from "pkcs11js";
import { GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { randomBytes } from "../crypto/random.js";
import { Pkcs11Error, UNAVAILABLE, call, checkBuffer, isUnavailable, translate, unwrapFailed } from "./pkcs11-errors.js";
import { pkcs11HsmKeys } from "./pkcs11-hsm-keys.js";
import {
  KEY_ID_LENGTH,
  SharedModule,
  checkKey,
  checkMechanisms,
  closeQuietly,
  connect,
  findKeys,
  findToken,
  gcmMechanism,
  login,
  nonExtractableAes256Template,
  openSession,
  trimLabel,
  type Api,
  type Connection,
  type Handle,
} from "./pkcs11-token.js";
import { RootOfTrustUnavailableError, type HsmKeys, type RootOfTrust } from "./root-of-trust.js";

export { Pkcs11Error } from "./pkcs11-errors.js";
export { HsmKeyMissingError, ecdsaRawToDer } from "./pkcs11-hsm-keys.js";
export { readPin } from "./pkcs11-pin.js";

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
const HEADER_LENGTH = 1 + GCM_IV_LENGTH;
const MAX_IDLE_SESSIONS = 4;

// --- the root of trust -----------------------------------------------------------------------

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
    this.hsmKeys = pkcs11HsmKeys({
      description: this.description,
      module,
      live: () => this.#live(),
      withSession: (fn, readWrite) => this.#withSession(fn, readWrite),
      ensureConnection: () => this.#ensureConnection(),
      unavailable: (cause) => this.#unavailable(cause),
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

