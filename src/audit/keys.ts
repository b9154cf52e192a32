// The audit log's two secrets: the Ed25519 signing key of checkpoints and the HMAC key of
// parameter digests. Made once per store, kept in meta wrapped by the root of trust (with
// serviceSecretAad of their meta name, so root key rotation rewraps them with the service
// secrets); the public key sits in meta in the clear, for exports and for operators to pin.

import { randomBytes } from "node:crypto";
import { serviceSecretAad, type RootOfTrust } from "../rootkey/root-of-trust.js";
import type { AuditMeta, AuditStorage } from "./port.js";
import { ed25519Signer, generateAuditSigningKey, type AuditSigner } from "./checkpoint.js";

export const AUDIT_SIGNING_KEY_SECRET = "audit-signing-key";
export const AUDIT_HMAC_KEY_SECRET = "audit-hmac-key";
/** The meta entries wrapped by the root of trust; SERVICE_SECRET_NAMES includes them. */
export const AUDIT_SECRET_NAMES: readonly string[] = Object.freeze([AUDIT_SIGNING_KEY_SECRET, AUDIT_HMAC_KEY_SECRET]);
/** Meta entry: base64 of the raw 32-byte Ed25519 public key, in the clear. */
export const AUDIT_PUBLIC_KEY_META = "audit-public-key";

export interface AuditKeys {
  signer: AuditSigner;
  /** 32 bytes; the caller keeps it for the life of the process. */
  hmacKey: Buffer;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
}

/** The store's audit keys, made on first use; when several nodes start at once the first one written wins. */
export async function loadAuditKeys(store: AuditStorage, root: RootOfTrust): Promise<AuditKeys> {
  // In one transaction: three separate reads could see another node's keys half written.
  let stored = await store.transaction((tx) => readStored(tx));
  if (stored === undefined) {
    const { privateKeyDer, publicKey } = generateAuditSigningKey();
    const hmacKey = randomBytes(32);
    let fresh: StoredKeys;
    try {
      fresh = {
        signing: (await root.wrap(privateKeyDer, serviceSecretAad(AUDIT_SIGNING_KEY_SECRET))).toString("base64"),
        hmac: (await root.wrap(hmacKey, serviceSecretAad(AUDIT_HMAC_KEY_SECRET))).toString("base64"),
        publicKey: publicKey.toString("base64"),
      };
    } finally {
      privateKeyDer.fill(0);
      hmacKey.fill(0);
    }
    stored = await store.transaction(async (tx) => {
      const existing = await readStored(tx);
      if (existing !== undefined) return existing;
      await tx.setMeta(AUDIT_SIGNING_KEY_SECRET, fresh.signing);
      await tx.setMeta(AUDIT_HMAC_KEY_SECRET, fresh.hmac);
      await tx.setMeta(AUDIT_PUBLIC_KEY_META, fresh.publicKey);
      return fresh;
    });
  }
  const der = await root.unwrap(Buffer.from(stored.signing, "base64"), serviceSecretAad(AUDIT_SIGNING_KEY_SECRET));
  let signer: AuditSigner;
  try {
    signer = ed25519Signer(der);
  } finally {
    der.fill(0);
  }
  const publicKey = Buffer.from(stored.publicKey, "base64");
  if (!signer.publicKey.equals(publicKey)) throw new Error(`meta ${AUDIT_PUBLIC_KEY_META} is not the public key of the stored audit signing key`);
  const hmacKey = await root.unwrap(Buffer.from(stored.hmac, "base64"), serviceSecretAad(AUDIT_HMAC_KEY_SECRET));
  return { signer, hmacKey, publicKey };
}

interface StoredKeys {
  signing: string;
  hmac: string;
  publicKey: string;
}

async function readStored(store: Pick<AuditMeta, "getMeta">): Promise<StoredKeys | undefined> {
  const [signing, hmac, publicKey] = await Promise.all([
    store.getMeta(AUDIT_SIGNING_KEY_SECRET),
    store.getMeta(AUDIT_HMAC_KEY_SECRET),
    store.getMeta(AUDIT_PUBLIC_KEY_META),
  ]);
  if (signing === undefined && hmac === undefined && publicKey === undefined) return undefined;
  if (signing === undefined || hmac === undefined || publicKey === undefined) throw new Error("the store holds only part of the audit keys");
  return { signing, hmac, publicKey };
}
