// Keyrings: where data keys come from. KmsKeyring asks a primary Tresor CMK for a data key
// (GenerateDataKey) and encrypts it under up to 4 backup CMKs (Encrypt), each in its own region
// (cluster) with its own endpoints and credentials; on decryption it tries the encrypted copies in
// message order and moves on when a region cannot be reached or refuses.

import { createHash, randomUUID } from "node:crypto";
import { CLIENT_ERROR_CODES, KmsClient, KmsClientError, type EncryptionContext } from "../client.js";
import { ENCRYPTION_ERROR_CODES, EncryptionSdkError, needs } from "./errors.js";
import type { ContextPairs, EncryptedDataKey } from "./format.js";
import { sortedContextEntries } from "./format.js";
import { PUBLIC_KEY_CONTEXT_KEY } from "./suites.js";

export interface DataKeyMaterials {
  /** The plaintext data key; the SDK wipes it when done. */
  dataKey: Buffer;
  encryptedDataKeys: EncryptedDataKey[];
}

export interface DecryptedDataKey {
  dataKey: Buffer;
  /** The encrypted copy that gave it. */
  decryptedWith: { provider: string; region: string; keyId: string };
}

export interface Keyring {
  /** Identifies this keyring instance in a data key cache partition. */
  readonly cacheId: string;
  generateDataKey(length: number, context: ContextPairs): Promise<DataKeyMaterials>;
  /** Throws EncryptionSdkError NoDataKey, listing every failure, when no copy decrypts. */
  decryptDataKey(encryptedDataKeys: readonly EncryptedDataKey[], context: ContextPairs, length: number): Promise<DecryptedDataKey>;
}

export const KMS_PROVIDER_ID = "tresor-kms";
export const MAX_BACKUP_KEYS = 4;
/** Tencent's EncryptionContext is a JSON string of at most 1024 characters. */
export const MAX_KMS_CONTEXT_CHARS = 1024;

export interface MasterKey {
  /** The CMK: its id (or an alias, for encryption) in that region's Tresor. */
  keyId: string;
  /** Names the cluster; written into the message next to the encrypted data key. */
  region: string;
  /** One client per endpoint of that cluster, tried in order when one cannot be reached. */
  clients: KmsClient | readonly KmsClient[];
}

export interface KmsKeyringOptions {
  primary: MasterKey;
  /** Up to 4 more CMKs, typically in other regions; each gets its own encrypted copy of the data key. */
  backups?: readonly MasterKey[];
}

export interface NormalizedKey {
  keyId: string;
  region: string;
  clients: readonly KmsClient[];
}

/** A KMS client error that means "this endpoint could not answer": the next endpoint may. */
function isTransportError(err: unknown): boolean {
  if (!(err instanceof KmsClientError)) return false;
  return (
    err.code === CLIENT_ERROR_CODES.NetworkError ||
    err.code === CLIENT_ERROR_CODES.Timeout ||
    err.code === CLIENT_ERROR_CODES.HttpError ||
    err.code === CLIENT_ERROR_CODES.InvalidResponse ||
    err.code === CLIENT_ERROR_CODES.ClientClosed
  );
}

export function describe(err: unknown): string {
  if (err instanceof KmsClientError) return `${err.code}: ${err.message}`;
  if (err instanceof EncryptionSdkError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The context key under which KMS sees the SHA-256 of a public key too long to pass whole. */
export const PUBLIC_KEY_DIGEST_CONTEXT_KEY = "tresor:public-key-sha256";
/** Longer than SM2's (124 characters) and ECDSA P-384's (160) public keys; ML-DSA-65's is 2632. */
const MAX_KMS_PUBLIC_KEY_CHARS = 512;

/**
 * The context as KMS sees it: the same pairs, keys sorted, except an ML-DSA public key (which alone
 * would pass Tencent's 1024 characters): KMS binds its SHA-256 instead, as good a binding.
 */
export function kmsContext(context: ContextPairs): EncryptionContext | undefined {
  const entries = sortedContextEntries(kmsPublicKey(context));
  if (entries.length === 0) return undefined;
  const obj = Object.fromEntries(entries);
  const json = JSON.stringify(obj);
  if (json.length > MAX_KMS_CONTEXT_CHARS) {
    throw new EncryptionSdkError(
      ENCRYPTION_ERROR_CODES.InvalidArgument,
      `"encryptionContext" as JSON must be at most ${MAX_KMS_CONTEXT_CHARS} characters for KMS (including the SDK's public key on signed suites), got ${json.length}`,
    );
  }
  return obj;
}

function kmsPublicKey(context: ContextPairs): ContextPairs {
  const publicKey = context[PUBLIC_KEY_CONTEXT_KEY];
  if (publicKey === undefined || publicKey.length <= MAX_KMS_PUBLIC_KEY_CHARS) return context;
  const { [PUBLIC_KEY_CONTEXT_KEY]: _, ...rest } = context;
  return { ...rest, [PUBLIC_KEY_DIGEST_CONTEXT_KEY]: createHash("sha256").update(publicKey, "base64").digest("base64") };
}

export class KmsKeyring implements Keyring {
  readonly cacheId = `kms:${randomUUID()}`;
  readonly #keys: readonly NormalizedKey[];

  constructor(options: KmsKeyringOptions) {
    needs(typeof options === "object" && options !== null, `"options" must be an object`);
    const backups = options.backups ?? [];
    needs(Array.isArray(backups), `"backups" must be an array`);
    needs(backups.length <= MAX_BACKUP_KEYS, `"backups" must hold at most ${MAX_BACKUP_KEYS} keys, got ${backups.length}`);
    this.#keys = [normalize(options.primary, "primary"), ...backups.map((k, i) => normalize(k, `backups[${i}]`))];
  }

  get masterKeys(): ReadonlyArray<{ keyId: string; region: string }> {
    return this.#keys.map(({ keyId, region }) => ({ keyId, region }));
  }

  async generateDataKey(length: number, context: ContextPairs): Promise<DataKeyMaterials> {
    const kms = kmsContext(context);
    const [primary, ...backups] = this.#keys;
    const generated = await step(`GenerateDataKey in region ${primary!.region} key ${primary!.keyId}`, () =>
      onAnyEndpoint(primary!, (client) => client.generateDataKeyBytes(primary!.keyId, length, kms)),
    );
    const dataKey = generated.plaintext;
    try {
      if (dataKey.length !== length) {
        throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.NoDataKey, `GenerateDataKey in region ${primary!.region} returned ${dataKey.length} bytes, not ${length}`);
      }
      const encryptedDataKeys: EncryptedDataKey[] = [
        { provider: KMS_PROVIDER_ID, region: primary!.region, keyId: generated.keyId, blob: Buffer.from(generated.ciphertextBlob, "base64") },
      ];
      // Every backup must hold a copy: a message missing one would silently lose its disaster recovery.
      for (const backup of backups) {
        const res = await step(`Encrypt in region ${backup.region} key ${backup.keyId}`, () =>
          onAnyEndpoint(backup, (client) =>
            client.encrypt({
              KeyId: backup.keyId,
              Plaintext: dataKey.toString("base64"),
              ...(kms === undefined ? {} : { EncryptionContext: JSON.stringify(kms) }),
            }),
          ),
        );
        if (typeof res.CiphertextBlob !== "string" || typeof res.KeyId !== "string") {
          throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.NoDataKey, `Encrypt in region ${backup.region}: the response lacks CiphertextBlob or KeyId`);
        }
        encryptedDataKeys.push({ provider: KMS_PROVIDER_ID, region: backup.region, keyId: res.KeyId, blob: Buffer.from(res.CiphertextBlob, "base64") });
      }
      return { dataKey, encryptedDataKeys };
    } catch (err) {
      dataKey.fill(0);
      throw err;
    }
  }

  async decryptDataKey(encryptedDataKeys: readonly EncryptedDataKey[], context: ContextPairs, length: number): Promise<DecryptedDataKey> {
    const kms = kmsContext(context);
    const failures: string[] = [];
    for (const edk of encryptedDataKeys) {
      const where = `region ${edk.region} key ${edk.keyId}`;
      if (edk.provider !== KMS_PROVIDER_ID) {
        failures.push(`${where}: provider "${edk.provider}" is not ${KMS_PROVIDER_ID}`);
        continue;
      }
      const configured = this.#keys.find((k) => k.region === edk.region);
      if (configured === undefined) {
        failures.push(`${where}: region not in the keyring`);
        continue;
      }
      try {
        const res = await onAnyEndpoint(configured, (client) =>
          client.decrypt({ CiphertextBlob: edk.blob.toString("base64"), ...(kms === undefined ? {} : { EncryptionContext: JSON.stringify(kms) }) }),
        );
        if (res.KeyId !== edk.keyId) throw new Error(`Decrypt answered for key ${String(res.KeyId)}, not ${edk.keyId}`);
        const dataKey = Buffer.from(res.Plaintext ?? "", "base64");
        if (dataKey.length !== length) {
          dataKey.fill(0);
          throw new Error(`Decrypt returned ${dataKey.length} bytes, not ${length}`);
        }
        return { dataKey, decryptedWith: { provider: edk.provider, region: edk.region, keyId: edk.keyId } };
      } catch (err) {
        failures.push(`${where}: ${describe(err)}`);
      }
    }
    throw noDataKey(failures);
  }
}

/** Runs one KMS step; any failure becomes NoDataKey naming the step. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EncryptionSdkError) throw err;
    throw new EncryptionSdkError(ENCRYPTION_ERROR_CODES.NoDataKey, `cannot get a data key: ${what}: ${describe(err)}`, {
      failures: [`${what}: ${describe(err)}`],
      cause: err,
    });
  }
}

export function noDataKey(failures: readonly string[]): EncryptionSdkError {
  return new EncryptionSdkError(
    ENCRYPTION_ERROR_CODES.NoDataKey,
    `no encrypted data key could be decrypted:\n${failures.map((f) => `  - ${f}`).join("\n")}`,
    { failures },
  );
}

function normalize(key: MasterKey, name: string): NormalizedKey {
  needs(typeof key === "object" && key !== null, `"${name}" must be an object`);
  needs(typeof key.keyId === "string" && key.keyId !== "", `"${name}.keyId" must be a non-empty string`);
  needs(typeof key.region === "string" && key.region !== "", `"${name}.region" must be a non-empty string`);
  return { keyId: key.keyId, region: key.region, clients: normalizeClients(key.clients, name) };
}

export function normalizeClients(clients: KmsClient | readonly KmsClient[], name: string): readonly KmsClient[] {
  const list = clients instanceof KmsClient ? [clients] : clients;
  needs(Array.isArray(list) && list.length > 0 && list.every((c) => c instanceof KmsClient), `"${name}.clients" must be a KmsClient or a non-empty array of them`);
  return list;
}

/** Runs `call` on the key's endpoints in order, moving on only when an endpoint cannot answer. */
export async function onAnyEndpoint<T>(key: NormalizedKey, call: (client: KmsClient) => Promise<T>): Promise<T> {
  const errors: string[] = [];
  for (const client of key.clients) {
    try {
      return await call(client);
    } catch (err) {
      if (!isTransportError(err) || key.clients.length === 1) throw err;
      errors.push(`${client.endpoint}: ${describe(err)}`);
    }
  }
  throw new Error(`no endpoint answered: ${errors.join("; ")}`);
}
