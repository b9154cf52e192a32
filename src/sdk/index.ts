// tresor/sdk: the client library. This facade only re-exports.

export {
  API_VERSION,
  CLIENT_ERROR_CODES,
  KmsClient,
  KmsClientError,
  MAX_PLAINTEXT_BYTES,
  SERVICE,
  encodeEncryptionContext,
} from "./client.js";
export type { DataKey, EncryptionContext } from "./client.js";
export { KEY_USAGES } from "./types.js";
export type * from "./types.js";
