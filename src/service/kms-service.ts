// KmsService: one method per action, protocol-neutral; the facade the protocol adapters and tests
// call. Inputs arrive validated by the protocol adapter. The actions live in one file per concern
// (keys.ts, crypto.ts, asymmetric.ts, import.ts, rotation.ts, jobs.ts) over one ServiceContext
// (context.ts: load key, authorize, check state); key material lives behind src/material/.

import { AUDIT_SECRET_NAMES } from "../audit/keys.js";
import type { Auditor } from "../audit/writer.js";
import type { MessageType, PublicKeyWrapAlgorithm } from "../keys/asymmetric.js";
import type { EncryptionContext } from "../keys/blob.js";
import type { AsymmetricKeySpec, KeyRecord, KeySpec, Tag } from "../keys/key.js";
import type { AsymmetricDecryptAlgorithm, KeyAgreementAlgorithm, MacAlgorithm, SigningAlgorithm } from "../keys/specs.js";
import type { RsaEncryptionAlgorithm } from "../crypto/rsa.js";
import { KeyMaterials } from "../material/materials.js";
import type { HsmKeys, RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store, StoreOperations } from "../store/store.js";
import { AccessControl, ROLE_SESSION_SECRET, type Caller } from "./access-control.js";
import { AsymmetricKeys } from "./asymmetric.js";
import { AuditQueries } from "./audit-query.js";
import { HealthCheck, type HealthReport } from "./availability.js";
import type { Clock } from "./clock.js";
import { ServiceContext, type ServiceLogger } from "./context.js";
import { SymmetricCrypto } from "./crypto.js";
import { KeyImport, MATERIAL_DIGEST_SECRET, type WrappingAlgorithm, type WrappingKeySpec } from "./import.js";
import { KeyJobs, type JobReport } from "./jobs.js";
import { KeyManagement, type AlgorithmEntry, type CreateKeyInput, type ListKeyDetailInput } from "./keys.js";
import { KmipObjects } from "./kmip-objects.js";
import { MacKeys } from "./mac.js";
import { PostQuantumKeys } from "./post-quantum.js";
import { KeyRotation } from "./rotation.js";
import { TangServers } from "./tang.js";

export { checkKeyState, DAY_SECONDS, type ServiceLogger } from "./context.js";
export { IMPORT_TOKEN_SECONDS, type WrappingAlgorithm, type WrappingKeySpec } from "./import.js";
export type { JobReport } from "./jobs.js";
export type { AlgorithmEntry, CreateKeyInput, ListKeyDetailInput } from "./keys.js";
export { ROTATE_KEY_INTERVAL_SECONDS } from "./rotation.js";
export type { TangRequest, TangServerView } from "./tang.js";
export type { Caller };

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

const silentLogger: ServiceLogger = { warn: () => {}, error: () => {} };

/** The meta entries holding service secrets wrapped by the root of trust (with serviceSecretAad of their name); root key rotation rewraps them. */
export const SERVICE_SECRET_NAMES: readonly string[] = Object.freeze([MATERIAL_DIGEST_SECRET, ROLE_SESSION_SECRET, ...AUDIT_SECRET_NAMES]);

export class KmsService {
  readonly #materials: KeyMaterials;
  readonly #health: HealthCheck;
  readonly #keys: KeyManagement;
  readonly #crypto: SymmetricCrypto;
  readonly #asymmetric: AsymmetricKeys;
  readonly #import: KeyImport;
  readonly #rotation: KeyRotation;
  readonly #jobs: KeyJobs;
  readonly #mac: MacKeys;
  /** Tencent's post-quantum actions (ML-DSA, hybrid ML-KEM). */
  readonly postQuantum: PostQuantumKeys;
  /** Principals, access keys, policies and roles; the authority every action asks. */
  readonly access: AccessControl;
  /** The exportable KMIP-class objects and KMIP's operations on them. */
  readonly kmip: KmipObjects;
  /** Tang servers: their management actions and the Tang door's advertise and recover. */
  readonly tang: TangServers;
  /** CloudAudit's queries over the audit log (LookUpEvents, DescribeEvents). */
  readonly auditQueries: AuditQueries;
  readonly region: string;
  readonly defaultKeySpec: KeySpec;
  readonly cmkLimit: number;

  constructor(options: KmsServiceOptions) {
    this.region = options.region;
    this.defaultKeySpec = options.defaultKeySpec;
    this.cmkLimit = options.cmkLimit;
    this.auditQueries = new AuditQueries(options.store, options.clock);
    this.access = new AccessControl({
      ...(options.auditor ? { auditor: options.auditor } : {}),
      store: options.store,
      rootOfTrust: options.rootOfTrust,
      clock: options.clock,
      region: options.region,
      cacheMs: options.accessKeyCacheMs ?? 1000,
    });
    const logger = options.logger ?? silentLogger;
    this.#materials = new KeyMaterials({
      store: options.store,
      rootOfTrust: options.rootOfTrust,
      hsmKeys: options.hsmKeys ?? options.rootOfTrust.hsmKeys,
      cache: options.materialCache ?? { maxEntries: 1000, ttlMs: 5 * 60_000 },
      now: () => options.clock.now(),
      logger,
    });
    const ctx = new ServiceContext({
      store: options.store,
      rootOfTrust: options.rootOfTrust,
      clock: options.clock,
      region: options.region,
      defaultKeySpec: options.defaultKeySpec,
      cmkLimit: options.cmkLimit,
      materials: this.#materials,
      access: this.access,
      auditor: options.auditor,
      logger,
    });
    this.#health = new HealthCheck(options.store, options.rootOfTrust, () => options.clock.now());
    this.#keys = new KeyManagement(ctx);
    this.#crypto = new SymmetricCrypto(ctx);
    this.#asymmetric = new AsymmetricKeys(ctx);
    this.#import = new KeyImport(ctx);
    this.#rotation = new KeyRotation(ctx);
    this.#jobs = new KeyJobs(ctx, this.#rotation);
    this.kmip = new KmipObjects(ctx);
    this.#mac = new MacKeys(ctx);
    this.postQuantum = new PostQuantumKeys(ctx);
    this.tang = new TangServers(ctx);
  }

  // ---- key management (keys.ts) ----

  createKey(caller: Caller, input: CreateKeyInput): Promise<KeyRecord> {
    return this.#keys.createKey(caller, input);
  }

  describeKey(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.#keys.describeKey(caller, keyId);
  }

  /** The id of the caller's account's key with this alias (CmkNotFound when there is none). */
  keyIdOfAlias(caller: Caller, alias: string): Promise<string> {
    return this.#keys.keyIdOfAlias(caller, alias);
  }

  describeKeys(caller: Caller, keyIds: readonly string[]): Promise<KeyRecord[]> {
    return this.#keys.describeKeys(caller, keyIds);
  }

  listKeys(caller: Caller, input: { offset: number; limit: number; role: 0 | 1 }): Promise<{ keyIds: string[]; totalCount: number }> {
    return this.#keys.listKeys(caller, input);
  }

  listKeyDetail(caller: Caller, input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    return this.#keys.listKeyDetail(caller, input);
  }

  enableKey(caller: Caller, keyId: string): Promise<void> {
    return this.#keys.changeStates(caller, "EnableKey", [keyId]);
  }

  disableKey(caller: Caller, keyId: string): Promise<void> {
    return this.#keys.changeStates(caller, "DisableKey", [keyId]);
  }

  /** All or nothing: if any key is missing or in the wrong state, none changes. */
  enableKeys(caller: Caller, keyIds: readonly string[]): Promise<void> {
    return this.#keys.changeStates(caller, "EnableKey", keyIds, "EnableKeys");
  }

  disableKeys(caller: Caller, keyIds: readonly string[]): Promise<void> {
    return this.#keys.changeStates(caller, "DisableKey", keyIds, "DisableKeys");
  }

  updateAlias(caller: Caller, keyId: string, alias: string): Promise<void> {
    return this.#keys.updateAlias(caller, keyId, alias);
  }

  /** Gives a key without an alias `alias`: a new one, or (`move`) one moved from the key that holds it. */
  assignAlias(caller: Caller, keyId: string, alias: string, move: boolean): Promise<void> {
    return this.#keys.assignAlias(caller, keyId, alias, move);
  }

  /** Takes `alias` from its key, which is left without one. */
  removeAlias(caller: Caller, alias: string): Promise<void> {
    return this.#keys.removeAlias(caller, alias);
  }

  tagKey(caller: Caller, keyId: string, tags: readonly Tag[]): Promise<void> {
    return this.#keys.tagKey(caller, keyId, tags);
  }

  listKeyTags(caller: Caller, keyId: string): Promise<Tag[]> {
    return this.#keys.listKeyTags(caller, keyId);
  }

  untagKey(caller: Caller, keyId: string, tagKeys: readonly string[]): Promise<void> {
    return this.#keys.untagKey(caller, keyId, tagKeys);
  }

  updateKeyDescription(caller: Caller, keyId: string, description: string): Promise<void> {
    return this.#keys.updateKeyDescription(caller, keyId, description);
  }

  archiveKey(caller: Caller, keyId: string): Promise<void> {
    return this.#keys.changeStates(caller, "ArchiveKey", [keyId]);
  }

  cancelKeyArchive(caller: Caller, keyId: string): Promise<void> {
    return this.#keys.changeStates(caller, "CancelKeyArchive", [keyId]);
  }

  /** Moves a Disabled (or PendingImport; with `aws`, Enabled too) key to PendingDelete; the scheduler destroys it at the returned time. */
  scheduleKeyDeletion(caller: Caller, keyId: string, pendingWindowInDays: number, aws = false): Promise<{ keyId: string; deletionDate: number }> {
    return this.#keys.scheduleKeyDeletion(caller, keyId, pendingWindowInDays, aws ? "ScheduleKeyDeletionAws" : "ScheduleKeyDeletion");
  }

  cancelKeyDeletion(caller: Caller, keyId: string): Promise<{ keyId: string }> {
    return this.#keys.cancelKeyDeletion(caller, keyId);
  }

  getServiceStatus(caller: Caller): Promise<{ cmkUserCount: number; cmkLimit: number }> {
    return this.#keys.getServiceStatus(caller);
  }

  listAlgorithms(caller: Caller): { symmetric: AlgorithmEntry[]; asymmetric: AlgorithmEntry[]; signVerify: AlgorithmEntry[] } {
    return this.#keys.listAlgorithms(caller);
  }

  getRegions(caller: Caller): string[] {
    return this.#keys.getRegions(caller);
  }

  // ---- rotation (rotation.ts) ----

  enableKeyRotation(caller: Caller, keyId: string, rotateDays: number): Promise<void> {
    return this.#rotation.enableKeyRotation(caller, keyId, rotateDays);
  }

  disableKeyRotation(caller: Caller, keyId: string): Promise<void> {
    return this.#rotation.disableKeyRotation(caller, keyId);
  }

  getKeyRotationStatus(caller: Caller, keyId: string): Promise<KeyRecord> {
    return this.#rotation.getKeyRotationStatus(caller, keyId);
  }

  rotateKey(caller: Caller, keyId: string): Promise<{ taskId: string }> {
    return this.#rotation.rotateKey(caller, keyId);
  }

  listKeyVersions(caller: Caller, keyId: string): Promise<{ key: KeyRecord; versions: { version: number; createTime: number }[] }> {
    return this.#rotation.listKeyVersions(caller, keyId);
  }

  // ---- bring your own key (import.ts) ----

  getParametersForImport(
    caller: Caller,
    keyId: string,
    wrappingKeySpec: WrappingKeySpec,
    wrappingAlgorithm: WrappingAlgorithm,
  ): Promise<{ keyId: string; importToken: string; publicKey: Buffer; parametersValidTo: number }> {
    return this.#import.getParametersForImport(caller, keyId, wrappingKeySpec, wrappingAlgorithm);
  }

  importKeyMaterial(caller: Caller, input: { keyId: string; importToken: string; encryptedKeyMaterial: Buffer; validTo: number }): Promise<void> {
    return this.#import.importKeyMaterial(caller, input);
  }

  deleteImportedKeyMaterial(caller: Caller, keyId: string): Promise<void> {
    return this.#import.deleteImportedKeyMaterial(caller, keyId);
  }

  // ---- scheduled jobs (jobs.ts) ----

  runDueJobs(): Promise<JobReport> {
    return this.#jobs.runDueJobs();
  }

  // ---- symmetric cryptography (crypto.ts) ----

  encrypt(caller: Caller, keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ keyId: string; blob: Buffer }> {
    return this.#crypto.encrypt(caller, keyId, plaintext, context);
  }

  decrypt(caller: Caller, blob: Buffer, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer }> {
    return this.#crypto.decrypt(caller, blob, context);
  }

  reEncrypt(caller: Caller, input: {
    blob: Buffer;
    destinationKeyId?: string;
    sourceContext: EncryptionContext;
    destinationContext: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string; sourceKeyId: string; reEncrypted: boolean }> {
    return this.#crypto.reEncrypt(caller, input);
  }

  generateDataKey(caller: Caller, keyId: string, numberOfBytes: number, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer; blob: Buffer }> {
    return this.#crypto.generateDataKey(caller, keyId, numberOfBytes, context);
  }

  /** A key pair whose private half is returned in the clear and sealed under a symmetric CMK. */
  generateDataKeyPair(caller: Caller, keyId: string, spec: AsymmetricKeySpec, context: EncryptionContext): Promise<{ keyId: string; publicKey: Buffer; privateKey: Buffer; blob: Buffer }> {
    return this.#crypto.generateDataKeyPair(caller, keyId, spec, context);
  }

  generateRandom(caller: Caller, numberOfBytes: number): Buffer {
    return this.#crypto.generateRandom(caller, numberOfBytes);
  }

  // ---- asymmetric keys (asymmetric.ts) ----

  publicKeyWrapper(publicKey: string, algorithm: PublicKeyWrapAlgorithm): (plaintext: Buffer) => Buffer {
    return this.#asymmetric.publicKeyWrapper(publicKey, algorithm);
  }

  getPublicKey(caller: Caller, keyId: string): Promise<{ keyId: string; publicKey: Buffer; keySpec: KeySpec }> {
    return this.#asymmetric.getPublicKey(caller, keyId);
  }

  sign(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType }): Promise<{ keyId: string; signature: Buffer }> {
    return this.#asymmetric.sign(caller, input);
  }

  verify(caller: Caller, input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType; signature: Buffer }): Promise<boolean> {
    return this.#asymmetric.verify(caller, input);
  }

  /** Encrypts to an RSA decryption key's public key (needs kms:Encrypt on it). */
  asymmetricEncrypt(caller: Caller, keyId: string, algorithm: RsaEncryptionAlgorithm, plaintext: Buffer): Promise<{ keyId: string; ciphertext: Buffer }> {
    return this.#asymmetric.asymmetricEncrypt(caller, keyId, algorithm, plaintext);
  }

  asymmetricDecrypt(
    caller: Caller,
    action: "AsymmetricRsaDecrypt" | "AsymmetricSm2Decrypt",
    keyId: string,
    algorithm: AsymmetricDecryptAlgorithm,
    ciphertext: Buffer,
  ): Promise<{ keyId: string; plaintext: Buffer }> {
    return this.#asymmetric.asymmetricDecrypt(caller, action, keyId, algorithm, ciphertext);
  }

  /** ECDH with a key agreement key; the peer's public key (DER SPKI) is validated first. */
  deriveSharedSecret(caller: Caller, input: { keyId: string; algorithm: KeyAgreementAlgorithm; publicKey: Buffer }): Promise<{ keyId: string; sharedSecret: Buffer }> {
    return this.#asymmetric.deriveSharedSecret(caller, input);
  }

  // ---- HMAC keys (mac.ts) ----

  generateMac(caller: Caller, input: { keyId: string; algorithm: MacAlgorithm; message: Buffer }): Promise<{ keyId: string; mac: Buffer }> {
    return this.#mac.generateMac(caller, input);
  }

  /** Tries the key's versions, newest first; false when none made the MAC. */
  verifyMac(caller: Caller, input: { keyId: string; algorithm: MacAlgorithm; message: Buffer; mac: Buffer }): Promise<{ keyId: string; valid: boolean }> {
    return this.#mac.verifyMac(caller, input);
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
    return { materialCache: this.#materials.cacheStats(), healthCheckFailures: { ...this.#health.failures } };
  }

  close(): void {
    this.#materials.close();
    this.#import.close();
    this.access.close();
  }
}
