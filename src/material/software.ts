// Keys of ProtectionLevel SOFTWARE: material made here, stored only wrapped by the root of trust
// (authenticated data: key id and version), unwrapped on use into prepared keys that are cached for
// a bounded time and count and wiped on eviction.

import { AEADS, type AeadKey } from "../crypto/aead.js";
import { aesKeyUnwrapPad } from "../crypto/aes-kwp.js";
import type { EcPoint } from "../crypto/ecmr.js";
import { EcmrThread } from "../crypto/ecmr-worker.js";
import type { RsaPrivateKey } from "../crypto/rsa.js";
import { RsaThread } from "../crypto/rsa-worker.js";
import { Sm2Thread } from "../crypto/sm2-worker.js";
import type { EcdhPeerKey } from "../crypto/ecdh.js";
import { CryptoError } from "../crypto/errors.js";
import { HmacKey } from "../crypto/hmac.js";
import { randomBytes } from "../crypto/random.js";
import { AsymmetricPrivateKey, generateKeyPair, type MessageType } from "../keys/asymmetric.js";
import type { ImportTokenRecord, MacKeySpec, SymmetricKeySpec } from "../keys/key.js";
import { pqOpen, type ParsedPqBlob } from "../crypto/pq-ciphertext.js";
import { PqThread } from "../crypto/pq-worker.js";
import {
  ASYMMETRIC_SPECS,
  EXPORT_ONLY_SPECS,
  MAC_SPECS,
  SYMMETRIC_SPECS,
  isExportOnlySpec,
  isMacSpec,
  isSymmetricSpec,
  type AsymmetricDecryptAlgorithm,
  type SigningAlgorithm,
} from "../keys/specs.js";
import { RootOfTrustError, importTokenAad, keyMaterialAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import type { Store } from "../store/store.js";
import { MaterialCache, type Destroyable, type MaterialCacheOptions } from "./cache.js";
import { MaterialError, type KeyMaterial, type MaterialKey, type NewMaterial } from "./material.js";

export interface SoftwareMaterialOptions {
  store: Store;
  rootOfTrust: RootOfTrust;
  cache: MaterialCacheOptions;
  now: () => number;
}

export class SoftwareMaterial implements KeyMaterial {
  readonly protectionLevel = "SOFTWARE";
  readonly #store: Store;
  readonly #root: RootOfTrust;
  readonly #aeadKeys: MaterialCache<AeadKey>;
  readonly #privateKeys: MaterialCache<AsymmetricPrivateKey>;
  readonly #macKeys: MaterialCache<HmacKey>;
  readonly #ecmr = new EcmrThread();
  readonly #sm2 = new Sm2Thread();
  readonly #rsa = new RsaThread();
  /** The post-quantum algorithms' worker thread; the service also verifies and encapsulates through it. */
  readonly postQuantum = new PqThread();

  constructor(options: SoftwareMaterialOptions) {
    this.#store = options.store;
    this.#root = options.rootOfTrust;
    this.#aeadKeys = new MaterialCache<AeadKey>(options.cache, options.now);
    this.#privateKeys = new MaterialCache<AsymmetricPrivateKey>(options.cache, options.now);
    this.#macKeys = new MaterialCache<HmacKey>(options.cache, options.now);
  }

  async generate(key: MaterialKey, version: number): Promise<NewMaterial> {
    let material: Buffer;
    let publicKey: Buffer | null = null;
    if (isSymmetricSpec(key.keySpec)) {
      material = randomBytes(SYMMETRIC_SPECS[key.keySpec].materialLength);
    } else if (isMacSpec(key.keySpec)) {
      material = randomBytes(MAC_SPECS[key.keySpec].length);
    } else if (isExportOnlySpec(key.keySpec)) {
      const { minLength, maxLength } = EXPORT_ONLY_SPECS[key.keySpec];
      if (minLength !== maxLength) throw new MaterialError("Unsupported", `${key.keySpec} material is brought by the client, never generated`);
      material = randomBytes(minLength);
    } else {
      const pair = await generateKeyPair(key.keySpec);
      material = pair.privateMaterial;
      publicKey = pair.publicKey;
    }
    try {
      return { stored: await this.wrap(key.keyId, version, material), publicKey };
    } finally {
      material.fill(0);
    }
  }

  /** Wraps material brought by the caller (an import) as the key version's stored material; the caller wipes it. */
  wrap(keyId: string, version: number, material: Buffer): Promise<Buffer> {
    return this.#root.wrap(material, keyMaterialAad(keyId, version));
  }

  /**
   * The material an import brings, decrypted with the import token's wrapping private key (stored
   * wrapped by the root of trust); the caller wipes it. A ciphertext that does not decrypt is Undecryptable.
   */
  async unwrapImported(token: ImportTokenRecord, encrypted: Buffer): Promise<Buffer> {
    const privateMaterial = await this.#root.unwrap(token.wrappedPrivateKey, importTokenAad(token.tokenId));
    let privateKey: AsymmetricPrivateKey;
    try {
      privateKey = new AsymmetricPrivateKey(token.wrappingKeySpec, privateMaterial);
    } finally {
      privateMaterial.fill(0);
    }
    try {
      return await undecryptable(async () => unwrapWith(privateKey, token, encrypted));
    } finally {
      privateKey.destroy();
    }
  }

  /**
   * The version's material itself, for the one export Tresor has: KMIP Get of a KMIP-class key
   * (the service checks the class and the caller's kms:GetKeyMaterial). The caller wipes it.
   */
  exportMaterial(key: MaterialKey, version: number): Promise<Buffer> {
    return this.#unwrap(key, version);
  }

  /** Wrapped material that was not recorded is just bytes: nothing to destroy. */
  async discard(): Promise<void> {}

  async seal(key: MaterialKey, version: number, iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<{ ciphertext: Buffer; tag: Buffer }> {
    return this.#withAeadKey(key, version, (aeadKey) => aeadKey.encrypt(iv, plaintext, aad));
  }

  async open(key: MaterialKey, version: number, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Promise<Buffer> {
    return undecryptable(() => this.#withAeadKey(key, version, (aeadKey) => aeadKey.decrypt(iv, ciphertext, tag, aad)));
  }

  sign(key: MaterialKey, version: number, algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): Promise<Buffer> {
    if (algorithm === "SM2DSA") return this.#inSm2Thread(key, version, (d) => this.#sm2.sign(d, message, messageType === "DIGEST"));
    if (algorithm === "RSA_PSS_SHA_256" || algorithm === "RSA_PKCS1_SHA_256") {
      return this.#inRsaThread(key, version, (rsaKey) => this.#rsa.sign(rsaKey, algorithm, message, messageType === "DIGEST"));
    }
    return this.#withPrivateKey(key, version, (privateKey) => privateKey.sign(algorithm, message, messageType));
  }

  /** The scalar is copied while the key is in hand (synchronously); the multiplication runs in the ECMR thread. */
  async exchange(key: MaterialKey, version: number, point: EcPoint): Promise<EcPoint> {
    return this.#withPrivateKey(key, version, (privateKey) => privateKey.exchange(point, (scalar, p) => this.#ecmr.multiply(scalar, p)));
  }

  decrypt(key: MaterialKey, version: number, algorithm: AsymmetricDecryptAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    if (algorithm === "SM2") return undecryptable(() => this.#inSm2Thread(key, version, (d) => this.#sm2.decrypt(d, ciphertext)));
    return undecryptable(() => this.#inRsaThread(key, version, (rsaKey) => this.#rsa.decrypt(rsaKey, algorithm, ciphertext)));
  }

  /** HMAC of `message` with the version's key (GENERATE_VERIFY_MAC keys and KMIP HMAC objects; software only). */
  mac(key: MaterialKey, version: number, message: Buffer): Promise<Buffer> {
    return this.#withMacKey(key, version, (macKey) => macKey.mac(message));
  }

  /** Whether `mac` is the version's HMAC of `message`, compared in constant time. */
  verifyMac(key: MaterialKey, version: number, message: Buffer, mac: Buffer): Promise<boolean> {
    return this.#withMacKey(key, version, (macKey) => macKey.verify(message, mac));
  }

  /** SM2DSA verification by the version's private scalar (SM2 keys are software keys); the service checked usage and digest length. */
  sm2Verify(key: MaterialKey, version: number, message: Buffer, messageType: MessageType, signature: Buffer): Promise<boolean> {
    return this.#inSm2Thread(key, version, (d) => this.#sm2.verify(d, message, messageType === "DIGEST", signature));
  }

  /** ECDH with the version's private key and a peer key the service validated. */
  deriveSharedSecret(key: MaterialKey, version: number, peer: EcdhPeerKey): Promise<Buffer> {
    return this.#withPrivateKey(key, version, (privateKey) => privateKey.deriveSharedSecret(peer));
  }

  /**
   * Pure ML-DSA with the version's key (post-quantum keys are software keys, wrapped by any root of
   * trust). The secret key is copied while in hand (synchronously); the signing runs in the
   * post-quantum thread, which wipes its copy; this one is wiped when it settles.
   */
  async pqSign(key: MaterialKey, version: number, message: Buffer, context: Buffer): Promise<Buffer> {
    const { set, secretKey } = await this.#withPrivateKey(key, version, (privateKey) => privateKey.mlDsaSecretKey());
    try {
      return await this.postQuantum.sign(set, secretKey, message, context);
    } finally {
      secretKey.fill(0);
    }
  }

  /** As pqSign: the seed copied, the decapsulation in the post-quantum thread. */
  async pqDecrypt(key: MaterialKey, version: number, parsed: ParsedPqBlob): Promise<Buffer> {
    const seed = await this.#withPrivateKey(key, version, (privateKey) => privateKey.kemSeed(parsed.algorithm));
    try {
      return await undecryptable(() => pqOpen(parsed, seed, this.postQuantum));
    } finally {
      seed.fill(0);
    }
  }

  /** Deleting the key's rows deletes its wrapped material: nothing outlives them. */
  async retire(): Promise<void> {}

  async destroyRetired(): Promise<void> {}

  forget(keyId: string): void {
    this.#aeadKeys.dropPrefix(`${keyId}/`);
    this.#privateKeys.dropPrefix(`${keyId}/`);
    this.#macKeys.dropPrefix(`${keyId}/`);
  }

  cacheStats(): { hits: number; misses: number } {
    const caches = [this.#aeadKeys, this.#privateKeys, this.#macKeys];
    return { hits: caches.reduce((n, c) => n + c.hits, 0), misses: caches.reduce((n, c) => n + c.misses, 0) };
  }

  close(): void {
    this.#aeadKeys.clear();
    this.#privateKeys.clear();
    this.#macKeys.clear();
    this.#ecmr.close();
    this.#sm2.close();
    this.#rsa.close();
    this.postQuantum.close();
  }

  /**
   * Runs an SM2 private-key operation in the SM2 thread: d is copied while the key is in hand
   * (synchronously); the thread wipes its copy, and this one is wiped when the operation settles.
   */
  async #inSm2Thread<T>(key: MaterialKey, version: number, run: (d: Buffer) => Promise<T>): Promise<T> {
    const d = await this.#withPrivateKey(key, version, (privateKey) => privateKey.sm2Scalar());
    try {
      return await run(d);
    } finally {
      d.fill(0);
    }
  }

  /** Runs an RSA private-key operation in the RSA thread, which keeps a clone of the version's key while the cache keeps the key. */
  async #inRsaThread<T>(key: MaterialKey, version: number, run: (rsaKey: RsaPrivateKey) => Promise<T>): Promise<T> {
    return run(await this.#withPrivateKey(key, version, (privateKey) => privateKey.rsaKey()));
  }

  #withAeadKey<T>(key: MaterialKey, version: number, use: (aeadKey: AeadKey) => T): Promise<T> {
    return this.#withPrepared(this.#aeadKeys, key, version, (material) => AEADS[SYMMETRIC_SPECS[key.keySpec as SymmetricKeySpec].aead].importKey(material), use);
  }

  #withPrivateKey<T>(key: MaterialKey, version: number, use: (privateKey: AsymmetricPrivateKey) => T): Promise<T> {
    return this.#withPrepared(this.#privateKeys, key, version, (material) => new AsymmetricPrivateKey(key.keySpec as keyof typeof ASYMMETRIC_SPECS, material), use);
  }

  #withMacKey<T>(key: MaterialKey, version: number, use: (macKey: HmacKey) => T): Promise<T> {
    return this.#withPrepared(this.#macKeys, key, version, (material) => new HmacKey(MAC_SPECS[key.keySpec as MacKeySpec].hash, material), use);
  }

  /**
   * Runs `use` with the prepared key of one key version, from `cache` or prepared from its
   * unwrapped material (wiped once prepared). `use` must be synchronous: the cache may destroy the
   * key once control returns to the event loop.
   */
  async #withPrepared<K extends Destroyable, T>(cache: MaterialCache<K>, key: MaterialKey, version: number, prepare: (material: Buffer) => K, use: (prepared: K) => T): Promise<T> {
    const cacheId = `${key.keyId}/${version}`;
    const cached = cache.get(cacheId);
    if (cached) return use(cached);
    const material = await this.#unwrap(key, version);
    let prepared: K;
    try {
      prepared = prepare(material);
    } finally {
      material.fill(0);
    }
    cache.set(cacheId, prepared);
    return use(prepared);
  }

  async #unwrap(key: MaterialKey, version: number): Promise<Buffer> {
    const record = await this.#store.getKeyVersion(key.keyId, version);
    if (!record) throw new MaterialError("NoSuchVersion", `key ${key.keyId} has no version ${version}`);
    try {
      return await this.#root.unwrap(record.wrappedMaterial, keyMaterialAad(key.keyId, version));
    } catch (e) {
      if (e instanceof RootOfTrustError) throw new MaterialError("Undecryptable", `the stored material of key ${key.keyId} version ${version} does not unwrap`, { cause: e });
      throw e;
    }
  }
}

/**
 * Imported material as the token's wrapping algorithm sealed it. RSA_AES_KEY_WRAP_*: the first
 * modulus-length bytes are RSA-OAEP of a one-time AES key, the rest AES-KWP of the material under it.
 */
function unwrapWith(privateKey: AsymmetricPrivateKey, token: ImportTokenRecord, encrypted: Buffer): Buffer {
  const algorithm = token.wrappingAlgorithm;
  if (algorithm === "SM2PKE") return privateKey.decrypt("SM2", encrypted);
  if (algorithm !== "RSA_AES_KEY_WRAP_SHA_1" && algorithm !== "RSA_AES_KEY_WRAP_SHA_256") return privateKey.decrypt(algorithm, encrypted);
  const modulusBytes = ASYMMETRIC_SPECS[token.wrappingKeySpec].bits / 8;
  if (encrypted.length <= modulusBytes) throw new CryptoError("wrapped material is too short");
  const aesKey = privateKey.decrypt(algorithm === "RSA_AES_KEY_WRAP_SHA_1" ? "RSAES_OAEP_SHA_1" : "RSAES_OAEP_SHA_256", encrypted.subarray(0, modulusBytes));
  try {
    return aesKeyUnwrapPad(aesKey, encrypted.subarray(modulusBytes));
  } catch (e) {
    // A one-time key of a length AES does not have unwraps nothing: the same answer as a bad wrapping.
    if (e instanceof RangeError) throw new CryptoError("wrapped material does not unwrap");
    throw e;
  } finally {
    aesKey.fill(0);
  }
}

/** A ciphertext that does not decrypt (tag, padding, SM2 check) becomes one MaterialError. */
async function undecryptable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof CryptoError) throw new MaterialError("Undecryptable", "the ciphertext does not decrypt", { cause: e });
    throw e;
  }
}
