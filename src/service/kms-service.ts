// KmsService: one method per action, protocol-neutral. Inputs arrive validated by the protocol
// adapter; this layer enforces the key lifecycle, owns key material and talks to the ports.

import { randomUUID } from "node:crypto";
import { AEADS, type AeadKey } from "../crypto/aead.js";
import { CryptoError } from "../crypto/errors.js";
import { randomAlphanumeric, randomBytes } from "../crypto/random.js";
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
import { KEY_USAGES, SYMMETRIC_KEY_SPECS, type AsymmetricKeyUsage, type KeyOrigin, type KeyRecord, type KeySpec, type KeyState, type KeyUsage, type SymmetricKeySpec, type Tag } from "../keys/key.js";
import { ruleFor, stateAfter, type KeyAction } from "../keys/lifecycle.js";
import {
  ASYMMETRIC_SPECS,
  ASYMMETRIC_USAGES,
  SYMMETRIC_SPECS,
  isAsymmetricUsage,
  isSymmetricSpec,
  type AsymmetricDecryptAlgorithm,
  type SigningAlgorithm,
  type UsageInfo,
} from "../keys/specs.js";
import { accessKeySecretAad, keyMaterialAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import { StoreConflictError, type KeyListQuery, type Store, type StoreOperations } from "../store/store.js";
import { unixSeconds, type Clock } from "./clock.js";
import { KmsError, needs } from "./errors.js";
import { MaterialCache } from "./material-cache.js";

export interface KmsServiceOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  clock: Clock;
  region: string;
  /** Spec of new symmetric CMKs when CreateKey names none. */
  defaultKeySpec: KeySpec;
  /** Most CMKs the account may hold. */
  cmkLimit: number;
  /** Bounds of each cache of prepared keys (symmetric AEAD keys; asymmetric private keys). */
  materialCache?: { maxEntries: number; ttlMs: number };
  /** How long a found access key is remembered (default 1000 ms; 0 looks it up on every request). */
  accessKeyCacheMs?: number;
}

/** Who is calling; resolved from the request's access key. */
export interface Caller {
  uin: string;
  secretId: string;
}

export interface ResolvedAccessKey {
  uin: string;
  unwrapSecret(): Promise<string>;
  /** Changes whenever the stored secret does, so derived signing keys can be cached safely. */
  version: string;
}

export interface CreateKeyInput {
  alias: string;
  description: string;
  keyUsage: KeyUsage;
  keySpec?: KeySpec;
  tags: Tag[];
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
const MAX_CACHED_ACCESS_KEYS = 10_000;
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
  readonly #accessKeys = new Map<string, { resolved: ResolvedAccessKey; expiresAt: number }>();
  readonly accessKeyCacheMs: number;
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
    this.accessKeyCacheMs = options.accessKeyCacheMs ?? 1000;
    const cacheOptions = options.materialCache ?? { maxEntries: 1000, ttlMs: 5 * 60_000 };
    this.#materials = new MaterialCache<AeadKey>(cacheOptions, () => this.#clock.now());
    this.#privateKeys = new MaterialCache<AsymmetricPrivateKey>(cacheOptions, () => this.#clock.now());
  }

  // ---- access keys ----

  /**
   * The active access key with this SecretId, or undefined. Its secret is unwrapped only on demand.
   * Found keys are remembered for `accessKeyCacheMs`, so a disabled or removed access key stops
   * working within that time on every node; unknown ids are looked up every time.
   */
  async resolveAccessKey(secretId: string): Promise<ResolvedAccessKey | undefined> {
    const now = this.#clock.now();
    const cached = this.#accessKeys.get(secretId);
    if (cached && cached.expiresAt > now) return cached.resolved;
    const record = await this.#store.getAccessKey(secretId);
    if (!record || record.status !== "Active") {
      this.#accessKeys.delete(secretId);
      return undefined;
    }
    const resolved: ResolvedAccessKey = {
      uin: record.uin,
      version: record.wrappedSecret.toString("base64"),
      unwrapSecret: async () => {
        const secret = await this.#root.unwrap(record.wrappedSecret, accessKeySecretAad(secretId));
        try {
          return secret.toString("utf8");
        } finally {
          secret.fill(0);
        }
      },
    };
    if (this.#accessKeys.size >= MAX_CACHED_ACCESS_KEYS) this.#accessKeys.clear();
    this.#accessKeys.set(secretId, { resolved, expiresAt: now + this.accessKeyCacheMs });
    return resolved;
  }

  /** Creates an access key for the account; returns the only copy of its secret. */
  async createAccessKey(uin: string): Promise<{ secretId: string; secretKey: string }> {
    const secretId = `AKID${randomAlphanumeric(32)}`;
    const secretKey = randomAlphanumeric(40);
    const wrappedSecret = await this.#root.wrap(Buffer.from(secretKey, "utf8"), accessKeySecretAad(secretId));
    await this.#store.insertAccessKey({ secretId, wrappedSecret, uin, status: "Active", createTime: this.#now() });
    return { secretId, secretKey };
  }

  // ---- key management ----

  async createKey(caller: Caller, input: CreateKeyInput): Promise<KeyRecord> {
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
    needs(!(await this.#store.getKeyByAlias(input.alias)), "AliasAlreadyExists", `"Alias" ${input.alias} is already in use`);
    needs((await this.#store.countKeys()) < this.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${this.cmkLimit} keys`);

    const keyId = randomUUID();
    let material: Buffer;
    let publicKey: Buffer | null = null;
    if (isSymmetricSpec(keySpec)) {
      material = randomBytes(SYMMETRIC_SPECS[keySpec].materialLength);
    } else {
      const pair = generateKeyPair(keySpec);
      material = pair.privateMaterial;
      publicKey = pair.publicKey;
    }
    let wrappedMaterial: Buffer;
    try {
      wrappedMaterial = await this.#root.wrap(material, keyMaterialAad(keyId, 1));
    } finally {
      material.fill(0);
    }
    const now = this.#now();
    const key: KeyRecord = {
      keyId,
      alias: input.alias,
      description: input.description,
      keyUsage: input.keyUsage,
      keySpec,
      origin: "TENCENT_KMS",
      state: "Enabled",
      creatorUin: caller.uin,
      owner: USER_OWNER,
      createTime: now,
      deletionDate: 0,
      currentVersion: 1,
      tags: input.tags,
    };
    try {
      await this.#store.transaction(async (tx) => {
        // Checked again inside the transaction: another request may have taken the last slot.
        needs((await tx.countKeys()) < this.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${this.cmkLimit} keys`);
        await tx.insertKey(key, { keyId, version: 1, wrappedMaterial, publicKey, createTime: now });
      });
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "alias") throw new KmsError("AliasAlreadyExists", `"Alias" ${input.alias} is already in use`);
      throw e;
    }
    return key;
  }

  describeKey(keyId: string): Promise<KeyRecord> {
    return this.#keyFor(this.#store, "DescribeKey", keyId);
  }

  describeKeys(keyIds: readonly string[]): Promise<KeyRecord[]> {
    return this.#store.transaction((tx) => Promise.all(keyIds.map((id) => this.#keyFor(tx, "DescribeKey", id))));
  }

  async listKeys(input: { offset: number; limit: number; role: 0 | 1 }): Promise<{ keyIds: string[]; totalCount: number }> {
    const { keys, totalCount } = await this.listKeyDetail({ ...input, order: "desc", states: LIST_KEYS_STATES });
    return { keyIds: keys.map((k) => k.keyId), totalCount };
  }

  async listKeyDetail(input: ListKeyDetailInput): Promise<{ keys: KeyRecord[]; totalCount: number }> {
    if (input.role === 1) return { keys: [], totalCount: 0 };
    const query: KeyListQuery = { offset: input.offset, limit: input.limit, order: input.order, owner: USER_OWNER };
    if (input.states) query.states = input.states;
    if (input.search) query.search = input.search;
    if (input.origin) query.origin = input.origin;
    if (input.keyUsages) query.keyUsages = input.keyUsages;
    if (input.tagFilters && input.tagFilters.length > 0) query.tagFilters = input.tagFilters;
    return this.#store.listKeys(query);
  }

  enableKey(keyId: string): Promise<void> {
    return this.#changeStates("EnableKey", [keyId]);
  }

  disableKey(keyId: string): Promise<void> {
    return this.#changeStates("DisableKey", [keyId]);
  }

  /** All or nothing: if any key is missing or in the wrong state, none changes. */
  enableKeys(keyIds: readonly string[]): Promise<void> {
    return this.#changeStates("EnableKey", keyIds);
  }

  disableKeys(keyIds: readonly string[]): Promise<void> {
    return this.#changeStates("DisableKey", keyIds);
  }

  updateAlias(keyId: string, alias: string): Promise<void> {
    return this.#store.transaction(async (tx) => {
      const key = await this.#keyFor(tx, "UpdateAlias", keyId);
      if (key.alias === alias) return;
      needs(!(await tx.getKeyByAlias(alias)), "AliasAlreadyExists", `"Alias" ${alias} is already in use`);
      await tx.updateKey({ ...key, alias });
    });
  }

  updateKeyDescription(keyId: string, description: string): Promise<void> {
    return this.#store.transaction(async (tx) => {
      const key = await this.#keyFor(tx, "UpdateKeyDescription", keyId);
      await tx.updateKey({ ...key, description });
    });
  }

  // ---- cryptographic operations ----

  async encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ keyId: string; blob: Buffer }> {
    const key = await this.#symmetricKeyFor("Encrypt", keyId);
    return { keyId: key.keyId, blob: await this.#seal(key, plaintext, context) };
  }

  async decrypt(blob: Buffer, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer }> {
    return this.#open("Decrypt", blob, context);
  }

  async reEncrypt(input: {
    blob: Buffer;
    destinationKeyId?: string;
    sourceContext: EncryptionContext;
    destinationContext: EncryptionContext;
  }): Promise<{ blob: Buffer; keyId: string; sourceKeyId: string; reEncrypted: boolean }> {
    const { keyId: sourceKeyId, plaintext, keyVersion } = await this.#open("ReEncryptSource", input.blob, input.sourceContext);
    try {
      const destination = await this.#symmetricKeyFor("ReEncryptDestination", input.destinationKeyId ?? sourceKeyId);
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

  async generateDataKey(keyId: string, numberOfBytes: number, context: EncryptionContext): Promise<{ keyId: string; plaintext: Buffer; blob: Buffer }> {
    const key = await this.#symmetricKeyFor("GenerateDataKey", keyId);
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
  async getPublicKey(keyId: string): Promise<{ keyId: string; publicKey: Buffer }> {
    const key = await this.#keyFor(this.#store, "GetPublicKey", keyId);
    needs(isAsymmetricUsage(key.keyUsage), "InvalidKeyUsage", `key ${keyId} has usage ENCRYPT_DECRYPT: GetPublicKey needs an asymmetric key`);
    return { keyId: key.keyId, publicKey: await this.#publicKeyOf(key) };
  }

  async sign(input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType }): Promise<{ keyId: string; signature: Buffer }> {
    const key = await this.#keyFor(this.#store, "SignByAsymmetricKey", input.keyId);
    signingUsage(key, "SignByAsymmetricKey", input.algorithm, input.message, input.messageType);
    const signature = await this.#withPrivateKey(key, (privateKey) => privateKey.sign(input.algorithm, input.message, input.messageType));
    return { keyId: key.keyId, signature };
  }

  /** False for any signature that does not verify, including malformed ones; errors only for bad requests. */
  async verify(input: { keyId: string; algorithm: SigningAlgorithm; message: Buffer; messageType: MessageType; signature: Buffer }): Promise<boolean> {
    const key = await this.#keyFor(this.#store, "VerifyByAsymmetricKey", input.keyId);
    signingUsage(key, "VerifyByAsymmetricKey", input.algorithm, input.message, input.messageType);
    const publicKey = await this.#publicKeyOf(key);
    return verifySignature(key.keySpec as keyof typeof ASYMMETRIC_SPECS, publicKey, input.algorithm, input.message, input.messageType, input.signature);
  }

  /** AsymmetricRsaDecrypt (an RSA decryption key and one of its algorithms) or AsymmetricSm2Decrypt (an SM2 one). */
  async asymmetricDecrypt(
    action: "AsymmetricRsaDecrypt" | "AsymmetricSm2Decrypt",
    keyId: string,
    algorithm: AsymmetricDecryptAlgorithm,
    ciphertext: Buffer,
  ): Promise<{ keyId: string; plaintext: Buffer }> {
    const key = await this.#keyFor(this.#store, action, keyId);
    const family = action === "AsymmetricSm2Decrypt" ? "SM2" : "RSA";
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    needs(
      usage?.purpose === "decrypt" && ASYMMETRIC_SPECS[usage.spec].family === family,
      "InvalidKeyUsage",
      `key ${keyId} has usage ${key.keyUsage}: ${action} needs ${family === "SM2" ? "ASYMMETRIC_DECRYPT_SM2" : "an ASYMMETRIC_DECRYPT_RSA_* key"}`,
    );
    needs(usage.algorithms.includes(algorithm), "InvalidParameterValue", `"Algorithm" ${algorithm} does not fit key usage ${key.keyUsage}`);
    try {
      const plaintext = await this.#withPrivateKey(key, (privateKey) => privateKey.decrypt(algorithm, ciphertext));
      return { keyId: key.keyId, plaintext };
    } catch (e) {
      if (e instanceof CryptoError) throw new KmsError("DecryptError", `"Ciphertext" does not decrypt under key ${keyId} with ${algorithm}`);
      throw e;
    }
  }

  generateRandom(numberOfBytes: number): Buffer {
    return randomBytes(numberOfBytes);
  }

  // ---- service information ----

  async getServiceStatus(): Promise<{ cmkUserCount: number; cmkLimit: number }> {
    return { cmkUserCount: await this.#store.countKeys(), cmkLimit: this.cmkLimit };
  }

  listAlgorithms(): { symmetric: AlgorithmEntry[]; asymmetric: AlgorithmEntry[]; signVerify: AlgorithmEntry[] } {
    const asymmetric: AlgorithmEntry[] = [];
    const signVerify: AlgorithmEntry[] = [];
    for (const [keyUsage, usage] of Object.entries(ASYMMETRIC_USAGES) as [AsymmetricKeyUsage, UsageInfo][]) {
      (usage.purpose === "sign" ? signVerify : asymmetric).push({ keyUsage, algorithm: ASYMMETRIC_SPECS[usage.spec].algorithmName });
    }
    return { symmetric: SYMMETRIC_KEY_SPECS.map((spec) => ({ keyUsage: "ENCRYPT_DECRYPT", algorithm: spec })), asymmetric, signVerify };
  }

  getRegions(): string[] {
    return [this.region];
  }

  close(): void {
    this.#materials.clear();
    this.#privateKeys.clear();
    this.#accessKeys.clear();
  }

  // ---- internals ----

  #now(): number {
    return unixSeconds(this.#clock);
  }

  async #keyFor(store: StoreOperations, action: KeyAction, keyId: string): Promise<KeyRecord> {
    const key = await store.getKey(keyId);
    needs(key, "CmkNotFound", `key ${keyId} does not exist`);
    checkKeyState(action, key);
    return key;
  }

  /** #keyFor, and the key must be a symmetric (ENCRYPT_DECRYPT) one. */
  async #symmetricKeyFor(action: KeyAction, keyId: string): Promise<KeyRecord> {
    const key = await this.#keyFor(this.#store, action, keyId);
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

  #changeStates(action: "EnableKey" | "DisableKey", keyIds: readonly string[]): Promise<void> {
    return this.#store.transaction(async (tx) => {
      const keys: KeyRecord[] = [];
      for (const id of keyIds) keys.push(await this.#keyFor(tx, action, id));
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
    const { ciphertext, tag } = await this.#withKey(key, key.currentVersion, (aeadKey) =>
      aeadKey.encrypt(header.subarray(header.length - aead.ivLength), plaintext, blobAad(header, context)),
    );
    return encodeBlob(header, ciphertext, tag);
  }

  async #open(action: "Decrypt" | "ReEncryptSource", bytes: Buffer, context: EncryptionContext): Promise<{ keyId: string; keyVersion: number; plaintext: Buffer }> {
    let parsed;
    try {
      parsed = decodeBlob(bytes);
    } catch (e) {
      if (e instanceof BlobFormatError) throw new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT);
      throw e;
    }
    const key = await this.#store.getKey(parsed.keyId);
    needs(key, "InvalidCiphertext", INVALID_CIPHERTEXT);
    checkKeyState(action, key);
    // An asymmetric key never made a blob: one naming it is forged.
    needs(isSymmetricSpec(key.keySpec), "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aead = AEADS[SYMMETRIC_SPECS[key.keySpec].aead];
    needs(parsed.algorithm === aead.name, "InvalidCiphertext", INVALID_CIPHERTEXT);
    const aad = blobAad(parsed.header, context);
    try {
      const plaintext = await this.#withKey(key, parsed.keyVersion, (aeadKey) => aeadKey.decrypt(parsed.iv, parsed.ciphertext, parsed.tag, aad));
      return { keyId: key.keyId, keyVersion: parsed.keyVersion, plaintext };
    } catch (e) {
      if (e instanceof CryptoError) {
        throw new KmsError("InvalidCiphertext", INVALID_CIPHERTEXT);
      }
      throw e;
    }
  }
}

export interface AlgorithmEntry {
  keyUsage: KeyUsage;
  algorithm: string;
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

/** Throws the lifecycle table's error unless `action` is allowed in the key's current state. */
export function checkKeyState(action: KeyAction, key: Pick<KeyRecord, "keyId" | "state">): void {
  const rule = ruleFor(action, key.state);
  if (rule !== "allow") throw new KmsError(rule, `key ${key.keyId} is ${key.state}: ${action} is not allowed in that state`);
}

function canonicalEqual(a: EncryptionContext, b: EncryptionContext): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}
