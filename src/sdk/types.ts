// Wire shapes of the Tencent Cloud KMS API (version 2019-01-18) that Tresor serves, as the
// official SDK names them (kms_models.d.ts), plus Tresor's KeySpec extension. Binary fields are
// base64 strings, exactly as on the wire.

export interface KmsClientOptions {
  /** Base URL of the server, e.g. "http://127.0.0.1:8400" or "https://kms.example:8400". Give this or `endpoints`. */
  endpoint?: string;
  /**
   * Several nodes of one cluster, in order of preference: a call that gets no answer, or the answer
   * ServiceUnavailable (or HTTP 502/503/504), moves on to the next one, after a jittered backoff.
   * The client stays on the node that answered. Give this or `endpoint`.
   */
  endpoints?: readonly string[];
  secretId: string;
  secretKey: string;
  /** The token of temporary credentials (from STS AssumeRole), sent as X-TC-Token. */
  token?: string;
  /** Sent as X-TC-Region; default "local". */
  region?: string;
  /** Per attempt, from sending the request to the last byte of the answer; default 10000. */
  timeoutMs?: number;
  /**
   * Retries after transport failures and ServiceUnavailable answers (never after any other answer);
   * default 3, and at least enough to try each of `endpoints` once.
   */
  maxRetries?: number;
  /** An extra trusted CA (PEM) for https endpoints, added to the system roots. */
  ca?: string | Buffer;
}

export type KeyState = "Enabled" | "Disabled" | "PendingDelete" | "PendingImport" | "Archived";

/**
 * Tresor extension: the algorithm of a CMK. SM4 is the default for ENCRYPT_DECRYPT keys; an
 * asymmetric key's spec follows from its KeyUsage.
 */
export type CmkKeySpec =
  | "SM4"
  | "AES_256"
  | "RSA_2048"
  | "RSA_3072"
  | "RSA_4096"
  | "SM2"
  | "ECC_P256"
  | "ECC_P384"
  | "ECC_P521"
  | "ED25519"
  | "ML_DSA_44"
  | "ML_DSA_65"
  | "ML_DSA_87"
  | "ML_KEM_768"
  | "ML_KEM_1024"
  | "HMAC_SHA256"
  | "HMAC_SHA384"
  | "HMAC_SHA512"
  | "HMAC_SM3";

/** CreateKey's KeyUsage values (the RSA 3072 and 4096, ECDSA521 and EXCHANGE_ECMR_P521 ones are Tresor extensions). */
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
export type KeyUsage = (typeof KEY_USAGES)[number];

/** SignByAsymmetricKey / VerifyByAsymmetricKey algorithms. */
export type SigningAlgorithm = "SM2DSA" | "ECC_P256_R1" | "ECDSA_P384_SHA_384" | "ECDSA_P521_SHA_512" | "RSA_PSS_SHA_256" | "RSA_PKCS1_SHA_256" | "ED25519";
export type RsaDecryptAlgorithm = "RSAES_PKCS1_V1_5" | "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256";
/** Decrypt's and GenerateDataKey's EncryptionAlgorithm; SM2 (raw C1C3C2) is the default. */
export type PublicKeyWrapAlgorithm = "SM2" | "SM2_C1C3C2_ASN1" | RsaDecryptAlgorithm;

/** GenerateDataKey's KeySpec. */
export type DataKeySpec = "AES_128" | "AES_256";

/** Every response carries the server's request id. */
export interface KmsResponse {
  RequestId: string;
}

export interface Tag {
  TagKey: string;
  TagValue: string;
}

export interface TagFilter {
  TagKey: string;
  TagValue?: string[];
}

export interface MemberAccount {
  MemberAppId?: number;
  MemberUin?: number;
}

export interface KeyMetadata {
  KeyId?: string;
  Alias?: string;
  /** Unix seconds. */
  CreateTime?: number;
  Description?: string;
  KeyState?: KeyState;
  KeyUsage?: string;
  /** Tresor extension. */
  KeySpec?: CmkKeySpec;
  /** 2 = FIPS 140-2, 4 = national (GM) crypto. */
  Type?: number;
  CreatorUin?: number;
  CreatorUinString?: string;
  KeyRotationEnabled?: boolean;
  Owner?: string;
  NextRotateTime?: number;
  LastRotateTime?: number;
  RotateDays?: number;
  DeletionDate?: number;
  Origin?: string;
  /** Tresor extension: SOFTWARE or HSM. */
  ProtectionLevel?: string;
  /** Tresor extension: CMK (never exportable) or KMIP (created or registered through KMIP; exportable by KMIP Get). */
  KeyClass?: string;
  ValidTo?: number;
  ResourceId?: string;
  HsmClusterId?: string;
  IsSyncReplica?: number;
  SourceRegion?: string;
  SyncStatus?: number;
  SyncMessages?: string;
  SyncStartTime?: number;
  SyncEndTime?: number;
  SourceHsmClusterId?: string;
  AccountAppId?: number;
  AccountUin?: number;
  AccountName?: string;
}

export interface CreateKeyRequest {
  /** 1–60 of [A-Za-z0-9_-], first char alphanumeric, unique; "kms-" is reserved. */
  Alias: string;
  Description?: string;
  /** Default ENCRYPT_DECRYPT. */
  KeyUsage?: KeyUsage;
  /** 1 = material generated by the service (default), 2 = EXTERNAL. */
  Type?: number;
  /** Tresor extension; default SM4. */
  KeySpec?: CmkKeySpec;
  Tags?: Tag[];
  HsmClusterId?: string;
  /** Tresor extension; default SOFTWARE. HSM needs a pkcs11 root of trust (docs/api.md, CreateKey). */
  ProtectionLevel?: "SOFTWARE" | "HSM";
}
export interface CreateKeyResponse extends KmsResponse {
  KeyId?: string;
  Alias?: string;
  CreateTime?: number;
  Description?: string;
  KeyState?: KeyState;
  KeyUsage?: string;
  KeySpec?: CmkKeySpec;
  TagCode?: number;
  TagMsg?: string;
  HsmClusterId?: string;
}

export interface DescribeKeyRequest {
  KeyId: string;
  MemberAccount?: MemberAccount;
}
export interface DescribeKeyResponse extends KmsResponse {
  KeyMetadata?: KeyMetadata;
}

export interface DescribeKeysRequest {
  /** At most 100. */
  KeyIds: string[];
  MemberAccount?: MemberAccount;
}
export interface DescribeKeysResponse extends KmsResponse {
  KeyMetadatas?: KeyMetadata[];
}

export interface ListKeysRequest {
  Offset?: number;
  /** Default 10, at most 200. */
  Limit?: number;
  Role?: number;
  HsmClusterId?: string;
}
export interface ListKeysResponse extends KmsResponse {
  Keys?: Array<{ KeyId?: string }>;
  TotalCount?: number;
}

export interface ListKeyDetailRequest extends ListKeysRequest {
  /** 0 = newest first (default), 1 = oldest first. */
  OrderType?: number;
  /** 0 = all, 1 Enabled, 2 Disabled, 3 PendingDelete, 4 PendingImport, 5 Archived. */
  KeyState?: number;
  SearchKeyAlias?: string;
  Origin?: string;
  KeyUsage?: string;
  TagFilters?: TagFilter[];
  MemberAccounts?: MemberAccount[];
}
export interface ListKeyDetailResponse extends KmsResponse {
  TotalCount?: number;
  KeyMetadatas?: KeyMetadata[];
}

export interface KeyIdRequest {
  KeyId: string;
  MemberAccount?: MemberAccount;
}
export interface KeyIdsRequest {
  /** At most 100. */
  KeyIds: string[];
  MemberAccount?: MemberAccount;
}
export type EnableKeyRequest = KeyIdRequest;
export type DisableKeyRequest = KeyIdRequest;
export type EnableKeysRequest = KeyIdsRequest;
export type DisableKeysRequest = KeyIdsRequest;
export type EnableKeyResponse = KmsResponse;
export type DisableKeyResponse = KmsResponse;
export type EnableKeysResponse = KmsResponse;
export type DisableKeysResponse = KmsResponse;

export interface UpdateAliasRequest {
  Alias: string;
  KeyId: string;
  MemberAccount?: MemberAccount;
}
export type UpdateAliasResponse = KmsResponse;

export interface UpdateKeyDescriptionRequest {
  /** At most 1024 bytes. */
  Description: string;
  KeyId: string;
  MemberAccount?: MemberAccount;
}
export type UpdateKeyDescriptionResponse = KmsResponse;

/** Tresor extension: tags added to a key (or given new values) after CreateKey. */
export interface TagResourceRequest {
  KeyId: string;
  Tags: Tag[];
}
export type TagResourceResponse = KmsResponse;

/** Tresor extension: tags removed from a key by tag key. */
export interface UntagResourceRequest {
  KeyId: string;
  TagKeys: string[];
}
export type UntagResourceResponse = KmsResponse;

/** Tresor extension: a key's tags. */
export interface ListResourceTagsRequest {
  KeyId: string;
}
export interface ListResourceTagsResponse extends KmsResponse {
  KeyId: string;
  Tags: Tag[];
}

export interface EncryptRequest {
  KeyId: string;
  /** Base64 of at most 4096 bytes. */
  Plaintext: string;
  /** A JSON object as a string, at most 1024 chars; Decrypt needs the same string. */
  EncryptionContext?: string;
}
export interface EncryptResponse extends KmsResponse {
  CiphertextBlob?: string;
  KeyId?: string;
}

export interface DecryptRequest {
  CiphertextBlob: string;
  EncryptionContext?: string;
  /** PEM public key (RSA 2048–4096 or SM2) to encrypt the returned plaintext to. */
  EncryptionPublicKey?: string;
  EncryptionAlgorithm?: PublicKeyWrapAlgorithm;
}
export interface DecryptResponse extends KmsResponse {
  KeyId?: string;
  /** Base64 plaintext, or wrapped under EncryptionPublicKey when one was given. */
  Plaintext?: string;
}

export interface ReEncryptRequest {
  CiphertextBlob: string;
  /** Empty: the blob's own CMK. */
  DestinationKeyId?: string;
  SourceEncryptionContext?: string;
  DestinationEncryptionContext?: string;
}
export interface ReEncryptResponse extends KmsResponse {
  CiphertextBlob?: string;
  KeyId?: string;
  SourceKeyId?: string;
  ReEncrypted?: boolean;
}

export interface GenerateDataKeyRequest {
  KeyId: string;
  /** One of KeySpec and NumberOfBytes is required; NumberOfBytes wins when both are given. */
  KeySpec?: DataKeySpec;
  /** 1–1024. */
  NumberOfBytes?: number;
  EncryptionContext?: string;
  /** PEM public key (RSA 2048–4096 or SM2) to encrypt the returned plaintext to. */
  EncryptionPublicKey?: string;
  EncryptionAlgorithm?: PublicKeyWrapAlgorithm;
  IsHostedByKms?: number;
  DataKeyName?: string;
  Description?: string;
  HsmClusterId?: string;
  Tags?: Tag[];
}
export interface GenerateDataKeyResponse extends KmsResponse {
  KeyId?: string;
  Plaintext?: string;
  CiphertextBlob?: string;
  DataKeyId?: string;
  TagCode?: number;
  TagMsg?: string;
}

export interface GenerateRandomRequest {
  /** 1–1024. */
  NumberOfBytes: number;
}
export interface GenerateRandomResponse extends KmsResponse {
  Plaintext: string;
}

/** Actions that take no parameters are sent with an empty JSON object. */
export type EmptyRequest = Record<string, never>;

export interface GetServiceStatusResponse extends KmsResponse {
  ServiceEnabled?: boolean;
  InvalidType?: number;
  UserLevel?: number;
  ProExpireTime?: number;
  ProRenewFlag?: number;
  ProResourceId?: string;
  ExclusiveVSMEnabled?: boolean;
  ExclusiveHSMEnabled?: boolean;
  SubscriptionInfo?: string;
  CmkUserCount?: number;
  CmkLimit?: number;
  ExclusiveHSMList?: Array<{ HsmClusterId?: string; HsmClusterName?: string }>;
  IsAllowedDataKeyHosted?: boolean;
  DataKeyLimit?: number;
  FreeDataKeyLimit?: number;
  DataKeyUsedCount?: number;
  SyncTaskList?: Array<{ DestinationRegion?: string; HsmClusterId?: string }>;
  IsAllowedSync?: boolean;
  QpsLimit?: number;
  QpsTotalLimit?: number;
  RegionsQps?: Array<{ Region?: string; Qps?: number }>;
  ResourceZone?: number;
  ResourceRegion?: number;
}

export interface AlgorithmInfo {
  KeyUsage?: string;
  Algorithm?: string;
}
export interface ListAlgorithmsResponse extends KmsResponse {
  SymmetricAlgorithms?: AlgorithmInfo[];
  AsymmetricAlgorithms?: AlgorithmInfo[];
  AsymmetricSignVerifyAlgorithms?: AlgorithmInfo[];
}

export interface GetRegionsResponse extends KmsResponse {
  Regions?: string[];
}

export interface GetPublicKeyRequest {
  KeyId: string;
}
export interface GetPublicKeyResponse extends KmsResponse {
  KeyId?: string;
  /** Base64 of the DER SubjectPublicKeyInfo. */
  PublicKey?: string;
  PublicKeyPem?: string;
}

export interface AsymmetricRsaDecryptRequest {
  KeyId: string;
  /** Base64 of one RSA block made with the key's public key. */
  Ciphertext: string;
  Algorithm: RsaDecryptAlgorithm;
}
export interface AsymmetricRsaDecryptResponse extends KmsResponse {
  KeyId?: string;
  Plaintext?: string;
}

export interface AsymmetricSm2DecryptRequest {
  KeyId: string;
  /** Base64 of an SM2 ciphertext, C1C3C2 in ASN.1 DER (GM/T 0009), at most 256 bytes. */
  Ciphertext: string;
}
export interface AsymmetricSm2DecryptResponse extends KmsResponse {
  KeyId?: string;
  Plaintext?: string;
}

export interface SignByAsymmetricKeyRequest {
  KeyId: string;
  Algorithm: SigningAlgorithm;
  /** Base64: the message (RAW, at most 4096 bytes) or its digest (DIGEST). */
  Message: string;
  /** RAW (default) or DIGEST. */
  MessageType?: "RAW" | "DIGEST";
}
export interface SignByAsymmetricKeyResponse extends KmsResponse {
  /** Base64 of the DER (ECDSA, SM2) or PKCS#1 (RSA) signature. */
  Signature?: string;
}

export interface VerifyByAsymmetricKeyRequest extends SignByAsymmetricKeyRequest {
  SignatureValue: string;
}
export interface VerifyByAsymmetricKeyResponse extends KmsResponse {
  SignatureValid?: boolean;
}

// ---- post-quantum keys (Tencent's PostQuantumCrypto* actions) and HMAC keys (Tresor extension) ----

export interface PostQuantumCryptoEncryptRequest {
  KeyId: string;
  /** Base64 of at most 4096 bytes (note Tencent's capital T). */
  PlainText: string;
}
export interface PostQuantumCryptoEncryptResponse extends KmsResponse {
  CiphertextBlob?: string;
  KeyId?: string;
}
export interface PostQuantumCryptoDecryptRequest {
  CiphertextBlob: string;
  EncryptionPublicKey?: string;
  EncryptionAlgorithm?: "SM2" | "SM2_C1C3C2_ASN1" | "RSAES_PKCS1_V1_5" | "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256";
}
export interface PostQuantumCryptoDecryptResponse extends KmsResponse {
  KeyId?: string;
  PlainText?: string;
}
export interface PostQuantumCryptoSignRequest {
  KeyId: string;
  /** Base64 of at most 4096 bytes. */
  Message: string;
  /** Tresor extension: base64 of FIPS 204's context string (1 to 255 bytes); absent = empty. */
  Context?: string;
}
export interface PostQuantumCryptoSignResponse extends KmsResponse {
  /** Base64 of the ML-DSA signature (FIPS 204). */
  Signature?: string;
}
export interface PostQuantumCryptoVerifyRequest extends PostQuantumCryptoSignRequest {
  SignatureValue: string;
}
export interface PostQuantumCryptoVerifyResponse extends KmsResponse {
  SignatureValid?: boolean;
}

export type MacAlgorithm = "HMAC_SHA_256" | "HMAC_SHA_384" | "HMAC_SHA_512" | "HMAC_SM3";
export interface GenerateMacRequest {
  KeyId: string;
  /** Base64 of at most 4096 bytes. */
  Message: string;
  /** Must fit the key's spec (HMAC_SHA256 → HMAC_SHA_256, HMAC_SM3 → HMAC_SM3, ...). */
  MacAlgorithm: MacAlgorithm;
}
export interface GenerateMacResponse extends KmsResponse {
  KeyId?: string;
  Mac?: string;
  MacAlgorithm?: MacAlgorithm;
}
export interface VerifyMacRequest extends GenerateMacRequest {
  Mac: string;
}
export interface VerifyMacResponse extends KmsResponse {
  KeyId?: string;
  MacValid?: boolean;
  MacAlgorithm?: MacAlgorithm;
}

export interface DeriveSharedSecretRequest {
  KeyId: string;
  KeyAgreementAlgorithm: "ECDH";
  /** Base64 of the peer's DER SubjectPublicKeyInfo, on the key's curve. */
  PublicKey: string;
}
export interface DeriveSharedSecretResponse extends KmsResponse {
  KeyId?: string;
  /** Base64 of the x coordinate of d·Q (SP 800-56A); derive keys from it with a KDF. */
  SharedSecret?: string;
  KeyAgreementAlgorithm?: "ECDH";
}

/** Action name → [request, response], for the actions this client types. */
export interface KmsActions {
  CreateKey: [CreateKeyRequest, CreateKeyResponse];
  DescribeKey: [DescribeKeyRequest, DescribeKeyResponse];
  DescribeKeys: [DescribeKeysRequest, DescribeKeysResponse];
  ListKeys: [ListKeysRequest, ListKeysResponse];
  ListKeyDetail: [ListKeyDetailRequest, ListKeyDetailResponse];
  EnableKey: [EnableKeyRequest, EnableKeyResponse];
  DisableKey: [DisableKeyRequest, DisableKeyResponse];
  EnableKeys: [EnableKeysRequest, EnableKeysResponse];
  DisableKeys: [DisableKeysRequest, DisableKeysResponse];
  UpdateAlias: [UpdateAliasRequest, UpdateAliasResponse];
  UpdateKeyDescription: [UpdateKeyDescriptionRequest, UpdateKeyDescriptionResponse];
  TagResource: [TagResourceRequest, TagResourceResponse];
  UntagResource: [UntagResourceRequest, UntagResourceResponse];
  ListResourceTags: [ListResourceTagsRequest, ListResourceTagsResponse];
  Encrypt: [EncryptRequest, EncryptResponse];
  Decrypt: [DecryptRequest, DecryptResponse];
  ReEncrypt: [ReEncryptRequest, ReEncryptResponse];
  GenerateDataKey: [GenerateDataKeyRequest, GenerateDataKeyResponse];
  GenerateRandom: [GenerateRandomRequest, GenerateRandomResponse];
  GetServiceStatus: [EmptyRequest, GetServiceStatusResponse];
  ListAlgorithms: [EmptyRequest, ListAlgorithmsResponse];
  GetRegions: [EmptyRequest, GetRegionsResponse];
  GetPublicKey: [GetPublicKeyRequest, GetPublicKeyResponse];
  AsymmetricRsaDecrypt: [AsymmetricRsaDecryptRequest, AsymmetricRsaDecryptResponse];
  AsymmetricSm2Decrypt: [AsymmetricSm2DecryptRequest, AsymmetricSm2DecryptResponse];
  SignByAsymmetricKey: [SignByAsymmetricKeyRequest, SignByAsymmetricKeyResponse];
  VerifyByAsymmetricKey: [VerifyByAsymmetricKeyRequest, VerifyByAsymmetricKeyResponse];
  PostQuantumCryptoEncrypt: [PostQuantumCryptoEncryptRequest, PostQuantumCryptoEncryptResponse];
  PostQuantumCryptoDecrypt: [PostQuantumCryptoDecryptRequest, PostQuantumCryptoDecryptResponse];
  PostQuantumCryptoSign: [PostQuantumCryptoSignRequest, PostQuantumCryptoSignResponse];
  PostQuantumCryptoVerify: [PostQuantumCryptoVerifyRequest, PostQuantumCryptoVerifyResponse];
  GenerateMac: [GenerateMacRequest, GenerateMacResponse];
  VerifyMac: [VerifyMacRequest, VerifyMacResponse];
  DeriveSharedSecret: [DeriveSharedSecretRequest, DeriveSharedSecretResponse];
  ArchiveKey: [KeyIdRequest, KmsResponse];
  CancelKeyArchive: [KeyIdRequest, KmsResponse];
  ScheduleKeyDeletion: [ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse];
  CancelKeyDeletion: [KeyIdRequest, CancelKeyDeletionResponse];
  EnableKeyRotation: [EnableKeyRotationRequest, KmsResponse];
  DisableKeyRotation: [KeyIdRequest, KmsResponse];
  GetKeyRotationStatus: [KeyIdRequest, GetKeyRotationStatusResponse];
  RotateKey: [KeyIdRequest, RotateKeyResponse];
  ListKeyVersions: [KeyIdRequest, ListKeyVersionsResponse];
  GetParametersForImport: [GetParametersForImportRequest, GetParametersForImportResponse];
  ImportKeyMaterial: [ImportKeyMaterialRequest, KmsResponse];
  DeleteImportedKeyMaterial: [KeyIdRequest, KmsResponse];
  CreateTangServer: [CreateTangServerRequest, TangServerResponse];
  ListTangServers: [EmptyRequest, ListTangServersResponse];
  DescribeTangServer: [TangServerRequest, TangServerResponse];
  UpdateTangServer: [UpdateTangServerRequest, KmsResponse];
  RotateTangServer: [TangServerRequest, TangServerResponse];
  EnableTangServer: [TangServerRequest, KmsResponse];
  DisableTangServer: [TangServerRequest, KmsResponse];
}
export type KmsAction = keyof KmsActions;

// ---- Tang servers (Tresor extension; docs/disk-encryption.md) ----

export interface TangServerRequest {
  Name: string;
}
export interface CreateTangServerRequest extends TangServerRequest {
  /** CIDR blocks allowed to recover; absent or empty: any source. */
  AllowedNetworks?: string[];
  /** HSM: both keys made and used inside the server's PKCS#11 token (default SOFTWARE). */
  ProtectionLevel?: "SOFTWARE" | "HSM";
}
export interface UpdateTangServerRequest extends TangServerRequest {
  AllowedNetworks: string[];
}
export interface TangKeyVersion {
  Version: number;
  CreateTime: number;
  /** RFC 7638 SHA-256 thumbprint: what `clevis encrypt tang` pins as "thp". */
  Thumbprint: string;
  ThumbprintSha1: string;
  /** The newest version, advertised; older versions still recover. */
  Advertised: boolean;
}
export interface TangKey {
  KeyId: string;
  KeyState: string;
  Versions: TangKeyVersion[];
}
export interface TangServer {
  Name: string;
  State: string;
  ProtectionLevel: "SOFTWARE" | "HSM";
  AllowedNetworks: string[];
  CreateTime: number;
  SigningKey: TangKey;
  ExchangeKey: TangKey;
}
export interface TangServerResponse extends KmsResponse {
  TangServer?: TangServer;
}
export interface ListTangServersResponse extends KmsResponse {
  TangServers?: TangServer[];
}

// ---- key lifecycle: archiving, deletion, rotation, bring your own key ----

export interface KeyIdRequest {
  KeyId: string;
}
export interface ScheduleKeyDeletionRequest {
  KeyId: string;
  /** 7 to 30. */
  PendingWindowInDays: number;
}
export interface ScheduleKeyDeletionResponse extends KmsResponse {
  DeletionDate?: number;
  KeyId?: string;
}
export interface CancelKeyDeletionResponse extends KmsResponse {
  KeyId?: string;
}
export interface EnableKeyRotationRequest {
  KeyId: string;
  /** 7 to 365, default 365. */
  RotateDays?: number;
}
export interface GetKeyRotationStatusResponse extends KmsResponse {
  KeyRotationEnabled?: boolean;
  /** Tresor extensions. */
  RotateDays?: number;
  NextRotateTime?: number;
  LastRotateTime?: number;
}
export interface RotateKeyResponse extends KmsResponse {
  TaskId?: string;
}
/** Tresor extension: a key's versions and their creation times, never material. */
export interface ListKeyVersionsResponse extends KmsResponse {
  KeyId?: string;
  CurrentVersion?: number;
  Versions?: { Version: number; CreateTime: number }[];
}
export type WrappingKeySpec = "RSA_2048" | "SM2";
export type WrappingAlgorithm = "RSAES_PKCS1_V1_5" | "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE";
export interface GetParametersForImportRequest {
  KeyId: string;
  WrappingAlgorithm: WrappingAlgorithm;
  WrappingKeySpec: WrappingKeySpec;
}
export interface GetParametersForImportResponse extends KmsResponse {
  KeyId?: string;
  ImportToken?: string;
  /** Base64 DER SubjectPublicKeyInfo of the wrapping key. */
  PublicKey?: string;
  ParametersValidTo?: number;
}
export interface ImportKeyMaterialRequest {
  /** Base64 of the material encrypted to the import public key. */
  EncryptedKeyMaterial: string;
  ImportToken: string;
  KeyId: string;
  /** Unix seconds; 0 or absent = never expires. */
  ValidTo?: number;
}
