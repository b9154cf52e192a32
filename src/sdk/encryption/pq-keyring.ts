// PostQuantumKeyring: wraps each message's data key to the public key of a Tresor post-quantum
// key (ASYMMETRIC_DECRYPT_ML_KEM_768 / _1024) on this machine, with no call to the server: the
// wrapped key is exactly a PostQuantumCryptoEncrypt ciphertext of the data key
// (crypto/pq-ciphertext.ts, the server's own code), so the server's PostQuantumCryptoDecrypt
// unwraps it and the private half never leaves Tresor. A recipient given its seed (a key pair made
// outside Tresor) unwraps locally instead. docs/encryption-sdk.md ("Post-quantum recipients").

import { randomUUID } from "node:crypto";
import { CryptoError } from "../../crypto/errors.js";
import { HYBRID_KEM_SEED_LENGTH, hybridKemGenerateKeyPair } from "../../crypto/hybrid-kem.js";
import { decodePqBlob, pqAlgorithmOfId, pqAlgorithmOfPublicKey, pqKemOf, pqOpen, pqSeal, type PqEncryptionAlgorithm } from "../../crypto/pq-ciphertext.js";
import { randomBytes } from "../../crypto/random.js";
import { isUuid } from "../../crypto/uuid.js";
import type { KmsClient } from "../client.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, needs } from "./errors.js";
import type { ContextPairs, EncryptedDataKey } from "./format.js";
import { describe, noDataKey, normalizeClients, onAnyEndpoint, type DataKeyMaterials, type DecryptedDataKey, type Keyring } from "./keyring.js";
import { pqThread } from "./pq-thread.js";

export const PQ_PROVIDER_ID = "tresor-pq";
/** Asymmetric keys never rotate in Tresor (docs/api.md RotateKey): their one version is 1. */
export const PQ_KEY_VERSION = 1;
export const MAX_PQ_RECIPIENTS = 5;

export interface PqRecipient {
  /** The Tresor key's id, a lower-case UUID. */
  keyId: string;
  /** Names the Tresor cluster; written into the message next to the wrapped data key. */
  region: string;
  /** The key's public key, raw: X-Wing 1216 bytes, MLKEM1024-P384 1665 (GetPublicKey's PublicKey, base64-decoded). */
  publicKey: Uint8Array;
  /** For decryption through PostQuantumCryptoDecrypt: one client per endpoint of that cluster. */
  clients?: KmsClient | readonly KmsClient[];
  /** The 32-byte private seed, for a key pair held outside Tresor: decryption then stays local. */
  seed?: Uint8Array;
}

export interface PostQuantumKeyringOptions {
  /**
   * For decryption only: a wrapped copy from one of these regions, whatever key it names, goes to
   * that region's PostQuantumCryptoDecrypt (as KmsKeyring finds CMKs by region). With these, the
   * recipients may be empty: a keyring that only decrypts.
   */
  decryptRegions?: ReadonlyArray<{ region: string; clients: KmsClient | readonly KmsClient[] }>;
}

interface OwnRecipient {
  keyId: string;
  region: string;
  algorithm: PqEncryptionAlgorithm;
  publicKey: Buffer;
  clients: readonly KmsClient[];
  seed: Buffer | undefined;
}

function normalizeRecipient(r: PqRecipient, name: string): OwnRecipient {
  needs(typeof r === "object" && r !== null, `"${name}" must be an object`);
  needs(typeof r.keyId === "string" && isUuid(r.keyId), `"${name}.keyId" must be a key id (a lower-case UUID)`);
  needs(typeof r.region === "string" && r.region !== "", `"${name}.region" must be a non-empty string`);
  needs(r.publicKey instanceof Uint8Array, `"${name}.publicKey" must be a Buffer`);
  const algorithm = pqAlgorithmOfPublicKey(r.publicKey);
  needs(algorithm !== undefined, `"${name}.publicKey" must be an X-Wing (1216 bytes) or MLKEM1024-P384 (1665 bytes) public key, got ${r.publicKey.length} bytes`);
  needs(r.seed === undefined || (r.seed instanceof Uint8Array && r.seed.length === HYBRID_KEM_SEED_LENGTH), `"${name}.seed" must be ${HYBRID_KEM_SEED_LENGTH} bytes`);
  return {
    keyId: r.keyId,
    region: r.region,
    algorithm,
    publicKey: Buffer.from(r.publicKey),
    clients: r.clients === undefined ? [] : normalizeClients(r.clients, name),
    seed: r.seed === undefined ? undefined : Buffer.from(r.seed),
  };
}

export class PostQuantumKeyring implements Keyring {
  readonly cacheId = `pq:${randomUUID()}`;
  readonly #recipients: readonly OwnRecipient[];
  readonly #regions: ReadonlyArray<{ region: string; clients: readonly KmsClient[] }>;

  /** Every recipient gets its own wrapped copy of each data key. */
  constructor(recipients: readonly PqRecipient[], options: PostQuantumKeyringOptions = {}) {
    needs(typeof options === "object" && options !== null, `"options" must be an object`);
    const regions = options.decryptRegions ?? [];
    needs(Array.isArray(regions) && regions.length <= MAX_PQ_RECIPIENTS, `"decryptRegions" must be an array of at most ${MAX_PQ_RECIPIENTS} regions`);
    const least = regions.length > 0 ? 0 : 1;
    needs(Array.isArray(recipients) && recipients.length >= least && recipients.length <= MAX_PQ_RECIPIENTS, `"recipients" must be an array of ${least} to ${MAX_PQ_RECIPIENTS} recipients`);
    this.#recipients = recipients.map((r, i) => normalizeRecipient(r, `recipients[${i}]`));
    this.#regions = regions.map((r, i) => {
      needs(typeof r === "object" && r !== null && typeof r.region === "string" && r.region !== "", `"decryptRegions[${i}].region" must be a non-empty string`);
      return { region: r.region, clients: normalizeClients(r.clients, `decryptRegions[${i}]`) };
    });
  }

  async generateDataKey(length: number, _context: ContextPairs): Promise<DataKeyMaterials> {
    needs(this.#recipients.length > 0, "this PostQuantumKeyring has no recipients: it only decrypts");
    const dataKey = randomBytes(length);
    try {
      const encryptedDataKeys: EncryptedDataKey[] = [];
      for (const [i, r] of this.#recipients.entries()) {
        encryptedDataKeys.push({ provider: PQ_PROVIDER_ID, region: r.region, keyId: r.keyId, blob: await wrap(r, dataKey, i) });
      }
      return { dataKey, encryptedDataKeys };
    } catch (err) {
      dataKey.fill(0);
      throw err;
    }
  }

  /**
   * The wrapped copy carries no encryption context (PostQuantumCryptoEncrypt takes none): the
   * message's header tag, under keys derived from the data key, authenticates the context.
   */
  async decryptDataKey(encryptedDataKeys: readonly EncryptedDataKey[], _context: ContextPairs, length: number): Promise<DecryptedDataKey> {
    const failures: string[] = [];
    for (const edk of encryptedDataKeys) {
      const where = `post-quantum key ${edk.keyId} in region ${edk.region}`;
      const r = edk.provider === PQ_PROVIDER_ID ? this.#recipientFor(edk) : undefined;
      if (r === undefined) {
        failures.push(`${where}: not in the keyring`);
        continue;
      }
      try {
        const dataKey = r.seed ? await unwrapLocally(r, r.seed, edk.blob) : await unwrapOnServer(r, edk.blob);
        if (dataKey.length !== length) {
          dataKey.fill(0);
          throw new Error(`the wrapped data key is ${dataKey.length} bytes, not ${length}`);
        }
        return { dataKey, decryptedWith: { provider: PQ_PROVIDER_ID, region: r.region, keyId: r.keyId } };
      } catch (err) {
        failures.push(`${where}: ${describe(err)}`);
      }
    }
    throw noDataKey(failures);
  }

  #recipientFor(edk: EncryptedDataKey): Pick<OwnRecipient, "keyId" | "region" | "algorithm" | "clients" | "seed"> | undefined {
    const own = this.#recipients.find((r) => r.region === edk.region && r.keyId === edk.keyId);
    if (own) return own;
    const region = this.#regions.find((r) => r.region === edk.region);
    if (!region || !isUuid(edk.keyId)) return undefined;
    // The algorithm is the one the copy names: the server checks it against the key.
    const algorithm = edk.blob.length > 1 ? pqAlgorithmOfId(edk.blob[1]!) : undefined;
    return algorithm && { keyId: edk.keyId, region: edk.region, algorithm, clients: region.clients, seed: undefined };
  }
}

async function wrap(r: OwnRecipient, dataKey: Buffer, index: number): Promise<Buffer> {
  try {
    return await pqSeal({ algorithm: r.algorithm, keyId: r.keyId, keyVersion: PQ_KEY_VERSION }, r.publicKey, dataKey, pqThread());
  } catch (err) {
    if (err instanceof RangeError) {
      throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, `"recipients[${index}].publicKey" is not a valid ${pqKemOf(r.algorithm)} public key`);
    }
    throw err;
  }
}

/** The wrapped key must name this recipient's key and algorithm: the server would otherwise decrypt under another key. */
function parseFor(r: Unwrapper, blob: Buffer) {
  let parsed: ReturnType<typeof decodePqBlob>;
  try {
    parsed = decodePqBlob(blob);
  } catch {
    throw new Error("the wrapped data key is not a post-quantum ciphertext");
  }
  if (parsed.keyId !== r.keyId || parsed.algorithm !== r.algorithm) throw new Error("the wrapped data key names another key or algorithm");
  return parsed;
}

type Unwrapper = Pick<OwnRecipient, "keyId" | "region" | "algorithm" | "clients">;

async function unwrapLocally(r: Unwrapper, seed: Buffer, blob: Buffer): Promise<Buffer> {
  try {
    return await pqOpen(parseFor(r, blob), seed, pqThread());
  } catch (err) {
    if (err instanceof CryptoError) throw new Error("the wrapped data key does not authenticate");
    throw err;
  }
}

async function unwrapOnServer(r: Unwrapper, blob: Buffer): Promise<Buffer> {
  if (r.clients.length === 0) throw new Error("the recipient has neither clients nor a seed to decrypt with");
  parseFor(r, blob);
  const res = await onAnyEndpoint(r, (client) => client.postQuantumCryptoDecrypt({ CiphertextBlob: blob.toString("base64") }));
  if (res.KeyId !== r.keyId) throw new Error(`PostQuantumCryptoDecrypt answered for key ${String(res.KeyId)}, not ${r.keyId}`);
  return Buffer.from(res.PlainText ?? "", "base64");
}

/**
 * A recipient for a Tresor post-quantum key, its public key fetched with GetPublicKey (the one
 * call, at setup; encryption then never calls the server).
 */
export async function fetchPqRecipient(options: { keyId: string; region: string; clients: KmsClient | readonly KmsClient[] }): Promise<PqRecipient> {
  needs(typeof options === "object" && options !== null, `"options" must be an object`);
  needs(typeof options.keyId === "string" && options.keyId !== "", `"keyId" must be a non-empty string`);
  needs(typeof options.region === "string" && options.region !== "", `"region" must be a non-empty string`);
  const clients = normalizeClients(options.clients, "options");
  let res;
  try {
    res = await onAnyEndpoint({ keyId: options.keyId, region: options.region, clients }, (client) => client.getPublicKey({ KeyId: options.keyId }));
  } catch (err) {
    throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.NoDataKey, `GetPublicKey in region ${options.region} key ${options.keyId}: ${describe(err)}`, { cause: err });
  }
  const publicKey = Buffer.from(res.PublicKey ?? "", "base64");
  if (typeof res.KeyId !== "string" || pqAlgorithmOfPublicKey(publicKey) === undefined) {
    throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.InvalidArgument, `key ${options.keyId} in region ${options.region} is not a post-quantum decryption key (ASYMMETRIC_DECRYPT_ML_KEM_*)`);
  }
  return { keyId: res.KeyId, region: options.region, publicKey, clients };
}

/** A key pair held outside Tresor: the 32-byte seed (keep it secret) and the raw public key. */
export function generatePqKeyPair(algorithm: PqEncryptionAlgorithm): { seed: Buffer; publicKey: Buffer } {
  needs(algorithm === "ML_KEM_768_X25519_AES_256_GCM" || algorithm === "ML_KEM_1024_P384_AES_256_GCM", `"algorithm" must be ML_KEM_768_X25519_AES_256_GCM or ML_KEM_1024_P384_AES_256_GCM`);
  return hybridKemGenerateKeyPair(pqKemOf(algorithm));
}
