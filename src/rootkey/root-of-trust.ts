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
  /** Present when the root of trust can hold CMKs of ProtectionLevel HSM (pkcs11 only). */
  readonly hsmKeys?: HsmKeys | undefined;
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

// --- HSM-protected keys ------------------------------------------------------------------------

/**
 * Keys whose material is generated inside the root of trust's token and never leaves it (a CMK with
 * ProtectionLevel HSM). The store keeps only the reference `generate*` returns. Every method throws
 * `RootOfTrustUnavailableError` when the token cannot be reached, and names no key material.
 */
export interface HsmKeys {
  /** Like RootOfTrust.description; names the token. */
  readonly description: string;
  /** Whether `reference` names a token object made for this key id and version (so a swapped row is refused). */
  belongsTo(reference: Buffer, keyId: string, version: number): boolean;
  /**
   * Generates a non-extractable, sensitive AES-256 token object for the key version; returns its
   * reference. Each call makes a new object: a caller that does not keep the reference destroys it.
   */
  generateAes256(keyId: string, version: number): Promise<Buffer>;
  /** AES-256-GCM inside the token with the caller's 12-byte IV and AAD; a 16-byte tag. */
  aesGcmEncrypt(reference: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<{ ciphertext: Buffer; tag: Buffer }>;
  /** Throws `RootOfTrustError` when the tag does not verify. */
  aesGcmDecrypt(reference: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Promise<Buffer>;
  /**
   * Generates a key pair for the key version: the private key a non-extractable, sensitive token
   * object allowed only `purpose`; the public key is returned (DER SubjectPublicKeyInfo), not kept.
   */
  generateKeyPair(spec: HsmKeyPairSpec, purpose: HsmKeyPairPurpose, keyId: string, version: number): Promise<{ reference: Buffer; publicKey: Buffer }>;
  /**
   * ECDH inside the token (CKM_ECDH1_DERIVE, no KDF) with a "derive" key pair: the x coordinate of
   * s·X for the uncompressed point X (04 || x || y), which the token checks is on the key's curve.
   */
  ecdhDerive(reference: Buffer, point: Buffer): Promise<Buffer>;
  /**
   * Signs a digest (SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521) inside the token: RSA PKCS#1 v1.5
   * or PSS (MGF1 with the same hash, salt as long as the digest); ECDSA returned DER-encoded.
   */
  sign(reference: Buffer, algorithm: HsmSignatureAlgorithm, digest: Buffer): Promise<Buffer>;
  /** RSAES-OAEP inside the token; throws `RootOfTrustError` when the ciphertext does not decrypt. */
  rsaOaepDecrypt(reference: Buffer, hash: "sha1" | "sha256", ciphertext: Buffer): Promise<Buffer>;
  /** Destroys the token objects of the reference; how many there were (0 when already gone). */
  destroy(reference: Buffer): Promise<number>;
}

/** The token refused a mechanism or its parameters for an HSM key (SoftHSM2 2.6 offers RSA-OAEP with SHA-1 only). Nothing was done. */
export class HsmUnsupportedError extends Error {
  override readonly name = "HsmUnsupportedError";
}

export type HsmKeyPairSpec = "RSA_2048" | "RSA_3072" | "RSA_4096" | "ECC_P256" | "ECC_P384" | "ECC_P521";
/** What a token key pair's private half may do: sign, decrypt (RSA) or derive (ECDH, EC). */
export type HsmKeyPairPurpose = "sign" | "decrypt" | "derive";
export type HsmSignatureAlgorithm = "RSA_PKCS1_SHA_256" | "RSA_PSS_SHA_256" | "ECDSA";
