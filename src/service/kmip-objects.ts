// KMIP objects: the exportable key class. Keys created or registered through KMIP live in the same
// store as CMKs, wrapped by the same root of trust, with the same policies, states and audit; what
// differs is that their material may leave through Get (kms:GetKeyMaterial, each Get audited) and
// that KMIP's own metadata (object type, KMIP state, names, usage mask, links) travels with them.
// Protocol-neutral: the KMIP door (api/kmip) translates the wire, this file decides.

import { randomBytes, randomUUID } from "node:crypto";
import { aesCbcDecrypt, aesCbcEncrypt, CBC_IV_LENGTH, sm4CbcDecrypt, sm4CbcEncrypt } from "../crypto/aes-cbc.js";
import { aesGcmDecrypt, aesGcmEncrypt, GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { aesKeyWrap, aesKeyWrapPad } from "../crypto/aes-kwp.js";
import { CryptoError } from "../crypto/errors.js";
import { sm4GcmDecrypt, sm4GcmEncrypt } from "../crypto/sm4-gcm.js";
import { verifySignature } from "../keys/asymmetric.js";
import {
  EXPORT_ONLY_USAGE,
  KEY_LIFECYCLE_DEFAULTS,
  type AsymmetricKeySpec,
  type AsymmetricKeyUsage,
  type KeyRecord,
  type KeySpec,
  type KeyState,
  type KmipCustomValue,
  type KmipObjectMeta,
  type KmipObjectType,
  type KmipState,
  type SymmetricKeySpec,
} from "../keys/key.js";
import { KMIP_STATE_OF, type KeyAction } from "../keys/lifecycle.js";
import { EXPORT_ONLY_SPECS, isExportOnlySpec, isSymmetricSpec, SYMMETRIC_SPECS, type SigningAlgorithm } from "../keys/specs.js";
import { StoreConflictError, type StoreOperations } from "../store/store.js";
import { CURRENT_VERSION_ERRORS, USER_OWNER, usingMaterial, type ServiceContext } from "./context.js";
import { KmsError, needs } from "./errors.js";
import { isPublicObject, parseAsymmetric, parseCertificate, type KmipKeyPairSpec } from "./kmip-parse.js";
import { ACCOUNT_RESOURCE, type Caller } from "./permissions.js";

/** KMIP's Cryptographic Usage Mask bits that decide what a key pair is for (KMIP 1.4 §9.1.3.3.1). */
export const USAGE_MASK = { Sign: 0x01, Verify: 0x02, Encrypt: 0x04, Decrypt: 0x08, WrapKey: 0x10 } as const;

export { KMIP_KEY_PAIR_SPECS, type KmipKeyPairSpec } from "./kmip-parse.js";

export interface KmipNewObject {
  names: readonly string[];
  usageMask: number;
  /** Custom attributes ("x-…", "y-…") and their values. */
  custom?: Readonly<Record<string, readonly KmipCustomValue[]>>;
}

/**
 * One change of an attribute (KMIP Add, Modify, Delete Attribute; KMIP 2.0 Set Attribute, which
 * adds the attribute or replaces its one value); `index` picks among its values.
 */
export interface KmipAttributeChange {
  op: "add" | "modify" | "delete" | "set";
  /** "Name", "Cryptographic Usage Mask", or a custom attribute's name ("x-…", "y-…"). */
  name: string;
  index: number;
  value?: KmipCustomValue;
}

const CUSTOM_NAME = /^[xy]-[\x21-\x7e ]{1,128}$/;
const MAX_CUSTOM_VALUES = 64;

export interface KmipLocateQuery {
  names?: readonly string[];
  objectType?: KmipObjectType;
  state?: KmipState;
  keySpec?: KeySpec;
  /** Custom attributes: the object has each value of each name. */
  custom?: Readonly<Record<string, readonly KmipCustomValue[]>>;
  maxItems: number;
  offset: number;
}

/** KMIP's key wrapping algorithms for a wrapped Get: NIST Key Wrap (RFC 3394), AES Key Wrap with Padding (RFC 5649). */
export type KmipKeyWrap = "NISTKeyWrap" | "AESKeyWrapPadding";

export type KmipCipher =
  | { mode: "GCM"; iv?: Buffer; aad: Buffer; tagLength: number }
  | { mode: "CBC"; iv?: Buffer; padded: boolean };

/** Keys read per step of a Locate walk: a page of 100 from SQLite took 1.2 ms (median) on the development machine. */
const LOCATE_PAGE = 100;
/** The longest ReKey Offset: a year. */
const MAX_REKEY_OFFSET = 366 * 24 * 3600;

export class KmipObjects {
  constructor(private readonly ctx: ServiceContext) {}

  /**
   * Create: a symmetric key of the exportable class, Pre-Active. AES-256 and SM4 keys also serve
   * Tencent's Encrypt and Decrypt (usage ENCRYPT_DECRYPT); AES-128 ones are KMIP's only (EXPORT_ONLY).
   */
  async createSymmetric(caller: Caller, input: KmipNewObject & { keySpec: KmipSymmetricSpec }): Promise<KeyRecord> {
    caller.permissions.require("kms:CreateKey", ACCOUNT_RESOURCE);
    const key = await this.#newRecord(caller, "SymmetricKey", input.keySpec, symmetricUsage(input.keySpec), input);
    const made = await this.#software(() => this.ctx.materials.software.generate(key, 1));
    await this.#insert(caller, [{ key, stored: made.stored, publicKey: null }]);
    return key;
  }

  /** Register: a symmetric key (or secret data) the client brings, Pre-Active. */
  async register(
    caller: Caller,
    input: KmipNewObject & ({ objectType: "SymmetricKey"; keySpec: KmipSymmetricSpec } | { objectType: "SecretData"; secretDataType: number }) & { material: Buffer },
  ): Promise<KeyRecord> {
    caller.permissions.require("kms:RegisterKey", ACCOUNT_RESOURCE);
    const keySpec: KeySpec = input.objectType === "SecretData" ? "SECRET_DATA" : input.keySpec;
    const [min, max] = materialLengths(keySpec);
    needs(
      input.material.length >= min && input.material.length <= max,
      "InvalidParameterValue",
      `"Key Material" of ${keySpec} must be ${min === max ? min : `${min} to ${max}`} bytes, got ${input.material.length}`,
    );
    const key = await this.#newRecord(caller, input.objectType, keySpec, symmetricUsage(keySpec), input);
    if (input.objectType === "SecretData") (key.kmip as KmipObjectMeta).secretDataType = input.secretDataType;
    const stored = await this.#software(() => this.ctx.materials.software.wrap(key.keyId, 1, input.material));
    await this.#insert(caller, [{ key, stored, publicKey: null }]);
    return key;
  }

  /**
   * Register of a private key (PKCS#8 DER) or a public key (SubjectPublicKeyInfo DER): RSA 2048/3072/4096
   * or EC P-256/P-384, Pre-Active. The private key's public half is kept beside it, as for Create Key Pair.
   */
  async registerAsymmetric(caller: Caller, input: KmipNewObject & { objectType: "PrivateKey" | "PublicKey"; der: Buffer }): Promise<KeyRecord> {
    caller.permissions.require("kms:RegisterKey", ACCOUNT_RESOURCE);
    const parsed = parseAsymmetric(input.objectType, input.der);
    const key = await this.#newRecord(caller, input.objectType, parsed.spec, keyPairUsage(parsed.spec, input.usageMask), input);
    try {
      const stored = await this.#software(() => this.ctx.materials.software.wrap(key.keyId, 1, parsed.material));
      await this.#insert(caller, [{ key, stored, publicKey: parsed.spki }]);
      return key;
    } finally {
      parsed.material.fill(0);
    }
  }

  /**
   * Register of an X.509 certificate (DER), Pre-Active: kept as it came, its public key beside it
   * (so Signature Verify takes it, as a public key object); not secret (Get needs kms:GetPublicKey).
   */
  async registerCertificate(caller: Caller, input: KmipNewObject & { der: Buffer }): Promise<KeyRecord> {
    caller.permissions.require("kms:RegisterKey", ACCOUNT_RESOURCE);
    const parsed = parseCertificate(input.der);
    const key = await this.#newRecord(caller, "Certificate", parsed.spec, keyPairUsage(parsed.spec, input.usageMask), input);
    const stored = await this.#software(() => this.ctx.materials.software.wrap(key.keyId, 1, parsed.der));
    await this.#insert(caller, [{ key, stored, publicKey: parsed.spki }]);
    return key;
  }

  /** Create Key Pair: a private and a public key object, linked, both Pre-Active. */
  async createKeyPair(
    caller: Caller,
    input: { keySpec: KmipKeyPairSpec; privateKey: KmipNewObject; publicKey: KmipNewObject },
  ): Promise<{ privateKey: KeyRecord; publicKey: KeyRecord }> {
    caller.permissions.require("kms:CreateKey", ACCOUNT_RESOURCE);
    const usage = keyPairUsage(input.keySpec, input.privateKey.usageMask | input.publicKey.usageMask);
    const privateKey = await this.#newRecord(caller, "PrivateKey", input.keySpec, usage, input.privateKey);
    const publicKey = await this.#newRecord(caller, "PublicKey", input.keySpec, usage, input.publicKey, privateKey.alias);
    (privateKey.kmip as KmipObjectMeta).linkedId = publicKey.keyId;
    (publicKey.kmip as KmipObjectMeta).linkedId = privateKey.keyId;
    const made = await this.#software(() => this.ctx.materials.software.generate(privateKey, 1));
    const spki = made.publicKey as Buffer;
    // The public key object's "material" is its SubjectPublicKeyInfo, wrapped like any material.
    const storedPublic = await this.#software(() => this.ctx.materials.software.wrap(publicKey.keyId, 1, spki));
    await this.#insert(caller, [
      { key: privateKey, stored: made.stored, publicKey: spki },
      { key: publicKey, stored: storedPublic, publicKey: spki },
    ]);
    return { privateKey, publicKey };
  }

  /** Get: the object's material (symmetric key; PKCS#8 private key; DER SubjectPublicKeyInfo public key). */
  async getMaterial(caller: Caller, id: string): Promise<{ key: KeyRecord; material: Buffer }> {
    const key = await this.#load(caller, id);
    // A public key or a certificate is no secret: GetPublicKey's permission suffices, as for Tencent's GetPublicKey.
    this.ctx.authorize(caller, isPublicObject(kmipOf(key).objectType) ? "GetPublicKey" : "GetKeyMaterial", key);
    this.ctx.checkState("GetKeyMaterial", key, caller);
    const material = await usingMaterial(() => this.ctx.materials.software.exportMaterial(key, key.currentVersion), CURRENT_VERSION_ERRORS);
    return { key, material };
  }

  /**
   * The wrapping of a Get's material under another KMIP object (KMIP 1.4 §2.1.5, Key Wrapping
   * Specification with Encrypt): an Active AES key whose usage mask has Wrap Key, as PyKMIP's server
   * requires, used under kms:Encrypt. `material` is the caller's to wipe.
   */
  async wrapKey(caller: Caller, wrappingId: string, algorithm: KmipKeyWrap, material: Buffer): Promise<Buffer> {
    const wrapping = await this.#objectFor(caller, wrappingId, "Encrypt");
    needs(wrapping.keySpec === "AES_256" || wrapping.keySpec === "AES_128", "InvalidKeyUsage", `wrapping object ${wrappingId} is ${wrapping.keySpec}: keys are wrapped under AES keys`);
    needs((kmipOf(wrapping).usageMask & USAGE_MASK.WrapKey) !== 0, "OperationDenied", `wrapping object ${wrappingId} lacks Wrap Key in its Cryptographic Usage Mask`);
    needs(
      algorithm === "AESKeyWrapPadding" || (material.length >= 16 && material.length % 8 === 0),
      "InvalidParameterValue",
      `NIST Key Wrap (RFC 3394) takes whole 8-byte blocks of 16 bytes or more, this key is ${material.length} bytes: ask AES Key Wrap Padding`,
    );
    const kek = await usingMaterial(() => this.ctx.materials.software.exportMaterial(wrapping, wrapping.currentVersion), CURRENT_VERSION_ERRORS);
    try {
      return algorithm === "NISTKeyWrap" ? aesKeyWrap(kek, material) : aesKeyWrapPad(kek, material);
    } finally {
      kek.fill(0);
    }
  }

  /** Get Attributes, Get Attribute List. */
  attributes(caller: Caller, id: string): Promise<KeyRecord> {
    return this.#objectFor(caller, id, "DescribeKey");
  }

  /** Locate: the caller's KMIP objects matching every given filter, oldest first. */
  async locate(caller: Caller, query: KmipLocateQuery): Promise<string[]> {
    caller.permissions.require("kms:ListKeys", ACCOUNT_RESOURCE);
    const matches = (key: KeyRecord): boolean => {
      const meta = key.kmip;
      if (key.keyClass !== "KMIP" || !meta || key.creatorUin !== caller.uin) return false;
      if (query.names && !query.names.every((n) => meta.names.includes(n))) return false;
      if (query.objectType && meta.objectType !== query.objectType) return false;
      if (query.state && kmipState(key) !== query.state) return false;
      for (const [name, values] of Object.entries(query.custom ?? {})) {
        if (!values.every((v) => meta.custom?.[name]?.includes(v))) return false;
      }
      return !query.keySpec || key.keySpec === query.keySpec;
    };
    const found: string[] = [];
    const wanted = query.offset + query.maxItems;
    // Returns true once enough objects are found: the walk stops there.
    const take = (key: KeyRecord): boolean => {
      if (matches(key)) found.push(key.keyId);
      return found.length >= wanted;
    };
    // A name is a key's alias when it is its first name: one lookup instead of a walk.
    const byAlias = query.names?.[0] === undefined ? undefined : await this.ctx.store.getKeyByAlias(query.names[0]);
    if (byAlias?.kmip && byAlias.kmip.names[0] === query.names?.[0]) take(byAlias);
    else await this.#walk(caller, take);
    return found.slice(query.offset, wanted);
  }

  /** Activate: Pre-Active → Active. */
  activate(caller: Caller, id: string): Promise<KeyRecord> {
    return this.#change(caller, id, "ActivateKey", "ActivateKey", (meta, now) => {
      needs(meta.state === "PreActive", "CmkStateNotSupport", `object ${id} is ${meta.state}: only a Pre-Active object can be activated`);
      return { ...meta, state: "Active", activationDate: now };
    });
  }

  /** Revoke: Deactivated, or Compromised when `compromised`; either still decrypts and verifies. */
  revoke(caller: Caller, id: string, input: { compromised: boolean; occurrenceDate?: number }): Promise<KeyRecord> {
    return this.#change(caller, id, "RevokeKey", "RevokeKey", (meta, now) =>
      input.compromised
        ? { ...meta, state: "Compromised", compromiseDate: input.occurrenceDate ?? now, deactivationDate: meta.deactivationDate || now }
        : { ...meta, state: meta.state === "Compromised" ? "Compromised" : "Deactivated", deactivationDate: now },
    );
  }

  /**
   * Add, Modify or Delete Attribute: Names (the first is the alias), the usage mask (modify only),
   * custom attributes. Returns the object and the value added, set or deleted.
   */
  async changeAttribute(caller: Caller, id: string, change: KmipAttributeChange): Promise<{ key: KeyRecord; value: KmipCustomValue }> {
    const key = await this.#objectFor(caller, id, "ModifyKeyAttributes");
    const meta = structuredClone(kmipOf(key));
    const value = applyChange(meta, change, id);
    const alias = meta.names[0] ?? `kmip-${key.keyId}`;
    if (alias !== key.alias) needs(!(await this.ctx.store.getKeyByAlias(alias)), "AliasAlreadyExists", `"Name" ${alias} is already in use`);
    const changed: KeyRecord = { ...key, alias, kmip: meta };
    try {
      await this.ctx.transaction(caller, (tx) => tx.updateKey(changed));
    } catch (e) {
      if (e instanceof StoreConflictError && e.field === "alias") throw new KmsError("AliasAlreadyExists", `"Name" ${alias} is already in use`);
      throw e;
    }
    return { key: changed, value };
  }

  /**
   * ReKey (KMIP 1.4 §4.4): a replacement symmetric key with new material and the old one's spec,
   * usage mask and custom attributes, linked both ways (Replacement and Replaced Object Links). The
   * Names move to the replacement (so Locate by name finds it). The old key must be Active (the
   * lifecycle's RotateKey row). Without an Offset (or with 0) the replacement is Active at once;
   * with an Offset of n seconds its Activation Date is n seconds from now and it stays Pre-Active
   * until a KMIP Activate: Tresor does not activate objects by the clock.
   */
  async rekey(caller: Caller, id: string, offsetSeconds = 0): Promise<KeyRecord> {
    needs(Number.isInteger(offsetSeconds) && offsetSeconds >= 0 && offsetSeconds <= MAX_REKEY_OFFSET, "InvalidParameterValue", `"Offset" must be 0 to ${MAX_REKEY_OFFSET} seconds, got ${offsetSeconds}`);
    const old = await this.#objectFor(caller, id, "RotateKey");
    const meta = kmipOf(old);
    needs(meta.objectType === "SymmetricKey", "UnsupportedOperation", `object ${id} is a ${meta.objectType}: ReKey takes symmetric keys`);
    const now = this.ctx.now();
    const active = offsetSeconds === 0;
    const fresh = await this.#newRecord(caller, "SymmetricKey", old.keySpec, old.keyUsage, { names: [], usageMask: meta.usageMask, ...(meta.custom ? { custom: meta.custom } : {}) });
    const replacement: KeyRecord = { ...fresh, state: active ? KMIP_STATE_OF.Active : KMIP_STATE_OF.PreActive };
    Object.assign(kmipOf(replacement), { names: [...meta.names], state: active ? "Active" : "PreActive", activationDate: now + offsetSeconds, replacedId: old.keyId });
    if (meta.names[0] !== undefined) replacement.alias = meta.names[0];
    const retired: KeyRecord = { ...old, alias: `kmip-${old.keyId}`, kmip: { ...meta, names: [], replacementId: replacement.keyId } };
    const made = await this.#software(() => this.ctx.materials.software.generate(replacement, 1));
    const count = await this.ctx.store.countKeys(caller.uin);
    needs(count < this.ctx.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${this.ctx.cmkLimit} keys`);
    caller.audit?.addResource(replacement.keyId);
    await this.ctx.transaction(caller, async (tx) => {
      // The old key gives up its alias first: aliases are unique.
      await tx.updateKey(retired);
      await tx.insertKey(replacement, { keyId: replacement.keyId, version: 1, wrappedMaterial: made.stored, publicKey: null, createTime: now });
    });
    return replacement;
  }

  /** Destroy: the object and its material go at once; refused while Active. */
  async destroy(caller: Caller, id: string): Promise<void> {
    const key = await this.#objectFor(caller, id, "DestroyKey");
    await this.ctx.transaction(caller, async (tx) => {
      await this.ctx.materials.for(key).retire(tx, key.keyId);
      await tx.deleteKey(key.keyId);
    });
    this.ctx.materials.forget(key.keyId);
    await this.ctx.materials.destroyRetired();
  }

  /** Encrypt with a symmetric object (AES or SM4, GCM or CBC): the ciphertext, the IV used, and GCM's tag. */
  async encrypt(caller: Caller, id: string, cipher: KmipCipher, data: Buffer): Promise<{ data: Buffer; iv: Buffer; tag?: Buffer }> {
    return this.#withCipherKey(caller, id, "Encrypt", cipher, (material, sm4) => {
      if (cipher.mode === "GCM") {
        const iv = cipher.iv ?? randomBytes(GCM_IV_LENGTH);
        checkGcm(iv, cipher.tagLength);
        const sealed = (sm4 ? sm4GcmEncrypt : aesGcmEncrypt)(material, iv, data, cipher.aad);
        return { data: sealed.ciphertext, iv, tag: sealed.tag };
      }
      const iv = cipher.iv ?? randomBytes(CBC_IV_LENGTH);
      needs(iv.length === CBC_IV_LENGTH, "InvalidParameterValue", `"IV/Counter/Nonce" of CBC must be ${CBC_IV_LENGTH} bytes, got ${iv.length}`);
      needs(cipher.padded || data.length % 16 === 0, "InvalidParameterValue", `"Data" must be whole 16-byte blocks without padding, got ${data.length} bytes`);
      return { data: (sm4 ? sm4CbcEncrypt : aesCbcEncrypt)(material, iv, data, cipher.padded), iv };
    });
  }

  async decrypt(caller: Caller, id: string, cipher: KmipCipher, data: Buffer, tag?: Buffer): Promise<Buffer> {
    return this.#withCipherKey(caller, id, "Decrypt", cipher, (material, sm4) => {
      needs(cipher.iv, "MissingParameter", `"IV/Counter/Nonce" is required to decrypt`);
      try {
        if (cipher.mode === "GCM") {
          checkGcm(cipher.iv, cipher.tagLength);
          needs(tag, "MissingParameter", `"Authenticated Encryption Tag" is required to decrypt with GCM`);
          return (sm4 ? sm4GcmDecrypt : aesGcmDecrypt)(material, cipher.iv, data, tag, cipher.aad);
        }
        needs(cipher.iv.length === CBC_IV_LENGTH, "InvalidParameterValue", `"IV/Counter/Nonce" of CBC must be ${CBC_IV_LENGTH} bytes, got ${cipher.iv.length}`);
        return (sm4 ? sm4CbcDecrypt : aesCbcDecrypt)(material, cipher.iv, data, cipher.padded);
      } catch (e) {
        if (e instanceof CryptoError) throw new KmsError("DecryptError", `"Data" does not decrypt under object ${id}`);
        throw e;
      }
    });
  }

  /** MAC (KMIP 1.4 §4.33) with an HMAC key object: HMAC of `data` with the key's hash. */
  async mac(caller: Caller, id: string, data: Buffer): Promise<Buffer> {
    const key = await this.#objectFor(caller, id, "GenerateMac");
    const hash = HMAC_HASHES[key.keySpec as keyof typeof HMAC_HASHES];
    needs(hash, "InvalidKeyUsage", `object ${id} is ${key.keySpec}: MAC takes HMAC keys`);
    return usingMaterial(() => this.ctx.materials.software.mac(key, key.currentVersion, data), CURRENT_VERSION_ERRORS);
  }

  /** Sign with a private key object (the message as it is; the algorithm fits the key). */
  async sign(caller: Caller, id: string, algorithm: SigningAlgorithm, message: Buffer): Promise<Buffer> {
    const key = await this.#objectFor(caller, id, "SignByAsymmetricKey");
    needs(kmipOf(key).objectType === "PrivateKey", "InvalidKeyUsage", `object ${id} is a ${kmipOf(key).objectType}: Sign needs a private key`);
    return usingMaterial(() => this.ctx.materials.for(key).sign(key, key.currentVersion, algorithm, message, "RAW"), CURRENT_VERSION_ERRORS);
  }

  /** Signature Verify with a public (or private) key object. */
  async verify(caller: Caller, id: string, algorithm: SigningAlgorithm, message: Buffer, signature: Buffer): Promise<boolean> {
    const key = await this.#objectFor(caller, id, "VerifyByAsymmetricKey");
    needs(kmipOf(key).objectType !== "SymmetricKey", "InvalidKeyUsage", `object ${id} is a symmetric key: Signature Verify needs a public key`);
    const version = await this.ctx.store.getKeyVersion(key.keyId, key.currentVersion);
    needs(version?.publicKey, "InternalError", `object ${id} has no public key`);
    return verifySignature(key.keySpec as AsymmetricKeySpec, version.publicKey, algorithm, message, "RAW", signature);
  }

  // ---- the shared path ----

  async #load(caller: Caller, id: string): Promise<KeyRecord> {
    const key = await this.ctx.store.getKey(id);
    needs(key && key.creatorUin === caller.uin && key.keyClass === "KMIP", "CmkNotFound", `object ${id} does not exist`);
    return key;
  }

  /** The caller's KMIP object `id`, after its policies allowed `policyAction` and its state allows `stateAction`. */
  async #objectFor(caller: Caller, id: string, stateAction: KeyAction, policyAction: KeyAction = stateAction): Promise<KeyRecord> {
    const key = await this.#load(caller, id);
    this.ctx.authorize(caller, policyAction, key);
    this.ctx.checkState(stateAction, key, caller);
    return key;
  }

  /** A state change of the object: its KMIP metadata and the Tresor state the table maps it to. */
  async #change(caller: Caller, id: string, policyAction: KeyAction, stateAction: KeyAction, next: (meta: KmipObjectMeta, now: number) => KmipObjectMeta): Promise<KeyRecord> {
    const key = await this.#objectFor(caller, id, stateAction, policyAction);
    const meta = next(kmipOf(key), this.ctx.now());
    const changed: KeyRecord = { ...key, kmip: meta, state: KMIP_STATE_OF[meta.state] };
    await this.ctx.transaction(caller, (tx) => tx.updateKey(changed));
    return changed;
  }

  /** Runs `use` with the material of an AES or SM4 key; `sm4` says which. */
  async #withCipherKey<T>(caller: Caller, id: string, action: "Encrypt" | "Decrypt", cipher: KmipCipher, use: (material: Buffer, sm4: boolean) => T): Promise<T> {
    const key = await this.#objectFor(caller, id, action);
    const sm4 = key.keySpec === "SM4";
    needs(key.keySpec === "AES_256" || key.keySpec === "AES_128" || sm4, "UnsupportedOperation", `object ${id} is ${key.keySpec}: KMIP ${action} takes AES and SM4 keys`);
    const material = await usingMaterial(() => this.ctx.materials.software.exportMaterial(key, key.currentVersion), CURRENT_VERSION_ERRORS);
    try {
      return use(material, sm4);
    } finally {
      material.fill(0);
    }
  }

  async #newRecord(caller: Caller, objectType: KmipObjectType, keySpec: KeySpec, keyUsage: KeyRecord["keyUsage"], input: KmipNewObject, aliasTaken?: string): Promise<KeyRecord> {
    const keyId = randomUUID();
    const first = input.names[0];
    if (first !== undefined && first !== aliasTaken) {
      needs(!(await this.ctx.store.getKeyByAlias(first)), "AliasAlreadyExists", `"Name" ${first} is already in use`);
    }
    return {
      ...KEY_LIFECYCLE_DEFAULTS,
      keyId,
      // The first name is the alias (so Tencent's API shows it), unless the pair's other half has it.
      alias: first !== undefined && first !== aliasTaken ? first : `kmip-${keyId}`,
      description: `KMIP ${objectType}`,
      keyUsage,
      keySpec,
      origin: "TENCENT_KMS",
      state: KMIP_STATE_OF.PreActive,
      creatorUin: caller.uin,
      owner: USER_OWNER,
      createTime: this.ctx.now(),
      deletionDate: 0,
      currentVersion: 1,
      tags: [],
      keyClass: "KMIP",
      kmip: {
        objectType,
        state: "PreActive",
        names: [...input.names],
        usageMask: input.usageMask,
        linkedId: "",
        activationDate: 0,
        deactivationDate: 0,
        compromiseDate: 0,
        ...(input.custom && Object.keys(input.custom).length > 0 ? { custom: checkedCustom(input.custom) } : {}),
      },
    };
  }

  async #insert(caller: Caller, objects: { key: KeyRecord; stored: Buffer; publicKey: Buffer | null }[]): Promise<void> {
    const count = await this.ctx.store.countKeys(caller.uin);
    needs(count + objects.length <= this.ctx.cmkLimit, "CmkLimitExceeded", `the account holds the maximum of ${this.ctx.cmkLimit} keys`);
    for (const o of objects) caller.audit?.addResource(o.key.keyId);
    await this.ctx.transaction(caller, async (tx: StoreOperations) => {
      for (const { key, stored, publicKey } of objects) {
        await tx.insertKey(key, { keyId: key.keyId, version: 1, wrappedMaterial: stored, publicKey, createTime: key.createTime });
      }
    });
  }

  async #software<T>(run: () => Promise<T>): Promise<T> {
    return usingMaterial(run, CURRENT_VERSION_ERRORS);
  }

  /**
   * The keys of the caller's account, oldest first, a page at a time, until `visit` says enough.
   * Between pages the event loop runs other work: an SQLite page is read synchronously, and
   * awaiting a settled promise alone would not let anything else in.
   */
  async #walk(caller: Caller, visit: (key: KeyRecord) => boolean): Promise<void> {
    for (let offset = 0; ; offset += LOCATE_PAGE) {
      const page = await this.ctx.store.listKeys({ offset, limit: LOCATE_PAGE, order: "asc", accountUin: caller.uin });
      for (const key of page.keys) if (visit(key)) return;
      if (page.keys.length < LOCATE_PAGE) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** Symmetric specs KMIP may create or register. */
export type KmipSymmetricSpec = SymmetricKeySpec | "AES_128" | keyof typeof HMAC_HASHES;

const HMAC_HASHES = { HMAC_SHA256: "sha256", HMAC_SHA384: "sha384", HMAC_SHA512: "sha512" } as const;

/** Tresor's specs serve Tencent's Encrypt/Decrypt too; KMIP-only specs are EXPORT_ONLY. */
function symmetricUsage(spec: KeySpec): KeyRecord["keyUsage"] {
  return isSymmetricSpec(spec) ? "ENCRYPT_DECRYPT" : EXPORT_ONLY_USAGE;
}

function materialLengths(spec: KeySpec): [number, number] {
  if (isSymmetricSpec(spec)) return [SYMMETRIC_SPECS[spec].materialLength, SYMMETRIC_SPECS[spec].materialLength];
  if (isExportOnlySpec(spec)) return [EXPORT_ONLY_SPECS[spec].minLength, EXPORT_ONLY_SPECS[spec].maxLength];
  return [0, -1];
}

function checkedCustom(custom: Readonly<Record<string, readonly KmipCustomValue[]>>): Record<string, KmipCustomValue[]> {
  const out: Record<string, KmipCustomValue[]> = {};
  for (const [name, values] of Object.entries(custom)) {
    needs(CUSTOM_NAME.test(name), "InvalidParameterValue", `custom attribute names start with "x-" or "y-" and have at most 130 printable characters`);
    needs(values.length <= MAX_CUSTOM_VALUES, "InvalidParameterValue", `custom attribute ${name} has more than ${MAX_CUSTOM_VALUES} values`);
    for (const v of values) checkCustomValue(name, v);
    out[name] = [...values];
  }
  return out;
}

function checkCustomValue(name: string, value: KmipCustomValue | undefined): KmipCustomValue {
  needs(value !== undefined, "MissingParameter", `a value of ${name} is required`);
  needs(typeof value !== "string" || value.length <= 1024, "InvalidParameterValue", `a value of ${name} has at most 1024 characters`);
  return value;
}

/** Applies one attribute change to `meta` (a copy); returns the value added, set or deleted. */
function applyChange(meta: KmipObjectMeta, change: KmipAttributeChange, id: string): KmipCustomValue {
  if (change.name === "Cryptographic Usage Mask") {
    needs((change.op === "modify" || change.op === "set") && typeof change.value === "number", "InvalidParameterValue", `"Cryptographic Usage Mask" can only be modified or set, to an integer`);
    meta.usageMask = change.value;
    return change.value;
  }
  let values: KmipCustomValue[];
  if (change.name === "Name") values = meta.names;
  else {
    needs(CUSTOM_NAME.test(change.name), "InvalidParameterValue", `attribute "${change.name.slice(0, 64)}" cannot be changed: Name, Cryptographic Usage Mask and custom ("x-…") attributes can`);
    meta.custom ??= {};
    values = meta.custom[change.name] ??= [];
  }
  if (change.name === "Name") needs(change.value === undefined || (typeof change.value === "string" && change.value.length >= 1 && change.value.length <= 256), "InvalidParameterValue", `"Name" is text of 1 to 256 characters`);
  if (change.op === "set") {
    // Set Attribute (KMIP 2.0 §6.1, Set Attribute) takes single-instance attributes: it adds or replaces the one value.
    needs(values.length <= 1, "InvalidParameterValue", `object ${id} has ${values.length} values of ${change.name}: Set Attribute replaces a single value, use Modify Attribute`);
    values.splice(0, values.length, checkCustomValue(change.name, change.value));
    return change.value as KmipCustomValue;
  }
  const old = values[change.index];
  if (change.op === "add") {
    needs(values.length < MAX_CUSTOM_VALUES, "InvalidParameterValue", `${change.name} has ${MAX_CUSTOM_VALUES} values already`);
    values.push(checkCustomValue(change.name, change.value));
    return change.value as KmipCustomValue;
  }
  needs(old !== undefined, "InvalidParameterValue", `object ${id} has no ${change.name} at index ${change.index}`);
  if (change.op === "modify") values[change.index] = checkCustomValue(change.name, change.value);
  else values.splice(change.index, 1);
  if (meta.custom && values.length === 0 && change.name !== "Name") delete meta.custom[change.name];
  return change.op === "modify" ? (change.value as KmipCustomValue) : old;
}

function kmipOf(key: KeyRecord): KmipObjectMeta {
  needs(key.kmip, "InternalError", `key ${key.keyId} has no KMIP metadata`);
  return key.kmip;
}

/**
 * The KMIP state of a KMIP-class key: its own, unless a Tencent action moved the Tresor state away
 * from what that state maps to (then the Tresor state speaks: Disabled reads as Deactivated).
 */
export function kmipState(key: Pick<KeyRecord, "state" | "kmip">): KmipState {
  const own = key.kmip?.state ?? "Active";
  if (KMIP_STATE_OF[own] === key.state) return own;
  const byState: Partial<Record<KeyState, KmipState>> = { Enabled: "Active", Archived: "Deactivated", Disabled: "Deactivated" };
  return byState[key.state] ?? "Deactivated";
}

function keyPairUsage(spec: KmipKeyPairSpec, mask: number): AsymmetricKeyUsage {
  switch (spec) {
    case "ECC_P256":
      return "ASYMMETRIC_SIGN_VERIFY_ECC";
    case "ECC_P384":
      return "ASYMMETRIC_SIGN_VERIFY_ECDSA384";
    default: {
      const decrypts = (mask & (USAGE_MASK.Encrypt | USAGE_MASK.Decrypt)) !== 0 && (mask & (USAGE_MASK.Sign | USAGE_MASK.Verify)) === 0;
      return `ASYMMETRIC_${decrypts ? "DECRYPT" : "SIGN_VERIFY"}_${spec}` as AsymmetricKeyUsage;
    }
  }
}

function checkGcm(iv: Buffer, tagLength: number): void {
  needs(iv.length === GCM_IV_LENGTH, "InvalidParameterValue", `"IV/Counter/Nonce" of GCM must be ${GCM_IV_LENGTH} bytes, got ${iv.length}`);
  needs(tagLength === GCM_TAG_LENGTH, "InvalidParameterValue", `"Tag Length" of GCM must be ${GCM_TAG_LENGTH}, got ${tagLength}`);
}
