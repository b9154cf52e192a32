// What a client registers through KMIP, read and checked before anything is stored: private keys
// (PKCS#8), public keys (SubjectPublicKeyInfo) and X.509 certificates, all DER, of the key pair
// specs KMIP objects may have.

import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { encodablePublicKey } from "../crypto/ecc.js";
import type { AsymmetricKeySpec, KmipObjectType } from "../keys/key.js";
import { KmsError } from "./errors.js";

/** Key pair specs KMIP may create or register, by algorithm and length. */
export const KMIP_KEY_PAIR_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_P256", "ECC_P384"] as const satisfies readonly AsymmetricKeySpec[];
export type KmipKeyPairSpec = (typeof KMIP_KEY_PAIR_SPECS)[number];

/** Objects that hold no secret and no private key: public keys and certificates. */
export function isPublicObject(type: KmipObjectType): boolean {
  return type === "PublicKey" || type === "Certificate";
}

/** The spec, the material to store (normalized PKCS#8, or the SPKI) and the SPKI of a registered key. */
export function parseAsymmetric(objectType: "PrivateKey" | "PublicKey", der: Buffer): { spec: KmipKeyPairSpec; material: Buffer; spki: Buffer } {
  let publicKey: KeyObject;
  let material: Buffer;
  try {
    if (objectType === "PrivateKey") {
      const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
      // OpenSSL parses an EC scalar of 0 or n (whose public key is the point at infinity) and only
      // refuses it when asked for its coordinates.
      if (privateKey.asymmetricKeyType === "ec") privateKey.export({ format: "jwk" });
      publicKey = createPublicKey(privateKey);
      material = privateKey.export({ format: "der", type: "pkcs8" });
    } else {
      publicKey = createPublicKey({ key: der, format: "der", type: "spki" });
      material = publicKey.export({ format: "der", type: "spki" });
    }
  } catch {
    throw new KmsError("InvalidParameterValue", `"Key Material" is not a ${objectType === "PrivateKey" ? "PKCS#8 private key" : "SubjectPublicKeyInfo public key"} in DER`);
  }
  try {
    return { spec: specOf(publicKey), material, spki: publicKey.export({ format: "der", type: "spki" }) };
  } catch (e) {
    material.fill(0);
    throw e;
  }
}

/** A registered X.509 certificate: its DER as it came, its public key's spec and SubjectPublicKeyInfo. */
export function parseCertificate(der: Buffer): { spec: KmipKeyPairSpec; der: Buffer; spki: Buffer } {
  let publicKey: KeyObject;
  try {
    const certificate = new X509Certificate(der);
    // X509Certificate also takes PEM: a KMIP certificate value is DER, so the bytes must be one.
    if (!certificate.raw.equals(der)) throw new Error("not DER");
    publicKey = encodablePublicKey(certificate.publicKey);
  } catch {
    throw new KmsError("InvalidParameterValue", `"Certificate Value" is not an X.509 certificate in DER with a valid public key`);
  }
  return { spec: specOf(publicKey), der: Buffer.from(der), spki: publicKey.export({ format: "der", type: "spki" }) };
}

function specOf(publicKey: KeyObject): KmipKeyPairSpec {
  const details = publicKey.asymmetricKeyDetails ?? {};
  const spec =
    publicKey.asymmetricKeyType === "rsa" ? `RSA_${details.modulusLength}` : publicKey.asymmetricKeyType === "ec" ? ({ prime256v1: "ECC_P256", secp384r1: "ECC_P384" } as Record<string, string>)[details.namedCurve ?? ""] : undefined;
  if (!spec || !(KMIP_KEY_PAIR_SPECS as readonly string[]).includes(spec)) {
    throw new KmsError("UnsupportedOperation", `registered keys and certificates are RSA 2048/3072/4096 or EC P-256/P-384, not ${publicKey.asymmetricKeyType ?? "this key"}`);
  }
  return spec as KmipKeyPairSpec;
}
