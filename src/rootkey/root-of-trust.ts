// The root of trust wraps and unwraps secrets (key material, access-key secrets). Every wrap binds
// authenticated data naming what the secret belongs to, so a wrapped value moved to another
// record fails to unwrap.

export interface RootOfTrust {
  /** A short, stable description for logs ("file:/path/root.key"); never key material. */
  readonly description: string;
  wrap(plaintext: Buffer, aad: Buffer): Promise<Buffer>;
  /** Throws `RootOfTrustError` when the wrapped value or its authenticated data was altered. */
  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export class RootOfTrustError extends Error {
  override readonly name = "RootOfTrustError";
}

/**
 * The root of trust cannot be reached now (an HSM removed or failing); nothing was wrapped or
 * unwrapped, and a later call may succeed. Deliberately not a `RootOfTrustError`: it says nothing
 * about the wrapped value.
 */
export class RootOfTrustUnavailableError extends Error {
  override readonly name = "RootOfTrustUnavailableError";
}

/** Authenticated data for a key version's material: binds the key id and version. */
export function keyMaterialAad(keyId: string, version: number): Buffer {
  return Buffer.from(`tresor/key-material/v1\0${keyId}\0${version}`, "utf8");
}

/** Authenticated data for an import token's wrapping private key: binds the token id. */
export function importTokenAad(tokenId: string): Buffer {
  return Buffer.from(`tresor/import-token/v1\0${tokenId}`, "utf8");
}

/** Authenticated data for a service secret kept in the store's meta table: binds its name. */
export function serviceSecretAad(name: string): Buffer {
  return Buffer.from(`tresor/service-secret/v1\0${name}`, "utf8");
}

/** Authenticated data for an access key's secret: binds the SecretId. */
export function accessKeySecretAad(secretId: string): Buffer {
  return Buffer.from(`tresor/access-key-secret/v1\0${secretId}`, "utf8");
}
