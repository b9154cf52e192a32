// What each key spec and key usage means: its cipher or key pair, its material, the algorithms it
// offers, and the metadata `Type` Tencent reports (4 = national-crypto (GM) compliant, 2 = FIPS 140-2
// compliant). The service, the protocol adapter, ListAlgorithms and docs/api.md all read these tables.

import type { AeadName } from "../crypto/aead.js";
import type { PqEncryptionAlgorithm } from "../crypto/pq-ciphertext.js";
import type { AsymmetricKeySpec, AsymmetricKeyUsage, ExportOnlyKeySpec, KeySpec, KeyUsage, MacKeySpec, SymmetricKeySpec } from "./key.js";

export interface SymmetricSpecInfo {
  readonly aead: AeadName;
  readonly materialLength: number;
  readonly metadataType: 2 | 4;
}

export const SYMMETRIC_SPECS: Readonly<Record<SymmetricKeySpec, SymmetricSpecInfo>> = Object.freeze({
  SM4: { aead: "SM4-GCM", materialLength: 16, metadataType: 4 },
  AES_256: { aead: "AES-256-GCM", materialLength: 32, metadataType: 2 },
});

/**
 * How an asymmetric key's private half is stored (wrapped by the root of trust): "pkcs8" is a
 * PKCS#8 PrivateKeyInfo in DER; "sm2-scalar" is SM2's 32-byte private scalar d; "seed" is the
 * 32-byte seed the post-quantum key pair is expanded from (FIPS 204 ξ for ML-DSA; the hybrid KEM's
 * seed for ML-KEM keys, docs/formats.md). The public half is stored in the clear as a DER
 * SubjectPublicKeyInfo, except for the hybrid KEM keys, which have no standard SPKI yet: their raw
 * encapsulation key as the hybrid's draft defines it.
 */
export type PrivateKeyFormat = "pkcs8" | "sm2-scalar" | "seed";

export interface AsymmetricSpecInfo {
  readonly family: "RSA" | "EC" | "SM2" | "ED25519" | "ML_DSA" | "ML_KEM";
  /** RSA modulus bits, or the curve's field size in bits. */
  readonly bits: number;
  readonly privateKeyFormat: PrivateKeyFormat;
  readonly metadataType: 2 | 4;
  /** The name ListAlgorithms gives the key algorithm. */
  readonly algorithmName: string;
}

export const ASYMMETRIC_SPECS: Readonly<Record<AsymmetricKeySpec, AsymmetricSpecInfo>> = Object.freeze({
  RSA_2048: { family: "RSA", bits: 2048, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "RSA_2048" },
  RSA_3072: { family: "RSA", bits: 3072, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "RSA_3072" },
  RSA_4096: { family: "RSA", bits: 4096, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "RSA_4096" },
  SM2: { family: "SM2", bits: 256, privateKeyFormat: "sm2-scalar", metadataType: 4, algorithmName: "SM2" },
  ECC_P256: { family: "EC", bits: 256, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "ECC" },
  ECC_P384: { family: "EC", bits: 384, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "ECDSA384" },
  ECC_P521: { family: "EC", bits: 521, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "ECC_P521" },
  ED25519: { family: "ED25519", bits: 255, privateKeyFormat: "pkcs8", metadataType: 2, algorithmName: "ED25519" },
  ML_DSA_44: { family: "ML_DSA", bits: 128, privateKeyFormat: "seed", metadataType: 2, algorithmName: "ML_DSA_44" },
  ML_DSA_65: { family: "ML_DSA", bits: 192, privateKeyFormat: "seed", metadataType: 2, algorithmName: "ML_DSA_65" },
  ML_DSA_87: { family: "ML_DSA", bits: 256, privateKeyFormat: "seed", metadataType: 2, algorithmName: "ML_DSA_87" },
  ML_KEM_768: { family: "ML_KEM", bits: 192, privateKeyFormat: "seed", metadataType: 2, algorithmName: "ML_KEM_768" },
  ML_KEM_1024: { family: "ML_KEM", bits: 256, privateKeyFormat: "seed", metadataType: 2, algorithmName: "ML_KEM_1024" },
});

/** Decryption algorithms: AsymmetricRsaDecrypt's `Algorithm` values, and SM2 (AsymmetricSm2Decrypt). */
export const ASYMMETRIC_DECRYPT_ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5", "SM2"] as const;
export type AsymmetricDecryptAlgorithm = (typeof ASYMMETRIC_DECRYPT_ALGORITHMS)[number];

/** SignByAsymmetricKey / VerifyByAsymmetricKey `Algorithm` values (Tencent's names, plus ECDSA_P384_SHA_384). */
export const SIGNING_ALGORITHMS = ["SM2DSA", "ECC_P256_R1", "ECDSA_P384_SHA_384", "ECDSA_P521_SHA_512", "RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256", "ED25519"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Key exchanges: ECMR, the McCallum-Relyea exchange Tang answers recovery requests with (src/crypto/ecmr.ts). */
export const EXCHANGE_ALGORITHMS = ["ECMR"] as const;
export type ExchangeAlgorithm = (typeof EXCHANGE_ALGORITHMS)[number];

/** DeriveSharedSecret's `KeyAgreementAlgorithm` values (AWS's). */
export const KEY_AGREEMENT_ALGORITHMS = ["ECDH"] as const;
export type KeyAgreementAlgorithm = (typeof KEY_AGREEMENT_ALGORITHMS)[number];

/** The post-quantum actions' algorithms (PostQuantumCryptoSign/Verify, PostQuantumCryptoEncrypt/Decrypt; src/keys/post-quantum.ts). */
export const PQ_SIGNING_ALGORITHMS = ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"] as const;
export type PqSigningAlgorithm = (typeof PQ_SIGNING_ALGORITHMS)[number];
export type { PqEncryptionAlgorithm };
/** The post-quantum ciphertext's algorithms (crypto/pq-ciphertext.ts; a type import, which the browser console's bundle can take). */
export const PQ_ENCRYPTION_ALGORITHMS: readonly PqEncryptionAlgorithm[] = ["ML_KEM_768_X25519_AES_256_GCM", "ML_KEM_1024_P384_AES_256_GCM"];

export interface UsageInfo {
  readonly spec: AsymmetricKeySpec;
  /** "exchange": the private half answers key exchanges (Tang's recovery requests) only. */
  readonly purpose: "decrypt" | "sign" | "exchange" | "pq-sign" | "pq-decrypt" | "agree";
  /** The algorithms a key of this usage accepts, in the action's own vocabulary. */
  readonly algorithms: readonly (AsymmetricDecryptAlgorithm | SigningAlgorithm | ExchangeAlgorithm | PqSigningAlgorithm | PqEncryptionAlgorithm | KeyAgreementAlgorithm)[];
  /** For signing usages: the digest a DIGEST-mode message must be (name and length in bytes). */
  readonly digest?: { readonly name: "sm3" | "sha256" | "sha384" | "sha512"; readonly length: number };
}

const RSA_DECRYPT = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSAES_PKCS1_V1_5"] as const;
const RSA_SIGN = ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"] as const;
const SHA256 = { name: "sha256", length: 32 } as const;

export const ASYMMETRIC_USAGES: Readonly<Record<AsymmetricKeyUsage, UsageInfo>> = Object.freeze({
  ASYMMETRIC_DECRYPT_RSA_2048: { spec: "RSA_2048", purpose: "decrypt", algorithms: RSA_DECRYPT },
  ASYMMETRIC_DECRYPT_RSA_3072: { spec: "RSA_3072", purpose: "decrypt", algorithms: RSA_DECRYPT },
  ASYMMETRIC_DECRYPT_RSA_4096: { spec: "RSA_4096", purpose: "decrypt", algorithms: RSA_DECRYPT },
  ASYMMETRIC_DECRYPT_SM2: { spec: "SM2", purpose: "decrypt", algorithms: ["SM2"] },
  ASYMMETRIC_SIGN_VERIFY_SM2: { spec: "SM2", purpose: "sign", algorithms: ["SM2DSA"], digest: { name: "sm3", length: 32 } },
  ASYMMETRIC_SIGN_VERIFY_RSA_2048: { spec: "RSA_2048", purpose: "sign", algorithms: RSA_SIGN, digest: SHA256 },
  ASYMMETRIC_SIGN_VERIFY_RSA_3072: { spec: "RSA_3072", purpose: "sign", algorithms: RSA_SIGN, digest: SHA256 },
  ASYMMETRIC_SIGN_VERIFY_RSA_4096: { spec: "RSA_4096", purpose: "sign", algorithms: RSA_SIGN, digest: SHA256 },
  ASYMMETRIC_SIGN_VERIFY_ECC: { spec: "ECC_P256", purpose: "sign", algorithms: ["ECC_P256_R1"], digest: SHA256 },
  ASYMMETRIC_SIGN_VERIFY_ECDSA384: { spec: "ECC_P384", purpose: "sign", algorithms: ["ECDSA_P384_SHA_384"], digest: { name: "sha384", length: 48 } },
  ASYMMETRIC_SIGN_VERIFY_ECDSA521: { spec: "ECC_P521", purpose: "sign", algorithms: ["ECDSA_P521_SHA_512"], digest: { name: "sha512", length: 64 } },
  ASYMMETRIC_EXCHANGE_ECMR_P521: { spec: "ECC_P521", purpose: "exchange", algorithms: ["ECMR"] },
  // Ed25519 (RFC 8032) signs the message itself: no DIGEST mode.
  ASYMMETRIC_SIGN_VERIFY_ED25519: { spec: "ED25519", purpose: "sign", algorithms: ["ED25519"] },
  ASYMMETRIC_SIGN_VERIFY_ML_DSA_44: { spec: "ML_DSA_44", purpose: "pq-sign", algorithms: ["ML_DSA_44"] },
  ASYMMETRIC_SIGN_VERIFY_ML_DSA_65: { spec: "ML_DSA_65", purpose: "pq-sign", algorithms: ["ML_DSA_65"] },
  ASYMMETRIC_SIGN_VERIFY_ML_DSA_87: { spec: "ML_DSA_87", purpose: "pq-sign", algorithms: ["ML_DSA_87"] },
  ASYMMETRIC_DECRYPT_ML_KEM_768: { spec: "ML_KEM_768", purpose: "pq-decrypt", algorithms: ["ML_KEM_768_X25519_AES_256_GCM"] },
  ASYMMETRIC_DECRYPT_ML_KEM_1024: { spec: "ML_KEM_1024", purpose: "pq-decrypt", algorithms: ["ML_KEM_1024_P384_AES_256_GCM"] },
  // ECDH (DeriveSharedSecret, AWS's shape): the x coordinate of d·Q with a validated peer key.
  ASYMMETRIC_KEY_AGREEMENT_ECC_P256: { spec: "ECC_P256", purpose: "agree", algorithms: ["ECDH"] },
  ASYMMETRIC_KEY_AGREEMENT_ECC_P384: { spec: "ECC_P384", purpose: "agree", algorithms: ["ECDH"] },
  ASYMMETRIC_KEY_AGREEMENT_SM2: { spec: "SM2", purpose: "agree", algorithms: ["ECDH"] },
});

export function isAsymmetricUsage(usage: KeyUsage): usage is AsymmetricKeyUsage {
  return Object.hasOwn(ASYMMETRIC_USAGES, usage);
}

/** KMIP-only specs (key.ts EXPORT_ONLY_KEY_SPECS): their material's length in bytes (secret data: 1 to 4096). */
export const EXPORT_ONLY_SPECS: Readonly<Record<ExportOnlyKeySpec, { readonly minLength: number; readonly maxLength: number }>> = Object.freeze({
  AES_128: { minLength: 16, maxLength: 16 },
  SECRET_DATA: { minLength: 1, maxLength: 4096 },
  HMAC_SHA256: { minLength: 32, maxLength: 32 },
  HMAC_SHA384: { minLength: 48, maxLength: 48 },
  HMAC_SHA512: { minLength: 64, maxLength: 64 },
});

export function isExportOnlySpec(spec: KeySpec): spec is ExportOnlyKeySpec {
  return Object.hasOwn(EXPORT_ONLY_SPECS, spec);
}

/** HMAC specs of GENERATE_VERIFY_MAC keys: the hash, and the material's length (the hash's output, RFC 2104 section 3). */
export const MAC_SPECS: Readonly<Record<MacKeySpec, { readonly hash: "sha256" | "sha384" | "sha512" | "sm3"; readonly length: number; readonly algorithm: MacAlgorithm }>> = Object.freeze({
  HMAC_SHA256: { hash: "sha256", length: 32, algorithm: "HMAC_SHA_256" },
  HMAC_SHA384: { hash: "sha384", length: 48, algorithm: "HMAC_SHA_384" },
  HMAC_SHA512: { hash: "sha512", length: 64, algorithm: "HMAC_SHA_512" },
  HMAC_SM3: { hash: "sm3", length: 32, algorithm: "HMAC_SM3" },
});

/** GenerateMac/VerifyMac `MacAlgorithm` values: AWS's names, and HMAC_SM3. */
export const MAC_ALGORITHMS = ["HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512", "HMAC_SM3"] as const;
export type MacAlgorithm = (typeof MAC_ALGORITHMS)[number];

export function isMacSpec(spec: KeySpec): spec is MacKeySpec {
  return Object.hasOwn(MAC_SPECS, spec);
}

export function isSymmetricSpec(spec: KeySpec): spec is SymmetricKeySpec {
  return Object.hasOwn(SYMMETRIC_SPECS, spec);
}

/** The metadata `Type` of a key of this spec. */
export function metadataType(spec: KeySpec): 2 | 4 {
  if (isSymmetricSpec(spec)) return SYMMETRIC_SPECS[spec].metadataType;
  if (isMacSpec(spec)) return spec === "HMAC_SM3" ? 4 : 2;
  return isExportOnlySpec(spec) ? 2 : ASYMMETRIC_SPECS[spec].metadataType;
}

/**
 * Key specs a CMK of ProtectionLevel HSM may have: those whose operations the service runs inside a
 * PKCS#11 token. AES_256 uses CKM_AES_GCM; RSA keys CKM_RSA_PKCS (signatures), CKM_RSA_PKCS_PSS
 * and CKM_RSA_PKCS_OAEP; ECC keys CKM_ECDSA, and ECMR exchange keys CKM_ECDH1_DERIVE. SM4 and SM2 are absent because tokens such as
 * SoftHSM2 offer no SM mechanisms.
 */
export const HSM_KEY_SPECS: readonly KeySpec[] = Object.freeze(["AES_256", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_P256", "ECC_P384", "ECC_P521"]);

export function hsmSupports(spec: KeySpec): boolean {
  return HSM_KEY_SPECS.includes(spec);
}
