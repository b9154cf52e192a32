// Elliptic-curve Diffie-Hellman (NIST SP 800-56A rev. 3 section 5.7.1.2, the x coordinate of d·Q)
// on P-256, P-384 and the SM2 curve, in OpenSSL through node:crypto. The peer's public key is
// validated first (SP 800-56A section 5.6.2.3.3, full public-key validation): a point of the right
// curve, on the curve, not the identity; for these prime-order curves that is all it takes.
// On the SM2 curve this is plain ECDH, not the SM2 key exchange protocol of GB/T 32918.3.

import { createECDH, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";
import { p256, p384 } from "@noble/curves/nist.js";
import { DerReader, derTlv, TAG_BIT_STRING, TAG_SEQUENCE } from "./asn1.js";
import { sm2PublicKeyFromSpki } from "./sm2.js";

export const ECDH_CURVES = ["P-256", "P-384", "SM2"] as const;
export type EcdhCurve = (typeof ECDH_CURVES)[number];

export class EcdhPublicKeyError extends Error {
  override readonly name = "EcdhPublicKeyError";
}

/** DER AlgorithmIdentifier { id-ecPublicKey, namedCurve } of each curve (RFC 5480 section 2.1.1). */
const NIST = {
  "P-256": { algorithm: Buffer.from("301306072a8648ce3d020106082a8648ce3d030107", "hex"), noble: p256 },
  "P-384": { algorithm: Buffer.from("301006072a8648ce3d020106052b81040022", "hex"), noble: p384 },
} as const;

/** A validated peer public key: a KeyObject (P-256, P-384) or SM2's uncompressed point. */
export type EcdhPeerKey = { readonly curve: "P-256" | "P-384"; readonly key: KeyObject } | { readonly curve: "SM2"; readonly point: Buffer };

/** Parses and validates a DER SubjectPublicKeyInfo for `curve`; EcdhPublicKeyError says what is wrong. */
export function ecdhPeerKey(curve: EcdhCurve, spki: Buffer): EcdhPeerKey {
  if (curve === "SM2") {
    try {
      return { curve, point: sm2PublicKeyFromSpki(spki) };
    } catch (e) {
      throw new EcdhPublicKeyError(e instanceof RangeError ? e.message.replaceAll('"spki"', "the key") : "it is not an SM2 public key");
    }
  }
  const info = NIST[curve];
  let parts: { algorithm: Buffer; point: Buffer };
  try {
    parts = spkiParts(spki);
  } catch {
    throw new EcdhPublicKeyError("it is not a DER SubjectPublicKeyInfo");
  }
  if (!parts.algorithm.equals(info.algorithm)) throw new EcdhPublicKeyError(`it is not a key on ${curve} (id-ecPublicKey with the curve's OID)`);
  try {
    // Checked before OpenSSL sees the key: Node 20 aborts the process when it reads the details of
    // a key holding the identity. fromBytes refuses the identity and points off the curve.
    info.noble.Point.fromBytes(parts.point).assertValidity();
  } catch {
    throw new EcdhPublicKeyError(`it is not a point on ${curve}, or it is the identity`);
  }
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  return { curve, key };
}

/** The AlgorithmIdentifier (as encoded, tag and length included) and the SEC 1 point of a DER SubjectPublicKeyInfo. */
function spkiParts(spki: Buffer): { algorithm: Buffer; point: Buffer } {
  const outer = new DerReader(spki);
  const seq = outer.readSequence();
  outer.end();
  const content = seq.read(TAG_SEQUENCE);
  const bits = seq.read(TAG_BIT_STRING);
  seq.end();
  if (bits[0] !== 0) throw new RangeError("a BIT STRING with unused bits");
  return { algorithm: derTlv(TAG_SEQUENCE, content), point: bits.subarray(1) };
}

/** The shared secret (the x coordinate of d·Q) with a P-256 or P-384 private key. */
export function ecdhNist(privateKey: KeyObject, peer: EcdhPeerKey): Buffer {
  if (peer.curve === "SM2") throw new TypeError("an SM2 peer key needs ecdhSm2");
  return diffieHellman({ privateKey, publicKey: peer.key });
}

/** The shared secret (the x coordinate of d·Q) with SM2's 32-byte private scalar. */
export function ecdhSm2(privateScalar: Buffer, peer: EcdhPeerKey): Buffer {
  if (peer.curve !== "SM2") throw new TypeError(`a ${peer.curve} peer key needs ecdhNist`);
  const ecdh = createECDH("SM2");
  ecdh.setPrivateKey(privateScalar);
  return ecdh.computeSecret(peer.point);
}
