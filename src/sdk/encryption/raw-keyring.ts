// RawKeyring: wrapping keys the caller holds in memory, no KMS. For offline use and for the
// known-answer fixtures in test/; a production keyring is KmsKeyring, whose keys never leave Tresor.
// Each key wraps the data key with an AEAD; the AAD binds the key's namespace and name and the
// message's encryption context, so a wrapped key moved to another message or context fails.

import { randomUUID } from "node:crypto";
import { AEADS, type AeadName } from "../../crypto/aead.js";
import { randomBytes } from "../../crypto/random.js";
import { needs } from "./errors.js";
import { sortedContextEntries, type ContextPairs, type EncryptedDataKey } from "./format.js";
import { noDataKey, type DataKeyMaterials, type DecryptedDataKey, type Keyring } from "./keyring.js";

export const RAW_PROVIDER_ID = "raw";

export interface RawKey {
  /** Stored in the message as the region field; default "raw". */
  namespace?: string;
  /** Stored in the message as the key id. */
  name: string;
  algorithm: AeadName;
  /** 16 bytes for SM4-GCM, 32 for AES-256-GCM. Copied: the caller may wipe its buffer. */
  key: Buffer;
}

interface OwnKey {
  namespace: string;
  name: string;
  algorithm: AeadName;
  key: Buffer;
}

/** AAD = "tresor-raw-v1" || uint16 len || namespace || uint16 len || name || pairs, each uint16 len + bytes. */
function wrapAad(namespace: string, name: string, context: ContextPairs): Buffer {
  const parts: Buffer[] = [Buffer.from("tresor-raw-v1", "latin1")];
  const add = (s: string): void => {
    const b = Buffer.from(s, "utf8");
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    parts.push(len, b);
  };
  add(namespace);
  add(name);
  for (const [k, v] of sortedContextEntries(context)) {
    add(k);
    add(v);
  }
  return Buffer.concat(parts);
}

export class RawKeyring implements Keyring {
  readonly cacheId = `raw:${randomUUID()}`;
  readonly #keys: readonly OwnKey[];

  /** The first key is the primary; every key gets its own wrapped copy of each data key. */
  constructor(keys: readonly RawKey[]) {
    needs(Array.isArray(keys) && keys.length >= 1 && keys.length <= 5, `"keys" must be an array of 1 to 5 raw keys`);
    this.#keys = keys.map((k, i) => {
      needs(typeof k.name === "string" && k.name !== "", `"keys[${i}].name" must be a non-empty string`);
      const aead = (AEADS as Readonly<Record<string, (typeof AEADS)[AeadName] | undefined>>)[String(k.algorithm)];
      needs(aead !== undefined, `"keys[${i}].algorithm" must be SM4-GCM or AES-256-GCM`);
      needs(k.key instanceof Uint8Array && k.key.length === aead.keyLength, `"keys[${i}].key" must be ${aead.keyLength} bytes for ${k.algorithm}`);
      return { namespace: k.namespace ?? "raw", name: k.name, algorithm: k.algorithm, key: Buffer.from(k.key) };
    });
  }

  async generateDataKey(length: number, context: ContextPairs): Promise<DataKeyMaterials> {
    const dataKey = randomBytes(length);
    const encryptedDataKeys = this.#keys.map((k): EncryptedDataKey => {
      const aead = AEADS[k.algorithm];
      const iv = randomBytes(aead.ivLength);
      const { ciphertext, tag } = aead.encrypt(k.key, iv, dataKey, wrapAad(k.namespace, k.name, context));
      return { provider: RAW_PROVIDER_ID, region: k.namespace, keyId: k.name, blob: Buffer.concat([iv, ciphertext, tag]) };
    });
    return { dataKey, encryptedDataKeys };
  }

  async decryptDataKey(encryptedDataKeys: readonly EncryptedDataKey[], context: ContextPairs, length: number): Promise<DecryptedDataKey> {
    const failures: string[] = [];
    for (const edk of encryptedDataKeys) {
      const where = `raw key ${edk.region}/${edk.keyId}`;
      const k = edk.provider === RAW_PROVIDER_ID ? this.#keys.find((own) => own.namespace === edk.region && own.name === edk.keyId) : undefined;
      if (k === undefined) {
        failures.push(`${where}: not in the keyring`);
        continue;
      }
      const aead = AEADS[k.algorithm];
      if (edk.blob.length !== aead.ivLength + length + aead.tagLength) {
        failures.push(`${where}: wrapped key has the wrong length`);
        continue;
      }
      try {
        const iv = edk.blob.subarray(0, aead.ivLength);
        const ct = edk.blob.subarray(aead.ivLength, edk.blob.length - aead.tagLength);
        const tag = edk.blob.subarray(edk.blob.length - aead.tagLength);
        const dataKey = aead.decrypt(k.key, iv, ct, tag, wrapAad(k.namespace, k.name, context));
        return { dataKey, decryptedWith: { provider: RAW_PROVIDER_ID, region: k.namespace, keyId: k.name } };
      } catch {
        failures.push(`${where}: the wrapped key does not authenticate`);
      }
    }
    throw noDataKey(failures);
  }
}
