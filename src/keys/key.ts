// The customer master key (CMK) model: states, usages, specs and the records the store keeps.

export const KEY_STATES = ["Enabled", "Disabled", "PendingDelete", "PendingImport", "Archived"] as const;
export type KeyState = (typeof KEY_STATES)[number];

/**
 * What a CMK is for, fixed at creation. Tencent's names; the RSA 3072 and 4096 usages, ECDSA521
 * (Tang's ES512 signing keys), EXCHANGE_ECMR_P521 (Tang's exchange keys), Ed25519, the
 * post-quantum ML-DSA and ML-KEM usages are Tresor extensions in the same pattern, and
 * GENERATE_VERIFY_MAC (HMAC keys) is AWS's name. src/keys/specs.ts says what each one means.
 */
export const KEY_USAGES = [
  "ENCRYPT_DECRYPT",
  "ASYMMETRIC_DECRYPT_RSA_2048",
  "ASYMMETRIC_DECRYPT_RSA_3072",
  "ASYMMETRIC_DECRYPT_RSA_4096",
  "ASYMMETRIC_DECRYPT_SM2",
  "ASYMMETRIC_SIGN_VERIFY_SM2",
  "ASYMMETRIC_SIGN_VERIFY_RSA_2048",
  "ASYMMETRIC_SIGN_VERIFY_RSA_3072",
  "ASYMMETRIC_SIGN_VERIFY_RSA_4096",
  "ASYMMETRIC_SIGN_VERIFY_ECC",
  "ASYMMETRIC_SIGN_VERIFY_ECDSA384",
  "ASYMMETRIC_SIGN_VERIFY_ECDSA521",
  "ASYMMETRIC_EXCHANGE_ECMR_P521",
  "ASYMMETRIC_SIGN_VERIFY_ED25519",
  "ASYMMETRIC_SIGN_VERIFY_ML_DSA_44",
  "ASYMMETRIC_SIGN_VERIFY_ML_DSA_65",
  "ASYMMETRIC_SIGN_VERIFY_ML_DSA_87",
  "ASYMMETRIC_DECRYPT_ML_KEM_768",
  "ASYMMETRIC_DECRYPT_ML_KEM_1024",
  "GENERATE_VERIFY_MAC",
  "ASYMMETRIC_KEY_AGREEMENT_ECC_P256",
  "ASYMMETRIC_KEY_AGREEMENT_ECC_P384",
  "ASYMMETRIC_KEY_AGREEMENT_SM2",
] as const;
/** The usage of EXPORT_ONLY_KEY_SPECS objects: KMIP Get (and KMIP's own operations) only. */
export const EXPORT_ONLY_USAGE = "EXPORT_ONLY";
export type KeyUsage = (typeof KEY_USAGES)[number] | typeof EXPORT_ONLY_USAGE;
/** HMAC keys: GenerateMac and VerifyMac; they rotate like ENCRYPT_DECRYPT keys. */
export const MAC_USAGE = "GENERATE_VERIFY_MAC";
export type AsymmetricKeyUsage = Exclude<KeyUsage, "ENCRYPT_DECRYPT" | typeof EXPORT_ONLY_USAGE | typeof MAC_USAGE>;

/** Symmetric key specs a CMK may have. SM4 is the national-crypto default. */
export const SYMMETRIC_KEY_SPECS = ["SM4", "AES_256"] as const;
export type SymmetricKeySpec = (typeof SYMMETRIC_KEY_SPECS)[number];
/** Asymmetric key specs; each asymmetric usage implies one. */
export const ASYMMETRIC_KEY_SPECS = [
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "SM2",
  "ECC_P256",
  "ECC_P384",
  "ECC_P521",
  "ED25519",
  "ML_DSA_44",
  "ML_DSA_65",
  "ML_DSA_87",
  "ML_KEM_768",
  "ML_KEM_1024",
] as const;
export type AsymmetricKeySpec = (typeof ASYMMETRIC_KEY_SPECS)[number];
/**
 * Specs of KMIP-class objects only, which no other door can create or use: AES-128 keys, HMAC keys
 * and secret data (opaque bytes such as a database password). Their usage is EXPORT_ONLY.
 */
export const EXPORT_ONLY_KEY_SPECS = ["AES_128", "SECRET_DATA", "HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"] as const;
export type ExportOnlyKeySpec = (typeof EXPORT_ONLY_KEY_SPECS)[number];
/**
 * HMAC key specs of GENERATE_VERIFY_MAC CMKs. The three SHA-2 ones are also KMIP export-only specs
 * (a KMIP HMAC object); HMAC_SM3 is a CMK spec only.
 */
export const MAC_KEY_SPECS = ["HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512", "HMAC_SM3"] as const;
export type MacKeySpec = (typeof MAC_KEY_SPECS)[number];
export type KeySpec = SymmetricKeySpec | AsymmetricKeySpec | ExportOnlyKeySpec | MacKeySpec;

export type KeyOrigin = "TENCENT_KMS" | "EXTERNAL";

/**
 * Where a CMK's material lives: SOFTWARE, wrapped by the root of trust in the store; HSM, as a
 * non-extractable object inside the PKCS#11 root of trust's token, the store keeping only a
 * reference. A Tresor extension of CreateKey, fixed at creation.
 */
export const PROTECTION_LEVELS = ["SOFTWARE", "HSM"] as const;
export type ProtectionLevel = (typeof PROTECTION_LEVELS)[number];

/**
 * CMK: material never leaves the service, through any door. KMIP: an object created or registered
 * through KMIP, whose material may leave through KMIP Get to a caller allowed kms:GetKeyMaterial.
 * Fixed at creation.
 */
export const KEY_CLASSES = ["CMK", "KMIP"] as const;
export type KeyClass = (typeof KEY_CLASSES)[number];

/** KMIP's object states (KMIP 1.4 §3.22); lifecycle.ts maps each onto a KeyState. */
export const KMIP_STATES = ["PreActive", "Active", "Deactivated", "Compromised"] as const;
export type KmipState = (typeof KMIP_STATES)[number];

export const KMIP_OBJECT_TYPES = ["SymmetricKey", "PublicKey", "PrivateKey", "SecretData", "Certificate"] as const;
export type KmipObjectType = (typeof KMIP_OBJECT_TYPES)[number];

/** What a KMIP object keeps beside the key record (never material). Times are unix seconds, 0 = unset. */
export interface KmipObjectMeta {
  objectType: KmipObjectType;
  state: KmipState;
  /** KMIP Name attributes, in order; the first is also the key's alias. */
  names: string[];
  /** KMIP Cryptographic Usage Mask, as the client gave it (0: none given). */
  usageMask: number;
  /** The other half of a key pair (KMIP Link), or "". */
  linkedId: string;
  /** KMIP ReKey's links (KMIP 1.4 §3.35): the key that replaced this one, and the one this one replaced. */
  replacementId?: string;
  replacedId?: string;
  activationDate: number;
  deactivationDate: number;
  compromiseDate: number;
  /** Secret data only: KMIP's Secret Data Type (1 Password, 2 Seed). */
  secretDataType?: number;
  /** Custom attributes (KMIP 1.4 §3.39: names starting "x-" or "y-"), each with its values in order. */
  custom?: Record<string, KmipCustomValue[]>;
}

export type KmipCustomValue = string | number | boolean;

export interface Tag {
  key: string;
  value: string;
}

/** A CMK as stored; never holds key material. Times are unix seconds. */
export interface KeyRecord {
  keyId: string;
  alias: string;
  description: string;
  keyUsage: KeyUsage;
  keySpec: KeySpec;
  origin: KeyOrigin;
  state: KeyState;
  creatorUin: string;
  owner: string;
  createTime: number;
  deletionDate: number;
  /** The newest version: encryption uses it. */
  currentVersion: number;
  tags: Tag[];
  /** Automatic rotation (symmetric keys of origin TENCENT_KMS only). */
  rotationEnabled: boolean;
  /** The rotation period in days (7-365); 0 until rotation is first enabled. */
  rotateDays: number;
  /** When the key last gained a version by rotation, automatic or on demand; 0 if never. */
  lastRotateTime: number;
  /** When the scheduler rotates the key next; 0 while rotation is disabled. */
  nextRotateTime: number;
  /** EXTERNAL keys: when the imported material expires (the scheduler deletes it); 0 = never. */
  validTo: number;
  /**
   * EXTERNAL keys: a keyed digest (HMAC-SHA256 under a service secret) of the material first
   * imported, kept when the material is deleted so that only the same material can come back;
   * never the material itself. Null until material is imported.
   */
  materialDigest: Buffer | null;
  /** Fixed at creation; SOFTWARE for every key made before protection levels existed. */
  protectionLevel: ProtectionLevel;
  /** Fixed at creation; CMK for every key made before KMIP existed. */
  keyClass: KeyClass;
  /** The KMIP object's metadata (KMIP class only); null for CMKs. */
  kmip: KmipObjectMeta | null;
}

/** The lifecycle fields of a key that has never rotated nor imported material, and the default protection level. */
export const KEY_LIFECYCLE_DEFAULTS = Object.freeze({
  protectionLevel: "SOFTWARE",
  rotationEnabled: false,
  rotateDays: 0,
  lastRotateTime: 0,
  nextRotateTime: 0,
  validTo: 0,
  materialDigest: null,
  keyClass: "CMK",
  kmip: null,
} as const satisfies Partial<KeyRecord>);

/** A key import token: single-key, expiring, its wrapping private key wrapped by the root of trust. */
export interface ImportTokenRecord {
  tokenId: string;
  keyId: string;
  wrappingKeySpec: "RSA_2048" | "SM2";
  /** RSA_AES_KEY_WRAP_*: AWS's hybrid wrapping (an RSA-OAEP-encrypted AES key, then RFC 5649 AES-KWP of the material). */
  wrappingAlgorithm: "RSAES_PKCS1_V1_5" | "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE" | "RSA_AES_KEY_WRAP_SHA_1" | "RSA_AES_KEY_WRAP_SHA_256";
  /** The wrapping private key (PKCS#8 DER for RSA, the 32-byte scalar for SM2), wrapped by the root of trust. */
  wrappedPrivateKey: Buffer;
  /** Unix seconds; the token is refused from this time on. */
  expiresAt: number;
  /** Set by the import that used the token; a token imports once. */
  used: boolean;
}

/** One immutable version of a CMK's material, wrapped by the root of trust. */
export interface KeyVersionRecord {
  keyId: string;
  version: number;
  /** SOFTWARE keys: the material wrapped by the root of trust; HSM keys: the token object's reference (HsmKeys). */
  wrappedMaterial: Buffer;
  /** Asymmetric keys: the public key (DER SubjectPublicKeyInfo), stored in the clear; null for symmetric keys. */
  publicKey: Buffer | null;
  createTime: number;
}
