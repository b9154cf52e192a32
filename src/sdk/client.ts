// KmsClient: a typed client of the Tencent Cloud API 3.0 KMS protocol that Tresor serves. Each
// attempt is signed afresh (TC3-HMAC-SHA256); only transport failures and "this node cannot serve
// now" answers are retried, moving on to the next of several endpoints; never any other answer.
// One attempt (signing, sending, reading the answer) is in transport.ts, the errors in client-errors.ts.

import http from "node:http";
import https from "node:https";
import { rootCertificates } from "node:tls";
import { inspect } from "node:util";
import { CLIENT_ERROR_CODES, KmsClientError } from "./client-errors.js";
import { isUnavailableAnswer, PRODUCT_VERSIONS, sendAttempt, TransportFailure, type Product, type TransportSettings } from "./transport.js";
import type {
  AsymmetricRsaDecryptRequest,
  AsymmetricRsaDecryptResponse,
  AsymmetricSm2DecryptRequest,
  AsymmetricSm2DecryptResponse,
  CreateKeyRequest,
  CreateKeyResponse,
  DataKeySpec,
  DecryptRequest,
  DecryptResponse,
  DescribeKeyRequest,
  DescribeKeyResponse,
  DescribeKeysRequest,
  DescribeKeysResponse,
  DisableKeyRequest,
  DisableKeyResponse,
  DisableKeysRequest,
  DisableKeysResponse,
  EnableKeyRequest,
  EnableKeyResponse,
  EnableKeysRequest,
  EnableKeysResponse,
  EncryptRequest,
  EncryptResponse,
  GenerateDataKeyRequest,
  GenerateDataKeyResponse,
  GenerateRandomRequest,
  GenerateRandomResponse,
  GetPublicKeyRequest,
  GetPublicKeyResponse,
  GetRegionsResponse,
  GetServiceStatusResponse,
  KmsAction,
  KmsActions,
  KmsClientOptions,
  KmsResponse,
  ListAlgorithmsResponse,
  ListKeyDetailRequest,
  ListKeyDetailResponse,
  ListKeysRequest,
  ListKeysResponse,
  ReEncryptRequest,
  ReEncryptResponse,
  SignByAsymmetricKeyRequest,
  SignByAsymmetricKeyResponse,
  PostQuantumCryptoEncryptRequest,
  PostQuantumCryptoEncryptResponse,
  PostQuantumCryptoDecryptRequest,
  PostQuantumCryptoDecryptResponse,
  PostQuantumCryptoSignRequest,
  PostQuantumCryptoSignResponse,
  PostQuantumCryptoVerifyRequest,
  PostQuantumCryptoVerifyResponse,
  GenerateMacRequest,
  GenerateMacResponse,
  VerifyMacRequest,
  VerifyMacResponse,
  DeriveSharedSecretRequest,
  DeriveSharedSecretResponse,
  UpdateAliasRequest,
  UpdateAliasResponse,
  TagResourceRequest,
  TagResourceResponse,
  UntagResourceRequest,
  UntagResourceResponse,
  ListResourceTagsRequest,
  ListResourceTagsResponse,
  UpdateKeyDescriptionRequest,
  UpdateKeyDescriptionResponse,
  VerifyByAsymmetricKeyRequest,
  VerifyByAsymmetricKeyResponse,
} from "./types.js";
import type * as T from "./types.js";

export { CLIENT_ERROR_CODES, KmsClientError } from "./client-errors.js";
export { API_VERSION, PRODUCT_VERSIONS, SERVICE, type Product } from "./transport.js";

/** Encrypt takes at most this many plaintext bytes. */
export const MAX_PLAINTEXT_BYTES = 4096;

const DEFAULT_REGION = "local";
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RETRIES = 3;
const MAX_RETRIES_LIMIT = 10;
const MAX_TIMEOUT_MS = 2_147_483_647; // setTimeout's limit
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 2_000;

/** An encryption context as a JSON object of strings; sent as its compact JSON text. */
export type EncryptionContext = Readonly<Record<string, string>>;

/** The wire form of an encryption context: compact JSON, in the object's own key order. */
export function encodeEncryptionContext(context: EncryptionContext): string {
  if (typeof context !== "object" || context === null || Array.isArray(context)) {
    throw new TypeError(`"context" must be an object of string values`);
  }
  for (const [name, value] of Object.entries(context)) {
    if (typeof value !== "string") throw new TypeError(`"context" value of ${JSON.stringify(name)} must be a string`);
  }
  return JSON.stringify(context);
}

export interface DataKey {
  keyId: string;
  /** The plaintext data key; fill(0) it when done. */
  plaintext: Buffer;
  ciphertextBlob: string;
}

/** Checks one endpoint URL; `name` is the option it came from, for the message. */
function parseEndpoint(endpoint: unknown, name: string): URL {
  if (typeof endpoint !== "string") throw new TypeError(`"${name}" must be a string URL`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError(`"${name}" must be an http:// or https:// URL, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`"${name}" must use http:// or https://, got ${JSON.stringify(url.protocol)}`);
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== "")) {
    throw new TypeError(`"${name}" must be scheme, host and port only, e.g. "http://127.0.0.1:8400"`);
  }
  return url;
}

export class KmsClient {
  /** Every endpoint, in order of preference (scheme, host and port). */
  readonly endpoints: readonly string[];
  readonly region: string;
  readonly secretId: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  // Holds the secret key and token. A private field: not enumerable, not in JSON, not shown by util.inspect.
  readonly #transport: TransportSettings;
  readonly #urls: readonly URL[];
  /** The endpoint calls go to; moves on when one cannot serve, and stays where an answer came from. */
  #current = 0;
  #closed = false;

  constructor(options: KmsClientOptions) {
    if (typeof options !== "object" || options === null) throw new TypeError(`"options" must be an object`);
    const { endpoint, endpoints, secretId, secretKey, token, region, timeoutMs, maxRetries, ca } = options;

    let urls: URL[];
    if (endpoints === undefined) {
      urls = [parseEndpoint(endpoint, "endpoint")];
    } else {
      if (endpoint !== undefined) throw new TypeError(`give "endpoint" or "endpoints", not both`);
      if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.length > 64) {
        throw new TypeError(`"endpoints" must be an array of 1 to 64 URLs`);
      }
      urls = endpoints.map((e: unknown, i) => parseEndpoint(e, `endpoints[${i}]`));
      if (new Set(urls.map((u) => u.origin)).size !== urls.length) throw new TypeError(`"endpoints" lists an endpoint twice`);
      if (urls.some((u) => u.protocol !== urls[0]!.protocol)) throw new TypeError(`"endpoints" must all use http:// or all https://`);
    }
    const url = urls[0]!;
    if (typeof secretId !== "string" || !/^[^\s/,]+$/.test(secretId)) {
      throw new TypeError(`"secretId" must be a non-empty string without whitespace, "/" or ","`);
    }
    if (typeof secretKey !== "string" || secretKey.length === 0) {
      throw new TypeError(`"secretKey" must be a non-empty string`);
    }
    if (token !== undefined && (typeof token !== "string" || !/^[\x21-\x7e]{1,4096}$/.test(token))) {
      throw new TypeError(`"token" must be 1 to 4096 printable ASCII characters`);
    }
    if (region !== undefined && (typeof region !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(region))) {
      throw new TypeError(`"region" must be 1-64 of [A-Za-z0-9_-]`);
    }
    if (timeoutMs !== undefined) {
      if (typeof timeoutMs !== "number") throw new TypeError(`"timeoutMs" must be a number`);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
        throw new RangeError(`"timeoutMs" must be an integer from 1 to ${MAX_TIMEOUT_MS}, got ${timeoutMs}`);
      }
    }
    if (maxRetries !== undefined) {
      if (typeof maxRetries !== "number") throw new TypeError(`"maxRetries" must be a number`);
      if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > MAX_RETRIES_LIMIT) {
        throw new RangeError(`"maxRetries" must be an integer from 0 to ${MAX_RETRIES_LIMIT}, got ${maxRetries}`);
      }
    }
    if (ca !== undefined) {
      if (typeof ca !== "string" && !Buffer.isBuffer(ca)) throw new TypeError(`"ca" must be a PEM string or Buffer`);
      if (url.protocol !== "https:") throw new TypeError(`"ca" applies only to an https:// endpoint`);
    }

    this.#urls = urls;
    this.endpoints = urls.map((u) => u.origin);
    this.secretId = secretId;
    this.region = region ?? DEFAULT_REGION;
    this.timeoutMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = maxRetries ?? DEFAULT_MAX_RETRIES;
    const agent =
      url.protocol === "https:"
        ? new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca: [...rootCertificates, ca] }) })
        : new http.Agent({ keepAlive: true });
    this.#transport = { secretId, secretKey, token, region: this.region, timeoutMs: this.timeoutMs, agent };
  }

  /** Closes idle keep-alive connections; later calls reject with code ClientClosed. */
  close(): void {
    this.#closed = true;
    this.#transport.agent.destroy();
  }

  /** The endpoint the next call goes to. */
  get endpoint(): string {
    return this.#urls[this.#current]!.origin;
  }

  toString(): string {
    return `KmsClient(${this.endpoint})`;
  }

  toJSON(): { endpoint: string; region: string; secretId: string } {
    return { endpoint: this.endpoint, region: this.region, secretId: this.secretId };
  }

  [inspect.custom](): string {
    return `KmsClient ${inspect(this.toJSON())}`;
  }

  /**
   * Sends one action and returns its whole `Response` (including RequestId). An error answer
   * rejects with a KmsClientError carrying the server's code and RequestId.
   */
  call<A extends KmsAction>(action: A, params: KmsActions[A][0]): Promise<KmsActions[A][1]>;
  /** Actions this client does not type (e.g. newer server actions). */
  call<A extends string>(
    action: A extends KmsAction ? never : A,
    params: Readonly<Record<string, unknown>>,
  ): Promise<KmsResponse & Record<string, unknown>>;
  async call(action: string, params: object): Promise<KmsResponse> {
    return this.callProduct("kms", action, params as Readonly<Record<string, unknown>>);
  }

  /**
   * Sends one action of another product the server answers on the same port (CAM, STS,
   * CloudAudit), with the same credentials, failover and retries as `call`.
   */
  async callProduct(product: Product, action: string, params: Readonly<Record<string, unknown>>): Promise<KmsResponse & Record<string, unknown>> {
    if (!Object.hasOwn(PRODUCT_VERSIONS, product)) throw new TypeError(`"product" must be one of ${Object.keys(PRODUCT_VERSIONS).join(", ")}`);
    if (typeof action !== "string" || !/^[A-Z][A-Za-z0-9]{0,63}$/.test(action)) {
      throw new TypeError(`"action" must be an action name such as "Encrypt"`);
    }
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      throw new TypeError(`"params" must be an object`);
    }
    const body = JSON.stringify(params);
    // Enough attempts to try every endpoint once, whatever maxRetries says.
    const retries = Math.max(this.maxRetries, this.#urls.length - 1);
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new KmsClientError(CLIENT_ERROR_CODES.ClientClosed, "the client is closed");
      const index = this.#current;
      try {
        // A Response is a JSON object: its fields beyond RequestId depend on the action.
        return (await sendAttempt(this.#transport, this.#urls[index]!, product, action, body)) as KmsResponse & Record<string, unknown>;
      } catch (err) {
        let failure: KmsClientError;
        if (err instanceof TransportFailure) {
          if (!err.retryable) throw err.error;
          failure = err.error;
        } else if (err instanceof KmsClientError && isUnavailableAnswer(err)) {
          failure = err;
        } else {
          throw err;
        }
        if (attempt >= retries) throw failure;
        // Unless a concurrent call has already moved on, the next node takes this and later calls.
        if (this.#current === index) this.#current = (index + 1) % this.#urls.length;
      }
      // Full jitter: a uniform delay up to the capped exponential bound spreads retrying clients.
      const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * bound));
    }
  }

  createKey(request: CreateKeyRequest): Promise<CreateKeyResponse> {
    return this.call("CreateKey", request);
  }
  describeKey(request: DescribeKeyRequest): Promise<DescribeKeyResponse> {
    return this.call("DescribeKey", request);
  }
  describeKeys(request: DescribeKeysRequest): Promise<DescribeKeysResponse> {
    return this.call("DescribeKeys", request);
  }
  listKeys(request: ListKeysRequest = {}): Promise<ListKeysResponse> {
    return this.call("ListKeys", request);
  }
  listKeyDetail(request: ListKeyDetailRequest = {}): Promise<ListKeyDetailResponse> {
    return this.call("ListKeyDetail", request);
  }
  enableKey(request: EnableKeyRequest): Promise<EnableKeyResponse> {
    return this.call("EnableKey", request);
  }
  disableKey(request: DisableKeyRequest): Promise<DisableKeyResponse> {
    return this.call("DisableKey", request);
  }
  enableKeys(request: EnableKeysRequest): Promise<EnableKeysResponse> {
    return this.call("EnableKeys", request);
  }
  disableKeys(request: DisableKeysRequest): Promise<DisableKeysResponse> {
    return this.call("DisableKeys", request);
  }
  updateAlias(request: UpdateAliasRequest): Promise<UpdateAliasResponse> {
    return this.call("UpdateAlias", request);
  }
  updateKeyDescription(request: UpdateKeyDescriptionRequest): Promise<UpdateKeyDescriptionResponse> {
    return this.call("UpdateKeyDescription", request);
  }
  /** Tresor extension: adds tags to a key, or gives existing tag keys new values. */
  tagResource(request: TagResourceRequest): Promise<TagResourceResponse> {
    return this.call("TagResource", request);
  }
  /** Tresor extension: removes tags from a key by tag key. */
  untagResource(request: UntagResourceRequest): Promise<UntagResourceResponse> {
    return this.call("UntagResource", request);
  }
  /** Tresor extension: a key's tags. */
  listResourceTags(request: ListResourceTagsRequest): Promise<ListResourceTagsResponse> {
    return this.call("ListResourceTags", request);
  }
  encrypt(request: EncryptRequest): Promise<EncryptResponse> {
    return this.call("Encrypt", request);
  }
  decrypt(request: DecryptRequest): Promise<DecryptResponse> {
    return this.call("Decrypt", request);
  }
  reEncrypt(request: ReEncryptRequest): Promise<ReEncryptResponse> {
    return this.call("ReEncrypt", request);
  }
  generateDataKey(request: GenerateDataKeyRequest): Promise<GenerateDataKeyResponse> {
    return this.call("GenerateDataKey", request);
  }
  generateRandom(request: GenerateRandomRequest): Promise<GenerateRandomResponse> {
    return this.call("GenerateRandom", request);
  }
  getServiceStatus(): Promise<GetServiceStatusResponse> {
    return this.call("GetServiceStatus", {});
  }
  listAlgorithms(): Promise<ListAlgorithmsResponse> {
    return this.call("ListAlgorithms", {});
  }
  getRegions(): Promise<GetRegionsResponse> {
    return this.call("GetRegions", {});
  }
  getPublicKey(request: GetPublicKeyRequest): Promise<GetPublicKeyResponse> {
    return this.call("GetPublicKey", request);
  }
  asymmetricRsaDecrypt(request: AsymmetricRsaDecryptRequest): Promise<AsymmetricRsaDecryptResponse> {
    return this.call("AsymmetricRsaDecrypt", request);
  }
  asymmetricSm2Decrypt(request: AsymmetricSm2DecryptRequest): Promise<AsymmetricSm2DecryptResponse> {
    return this.call("AsymmetricSm2Decrypt", request);
  }
  signByAsymmetricKey(request: SignByAsymmetricKeyRequest): Promise<SignByAsymmetricKeyResponse> {
    return this.call("SignByAsymmetricKey", request);
  }
  verifyByAsymmetricKey(request: VerifyByAsymmetricKeyRequest): Promise<VerifyByAsymmetricKeyResponse> {
    return this.call("VerifyByAsymmetricKey", request);
  }
  postQuantumCryptoEncrypt(request: PostQuantumCryptoEncryptRequest): Promise<PostQuantumCryptoEncryptResponse> {
    return this.call("PostQuantumCryptoEncrypt", request);
  }
  postQuantumCryptoDecrypt(request: PostQuantumCryptoDecryptRequest): Promise<PostQuantumCryptoDecryptResponse> {
    return this.call("PostQuantumCryptoDecrypt", request);
  }
  postQuantumCryptoSign(request: PostQuantumCryptoSignRequest): Promise<PostQuantumCryptoSignResponse> {
    return this.call("PostQuantumCryptoSign", request);
  }
  postQuantumCryptoVerify(request: PostQuantumCryptoVerifyRequest): Promise<PostQuantumCryptoVerifyResponse> {
    return this.call("PostQuantumCryptoVerify", request);
  }
  generateMac(request: GenerateMacRequest): Promise<GenerateMacResponse> {
    return this.call("GenerateMac", request);
  }
  verifyMac(request: VerifyMacRequest): Promise<VerifyMacResponse> {
    return this.call("VerifyMac", request);
  }
  deriveSharedSecret(request: DeriveSharedSecretRequest): Promise<DeriveSharedSecretResponse> {
    return this.call("DeriveSharedSecret", request);
  }

  /** Encrypt over bytes: returns the CiphertextBlob. */
  async encryptBytes(keyId: string, data: Uint8Array, context?: EncryptionContext): Promise<string> {
    if (!(data instanceof Uint8Array)) throw new TypeError(`"data" must be a Buffer or Uint8Array`);
    if (data.length > MAX_PLAINTEXT_BYTES) {
      throw new RangeError(`"data" must be at most ${MAX_PLAINTEXT_BYTES} bytes, got ${data.length}`);
    }
    const response = await this.encrypt({
      KeyId: keyId,
      Plaintext: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64"),
      ...(context === undefined ? {} : { EncryptionContext: encodeEncryptionContext(context) }),
    });
    return requireString(response, "CiphertextBlob");
  }

  /** Decrypt to bytes. The caller owns the returned Buffer and should wipe it when done. */
  async decryptBytes(ciphertextBlob: string, context?: EncryptionContext): Promise<Buffer> {
    const response = await this.decrypt({
      CiphertextBlob: ciphertextBlob,
      ...(context === undefined ? {} : { EncryptionContext: encodeEncryptionContext(context) }),
    });
    return Buffer.from(requireString(response, "Plaintext"), "base64");
  }

  /** GenerateDataKey with the plaintext as bytes; `size` is a KeySpec or a byte count (1–1024). */
  async generateDataKeyBytes(keyId: string, size: DataKeySpec | number, context?: EncryptionContext): Promise<DataKey> {
    const response = await this.generateDataKey({
      KeyId: keyId,
      ...(typeof size === "number" ? { NumberOfBytes: size } : { KeySpec: size }),
      ...(context === undefined ? {} : { EncryptionContext: encodeEncryptionContext(context) }),
    });
    return {
      keyId: requireString(response, "KeyId"),
      plaintext: Buffer.from(requireString(response, "Plaintext"), "base64"),
      ciphertextBlob: requireString(response, "CiphertextBlob"),
    };
  }
  // ---- key lifecycle: archiving, deletion, rotation, bring your own key ----

  archiveKey(request: T.KeyIdRequest): Promise<KmsResponse> {
    return this.call("ArchiveKey", request);
  }

  cancelKeyArchive(request: T.KeyIdRequest): Promise<KmsResponse> {
    return this.call("CancelKeyArchive", request);
  }

  scheduleKeyDeletion(request: T.ScheduleKeyDeletionRequest): Promise<T.ScheduleKeyDeletionResponse> {
    return this.call("ScheduleKeyDeletion", request);
  }

  cancelKeyDeletion(request: T.KeyIdRequest): Promise<T.CancelKeyDeletionResponse> {
    return this.call("CancelKeyDeletion", request);
  }

  enableKeyRotation(request: T.EnableKeyRotationRequest): Promise<KmsResponse> {
    return this.call("EnableKeyRotation", request);
  }

  disableKeyRotation(request: T.KeyIdRequest): Promise<KmsResponse> {
    return this.call("DisableKeyRotation", request);
  }

  getKeyRotationStatus(request: T.KeyIdRequest): Promise<T.GetKeyRotationStatusResponse> {
    return this.call("GetKeyRotationStatus", request);
  }

  rotateKey(request: T.KeyIdRequest): Promise<T.RotateKeyResponse> {
    return this.call("RotateKey", request);
  }

  /** Tresor extension. */
  listKeyVersions(request: T.KeyIdRequest): Promise<T.ListKeyVersionsResponse> {
    return this.call("ListKeyVersions", request);
  }

  getParametersForImport(request: T.GetParametersForImportRequest): Promise<T.GetParametersForImportResponse> {
    return this.call("GetParametersForImport", request);
  }

  importKeyMaterial(request: T.ImportKeyMaterialRequest): Promise<KmsResponse> {
    return this.call("ImportKeyMaterial", request);
  }

  deleteImportedKeyMaterial(request: T.KeyIdRequest): Promise<KmsResponse> {
    return this.call("DeleteImportedKeyMaterial", request);
  }
}
function requireString<T extends KmsResponse, K extends keyof T & string>(response: T, field: K): string {
  const value = response[field];
  if (typeof value !== "string") {
    throw new KmsClientError(CLIENT_ERROR_CODES.InvalidResponse, `invalid response: no "${field}"`, {
      status: 200,
      requestId: response.RequestId,
    });
  }
  return value;
}
