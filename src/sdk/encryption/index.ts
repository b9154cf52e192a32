// tresor/sdk/encryption: envelope encryption of any amount of data under one or several CMKs.
// This facade only re-exports.

export { encrypt, decrypt } from "./api.js";
export type { DecryptResult, EncryptResult, Input } from "./api.js";
export { DataKeyCache } from "./cache.js";
export type { DataKeyCacheOptions } from "./cache.js";
export { ENCRYPTION_ERROR_CODES, EncryptionSdkError } from "./errors.js";
export type { EncryptionErrorCode } from "./errors.js";
export {
  DEFAULT_FRAME_LENGTH,
  DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
  DEFAULT_MAX_HEADER_BYTES,
  FORMAT_VERSION,
  MAX_FRAME_LENGTH,
} from "./format.js";
export type { EncryptedDataKey } from "./format.js";
export { KMS_PROVIDER_ID, KmsKeyring, MAX_BACKUP_KEYS } from "./keyring.js";
export type { DataKeyMaterials, DecryptedDataKey, Keyring, KmsKeyringOptions, MasterKey } from "./keyring.js";
export { fetchPqRecipient, generatePqKeyPair, MAX_PQ_RECIPIENTS, PQ_KEY_VERSION, PQ_PROVIDER_ID, PostQuantumKeyring } from "./pq-keyring.js";
export type { PostQuantumKeyringOptions, PqRecipient } from "./pq-keyring.js";
export type { PqEncryptionAlgorithm } from "../../crypto/pq-ciphertext.js";
export { RAW_PROVIDER_ID, RawKeyring } from "./raw-keyring.js";
export type { RawKey } from "./raw-keyring.js";
export { DecryptStream, EncryptStream, decryptStream, encryptStream } from "./stream.js";
export type { DecryptOptions, EncryptOptions, MessageInfo } from "./stream.js";
export { DEFAULT_SUITE, PUBLIC_KEY_CONTEXT_KEY, SUITE_NAMES, SUITES } from "./suites.js";
export type { SuiteName } from "./suites.js";
