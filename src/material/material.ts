// Where a CMK's material lives and how it is used: one interface, two implementations (software:
// wrapped by the root of trust, prepared keys cached; HSM: token objects in the PKCS#11 token). The
// service picks the implementation once per key, by its protection level, through KeyMaterials
// (materials.ts).
// Lower-level failures (the root of trust, the token, the primitives) leave this layer as
// MaterialError only, which the service translates in one place.

import type { EcPoint } from "../crypto/ecmr.js";
import type { MessageType } from "../keys/asymmetric.js";
import type { KeyRecord, ProtectionLevel } from "../keys/key.js";
import type { AsymmetricDecryptAlgorithm, SigningAlgorithm } from "../keys/specs.js";
import type { StoreOperations } from "../store/store.js";

/** What the material of a key needs to know about the key. */
export type MaterialKey = Pick<KeyRecord, "keyId" | "keySpec" | "keyUsage">;

/** A new version's material as the store keeps it: wrapped material (software) or a token object's reference (HSM). */
export interface NewMaterial {
  stored: Buffer;
  /** DER SubjectPublicKeyInfo of an asymmetric key; null for a symmetric one. */
  publicKey: Buffer | null;
}

/**
 * - Undecryptable: a ciphertext, or stored material, did not decrypt (tag, padding, root of trust).
 * - NoSuchVersion: the store holds no such version of the key.
 * - Unsupported: this node or its token cannot do it (no HSM, a mechanism refused); nothing was done.
 * - Inconsistent: the store's record does not belong to the key (a swapped row).
 * A worker thread that already holds as many jobs as it takes throws its ThreadBusyError (crypto/job-thread.ts).
 */
export type MaterialFailure = "Undecryptable" | "NoSuchVersion" | "Unsupported" | "Inconsistent";

/** The one error this layer throws of its own; messages name keys and algorithms, never material. */
export class MaterialError extends Error {
  override readonly name = "MaterialError";
  constructor(
    readonly failure: MaterialFailure,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** The layer's log port (the service's logger fits it); fields never hold material. */
export interface MaterialLogger {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** The material of the keys of one protection level. Versions are read from the store. */
export interface KeyMaterial {
  readonly protectionLevel: ProtectionLevel;
  /** Makes version `version`'s material; the caller stores it, or discards it when it does not. */
  generate(key: MaterialKey, version: number): Promise<NewMaterial>;
  /** Gets rid of what generate() made when it certainly was not recorded; logs, never throws. */
  discard(keyId: string, stored: Buffer): Promise<void>;
  /** AEAD encryption with the version's symmetric key; `iv` is the caller's (it sits in the blob header). */
  seal(key: MaterialKey, version: number, iv: Buffer, plaintext: Buffer, aad: Buffer): Promise<{ ciphertext: Buffer; tag: Buffer }>;
  open(key: MaterialKey, version: number, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Promise<Buffer>;
  /** The algorithm must fit the key's usage (the service checks). */
  sign(key: MaterialKey, version: number, algorithm: SigningAlgorithm, message: Buffer, messageType: MessageType): Promise<Buffer>;
  /** The McCallum-Relyea exchange (Tang recovery) with the version's private key; the service checked the point. */
  exchange(key: MaterialKey, version: number, point: EcPoint): Promise<EcPoint>;
  /** Asymmetric decryption with the version's private key. */
  decrypt(key: MaterialKey, version: number, algorithm: AsymmetricDecryptAlgorithm, ciphertext: Buffer): Promise<Buffer>;
  /** Inside the transaction that deletes the key's rows: whatever must outlive the rows to be destroyed later. */
  retire(tx: StoreOperations, keyId: string): Promise<void>;
  /** Destroys what retire() kept; what cannot be destroyed now stays for the next call. */
  destroyRetired(): Promise<void>;
  /** Drops this node's cached state of the key. */
  forget(keyId: string): void;
  close(): void;
}
