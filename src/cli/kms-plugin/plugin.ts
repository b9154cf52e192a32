// The Kubernetes KMS v2 plugin's three calls over Tresor, free of gRPC: input checks, the key_id
// that names the CMK and its current version, the ciphertext (Tresor's blob under a fixed
// purpose context) and its one annotation. kube-apiserver's limits: ciphertext and key_id at most
// 1 KiB each, annotation keys fully qualified domain names (proto/kubernetes/kms/v2/api.proto).

import { randomBytes, timingSafeEqual } from "node:crypto";
import { BLOB_MIN_LENGTH, BlobFormatError, decodeBlob } from "../../keys/blob.js";
import type { KmsClient } from "../../sdk/index.js";
import { KmsClientError } from "../../sdk/index.js";

/**
 * Bound into every ciphertext as its encryption context: a kms-plugin ciphertext decrypts only
 * with it, so it cannot be replayed into another Tresor decrypt use. The "tresor:" prefix is
 * reserved by the Encryption SDK, whose messages therefore never carry it.
 */
export const PURPOSE_CONTEXT: Readonly<Record<string, string>> = Object.freeze({ "tresor:purpose": "kubernetes-kms-v2" });
/** The one annotation: which plugin envelope made the ciphertext (Tresor blob under PURPOSE_CONTEXT). */
export const FORMAT_ANNOTATION = "version.kms.tresor.dev";
export const FORMAT_VERSION = "1";
/** kube-apiserver refuses a longer ciphertext. */
export const MAX_CIPHERTEXT_BYTES = 1024;
/** The longest plaintext whose blob still fits MAX_CIPHERTEXT_BYTES (the apiserver sends 32 bytes). */
export const MAX_PLAINTEXT_BYTES = MAX_CIPHERTEXT_BYTES - BLOB_MIN_LENGTH;
/** kube-apiserver refuses a longer key_id. */
const MAX_KEY_ID_LENGTH = 1024;
/** The apiserver's uid is a UUID; this bound only keeps log lines short. */
const MAX_UID_LENGTH = 128;
const PROBE_BYTES = 32;

export interface EncryptRequest {
  plaintext: Buffer;
  uid: string;
}
export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface DecryptRequest {
  ciphertext: Buffer;
  uid: string;
  key_id: string;
  annotations: Readonly<Record<string, Buffer>>;
}
export interface StatusResponse {
  version: "v2";
  healthz: string;
  key_id: string;
}

/** A request the plugin refuses before calling Tresor; the message names the field. */
export class PluginInputError extends Error {
  override readonly name = "PluginInputError";
}

/** Something Tresor answered that breaks the plugin's expectations (not the caller's fault). */
export class ProbeError extends Error {
  override readonly name = "ProbeError";
}

/** The key_id the apiserver stores beside each ciphertext: the CMK and the version that encrypted. */
export function kubernetesKeyId(keyId: string, version: number): string {
  return `tresor:${keyId}:v${version}`;
}

export class KmsPlugin {
  readonly #client: KmsClient;
  readonly keyId: string;

  constructor(client: KmsClient, keyId: string) {
    this.#client = client;
    this.keyId = keyId;
  }

  async encrypt(request: EncryptRequest): Promise<EncryptResponse> {
    checkUid(request.uid);
    const { plaintext } = request;
    if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new PluginInputError(`"plaintext" must be 1 to ${MAX_PLAINTEXT_BYTES} bytes, got ${plaintext.length}`);
    }
    const blob = Buffer.from(await this.#client.encryptBytes(this.keyId, plaintext, PURPOSE_CONTEXT), "base64");
    return { ciphertext: blob, key_id: this.#keyIdOf(blob), annotations: { [FORMAT_ANNOTATION]: Buffer.from(FORMAT_VERSION) } };
  }

  async decrypt(request: DecryptRequest): Promise<{ plaintext: Buffer }> {
    checkUid(request.uid);
    const { ciphertext, key_id: keyId, annotations } = request;
    if (ciphertext.length < BLOB_MIN_LENGTH || ciphertext.length > MAX_CIPHERTEXT_BYTES) {
      throw new PluginInputError(`"ciphertext" must be ${BLOB_MIN_LENGTH} to ${MAX_CIPHERTEXT_BYTES} bytes, got ${ciphertext.length}`);
    }
    if (keyId.length === 0 || keyId.length > MAX_KEY_ID_LENGTH) throw new PluginInputError(`"key_id" must be 1 to ${MAX_KEY_ID_LENGTH} characters`);
    checkAnnotations(annotations);
    let header: { keyId: string; keyVersion: number };
    try {
      header = decodeBlob(ciphertext);
    } catch (err) {
      if (err instanceof BlobFormatError) throw new PluginInputError(`"ciphertext" is not a Tresor ciphertext: ${err.message}`);
      throw err;
    }
    if (header.keyId !== this.keyId) throw new PluginInputError(`"ciphertext" was made under another key than this plugin's`);
    if (keyId !== kubernetesKeyId(header.keyId, header.keyVersion)) throw new PluginInputError(`"key_id" does not match the ciphertext`);
    const plaintext = await this.#client.decryptBytes(ciphertext.toString("base64"), PURPOSE_CONTEXT);
    return { plaintext };
  }

  /**
   * A real round trip under the purpose context: DescribeKey (the key must be Enabled), Encrypt of
   * random bytes, Decrypt, compare. Resolves with the current key_id; rejects with why not.
   */
  async probe(): Promise<string> {
    const { KeyMetadata } = await this.#client.describeKey({ KeyId: this.keyId });
    const state = KeyMetadata?.KeyState;
    if (state !== "Enabled") throw new ProbeError(`key ${typeof state === "string" ? state.replace(/[^A-Za-z]/g, "") : "state unknown"}`);
    const sample = randomBytes(PROBE_BYTES);
    const blob = Buffer.from(await this.#client.encryptBytes(this.keyId, sample, PURPOSE_CONTEXT), "base64");
    const keyId = this.#keyIdOf(blob);
    const back = await this.#client.decryptBytes(blob.toString("base64"), PURPOSE_CONTEXT);
    try {
      if (back.length !== sample.length || !timingSafeEqual(back, sample)) throw new ProbeError("probe round trip mismatch");
    } finally {
      back.fill(0);
      sample.fill(0);
    }
    return keyId;
  }

  /** The key_id of a blob Tresor just made with this plugin's key. */
  #keyIdOf(blob: Buffer): string {
    let header: { keyId: string; keyVersion: number };
    try {
      header = decodeBlob(blob);
    } catch {
      throw new ProbeError("Tresor answered with an unknown ciphertext format");
    }
    if (header.keyId !== this.keyId) throw new ProbeError("Tresor encrypted under another key");
    return kubernetesKeyId(header.keyId, header.keyVersion);
  }
}

function checkUid(uid: string): void {
  if (uid.length === 0 || uid.length > MAX_UID_LENGTH || /[^\x21-\x7e]/.test(uid)) {
    throw new PluginInputError(`"uid" must be 1 to ${MAX_UID_LENGTH} printable ASCII characters`);
  }
}

/** Exactly the annotation Encrypt gave: anything else is not a ciphertext of this plugin. */
function checkAnnotations(annotations: Readonly<Record<string, Buffer>>): void {
  const names = Object.keys(annotations);
  const format = Object.hasOwn(annotations, FORMAT_ANNOTATION) ? annotations[FORMAT_ANNOTATION] : undefined;
  if (names.length !== 1 || format === undefined || format.toString("latin1") !== FORMAT_VERSION) {
    throw new PluginInputError(`"annotations" must be exactly {"${FORMAT_ANNOTATION}": "${FORMAT_VERSION}"} as Encrypt returned them`);
  }
}

/** A short, secret-free reason for a not-ok healthz. */
export function healthReason(err: unknown): string {
  if (err instanceof ProbeError) return err.message;
  if (!(err instanceof KmsClientError)) return "probe failed";
  const code = err.code;
  if (code === "NetworkError" || code === "Timeout") return "Tresor unreachable";
  if (code === "ServiceUnavailable") return "Tresor unavailable";
  if (code === "ResourceUnavailable.CmkDisabled") return "key Disabled";
  if (code === "ResourceUnavailable.CmkArchived") return "key Archived";
  if (code === "ResourceUnavailable.CmkNotFound") return "key not found";
  if (code === "UnauthorizedOperation" || code.startsWith("AuthFailure")) return `permission denied (${code})`;
  return `Tresor error ${code.replace(/[^A-Za-z0-9.]/g, "").slice(0, 64)}`;
}
