// Tresor's key model in AWS's words: key states, key specs and usages (both ways), the algorithms
// a key offers, and KeyMetadata as DescribeKey and CreateKey answer it (KMS API reference,
// "KeyMetadata"). SM4 is Tresor's extension of AWS's KeySpec enum.

import { EXPORT_ONLY_USAGE, MAC_USAGE, type KeyRecord, type KeySpec, type KeyState, type KeyUsage, type MacKeySpec, type SymmetricKeySpec } from "../../keys/key.js";
import { ASYMMETRIC_USAGES, MAC_SPECS, isAsymmetricUsage, isMacSpec, type SigningAlgorithm } from "../../keys/specs.js";
import { KmsError } from "../../service/errors.js";
import { keyArn, type ArnScope } from "./identifiers.js";

/** The one encryption algorithm of symmetric keys (KMS API reference, Encrypt). */
export const SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT";

const KEY_STATES: Readonly<Record<KeyState, string>> = {
  Enabled: "Enabled",
  Disabled: "Disabled",
  PendingDelete: "PendingDeletion",
  PendingImport: "PendingImport",
  // AWS has no archive; an archived key decrypts but neither encrypts nor is Enabled (docs/aws.md).
  Archived: "Disabled",
};

/** AWS KeySpec of each Tresor key spec. */
const AWS_SPECS: Readonly<Record<KeySpec, string>> = {
  AES_256: SYMMETRIC_DEFAULT,
  SM4: "SM4",
  RSA_2048: "RSA_2048",
  RSA_3072: "RSA_3072",
  RSA_4096: "RSA_4096",
  ECC_P256: "ECC_NIST_P256",
  ECC_P384: "ECC_NIST_P384",
  // Tang servers' keys (docs/disk-encryption.md), described but not created through this door.
  ECC_P521: "ECC_NIST_P521",
  SM2: "SM2",
  // KMIP objects (docs/kmip.md): described here, never created or used through this door. HMAC
  // keys under AWS's names; AES-128 and secret data have none in AWS, so Tresor's names.
  AES_128: "AES_128",
  HMAC_SHA256: "HMAC_256",
  HMAC_SHA384: "HMAC_384",
  HMAC_SHA512: "HMAC_512",
  SECRET_DATA: "SECRET_DATA",
  // HMAC-SM3 and the hybrid ML-KEM keys: Tresor's names (AWS has none).
  HMAC_SM3: "HMAC_SM3",
  ED25519: "ECC_NIST_EDWARDS25519",
  ML_DSA_44: "ML_DSA_44",
  ML_DSA_65: "ML_DSA_65",
  ML_DSA_87: "ML_DSA_87",
  ML_KEM_768: "ML_KEM_768",
  ML_KEM_1024: "ML_KEM_1024",
};

/** AWS's HMAC key specs (and Tresor's HMAC_SM3) onto Tresor's. */
const MAC_SPECS_OF: Readonly<Record<string, MacKeySpec>> = { HMAC_256: "HMAC_SHA256", HMAC_384: "HMAC_SHA384", HMAC_512: "HMAC_SHA512", HMAC_SM3: "HMAC_SM3" };

export const AWS_KEY_SPECS = [
  "SYMMETRIC_DEFAULT",
  "SM4",
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "SM2",
  "ECC_NIST_EDWARDS25519",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "HMAC_SM3",
] as const;
export type AwsKeySpec = (typeof AWS_KEY_SPECS)[number];
export const AWS_KEY_USAGES = ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"] as const;
export type AwsKeyUsage = (typeof AWS_KEY_USAGES)[number];

/** AWS's signing algorithm names onto Tresor's (the subset Tresor's keys offer). */
export const SIGNING_ALGORITHMS_OF: Readonly<Record<string, SigningAlgorithm>> = {
  RSASSA_PSS_SHA_256: "RSA_PSS_SHA_256",
  RSASSA_PKCS1_V1_5_SHA_256: "RSA_PKCS1_SHA_256",
  ECDSA_SHA_256: "ECC_P256_R1",
  ECDSA_SHA_384: "ECDSA_P384_SHA_384",
  ECDSA_SHA_512: "ECDSA_P521_SHA_512",
  SM2DSA: "SM2DSA",
  ED25519_SHA_512: "ED25519",
};
const AWS_SIGNING_NAMES: Readonly<Record<SigningAlgorithm, string>> = Object.fromEntries(Object.entries(SIGNING_ALGORITHMS_OF).map(([a, t]) => [t, a])) as Record<
  SigningAlgorithm,
  string
>;
export const AWS_SIGNING_ALGORITHMS = Object.keys(SIGNING_ALGORITHMS_OF);

/** RSA decryption with AWS's names; SM2PKE is not offered (docs/aws.md). */
export const RSA_ENCRYPTION_ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] as const;

/** The Tresor spec and usage of an AWS KeySpec and KeyUsage, or an error naming what does not fit. */
export function coreKeyType(spec: AwsKeySpec, usage: AwsKeyUsage): { keySpec: KeySpec; keyUsage: KeyUsage } {
  const macSpec = MAC_SPECS_OF[spec];
  if (macSpec !== undefined || usage === MAC_USAGE) {
    if (macSpec === undefined || usage !== MAC_USAGE) throw new KmsError("InvalidKeyUsage", `"KeyUsage" ${usage} does not fit "KeySpec" ${spec}: HMAC keys are ${MAC_USAGE}`);
    return { keySpec: macSpec, keyUsage: MAC_USAGE };
  }
  if (spec === SYMMETRIC_DEFAULT || spec === "SM4") {
    if (usage !== "ENCRYPT_DECRYPT") throw new KmsError("InvalidKeyUsage", `"KeyUsage" ${usage} does not fit "KeySpec" ${spec}: use ENCRYPT_DECRYPT`);
    return { keySpec: (spec === "SM4" ? "SM4" : "AES_256") satisfies SymmetricKeySpec, keyUsage: "ENCRYPT_DECRYPT" };
  }
  const purpose = usage === "SIGN_VERIFY" ? "sign" : usage === "KEY_AGREEMENT" ? "agree" : "decrypt";
  const match = Object.entries(ASYMMETRIC_USAGES).find(([, info]) => AWS_SPECS[info.spec] === spec && info.purpose === purpose);
  if (!match) throw new KmsError("InvalidKeyUsage", `"KeyUsage" ${usage} does not fit "KeySpec" ${spec} here: ${usageHint(spec)}`);
  return { keySpec: match[1].spec, keyUsage: match[0] as KeyUsage };
}

function usageHint(spec: AwsKeySpec): string {
  return spec.startsWith("ECC") ? "ECC keys are SIGN_VERIFY or KEY_AGREEMENT" : "use ENCRYPT_DECRYPT or SIGN_VERIFY";
}

/** As DescribeKey reports it: a KMIP object's EXPORT_ONLY is a Tresor extension, not a usage AWS creates. */
function awsUsage(usage: KeyUsage): AwsKeyUsage | typeof EXPORT_ONLY_USAGE {
  if (usage === EXPORT_ONLY_USAGE || usage === MAC_USAGE) return usage;
  if (isAsymmetricUsage(usage) && ASYMMETRIC_USAGES[usage].purpose === "agree") return "KEY_AGREEMENT";
  return isAsymmetricUsage(usage) && isSigning(ASYMMETRIC_USAGES[usage].purpose) ? "SIGN_VERIFY" : "ENCRYPT_DECRYPT";
}

function isSigning(purpose: string): boolean {
  return purpose === "sign" || purpose === "pq-sign";
}

/** The algorithms a key offers, as KeyMetadata and GetPublicKey list them. */
export function keyAlgorithms(key: KeyRecord): { EncryptionAlgorithms?: string[]; SigningAlgorithms?: string[]; MacAlgorithms?: string[]; KeyAgreementAlgorithms?: string[] } {
  // A KMIP export-only object offers no algorithm through this door.
  if (key.keyUsage === EXPORT_ONLY_USAGE) return {};
  if (key.keyUsage === MAC_USAGE && isMacSpec(key.keySpec)) return { MacAlgorithms: [MAC_SPECS[key.keySpec].algorithm] };
  if (!isAsymmetricUsage(key.keyUsage)) return { EncryptionAlgorithms: [SYMMETRIC_DEFAULT] };
  const usage = ASYMMETRIC_USAGES[key.keyUsage];
  if (usage.purpose === "agree") return { KeyAgreementAlgorithms: [...usage.algorithms] };
  if (usage.purpose === "sign") return { SigningAlgorithms: (usage.algorithms as SigningAlgorithm[]).map((a) => AWS_SIGNING_NAMES[a]) };
  // Post-quantum keys are served through the Tencent door's actions only (docs/aws.md).
  if (usage.purpose === "pq-sign") return { SigningAlgorithms: [] };
  return { EncryptionAlgorithms: usage.spec === "SM2" || usage.purpose === "pq-decrypt" ? [] : [...RSA_ENCRYPTION_ALGORITHMS] };
}

export function awsKeyType(key: KeyRecord): { KeySpec: string; KeyUsage: string } {
  return { KeySpec: AWS_SPECS[key.keySpec], KeyUsage: awsUsage(key.keyUsage) };
}

export function keyMetadata(key: KeyRecord, scope: ArnScope): Record<string, unknown> {
  const { KeySpec, KeyUsage } = awsKeyType(key);
  return {
    AWSAccountId: scope.account,
    KeyId: key.keyId,
    Arn: keyArn(scope, key.keyId),
    CreationDate: key.createTime,
    Enabled: key.state === "Enabled",
    Description: key.description,
    KeyUsage,
    KeyState: KEY_STATES[key.state],
    ...(key.deletionDate > 0 ? { DeletionDate: key.deletionDate } : {}),
    ...(key.origin === "EXTERNAL" && key.validTo > 0 ? { ValidTo: key.validTo } : {}),
    Origin: key.origin === "EXTERNAL" ? "EXTERNAL" : "AWS_KMS",
    KeyManager: "CUSTOMER",
    CustomerMasterKeySpec: KeySpec,
    KeySpec,
    ...keyAlgorithms(key),
    MultiRegion: false,
  };
}
