// What every key action shares: the ports, the key materials, and the one path from a key id to a
// key the caller may act on (load, authorize, check state). The actions live in one file per
// concern (keys.ts, crypto.ts, asymmetric.ts, import.ts, rotation.ts, jobs.ts) over this context.

import type { Auditor } from "../audit/writer.js";
import { ThreadBusyError } from "../crypto/job-thread.js";
import { BlobFormatError, type EncryptionContext } from "../keys/blob.js";
import type { KeyRecord, KeySpec, KmipObjectType } from "../keys/key.js";
import { KMS_POLICY_ACTIONS_OF } from "../policy/catalog.js";
import { KMIP_LIFECYCLE_ONLY, ruleFor, type KeyAction } from "../keys/lifecycle.js";
import { MaterialError } from "../material/material.js";
import type { KeyMaterials } from "../material/materials.js";
import type { RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store, StoreOperations } from "../store/store.js";
import type { AccessControl } from "./access-control.js";
import { keyResourceNames, type Caller } from "./permissions.js";
import { unixSeconds, type Clock } from "./clock.js";
import { KmsError, needs } from "./errors.js";
import { isPublicObject } from "./kmip-parse.js";
import { auditedTransaction, AUDIT_FLAGS } from "./request-audit.js";

/**
 * The service's log port (pino's Logger fits it). Fields name keys, actions and states only: never
 * key material, plaintext, ciphertext or request parameters.
 */
export interface ServiceLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const DAY_SECONDS = 86_400;
export const USER_OWNER = "user";
/** One answer for every way a ciphertext can be wrong, so the error is no oracle for which check failed. */
export const INVALID_CIPHERTEXT =
  `"CiphertextBlob" is not a ciphertext this service can decrypt: it is malformed or altered, its key is unknown, or the encryption context differs`;

/** Batch actions whose policies are checked per key under their own name. */
export type BatchAction = "EnableKeys" | "DisableKeys" | "DescribeKeys";
/** The policy actions a key action needs, where they are not just its own name (the action catalogue's). */
const CAM_ACTIONS_OF: Partial<Record<KeyAction | BatchAction, readonly string[]>> = KMS_POLICY_ACTIONS_OF;

export interface ServiceContextOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  clock: Clock;
  region: string;
  defaultKeySpec: KeySpec;
  cmkLimit: number;
  materials: KeyMaterials;
  access: AccessControl;
  auditor: Auditor<StoreOperations> | undefined;
  logger: ServiceLogger;
}

export class ServiceContext {
  readonly store: Store;
  readonly root: RootOfTrust;
  readonly clock: Clock;
  readonly region: string;
  readonly defaultKeySpec: KeySpec;
  readonly cmkLimit: number;
  readonly materials: KeyMaterials;
  readonly access: AccessControl;
  readonly auditor: Auditor<StoreOperations> | undefined;
  readonly logger: ServiceLogger;

  constructor(options: ServiceContextOptions) {
    this.store = options.store;
    this.root = options.rootOfTrust;
    this.clock = options.clock;
    this.region = options.region;
    this.defaultKeySpec = options.defaultKeySpec;
    this.cmkLimit = options.cmkLimit;
    this.materials = options.materials;
    this.access = options.access;
    this.auditor = options.auditor;
    this.logger = options.logger;
  }

  /** Unix seconds. */
  now(): number {
    return unixSeconds(this.clock);
  }

  /**
   * The key `keyId` of the caller's account, after the caller's policies allowed `action` on it and
   * its state allows `action`. Another account's key answers as a missing one would.
   * `batch` names the batch action (EnableKeys, DisableKeys) that policies are checked for, when it is one.
   */
  async keyFor(
    store: StoreOperations,
    caller: Caller,
    action: KeyAction,
    keyId: string,
    options: { context?: EncryptionContext; batch?: BatchAction } = {},
  ): Promise<KeyRecord> {
    const key = await store.getKey(keyId);
    needs(key && key.creatorUin === caller.uin, "CmkNotFound", `key ${keyId} does not exist`);
    this.authorize(caller, options.batch ?? action, key, options.context);
    if (key.kmip) checkKmipClass(action, key.keyId, key.kmip.objectType);
    this.checkState(action, key, caller);
    return key;
  }

  /**
   * A ciphertext decoded with `decode`, and the key it names, after the caller's policies allowed
   * `action` on it and its state allows `action`. A malformed ciphertext and a key unknown to the
   * caller's account answer the one INVALID_CIPHERTEXT, as every later check of the ciphertext does.
   */
  async ciphertextKeyFor<P extends { keyId: string }>(
    caller: Caller,
    action: KeyAction,
    bytes: Buffer,
    decode: (bytes: Buffer) => P,
    context?: EncryptionContext,
  ): Promise<{ parsed: P; key: KeyRecord }> {
    let parsed: P;
    try {
      parsed = decode(bytes);
    } catch (e) {
      if (e instanceof BlobFormatError) throw new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT);
      throw e;
    }
    const key = await this.store.getKey(parsed.keyId);
    needs(key && key.creatorUin === caller.uin, "InvalidCiphertext", INVALID_CIPHERTEXT);
    this.authorize(caller, action, key, context);
    this.checkState(action, key, caller);
    return { parsed, key };
  }

  /** keyFor, and the key must be a symmetric (ENCRYPT_DECRYPT) one. */
  async symmetricKeyFor(caller: Caller, action: KeyAction, keyId: string, context: EncryptionContext): Promise<KeyRecord> {
    const key = await this.keyFor(this.store, caller, action, keyId, { context });
    needs(key.keyUsage === "ENCRYPT_DECRYPT", "InvalidKeyUsage", `key ${keyId} has usage ${key.keyUsage}: ${action} needs an ENCRYPT_DECRYPT key`);
    return key;
  }

  /** The one check of a caller's policies for actions on a key. */
  authorize(caller: Caller, action: KeyAction | BatchAction, key: KeyRecord, context?: EncryptionContext): void {
    caller.audit?.addResource(key.keyId);
    const resources = keyResourceNames(this.region, key);
    const facts = { resourceTags: Object.fromEntries(key.tags.map((t) => [t.key, t.value])), ...(context ? { encryptionContext: context } : {}) };
    for (const name of CAM_ACTIONS_OF[action] ?? [action]) caller.permissions.require(`kms:${name}`, resources, facts);
  }

  /** checkKeyState, and a warning when someone tries to use a key that is waiting to be deleted. */
  checkState(action: KeyAction, key: KeyRecord, caller?: Caller): void {
    if (key.state === "PendingDelete") caller?.audit?.flags.add(AUDIT_FLAGS.pendingDeleteKeyUse);
    if (key.state === "PendingDelete" && ruleFor(action, key.state) !== "allow") {
      this.logger.warn({ keyId: key.keyId, action, state: key.state, deletionDate: key.deletionDate }, "refused a use of a key pending deletion");
    }
    checkKeyState(action, key);
  }

  /** A state change of a request, committed with its audit record. */
  transaction<T>(caller: Caller, fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    return auditedTransaction(this.store, this.auditor, caller.audit, fn);
  }
}

/** What the Tencent and AWS APIs may not do to a KMIP object: change its lifecycle, or use a private key it does not hold. */
function checkKmipClass(action: KeyAction, keyId: string, objectType: KmipObjectType): void {
  needs(
    !KMIP_LIFECYCLE_ONLY.includes(action),
    "UnsupportedOperation",
    `key ${keyId} is a KMIP object: its state and material follow KMIP's lifecycle (KMIP Activate, Revoke, ReKey, Destroy), so ${action} is refused`,
  );
  const needsPrivate = action === "SignByAsymmetricKey" || action === "AsymmetricRsaDecrypt" || action === "AsymmetricSm2Decrypt";
  needs(!needsPrivate || !isPublicObject(objectType), "InvalidKeyUsage", `key ${keyId} is a KMIP ${objectType}: it holds no private key for ${action}`);
}

/** Throws the lifecycle table's error unless `action` is allowed in the key's current state. */
export function checkKeyState(action: KeyAction, key: Pick<KeyRecord, "keyId" | "state">): void {
  const rule = ruleFor(action, key.state);
  if (rule !== "allow") throw new KmsError(rule, `key ${key.keyId} is ${key.state}: ${action} is not allowed in that state`);
}

/**
 * The one translation of the key-material layer's failures into the service's errors. `undecryptable`:
 * the error of a ciphertext that does not decrypt (none: the failure is internal); `missing`: the
 * error of a version the store does not hold.
 */
export async function usingMaterial<T>(run: () => Promise<T>, errors: { undecryptable?: () => KmsError; missing: (message: string) => KmsError }): Promise<T> {
  try {
    return await run();
  } catch (e) {
    // A worker thread (SM2, ECMR, post-quantum) already holds as many jobs as it takes.
    if (e instanceof ThreadBusyError) throw new KmsError("RequestLimitExceeded", e.message);
    if (!(e instanceof MaterialError)) throw e;
    switch (e.failure) {
      case "Undecryptable":
        throw errors.undecryptable?.() ?? e;
      case "NoSuchVersion":
        throw errors.missing(e.message);
      case "Unsupported":
        throw new KmsError("UnsupportedOperation", e.message);
      case "Inconsistent":
        throw new KmsError("InternalError", e.message);
    }
  }
}

/** Material errors of symmetric ciphertexts: every failure reads as the one InvalidCiphertext. */
export const CIPHERTEXT_ERRORS = {
  undecryptable: () => new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT),
  missing: () => new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT),
} as const;

/** Material errors where the key's current version must exist: its absence is internal. */
export const CURRENT_VERSION_ERRORS = { missing: (message: string) => new KmsError("InternalError", message) } as const;
