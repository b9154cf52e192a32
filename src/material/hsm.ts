// Keys of ProtectionLevel HSM: material generated inside the PKCS#11 token as non-extractable
// objects and used there; the store keeps each version's object reference. Deleted keys' objects
// are queued in the store (meta) in the transaction that deletes the rows and destroyed after it.

import { createHash } from "node:crypto";
import type { MessageType } from "../keys/asymmetric.js";
import type { KeySpec } from "../keys/key.js";
import { ecmrCheckPoint, ecmrFromX, type EcPoint } from "../crypto/ecmr.js";
import { p521PointOfSpki } from "../keys/jwk.js";
import { ASYMMETRIC_USAGES, hsmSupports, isAsymmetricUsage, type AsymmetricDecryptAlgorithm, type SigningAlgorithm } from "../keys/specs.js";
import { HsmUnsupportedError, RootOfTrustError, type HsmKeyPairSpec, type HsmKeys, type RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store, StoreOperations } from "../store/store.js";
import { MaterialCache, type MaterialCacheOptions } from "./cache.js";
import { MaterialError, type KeyMaterial, type MaterialKey, type MaterialLogger, type NewMaterial } from "./material.js";

/** Meta entry: JSON array of base64 references of HSM key objects whose keys were deleted, still to destroy. */
const HSM_DESTROY_QUEUE = "hsm-objects-to-destroy";

export interface HsmMaterialOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  hsmKeys: HsmKeys | undefined;
  cache: MaterialCacheOptions;
  now: () => number;
  logger: MaterialLogger;
}

/** A cached HSM key reference; nothing secret, so destroy() only drops it. */
class HsmReference {
  constructor(readonly reference: Buffer) {}
  destroy(): void {}
}

export class HsmMaterial implements KeyMaterial {
  readonly protectionLevel = "HSM";
  readonly #store: Store;
  readonly #rootDescription: string;
  readonly #hsm: HsmKeys | undefined;
  readonly #logger: MaterialLogger;
  /** References of versions' token objects (not material: the cache only saves a store read). */
  readonly #references: MaterialCache<HsmReference>;

  constructor(options: HsmMaterialOptions) {
    this.#store = options.store;
    this.#rootDescription = options.rootOfTrust.description;
    this.#hsm = options.hsmKeys;
    this.#logger = options.logger;
    this.#references = new MaterialCache<HsmReference>(options.cache, options.now);
  }

  /** The token's description; undefined when this node holds no HSM keys. */
  get token(): string | undefined {
    return this.#hsm?.description;
  }

  /** Whether this node can make HSM keys of `spec`. */
  offers(spec: KeySpec): boolean {
    return this.#hsm !== undefined && hsmSupports(spec);
  }

  async generate(key: MaterialKey, version: number): Promise<NewMaterial> {
    const hsm = this.#require(key.keyId);
    if (isAsymmetricUsage(key.keyUsage)) {
      const purpose = ASYMMETRIC_USAGES[key.keyUsage].purpose;
      // HSM_KEY_SPECS holds no post-quantum spec: the service refuses those before this.
      if (purpose === "pq-sign" || purpose === "pq-decrypt" || purpose === "agree") throw new MaterialError("Unsupported", `${key.keySpec} keys are not made inside the HSM`);
      const pair = await hsm.generateKeyPair(key.keySpec as HsmKeyPairSpec, purpose === "exchange" ? "derive" : purpose, key.keyId, version);
      return { stored: pair.reference, publicKey: pair.publicKey };
    }
    return { stored: await hsm.generateAes256(key.keyId, version), publicKey: null };
  }

  /** Destroys a token object this node made but did not record (a failed insert or a lost race); logs when it cannot. */
  async discard(keyId: string, stored: Buffer): Promise<void> {
    try {
      await this.#require(keyId).destroy(stored);
    } catch (e) {
      this.#logger.warn({ keyId, err: { name: (e as Error).name, message: (e as Error).message } }, "could not destroy an unused HSM key object; it is an orphan in the token");
    }
  }

  async seal(key: MaterialKey, version: number, iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<{ ciphertext: Buffer; tag: Buffer }> {
    const hsm = this.#require(key.keyId);
    return hsm.aesGcmEncrypt(await this.#reference(key, version), iv, plaintext, aad);
  }

  async open(key: MaterialKey, version: number, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Promise<Buffer> {
    const hsm = this.#require(key.keyId);
    const reference = await this.#reference(key, version);
    return undecryptable(() => hsm.aesGcmDecrypt(reference, iv, ciphertext, tag, aad));
  }

  async sign(key: MaterialKey, version: number, algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): Promise<Buffer> {
    // The token signs a digest: a RAW message is hashed here first (the digest reveals nothing the message does not).
    const usage = isAsymmetricUsage(key.keyUsage) ? ASYMMETRIC_USAGES[key.keyUsage] : undefined;
    const digest = messageType === "RAW" ? createHash(usage!.digest!.name).update(message).digest() : message;
    const mechanism = algorithm === "RSA_PSS_SHA_256" || algorithm === "RSA_PKCS1_SHA_256" ? algorithm : "ECDSA";
    const hsm = this.#require(key.keyId);
    return hsm.sign(await this.#reference(key, version), mechanism, digest);
  }

  /**
   * s·X with s inside the token: ECDH there gives x(s·X) only, so a second derivation on X + c·G
   * tells which of the two points with that x it is (crypto/ecmr.ts). The service checked the point.
   */
  async exchange(key: MaterialKey, version: number, point: EcPoint): Promise<EcPoint> {
    const hsm = this.#require(key.keyId);
    const reference = await this.#reference(key, version);
    const record = await this.#store.getKeyVersion(key.keyId, version);
    if (!record?.publicKey) throw new MaterialError("NoSuchVersion", `key ${key.keyId} has no public key for version ${version}`);
    const publicKey = p521PointOfSpki(record.publicKey);
    const check = ecmrCheckPoint(point);
    const uncompressed = (p: EcPoint) => Buffer.concat([Buffer.of(4), p.x, p.y]);
    const [x, xCheck] = await Promise.all([hsm.ecdhDerive(reference, uncompressed(point)), hsm.ecdhDerive(reference, uncompressed(check.point))]);
    return ecmrFromX(x, xCheck, publicKey, check.c);
  }

  async decrypt(key: MaterialKey, version: number, algorithm: AsymmetricDecryptAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    // A token's PKCS#1 v1.5 decryption tells a bad padding apart (a Bleichenbacher oracle); the
    // software path's implicit rejection cannot be done inside it, so HSM keys offer OAEP only.
    if (algorithm !== "RSAES_OAEP_SHA_1" && algorithm !== "RSAES_OAEP_SHA_256") {
      throw new MaterialError("Unsupported", `"Algorithm" ${algorithm} is not offered for ProtectionLevel HSM keys: use RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256`);
    }
    const hash = algorithm === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256";
    const hsm = this.#require(key.keyId);
    const reference = await this.#reference(key, version);
    try {
      return await undecryptable(() => hsm.rsaOaepDecrypt(reference, hash, ciphertext));
    } catch (e) {
      if (e instanceof HsmUnsupportedError) throw new MaterialError("Unsupported", `"Algorithm" ${algorithm}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  /**
   * Queues the key's token objects in the transaction that deletes its rows; destroyRetired()
   * destroys them after it commits: never before (CancelKeyDeletion could still win), never
   * forgotten (a crash or an absent HSM leaves them queued for the next run).
   */
  async retire(tx: StoreOperations, keyId: string): Promise<void> {
    const references = (await tx.listKeyVersions(keyId)).map((v) => v.wrappedMaterial.toString("base64"));
    const queued = parseQueue(await tx.getMeta(HSM_DESTROY_QUEUE));
    await tx.setMeta(HSM_DESTROY_QUEUE, JSON.stringify([...queued, ...references.filter((r) => !queued.includes(r))]));
  }

  /**
   * Destroys the queued token objects of deleted keys and removes them from the queue; what cannot
   * be destroyed now (HSM away) stays queued and is logged. Idempotent: an object already gone
   * counts as destroyed.
   */
  async destroyRetired(): Promise<void> {
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

  forget(keyId: string): void {
    this.#references.dropPrefix(`${keyId}/`);
  }

  close(): void {
    this.#references.clear();
  }

  #require(keyId: string): HsmKeys {
    if (this.#hsm === undefined) {
      throw new MaterialError("Unsupported", `key ${keyId} has ProtectionLevel HSM, but this node's root of trust (${this.#rootDescription}) holds no HSM keys`);
    }
    return this.#hsm;
  }

  /** The reference of a version's token object, checked to be made for that key and version. */
  async #reference(key: MaterialKey, version: number): Promise<Buffer> {
    const cacheId = `${key.keyId}/${version}`;
    const cached = this.#references.get(cacheId);
    if (cached) return cached.reference;
    const hsm = this.#require(key.keyId);
    const record = await this.#store.getKeyVersion(key.keyId, version);
    if (!record) throw new MaterialError("NoSuchVersion", `key ${key.keyId} has no version ${version}`);
    if (!hsm.belongsTo(record.wrappedMaterial, key.keyId, version)) {
      throw new MaterialError("Inconsistent", `key ${key.keyId} version ${version} has no HSM key reference of its own in the store`);
    }
    this.#references.set(cacheId, new HsmReference(record.wrappedMaterial));
    return record.wrappedMaterial;
  }
}

/** The token's "does not decrypt" (a tag or padding that fails) becomes one MaterialError. */
async function undecryptable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof RootOfTrustError) throw new MaterialError("Undecryptable", "the ciphertext does not decrypt", { cause: e });
    throw e;
  }
}

function parseQueue(value: string | undefined): string[] {
  if (value === undefined || value === "") return [];
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((r): r is string => typeof r === "string")) throw new Error(`meta ${HSM_DESTROY_QUEUE} is not a JSON array of strings`);
  return parsed;
}
