// KmsService: one method per action, protocol-neutral. Inputs arrive validated by the protocol
// adapter; this layer enforces the key lifecycle, owns key material and talks to the ports.

import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { AUDIT_SECRET_NAMES } from "../audit/keys.js";
import { AEADS, type AeadKey } from "../crypto/aead.js";
import { CryptoError } from "../crypto/errors.js";
import { randomBytes } from "../crypto/random.js";
import { BlobFormatError, blobAad, decodeBlob, encodeBlob, encodeBlobHeader, type EncryptionContext } from "../keys/blob.js";
import {
  AsymmetricPrivateKey,
  PublicKeyError,
  generateKeyPair,
  publicKeyEncrypter,
  verifySignature,
  type MessageType,
  type PublicKeyWrapAlgorithm,
} from "../keys/asymmetric.js";
import {
  KEY_LIFECYCLE_DEFAULTS,
  KEY_USAGES,
  SYMMETRIC_KEY_SPECS,
  type AsymmetricKeyUsage,
  type ImportTokenRecord,
  type KeyOrigin,
  type KeyRecord,
  type KeySpec,
  type KeyState,
  type KeyUsage,
  type KeyVersionRecord,
  type ProtectionLevel,
  type SymmetricKeySpec,
  type Tag,
} from "../keys/key.js";
import { ruleFor, stateAfter, type KeyAction } from "../keys/lifecycle.js";
import {
  ASYMMETRIC_SPECS,
  ASYMMETRIC_USAGES,
  SYMMETRIC_SPECS,
  isAsymmetricUsage,
  isSymmetricSpec,
  hsmSupports,
  type AsymmetricDecryptAlgorithm,
  type SigningAlgorithm,
  type UsageInfo,
} from "../keys/specs.js";
import {
  HsmUnsupportedError,
  RootOfTrustError,
  importTokenAad,
  keyMaterialAad,
  type HsmKeyPairSpec,
  type HsmKeys,
  type RootOfTrust,
} from "../rootkey/root-of-trust.js";
import { StoreConflictError, type KeyListQuery, type Store, type StoreOperations } from "../store/store.js";
import { unixSeconds, type Clock } from "./clock.js";
import { KmsError, needs } from "./errors.js";
import { ACCOUNT_RESOURCE, AccessControl, keyResourceNames, ROLE_SESSION_SECRET, type Caller } from "./access-control.js";
import { ServiceSecret } from "./service-secret.js";
import { auditedInsert, auditedTransaction, AUDIT_FLAGS, type RequestAudit } from "./request-audit.js";
import { AuditQueries } from "./audit-query.js";
import type { Auditor } from "../audit/writer.js";
import { MaterialCache } from "./material-cache.js";
import { HealthCheck, type HealthReport } from "./availability.js";

export interface KmsServiceOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  /** Where CMKs of ProtectionLevel HSM live; the root of trust's own (pkcs11) unless given. None: such keys are refused. */
  hsmKeys?: HsmKeys;
  clock: Clock;
  region: string;
  /** Spec of new symmetric CMKs when CreateKey names none. */
  defaultKeySpec: KeySpec;
  /** Most CMKs the account may hold. */
  cmkLimit: number;
  /** Bounds of each cache of prepared keys (symmetric AEAD keys; asymmetric private keys). */
  materialCache?: { maxEntries: number; ttlMs: number };
  /** How long found access keys and principals' policies are remembered (default 1000 ms; 0 looks them up on every request). */
  accessKeyCacheMs?: number;
  /** Where requests' state changes commit their audit records (default: nowhere, e.g. in unit tests). */
  auditor?: Auditor<StoreOperations>;
  /** Where the service reports events worth an operator's eye; the server wires it to its pino logger. */
  logger?: ServiceLogger;
}

/**
 * The service's log port (pino's Logger fits it). Fields name keys, actions and states only: never
 * key material, plaintext, ciphertext or request parameters.
 */
export interface ServiceLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const silentLogger: ServiceLogger = { warn: () => {}, error: () => {} };

export type WrappingKeySpec = ImportTokenRecord["wrappingKeySpec"];
export type WrappingAlgorithm = ImportTokenRecord["wrappingAlgorithm"];

/** What one run of the scheduler did. */
export interface JobReport {
  rotated: string[];
  deleted: string[];
  expired: string[];
  /** Keys whose job failed this run (logged); they stay due and are tried again next run. */
  failed: string[];
}

export const DAY_SECONDS = 86_400;
/** Tencent: the import token and public key are valid for 24 h. */
export const IMPORT_TOKEN_SECONDS = DAY_SECONDS;
/** Tencent: RotateKey at most once per 24 h. */
export const ROTATE_KEY_INTERVAL_SECONDS = DAY_SECONDS;
const MATERIAL_DIGEST_SECRET = "material-digest-key";
/** The meta entries holding service secrets wrapped by the root of trust (with serviceSecretAad of their name); root key rotation rewraps them. */
export const SERVICE_SECRET_NAMES: readonly string[] = Object.freeze([MATERIAL_DIGEST_SECRET, ROLE_SESSION_SECRET, ...AUDIT_SECRET_NAMES]);
/** Meta entry: JSON array of base64 references of HSM key objects whose keys were deleted, still to destroy. */
const HSM_DESTROY_QUEUE = "hsm-objects-to-destroy";
const JOB_BATCH = 100;

/** Batch actions whose policies are checked per key under their own name. */
type BatchAction = "EnableKeys" | "DisableKeys" | "DescribeKeys";
/**
 * The policy actions a key action needs, where they are not just its own name. ReEncrypt decrypts
 * under the source key and encrypts under the destination, so each half also needs the right it
 * exercises (as AWS asks kms:ReEncryptFrom and kms:ReEncryptTo): otherwise a caller denied
 * kms:Decrypt on K2 could re-encrypt K2's ciphertexts under a key it may decrypt with.
 */
const CAM_ACTIONS_OF: Partial<Record<KeyAction | BatchAction, readonly string[]>> = {
  ReEncryptSource: ["ReEncrypt", "Decrypt"],
  ReEncryptDestination: ["ReEncrypt", "Encrypt"],
};

export type { Caller };

export interface CreateKeyInput {
  alias: string;
  description: string;
  keyUsage: KeyUsage;
  keySpec?: KeySpec;
  tags: Tag[];
  /** EXTERNAL: created without material, PendingImport until ImportKeyMaterial (symmetric keys only). */
  origin?: KeyOrigin;
  /** HSM: the material is made and used inside the PKCS#11 token (default SOFTWARE). */
  protectionLevel?: ProtectionLevel;
}

export interface ListKeyDetailInput {
  offset: number;
  limit: number;
  /** 0: keys the user created; 1: keys cloud products created (Tresor has none). */
  role: 0 | 1;
  order: "desc" | "asc";
  states?: readonly KeyState[];
  search?: string;
  origin?: KeyOrigin;
  keyUsages?: readonly KeyUsage[];
  tagFilters?: readonly { key: string; values: readonly string[] }[];
}

const USER_OWNER = "user";
/** One answer for every way a ciphertext can be wrong, so the error is no oracle for which check failed. */
const INVALID_CIPHERTEXT =
  `"CiphertextBlob" is not a ciphertext this service can decrypt: it is malformed or altered, its key is unknown, or the encryption context differs`;
/** Tencent's ListKeys shows keys in these states only. */
const LIST_KEYS_STATES: readonly KeyState[] = ["Enabled", "Disabled", "PendingImport"];

export class KmsService {
  readonly #store: Store;
  readonly #root: RootOfTrust;
  readonly #clock: Clock;
  readonly #materials: MaterialCache<AeadKey>;
  readonly #privateKeys: MaterialCache<AsymmetricPrivateKey>;
  /** References of HSM key versions' token objects (not material: the cache only saves a store read). */
  readonly #hsmReferences: MaterialCache<HsmReference>;
  readonly #hsm: HsmKeys | undefined;
  readonly #health: HealthCheck;
  readonly #logger: ServiceLogger;
  readonly #auditor: Auditor<StoreOperations> | undefined;
  readonly #materialDigestKey: ServiceSecret;
  /** Principals, access keys, policies and roles; the authority every action asks. */
  readonly access: AccessControl;
  /** CloudAudit's queries over the audit log (LookUpEvents, DescribeEvents). */
  readonly auditQueries: AuditQueries;
  readonly region: string;
  readonly defaultKeySpec: KeySpec;
  readonly cmkLimit: number;

  constructor(options: KmsServiceOptions) {
    this.#store = options.store;
    this.#root = options.rootOfTrust;
    this.#clock = options.clock;
    this.region = options.region;
    this.defaultKeySpec = options.defaultKeySpec;
    this.cmkLimit = options.cmkLimit;
    this.#auditor = options.auditor;
    this.auditQueries = new AuditQueries(options.store, options.clock);
    this.access = new AccessControl({
      ...(options.auditor ? { auditor: options.auditor } : {}),
      store: options.store,
      rootOfTrust: options.rootOfTrust,
      clock: options.clock,
      region: options.region,
      cacheMs: options.accessKeyCacheMs ?? 1000,
    });
    this.#logger = options.logger ?? silentLogger;
    const cacheOptions = options.materialCache ?? { maxEntries: 1000, ttlMs: 5 * 60_000 };
    this.#materials = new MaterialCache<AeadKey>(cacheOptions, () => this.#clock.now());
    this.#privateKeys = new MaterialCache<AsymmetricPrivateKey>(cacheOptions, () => this.#clock.now());
    this.#hsmReferences = new MaterialCache<HsmReference>(cacheOptions, () => this.#clock.now());
    this.#hsm = options.hsmKeys ?? options.rootOfTrust.hsmKeys;
    this.#materialDigestKey = new ServiceSecret(options.store, options.rootOfTrust, MATERIAL_DIGEST_SECRET);
    this.#health = new HealthCheck(this.#store, this.#root, () => this.#clock.now());
  }

  // ---- key management ----

  async createKey(caller: Caller, input: CreateKeyInput): Promise<KeyRecord> {
    caller.permissions.require("kms:CreateKey", ACCOUNT_RESOURCE);
    needs(KEY_USAGES.includes(input.keyUsage), "InvalidKeyUsage", `"KeyUsage" ${input.keyUsage} is not supported`);
    let keySpec: KeySpec;
    if (isAsymmetricUsage(input.keyUsage)) {
      keySpec = ASYMMETRIC_USAGES[input.keyUsage].spec;
      needs(
        input.keySpec === undefined || input.keySpec === keySpec,
        "InvalidParameterValue",
        `"KeySpec" ${String(input.keySpec)} does not fit "KeyUsage" ${input.keyUsage}, whose key spec is ${keySpec}`,
      );
    } else {
      keySpec = input.keySpec ?? this.defaultKeySpec;
      needs(SYMMETRIC_KEY_SPECS.includes(keySpec as SymmetricKeySpec), "InvalidParameterValue", `"KeySpec" ${keySpec} is not a symmetric key spec (${SYMMETRIC_KEY_SPECS.join(", ")})`);
    }
    const origin = input.origin ?? "TENCENT_KMS";
    needs(
      origin === "TENCENT_KMS" || isSymmetricSpec(keySpec),
      "InvalidKeyUsage",
      `"Type" 2 (EXTERNAL key material) needs an ENCRYPT_DECRYPT key (${SYMMETRIC_KEY_SPECS.join(" or ")}), not ${input.keyUsage}`,
    );
    const protectionLevel = input.protectionLevel ?? "SOFTWARE";
    if (protectionLevel === "HSM") this.#checkHsmKey(keySpec, origin);
    needs(!(await this.#store.getKeyByAlias(input.alias)), "AliasAlreadyExists", `"Alias" ${input.alias} is already in use`);
    needs((await this.#store.countKeys(caller.uin)) < this.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${this.cmkLimit} keys`);

    const keyId = randomUUID();
    const now = this.#now();
    const key: KeyRecord = {
      keyId,
      alias: input.alias,
      description: input.description,
      keyUsage: input.keyUsage,
      keySpec,
      origin,
      state: origin === "EXTERNAL" ? "PendingImport" : "Enabled",
      creatorUin: caller.uin,
      owner: USER_OWNER,
      createTime: now,
      deletionDate: 0,
      currentVersion: 1,
      tags: input.tags,
      ...KEY_LIFECYCLE_DEFAULTS,
      protectionLevel,
    };
    if (origin === "EXTERNAL") {
      await this.#insertKey(caller, key, null);
      return key;
    }
    if (protectionLevel === "HSM") {
      const hsm = this.#hsm!;
      let reference: Buffer;
      let publicKey: Buffer | null = null;
      if (isAsymmetricUsage(input.keyUsage)) {
        const pair = await hsm.generateKeyPair(keySpec as HsmKeyPairSpec, ASYMMETRIC_USAGES[input.keyUsage].purpose, keyId, 1);
        reference = pair.reference;
        publicKey = pair.publicKey;
      } else {
        reference = await hsm.generateAes256(keyId, 1);
      }
      try {
        await this.#insertKey(caller, key, { keyId, version: 1, wrappedMaterial: reference, publicKey, createTime: now });
      } catch (e) {
        // Only when the insert certainly did not happen (a refusal); after any other error the key
        // may exist, and its object with it.
        if (e instanceof KmsError || e instanceof StoreConflictError) await this.#destroyQuietly(keyId, reference);
        throw e;
      }
      return key;
    }
    let material: Buffer;
    let publicKey: Buffer | null = null;
    if (isSymmetricSpec(keySpec)) {
      material = randomBytes(SYMMETRIC_SPECS[keySpec].materialLength);
    } else {
      const pair = await generateKeyPair(keySpec);
      material = pair.privateMaterial;
      publicKey = pair.publicKey;
    }
    let wrappedMaterial: Buffer;
    try {
      wrappedMaterial = await this.#root.wrap(material, keyMaterialAad(keyId, 1));
    } finally {
      material.fill(0);
    }
    await this.#insertKey(caller, key, { keyId, version: 1, wrappedMaterial, publicKey, createTime: now });
    return key;
  }

  /** A CMK of ProtectionLevel HSM needs a pkcs11 root of trust and a key spec its token can hold. */
  #checkHsmKey(keySpec: KeySpec, origin: KeyOrigin): void {
    needs(
      this.#hsm !== undefined,
      "UnsupportedOperation",
      `"ProtectionLevel" HSM needs a data directory whose root of trust is pkcs11 (an HSM); this one's is ${this.#root.description.split(":")[0]}`,
    );
    needs(origin === "TENCENT_KMS", "UnsupportedOperation", `"ProtectionLevel" HSM keys are generated inside the HSM: "Type" 2 (EXTERNAL key material) is not supported`);
    needs(
      hsmSupports(keySpec),
      "UnsupportedOperation",
      `"ProtectionLevel" HSM is not supported for key spec ${keySpec} on ${this.#hsm.description}; ListAlgorithms shows what each protection level offers`,
    );
  }

  /** Destroys a token object this node made but did not record (a failed insert or a lost race); logs when it cannot. */
  async #destroyQuietly(keyId: string, reference: Buffer): Promise<void> {
    try {
      await this.#hsm!.destroy(reference);
    } catch (e) {
      this.#logger.warn({ keyId, err: { name: (e as Error).name, message: (e as Error).message } }, "could not destroy an unused HSM key object; it is an orphan in the token");
    }
  }

  async #insertKey(caller: Caller, key: KeyRecord, firstVersion: KeyVersionRecord | null): Promise<void> {
    try {
      // Checked again with the insert, atomically: another request (on any node) may have taken the last slot.
      const inserted = await auditedInsert(this.#auditor, caller.audit, (also) => this.#store.insertKeyWithinLimit(key, firstVersion, this.cmkLimit, also));
      needs(inserted, "CmkLimitExceeded", `the account holds the maximum of ${this.cmkLimit} keys`);
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "alias") throw new KmsError("AliasAlreadyExists", `"Alias" ${key.alias} is already in use`);
      throw e;
    }
  }

  describeKey(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.#keyFor(this.#store, caller, "DescribeKey", keyId);
  }

  describeKeys(caller: Caller, keyIds: readonly string[]): Promise<KeyRecord[]> {
    return this.#store.transaction(async (tx) => {
      const keys: KeyRecord[] = [];
      for (const id of keyIds) keys.push(await this.#keyFor(tx, caller, "DescribeKey", id, { batch: "DescribeKeys" }));
      return keys;
    });
  }

  async listKeys(caller: Caller, input: { offset: number; limit: number; role: 0 | 1 }): Promise<{ keyIds: string[]; totalCount: number }> {
    caller.permissions.require("kms:ListKeys", ACCOUNT_RESOURCE);
    const { keys, totalCount } = await this.#listKeys(caller, { ...input, order: "desc", states: LIST_KEYS_STATES });
    return { keyIds: keys.map((k) => k.keyId), totalCount };
  }

  listKeyDetail(caller: Caller, input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    caller.permissions.require("kms:ListKeyDetail", ACCOUNT_RESOURCE);
    return this.#listKeys(caller, input);
  }

  /** The caller's account's keys. */
  async #listKeys(caller: Caller, input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    if (input.role === 1) return { keys: [], totalCount: 0 };
    const query: KeyListQuery = { offset: input.offset, limit: input.limit, order: input.order, owner: USER_OWNER, accountUin: caller.uin };
    if (input.states) query.states = input.states;
    if (input.search) query.search = input.search;
    if (input.origin) query.origin = input.origin;
    if (input.keyUsages) query.keyUsages = input.keyUsages;
    if (input.tagFilters && input.tagFilters.length > 0) query.tagFilters = input.tagFilters;
    return this.#store.listKeys(query);
  }

  enableKey(caller: Caller, keyId: string): Promise<void> {
    return this.#changeStates(caller, "EnableKey", [keyId]);
  }

  disableKey(caller: Caller, keyId: string): Promise<void> {
    return this.#changeStates(caller, "DisableKey", [keyId]);
  }

  /** All or nothing: if any key is missing or in the wrong state, none changes. */
  enableKeys(caller: Caller, keyIds: readonly string[]): Promise<void> {
    return this.#changeStates(caller, "EnableKey", keyIds, "EnableKeys");
  }

  disableKeys(caller: Caller, keyIds: readonly string[]): Promise<void> {
    return this.#changeStates(caller, "DisableKey", keyIds, "DisableKeys");
  }

  updateAlias(caller: Caller, keyId: string, alias: string): Promise<void> {
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "UpdateAlias", keyId);
      if (key.alias === alias) return;
      needs(!(await tx.getKeyByAlias(alias)), "AliasAlreadyExists", `"Alias" ${alias} is already in use`);
      await tx.updateKey({ ...key, alias });
    });
  }

  updateKeyDescription(caller: Caller, keyId: string, description: string): Promise<void> {
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "UpdateKeyDescription", keyId);
      await tx.updateKey({ ...key, description });
    });
  }

  // ---- archiving and deletion ----

  archiveKey(caller: Caller, keyId: string): Promise<void> {
    return this.#changeStates(caller, "ArchiveKey", [keyId]);
  }

  cancelKeyArchive(caller: Caller, keyId: string): Promise<void> {
    return this.#changeStates(caller, "CancelKeyArchive", [keyId]);
  }

  /** Moves a Disabled (or PendingImport) key to PendingDelete; the scheduler destroys it at the returned time. */
  async scheduleKeyDeletion(caller: Caller, keyId: string, pendingWindowInDays: number): Promise<{ keyId: string; deletionDate: number }> {
    needs(
      Number.isInteger(pendingWindowInDays) && pendingWindowInDays >= 7 && pendingWindowInDays <= 30,
      "InvalidPendingWindowInDays",
      `"PendingWindowInDays" must be between 7 and 30`,
    );
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "ScheduleKeyDeletion", keyId);
      const deletionDate = this.#now() + pendingWindowInDays * DAY_SECONDS;
      await tx.updateKey({ ...key, state: stateAfter("ScheduleKeyDeletion", key.state), deletionDate });
      return { keyId: key.keyId, deletionDate };
    });
  }

  /** Back to Disabled; an EXTERNAL key without material (deleted or expired meanwhile) to PendingImport. */
  cancelKeyDeletion(caller: Caller, keyId: string): Promise<{ keyId: string }> {
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "CancelKeyDeletion", keyId);
      const noMaterial = key.origin === "EXTERNAL" && (await tx.listKeyVersions(keyId)).length === 0;
      await tx.updateKey({ ...key, state: noMaterial ? "PendingImport" : stateAfter("CancelKeyDeletion", key.state), deletionDate: 0 });
      return { keyId: key.keyId };
    });
  }

  // ---- rotation ----

  async enableKeyRotation(caller: Caller, keyId: string, rotateDays: number): Promise<void> {
    needs(Number.isInteger(rotateDays) && rotateDays >= 7 && rotateDays <= 365, "InvalidParameterValue", `"RotateDays" must be between 7 and 365`);
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "EnableKeyRotation", keyId);
      rotatable(key);
      await tx.updateKey({ ...key, rotationEnabled: true, rotateDays, nextRotateTime: this.#now() + rotateDays * DAY_SECONDS });
    });
  }

  disableKeyRotation(caller: Caller, keyId: string): Promise<void> {
    return this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "DisableKeyRotation", keyId);
      rotatable(key);
      await tx.updateKey({ ...key, rotationEnabled: false, nextRotateTime: 0 });
    });
  }

  async getKeyRotationStatus(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.#keyFor(this.#store, caller, "GetKeyRotationStatus", keyId);
  }

  /**
   * Rotates now (Tencent: the key must have rotation enabled; at most once per 24 h). The
   * automatic schedule is left as it was. Returns a task id, as Tencent does; the rotation has
   * already happened when it returns.
   */
  async rotateKey(caller: Caller, keyId: string): Promise<{ taskId: string }> {
    const key = await this.#keyFor(this.#store, caller, "RotateKey", keyId);
    rotatable(key);
    needs(key.rotationEnabled, "RotateNotSupported", `key ${keyId} does not have rotation enabled: call EnableKeyRotation first`);
    checkRotateRate(key, this.#now());
    await this.#rotate(key, "manual", caller.audit);
    return { taskId: randomUUID() };
  }

  /** Every version with its creation time; never material. */
  async listKeyVersions(caller: Caller, keyId: string): Promise<{ key: KeyRecord; versions: { version: number; createTime: number }[] }> {
    const key = await this.#keyFor(this.#store, caller, "ListKeyVersions", keyId);
    const versions = await this.#store.listKeyVersions(keyId);
    return { key, versions: versions.map((v) => ({ version: v.version, createTime: v.createTime })) };
  }

  // ---- bring your own key ----

  /** A fresh wrapping key pair and a token for one EXTERNAL key, valid for 24 h. */
  async getParametersForImport(
    caller: Caller,
    keyId: string,
    wrappingKeySpec: WrappingKeySpec,
    wrappingAlgorithm: WrappingAlgorithm,
  ): Promise<{ keyId: string; importToken: string; publicKey: Buffer; parametersValidTo: number }> {
    needs(
      (wrappingKeySpec === "SM2") === (wrappingAlgorithm === "SM2PKE"),
      "InvalidParameterValue",
      `"WrappingAlgorithm" ${wrappingAlgorithm} does not fit "WrappingKeySpec" ${wrappingKeySpec}: SM2 takes SM2PKE, RSA_2048 an RSAES_* algorithm`,
    );
    const key = await this.#keyFor(this.#store, caller, "GetParametersForImport", keyId);
    external(key, "GetParametersForImport");
    const tokenId = randomBytes(32).toString("base64url");
    const pair = await generateKeyPair(wrappingKeySpec);
    let wrappedPrivateKey: Buffer;
    try {
      wrappedPrivateKey = await this.#root.wrap(pair.privateMaterial, importTokenAad(tokenId));
    } finally {
      pair.privateMaterial.fill(0);
    }
    const now = this.#now();
    const expiresAt = now + IMPORT_TOKEN_SECONDS;
    await this.#transaction(caller, async (tx) => {
      await tx.deleteExpiredImportTokens(now);
      await tx.insertImportToken({ tokenId, keyId, wrappingKeySpec, wrappingAlgorithm, wrappedPrivateKey, expiresAt, used: false });
    });
    return { keyId, importToken: tokenId, publicKey: pair.publicKey, parametersValidTo: expiresAt };
  }

  /**
   * Unwraps the material with the token's private key and makes it version 1 of the key. The first
   * import fixes the material: later imports must bring the same (MaterialNotMatch otherwise).
   */
  async importKeyMaterial(caller: Caller, input: { keyId: string; importToken: string; encryptedKeyMaterial: Buffer; validTo: number }): Promise<void> {
    const key = await this.#keyFor(this.#store, caller, "ImportKeyMaterial", input.keyId);
    external(key, "ImportKeyMaterial");
    const now = this.#now();
    needs(input.validTo === 0 || input.validTo > now, "InvalidParameterValue", `"ValidTo" must be 0 (never expires) or a time in the future`);
    const token = await this.#store.getImportToken(input.importToken);
    needs(token && token.keyId === key.keyId, "InvalidParameterValue", `"ImportToken" is not a token GetParametersForImport gave for key ${key.keyId}`);
    needs(token.expiresAt > now, "TokenExpired", `"ImportToken" expired at ${token.expiresAt}: call GetParametersForImport again`);
    needs(!token.used, "TokenExpired", `"ImportToken" has already been used: call GetParametersForImport again`);
    const material = await this.#unwrapImportedMaterial(token, input.encryptedKeyMaterial);
    let digest: Buffer;
    let wrappedMaterial: Buffer;
    try {
      const length = SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].materialLength;
      needs(
        material.length === length,
        "InvalidImportKeyMaterial",
        `"EncryptedKeyMaterial" must wrap ${length} bytes of key material for a ${key.keySpec} key, got ${material.length}`,
      );
      digest = this.#materialDigest(await this.#materialDigestKey.get(), key.keyId, material);
      wrappedMaterial = await this.#root.wrap(material, keyMaterialAad(key.keyId, 1));
    } finally {
      material.fill(0);
    }
    await this.#transaction(caller, async (tx) => {
      const current = await this.#keyFor(tx, caller, "ImportKeyMaterial", key.keyId);
      needs(
        current.materialDigest === null || (current.materialDigest.length === digest.length && timingSafeEqual(current.materialDigest, digest)),
        "MaterialNotMatch",
        `the material differs from the material key ${key.keyId} was first imported with; only that material can be imported again`,
      );
      needs(await tx.useImportToken(token.tokenId), "TokenExpired", `"ImportToken" has already been used: call GetParametersForImport again`);
      if (!(await tx.getKeyVersion(key.keyId, 1))) {
        await tx.insertKeyVersion({ keyId: key.keyId, version: 1, wrappedMaterial, publicKey: null, createTime: now });
      }
      await tx.updateKey({ ...current, state: stateAfter("ImportKeyMaterial", current.state), currentVersion: 1, validTo: input.validTo, materialDigest: digest });
    });
  }

  /** Removes the material (its wrapped versions) of an EXTERNAL key; it waits in PendingImport for the same material. */
  async deleteImportedKeyMaterial(caller: Caller, keyId: string): Promise<void> {
    await this.#transaction(caller, async (tx) => {
      const key = await this.#keyFor(tx, caller, "DeleteImportedKeyMaterial", keyId);
      external(key, "DeleteImportedKeyMaterial");
      await tx.deleteKeyVersions(keyId);
      await tx.updateKey({ ...key, state: stateAfter("DeleteImportedKeyMaterial", key.state), validTo: 0 });
    });
    this.#forget(keyId);
  }

  // ---- scheduled jobs ----

  /**
   * Runs every job due now: destroys keys whose deletion window has ended, deletes imported
   * material whose ValidTo has passed, rotates keys whose rotation is due. Each job re-reads its
   * key inside its own store transaction and does nothing unless the work is still due, so a job
   * runs once however many nodes run the scheduler against one store (the store's serializable
   * transactions let only one of them commit), a rerun is harmless, and a crash leaves either all
   * of a job's effect or none. Jobs missed while no server ran are simply due now.
   */
  async runDueJobs(): Promise<JobReport> {
    const report: JobReport = { rotated: [], deleted: [], expired: [], failed: [] };
    const tried = new Set<string>();
    for (;;) {
      const now = this.#now();
      const due = (await this.#store.listDueKeys(now, JOB_BATCH)).filter((k) => !tried.has(k.keyId));
      if (due.length === 0) break;
      for (const key of due) {
        tried.add(key.keyId);
        try {
          if (key.state === "PendingDelete" && key.deletionDate <= now) {
            if (await this.#destroyKey(key.keyId, now)) report.deleted.push(key.keyId);
          } else if (key.validTo > 0 && key.validTo <= now && key.state !== "PendingImport") {
            if (await this.#expireMaterial(key.keyId, now)) report.expired.push(key.keyId);
          } else if (await this.#rotate(key, "scheduled")) {
            report.rotated.push(key.keyId);
          }
        } catch (e) {
          report.failed.push(key.keyId);
          this.#logger.error({ keyId: key.keyId, err: { name: (e as Error).name, code: (e as { code?: unknown }).code } }, "scheduled key job failed");
        }
      }
    }
    const now = this.#now();
    await this.#store.deleteExpiredImportTokens(now);
    await this.access.deleteExpiredSessions();
    await this.#destroyQueuedHsmObjects();
    return report;
  }

  /** Removes the key and all its versions' material for good. */
  async #destroyKey(keyId: string, now: number): Promise<boolean> {
    const done = await this.#store.transaction(async (tx) => {
      const key = await tx.getKey(keyId);
      if (!key || key.state !== "PendingDelete" || key.deletionDate > now) return false;
      if (key.protectionLevel === "HSM") {
        // The token objects are queued in the same transaction that deletes the rows, then destroyed
        // after it commits: never before (CancelKeyDeletion could still win), never forgotten (a
        // crash or an absent HSM leaves them queued for the next run).
        const references = (await tx.listKeyVersions(keyId)).map((v) => v.wrappedMaterial.toString("base64"));
        const queued = parseQueue(await tx.getMeta(HSM_DESTROY_QUEUE));
        await tx.setMeta(HSM_DESTROY_QUEUE, JSON.stringify([...queued, ...references.filter((r) => !queued.includes(r))]));
      }
      return tx.deleteKey(keyId);
    });
    this.#forget(keyId);
    if (done) await this.#destroyQueuedHsmObjects();
    return done;
  }

  /**
   * Destroys the token objects of deleted HSM keys (queued by #destroyKey) and removes them from the
   * queue; what cannot be destroyed now (HSM away) stays queued and is logged. Idempotent: an object
   * already gone counts as destroyed.
   */
  async #destroyQueuedHsmObjects(): Promise<void> {
    const queued = parseQueue(await this.#store.getMeta(HSM_DESTROY_QUEUE));
    if (queued.length === 0) return;
    if (this.#hsm === undefined) {
      this.#logger.warn({ queued: queued.length }, "HSM key objects of deleted keys wait to be destroyed, but this node has no HSM");
      return;
    }
    const destroyed: string[] = [];
    for (const reference of queued) {
      try {
        await this.#hsm.destroy(Buffer.from(reference, "base64"));
        destroyed.push(reference);
      } catch (e) {
        this.#logger.error({ err: { name: (e as Error).name, message: (e as Error).message } }, "could not destroy the HSM key objects of a deleted key; retried on the next scheduler run");
        break;
      }
    }
    if (destroyed.length === 0) return;
    await this.#store.transaction(async (tx) => {
      const now = parseQueue(await tx.getMeta(HSM_DESTROY_QUEUE));
      await tx.setMeta(HSM_DESTROY_QUEUE, JSON.stringify(now.filter((r) => !destroyed.includes(r))));
    });
  }

  /** Deletes the imported material whose ValidTo has passed; the key waits in PendingImport (or stays PendingDelete). */
  async #expireMaterial(keyId: string, now: number): Promise<boolean> {
    const done = await this.#store.transaction(async (tx) => {
      const key = await tx.getKey(keyId);
      if (!key || key.validTo === 0 || key.validTo > now || key.state === "PendingImport") return false;
      await tx.deleteKeyVersions(keyId);
      await tx.updateKey({ ...key, state: key.state === "PendingDelete" ? "PendingDelete" : "PendingImport", validTo: 0 });
      return true;
    });
    this.#forget(keyId);
    return done;
  }

  /**
   * Adds version currentVersion+1. The material is made and wrapped before the transaction (which
   * may run more than once); inside, the key is read again and nothing is written unless it is still
   * at the version the material was wrapped for and the rotation is still due or allowed.
   */
  /** `audit`: the RotateKey request's record, committed with the new version (none for scheduled rotations). */
  async #rotate(key: KeyRecord, kind: "manual" | "scheduled", audit?: RequestAudit): Promise<boolean> {
    const version = key.currentVersion + 1;
    let wrappedMaterial: Buffer;
    if (key.protectionLevel === "HSM") {
      // A new token object; destroyed again unless this rotation commits.
      wrappedMaterial = await this.#requireHsm(key.keyId).generateAes256(key.keyId, version);
      // Destroyed only when the store says for certain that it was not recorded: after an error the
      // commit may have happened (a connection lost during COMMIT), so the object is left as an orphan.
      const committed = await this.#commitRotation(key, kind, version, wrappedMaterial, audit);
      if (!committed) await this.#destroyQuietly(key.keyId, wrappedMaterial);
      return committed;
    }
    const material = randomBytes(SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].materialLength);
    try {
      wrappedMaterial = await this.#root.wrap(material, keyMaterialAad(key.keyId, version));
    } finally {
      material.fill(0);
    }
    return this.#commitRotation(key, kind, version, wrappedMaterial, audit);
  }

  #commitRotation(key: KeyRecord, kind: "manual" | "scheduled", version: number, wrappedMaterial: Buffer, audit: RequestAudit | undefined): Promise<boolean> {
    const now = this.#now();
    return auditedTransaction(this.#store, this.#auditor, audit, async (tx) => {
      const current = await tx.getKey(key.keyId);
      if (kind === "scheduled") {
        const due = current?.rotationEnabled && current.state === "Enabled" && current.nextRotateTime <= now;
        if (!current || !due || current.currentVersion !== key.currentVersion) return false;
      } else {
        needs(current, "CmkNotFound", `key ${key.keyId} does not exist`);
        checkKeyState("RotateKey", current);
        checkRotateRate(current, now);
        // A scheduled rotation between our read and now: it already gave the key a new version.
        if (current.currentVersion !== key.currentVersion) return false;
      }
      try {
        await tx.insertKeyVersion({ keyId: key.keyId, version, wrappedMaterial, publicKey: null, createTime: now });
      } catch (e) {
        // Another node's rotation committed this version first (PostgreSQL reports the unique
        // violation rather than a serialization failure): the work is done.
        if (e instanceof StoreConflictError && e.field === "keyVersion") return false;
        throw e;
      }
      await tx.updateKey({
        ...current,
        currentVersion: version,
        lastRotateTime: now,
        nextRotateTime: kind === "scheduled" ? now + current.rotateDays * DAY_SECONDS : current.nextRotateTime,
      });
      return true;
    });
  }

  /** Drops this node's prepared keys of `keyId` (other nodes read the key's state on every use). */
  #forget(keyId: string): void {
    this.#materials.dropPrefix(`${keyId}/`);
    this.#privateKeys.dropPrefix(`${keyId}/`);
    this.#hsmReferences.dropPrefix(`${keyId}/`);
  }

  async #unwrapImportedMaterial(token: ImportTokenRecord, encrypted: Buffer): Promise<Buffer> {
    const privateMaterial = await this.#root.unwrap(token.wrappedPrivateKey, importTokenAad(token.tokenId));
    let privateKey: AsymmetricPrivateKey;
    try {
      privateKey = new AsymmetricPrivateKey(token.wrappingKeySpec, privateMaterial);
    } finally {
      privateMaterial.fill(0);
    }
    try {
      return privateKey.decrypt(token.wrappingAlgorithm === "SM2PKE" ? "SM2" : token.wrappingAlgorithm, encrypted);
    } catch (e) {
      if (e instanceof CryptoError) {
        throw new KmsError("DecryptMaterialError", `"EncryptedKeyMaterial" does not decrypt with the import token's key and ${token.wrappingAlgorithm}`);
      }
      throw e;
    } finally {
      privateKey.destroy();
    }
  }

  /** HMAC-SHA256 of the material under a service secret, bound to the key id: comparable, never reversible. */
  #materialDigest(digestKey: Buffer, keyId: string, material: Buffer): Buffer {
    return createHmac("sha256", digestKey).update(`tresor/material-digest/v1\0${keyId}\0`).update(material).digest();
  }

  // ---- cryptographic operations ----

  async encrypt(caller: Caller, keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ keyId: string; blob: Buffer }> {
    const key = await this.#symmetricKeyFor(caller, "Encrypt", keyId, context);
    return { keyId: key.keyId, blob: await this.#seal(key, plaintext, context) };
  }

  async decrypt(caller: Caller, blob: Buffer, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer }> {
    return this.#open(caller, "Decrypt", blob, context);
  }

  async reEncrypt(caller: Caller, input: {
    blob: Buffer;
    destinationKeyId?: string;
    sourceContext: EncryptionContext;
    destinationContext: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string; sourceKeyId: string; reEncrypted: boolean }> {
    const { keyId: sourceKeyId, plaintext, keyVersion } = await this.#open(caller, "ReEncryptSource", input.blob, input.sourceContext);
    try {
      const destination = await this.#symmetricKeyFor(caller, "ReEncryptDestination", input.destinationKeyId ?? sourceKeyId, input.destinationContext);
      const unchanged =
        destination.keyId === sourceKeyId &&
        keyVersion === destination.currentVersion &&
        canonicalEqual(input.sourceContext, input.destinationContext);
      if (unchanged) return { blob: input.blob, keyId: destination.keyId, sourceKeyId, reEncrypted: false };
      const blob = await this.#seal(destination, plaintext, input.destinationContext);
      return { blob, keyId: destination.keyId, sourceKeyId, reEncrypted: true };
    } finally {
      plaintext.fill(0);
    }
  }

  async generateDataKey(caller: Caller, keyId: string, numberOfBytes: number, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer; blob: Buffer }> {
    const key = await this.#symmetricKeyFor(caller, "GenerateDataKey", keyId, context);
    const plaintext = randomBytes(numberOfBytes);
    try {
      return { keyId: key.keyId, plaintext, blob: await this.#seal(key, plaintext, context) };
    } catch (e) {
      plaintext.fill(0);
      throw e;
    }
  }

  // ---- asymmetric keys ----

  /**
   * Parses a caller's public key for Decrypt's and GenerateDataKey's EncryptionPublicKey and returns
   * the function that encrypts a plaintext to it. Called before anything is decrypted or generated.
   */
  publicKeyWrapper(publicKey: string, algorithm: PublicKeyWrapAlgorithm): (plaintext: Buffer) => Buffer {
    let encrypt: (plaintext: Buffer) => Buffer;
    try {
      encrypt = publicKeyEncrypter(publicKey, algorithm);
    } catch (e) {
      if (e instanceof PublicKeyError) throw new KmsError("InvalidParameterValue", `"EncryptionPublicKey" does not fit "EncryptionAlgorithm" ${algorithm}: ${e.message}`);
      throw e;
    }
    return (plaintext) => {
      try {
        return encrypt(plaintext);
      } catch (e) {
        if (e instanceof PublicKeyError) throw new KmsError("EncryptionError", `the plaintext cannot be encrypted to "EncryptionPublicKey": ${e.message}`);
        throw e;
      }
    };
  }

  /** The newest version's public key (DER SubjectPublicKeyInfo). */
  async getPublicKey(caller: Caller, keyId: string): Promise<{ keyId: string; publicKey: Buffer }> {
    const key = await this.#keyFor(this.#store, caller, "GetPublicKey", keyId);
    needs(isAsymmetricUsage(key.keyUsage), "InvalidKeyUsage", `key ${keyId} has usage ENCRYPT_DECRYPT: GetPublicKey needs an asymmetric key`);
    return { keyId: key.keyId, publicKey: await this.#publicKeyOf(key) };
  }

  async sign(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType }): Promise<{ keyId: string; signature: Buffer }> {
    const key = await this.#keyFor(this.#store, caller, "SignByAsymmetricKey", input.keyId);
    const usage = signingUsage(key, "SignByAsymmetricKey", input.algorithm, input.message, input.messageType);
    if (key.protectionLevel === "HSM") {
      // The token signs a digest: a RAW message is hashed here first (the digest reveals nothing the message does not).
      const digest = input.messageType === "RAW" ? createHash(usage.digest!.name).update(input.message).digest() : input.message;
      const algorithm = input.algorithm === "RSA_PSS_SHA_256" || input.algorithm === "RSA_PKCS1_SHA_256" ? input.algorithm : "ECDSA";
      const signature = await this.#requireHsm(key.keyId).sign(await this.#hsmReference(key, key.currentVersion), algorithm, digest);
      return { keyId: key.keyId, signature };
    }
    const signature = await this.#withPrivateKey(key, (privateKey) => privateKey.sign(input.algorithm, input.message, input.messageType));
    return { keyId: key.keyId, signature };
  }

  /** False for any signature that does not verify, including malformed ones; errors only for bad requests. */
  async verify(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType; signature: Buffer }): Promise<boolean> {
    const key = await this.#keyFor(this.#store, caller, "VerifyByAsymmetricKey", input.keyId);
    signingUsage(key, "VerifyByAsymmetricKey", input.algorithm, input.message, input.messageType);
    const publicKey = await this.#publicKeyOf(key);
    return verifySignature(key.keySpec as keyof typeof ASYMMETRIC_SPECS, publicKey, input.algorithm, input.message, input.messageType, input.signature);
  }

  /** AsymmetricRsaDecrypt (an RSA decryption key and one of its algorithms) or AsymmetricSm2Decrypt (an SM2 one). */
  async asymmetricDecrypt(
    caller: Caller,
    action: "AsymmetricRsaDecrypt" | "AsymmetricSm2Decrypt",
    keyId: string,
    algorithm: AsymmetricDecryptAlgorithm,
    ciphertext: Buffer,
  ): Promise<{ keyId: string; plaintext: Buffer }> {
    const key = await this.#keyFor(this.#store, caller, action, keyId);
    const family = action === "AsymmetricSm2Decrypt" ? "SM2" : "RSA";
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    needs(
      usage?.purpose === "decrypt" && ASYMMETRIC_SPECS[usage.spec].family === family,
      "InvalidKeyUsage",
      `key ${keyId} has usage ${key.keyUsage}: ${action} needs ${family === "SM2" ? "ASYMMETRIC_DECRYPT_SM2" : "an ASYMMETRIC_DECRYPT_RSA_* key"}`,
    );
    needs(usage.algorithms.includes(algorithm), "InvalidParameterValue", `"Algorithm" ${algorithm} does not fit key usage ${key.keyUsage}`);
    try {
      if (key.protectionLevel === "HSM") {
        // A token's PKCS#1 v1.5 decryption tells a bad padding apart (a Bleichenbacher oracle); the
        // software path's implicit rejection cannot be done inside it, so HSM keys offer OAEP only.
        needs(
          algorithm === "RSAES_OAEP_SHA_1" || algorithm === "RSAES_OAEP_SHA_256",
          "UnsupportedOperation",
          `"Algorithm" ${algorithm} is not offered for ProtectionLevel HSM keys: use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256`,
        );
        const hash = algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256";
        try {
          const plaintext = await this.#requireHsm(key.keyId).rsaOaepDecrypt(await this.#hsmReference(key, key.currentVersion), hash, ciphertext);
          return { keyId: key.keyId, plaintext };
        } catch (e) {
          if (e instanceof HsmUnsupportedError) throw new KmsError("UnsupportedOperation", `"Algorithm" ${algorithm}: ${e.message}`);
          throw e;
        }
      }
      const plaintext = await this.#withPrivateKey(key, (privateKey) => privateKey.decrypt(algorithm, ciphertext));
      return { keyId: key.keyId, plaintext };
    } catch (e) {
      if (e instanceof CryptoError || e instanceof RootOfTrustError) throw new KmsError("DecryptError", `"Ciphertext" does not decrypt under key ${keyId} with ${algorithm}`);
      throw e;
    }
  }

  generateRandom(caller: Caller, numberOfBytes: number): Buffer {
    caller.permissions.require("kms:GenerateRandom", ACCOUNT_RESOURCE);
    return randomBytes(numberOfBytes);
  }

  // ---- service information ----

  async getServiceStatus(caller: Caller): Promise<{ cmkUserCount: number; cmkLimit: number }> {
    caller.permissions.require("kms:GetServiceStatus", ACCOUNT_RESOURCE);
    return { cmkUserCount: await this.#store.countKeys(caller.uin), cmkLimit: this.cmkLimit };
  }

  /** Each algorithm with the protection levels this node offers it at (HSM only with a pkcs11 root of trust). */
  listAlgorithms(caller: Caller): { symmetric: AlgorithmEntry[]; asymmetric: AlgorithmEntry[]; signVerify: AlgorithmEntry[] } {
    caller.permissions.require("kms:ListAlgorithms", ACCOUNT_RESOURCE);
    const levels = (spec: KeySpec): ProtectionLevel[] => (this.#hsm !== undefined && hsmSupports(spec) ? ["SOFTWARE", "HSM"] : ["SOFTWARE"]);
    const asymmetric: AlgorithmEntry[] = [];
    const signVerify: AlgorithmEntry[] = [];
    for (const [keyUsage, usage] of Object.entries(ASYMMETRIC_USAGES) as [AsymmetricKeyUsage, UsageInfo][]) {
      (usage.purpose === "sign" ? signVerify : asymmetric).push({ keyUsage, algorithm: ASYMMETRIC_SPECS[usage.spec].algorithmName, protectionLevels: levels(usage.spec) });
    }
    const symmetric = SYMMETRIC_KEY_SPECS.map((spec): AlgorithmEntry => ({ keyUsage: "ENCRYPT_DECRYPT", algorithm: spec, protectionLevels: levels(spec) }));
    return { symmetric, asymmetric, signVerify };
  }

  getRegions(caller: Caller): string[] {
    caller.permissions.require("kms:GetRegions", ACCOUNT_RESOURCE);
    return [this.region];
  }

  // ---- operations ----

  /**
   * Whether this node can reach its store and root of trust and write to its store; checked at most
   * once a second. `storeFailures`: requests failed by the store so far (a count that grows).
   */
  health(storeFailures?: number): Promise<HealthReport> {
    return this.#health.check(storeFailures);
  }

  /** Counters for the metrics: material-cache lookups, failed readiness checks. */
  stats(): { materialCache: { hits: number; misses: number }; healthCheckFailures: { store: number; rootOfTrust: number } } {
    return {
      materialCache: { hits: this.#materials.hits + this.#privateKeys.hits, misses: this.#materials.misses + this.#privateKeys.misses },
      healthCheckFailures: { ...this.#health.failures },
    };
  }

  close(): void {
    this.#materials.clear();
    this.#privateKeys.clear();
    this.#hsmReferences.clear();
    this.access.close();
  }

  // ---- internals ----

  #now(): number {
    return unixSeconds(this.#clock);
  }

  /**
   * The key `keyId` of the caller's account, after the caller's policies allowed `action` on it and
   * its state allows `action`. Another account's key answers as a missing one would.
   */
  async #keyFor(
    store: StoreOperations,
    caller: Caller,
    action: KeyAction,
    keyId: string,
    options: { context?: EncryptionContext; batch?: BatchAction } = {},
  ): Promise<KeyRecord> {
    const key = await store.getKey(keyId);
    needs(key && key.creatorUin === caller.uin, "CmkNotFound", `key ${keyId} does not exist`);
    this.#authorize(caller, options.batch ?? action, key, options.context);
    this.#checkState(action, key, caller);
    return key;
  }

  /** The one check of a caller's policies for actions on a key. */
  #authorize(caller: Caller, action: KeyAction | BatchAction, key: KeyRecord, context?: EncryptionContext): void {
    caller.audit?.addResource(key.keyId);
    const resources = keyResourceNames(this.region, key);
    const facts = { resourceTags: Object.fromEntries(key.tags.map((t) => [t.key, t.value])), ...(context ? { encryptionContext: context } : {}) };
    for (const name of CAM_ACTIONS_OF[action] ?? [action]) caller.permissions.require(`kms:${name}`, resources, facts);
  }

  /** checkKeyState, and a warning when someone tries to use a key that is waiting to be deleted. */
  #checkState(action: KeyAction, key: KeyRecord, caller?: Caller): void {
    if (key.state === "PendingDelete") caller?.audit?.flags.add(AUDIT_FLAGS.pendingDeleteKeyUse);
    if (key.state === "PendingDelete" && ruleFor(action, key.state) !== "allow") {
      this.#logger.warn({ keyId: key.keyId, action, state: key.state, deletionDate: key.deletionDate }, "refused a use of a key pending deletion");
    }
    checkKeyState(action, key);
  }

  /** #keyFor, and the key must be a symmetric (ENCRYPT_DECRYPT) one. */
  async #symmetricKeyFor(caller: Caller, action: KeyAction, keyId: string, context: EncryptionContext): Promise<KeyRecord> {
    const key = await this.#keyFor(this.#store, caller, action, keyId, { context });
    needs(key.keyUsage === "ENCRYPT_DECRYPT", "InvalidKeyUsage", `key ${keyId} has usage ${key.keyUsage}: ${action} needs an ENCRYPT_DECRYPT key`);
    return key;
  }

  async #publicKeyOf(key: KeyRecord): Promise<Buffer> {
    const record = await this.#store.getKeyVersion(key.keyId, key.currentVersion);
    needs(record?.publicKey, "InternalError", `key ${key.keyId} version ${key.currentVersion} has no public key`);
    return record.publicKey;
  }

  /** As #withKey, for the newest version's private key of an asymmetric key; `use` must be synchronous. */
  async #withPrivateKey<T>(key: KeyRecord, use: (privateKey: AsymmetricPrivateKey) => T): Promise<T> {
    const version = key.currentVersion;
    const cacheId = `${key.keyId}/${version}`;
    const cached = this.#privateKeys.get(cacheId);
    if (cached) return use(cached);
    const record = await this.#store.getKeyVersion(key.keyId, version);
    needs(record, "InternalError", `key ${key.keyId} has no version ${version}`);
    const material = await this.#root.unwrap(record.wrappedMaterial, keyMaterialAad(key.keyId, version));
    let privateKey: AsymmetricPrivateKey;
    try {
      privateKey = new AsymmetricPrivateKey(key.keySpec as keyof typeof ASYMMETRIC_SPECS, material);
    } finally {
      material.fill(0);
    }
    this.#privateKeys.set(cacheId, privateKey);
    return use(privateKey);
  }

  /** `batch` names the batch action (EnableKeys, DisableKeys) that policies are checked for, when it is one. */
  /** A state change of a request, committed with its audit record. */
  #transaction<T>(caller: Caller, fn: (tx: StoreOperations) => Promise<T>): Promise<T> {
    return auditedTransaction(this.#store, this.#auditor, caller.audit, fn);
  }

  #changeStates(caller: Caller, action: "EnableKey" | "DisableKey" | "ArchiveKey" | "CancelKeyArchive", keyIds: readonly string[], batch?: BatchAction): Promise<void> {
    return this.#transaction(caller, async (tx) => {
      const keys: KeyRecord[] = [];
      for (const id of keyIds) keys.push(await this.#keyFor(tx, caller, action, id, batch ? { batch } : {}));
      for (const key of keys) {
        const state = stateAfter(action, key.state);
        if (state !== key.state) await tx.updateKey({ ...key, state });
      }
    });
  }

  /** Runs `use` with the prepared key of one key version. `use` must be synchronous: the cache
   * may destroy the key once control returns to the event loop. */
  async #withKey<T>(key: KeyRecord, version: number, use: (aeadKey: AeadKey) => T): Promise<T> {
    const cacheId = `${key.keyId}/${version}`;
    const cached = this.#materials.get(cacheId);
    if (cached) return use(cached);
    const spec = key.keySpec as SymmetricKeySpec;
    const record = await this.#store.getKeyVersion(key.keyId, version);
    needs(record, "InvalidCiphertext", INVALID_CIPHERTEXT);
    const material = await this.#root.unwrap(record.wrappedMaterial, keyMaterialAad(key.keyId, version));
    let aeadKey: AeadKey;
    try {
      aeadKey = AEADS[SYMMETRIC_SPECS[spec].aead].importKey(material);
    } finally {
      material.fill(0);
    }
    this.#materials.set(cacheId, aeadKey);
    return use(aeadKey);
  }

  async #seal(key: KeyRecord, plaintext: Buffer, context: EncryptionContext): Promise<Buffer> {
    const aead = AEADS[SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].aead];
    const header = encodeBlobHeader({ algorithm: aead.name, keyId: key.keyId, keyVersion: key.currentVersion, iv: randomBytes(aead.ivLength) });
    const iv = header.subarray(header.length - aead.ivLength);
    const { ciphertext, tag } =
      key.protectionLevel === "HSM"
        ? await this.#requireHsm(key.keyId).aesGcmEncrypt(await this.#hsmReference(key, key.currentVersion), iv, plaintext, blobAad(header, context))
        : await this.#withKey(key, key.currentVersion, (aeadKey) => aeadKey.encrypt(iv, plaintext, blobAad(header, context)));
    return encodeBlob(header, ciphertext, tag);
  }

  #requireHsm(keyId: string): HsmKeys {
    needs(this.#hsm, "UnsupportedOperation", `key ${keyId} has ProtectionLevel HSM, but this node's root of trust (${this.#root.description}) holds no HSM keys`);
    return this.#hsm;
  }

  /** The reference of an HSM key version's token object, checked to be made for that key and version. */
  async #hsmReference(key: KeyRecord, version: number): Promise<Buffer> {
    const cacheId = `${key.keyId}/${version}`;
    const cached = this.#hsmReferences.get(cacheId);
    if (cached) return cached.reference;
    const hsm = this.#requireHsm(key.keyId);
    const record = await this.#store.getKeyVersion(key.keyId, version);
    needs(record, "InvalidCiphertext", INVALID_CIPHERTEXT);
    needs(hsm.belongsTo(record.wrappedMaterial, key.keyId, version), "InternalError", `key ${key.keyId} version ${version} has no HSM key reference of its own in the store`);
    this.#hsmReferences.set(cacheId, new HsmReference(record.wrappedMaterial));
    return record.wrappedMaterial;
  }

  async #open(caller: Caller, action: "Decrypt" | "ReEncryptSource", bytes: Buffer, context: EncryptionContext): Promise<{ keyId: string; keyVersion: number; plaintext: Buffer }> {
    let parsed;
    try {
      parsed = decodeBlob(bytes);
    } catch (e) {
      if (e instanceof BlobFormatError) throw new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT);
      throw e;
    }
    const key = await this.#store.getKey(parsed.keyId);
    needs(key && key.creatorUin === caller.uin, "InvalidCiphertext", INVALID_CIPHERTEXT);
    this.#authorize(caller, action, key, context);
    this.#checkState(action, key, caller);
    // An asymmetric key never made a blob: one naming it is forged.
    needs(isSymmetricSpec(key.keySpec), "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aead = AEADS[SYMMETRIC_SPECS[key.keySpec].aead];
    needs(parsed.algorithm === aead.name, "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aad = blobAad(parsed.header, context);
    try {
      const plaintext =
        key.protectionLevel === "HSM"
          ? await this.#requireHsm(key.keyId).aesGcmDecrypt(await this.#hsmReference(key, parsed.keyVersion), parsed.iv, parsed.ciphertext, parsed.tag, aad)
          : await this.#withKey(key, parsed.keyVersion, (aeadKey) => aeadKey.decrypt(parsed.iv, parsed.ciphertext, parsed.tag, aad));
      return { keyId: key.keyId, keyVersion: parsed.keyVersion, plaintext };
    } catch (e) {
      if (e instanceof CryptoError || e instanceof RootOfTrustError) {
        throw new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT);
      }
      throw e;
    }
  }
}

export interface AlgorithmEntry {
  keyUsage: KeyUsage;
  algorithm: string;
  protectionLevels: ProtectionLevel[];
}

/** A cached HSM key reference; nothing secret, so destroy() only drops it. */
class HsmReference {
  constructor(readonly reference: Buffer) {}
  destroy(): void {}
}

/** The usage of a signing key for `algorithm`, after checking the key's usage, the algorithm and a DIGEST's length. */
function signingUsage(key: KeyRecord, action: string, algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): UsageInfo {
  const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
  needs(usage?.purpose === "sign", "InvalidKeyUsage", `key ${key.keyId} has usage ${key.keyUsage}: ${action} needs an ASYMMETRIC_SIGN_VERIFY_* key`);
  needs(
    usage.algorithms.includes(algorithm),
    "InvalidParameterValue",
    `"Algorithm" ${algorithm} does not fit key usage ${key.keyUsage}; use ${usage.algorithms.join(" or ")}`,
  );
  if (messageType === "DIGEST" && usage.digest) {
    needs(
      message.length === usage.digest.length,
      "InvalidParameterValue",
      `"Message" must be a ${usage.digest.length}-byte ${usage.digest.name.toUpperCase()} digest when "MessageType" is DIGEST, got ${message.length} bytes`,
    );
  }
  return usage;
}

/** Only symmetric keys with generated material rotate. */
function rotatable(key: KeyRecord): void {
  needs(key.origin !== "EXTERNAL", "ExternalCmkCanNotRotate", `key ${key.keyId} holds imported (EXTERNAL) material, which cannot rotate`);
  needs(key.keyUsage === "ENCRYPT_DECRYPT", "RotateNotSupported", `key ${key.keyId} has usage ${key.keyUsage}: only ENCRYPT_DECRYPT keys rotate`);
}

function checkRotateRate(key: KeyRecord, now: number): void {
  const next = key.lastRotateTime + ROTATE_KEY_INTERVAL_SECONDS;
  needs(key.lastRotateTime === 0 || now >= next, "RotateRateLimited", `key ${key.keyId} rotated at ${key.lastRotateTime}: RotateKey is allowed once per 24 hours, next from ${next}`);
}

/** The BYOK actions need a key created with Type 2 (EXTERNAL). */
function external(key: KeyRecord, action: string): void {
  needs(key.origin === "EXTERNAL", "NotExternalCmk", `key ${key.keyId} is not an EXTERNAL key: ${action} needs a key created with "Type" 2`);
}

/** Throws the lifecycle table's error unless `action` is allowed in the key's current state. */
export function checkKeyState(action: KeyAction, key: Pick<KeyRecord, "keyId" | "state">): void {
  const rule = ruleFor(action, key.state);
  if (rule !== "allow") throw new KmsError(rule, `key ${key.keyId} is ${key.state}: ${action} is not allowed in that state`);
}

function parseQueue(value: string | undefined): string[] {
  if (value === undefined || value === "") return [];
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((r): r is string => typeof r === "string")) throw new Error(`meta ${HSM_DESTROY_QUEUE} is not a JSON array of strings`);
  return parsed;
}

function canonicalEqual(a: EncryptionContext, b: EncryptionContext): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
