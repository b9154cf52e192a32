// Tang's data model over stored public keys: P-521 public keys as JWKs (RFC 7517, RFC 7518
// section 6.2), their thumbprints (RFC 7638) under every hash tangd matches (S1, S224, S256, S384,
// S512: latchset/tang src/keys.c), and the advertisement as a JWS in JSON serialization (RFC 7515
// section 7.2) whose payload is the JWK set and whose protected header is tangd's
// {"alg":"ES512","cty":"jwk-set+json"}.

import { createHash } from "node:crypto";
import { ecPublicKeyFromSpki } from "../crypto/ecc.js";
import type { EcPoint } from "../crypto/ecmr.js";

export interface P521Jwk {
  kty: "EC";
  crv: "P-521";
  x: string;
  y: string;
}

/** A JWK as Tang advertises it: the public point with its algorithm and key operations. */
export interface TangJwk extends P521Jwk {
  alg: "ES512" | "ECMR";
  key_ops: ["verify"] | ["deriveKey"];
}

export const THUMBPRINT_HASHES = { S1: "sha1", S224: "sha224", S256: "sha256", S384: "sha384", S512: "sha512" } as const;
export type ThumbprintHash = keyof typeof THUMBPRINT_HASHES;

/** The point of a stored P-521 public key (DER SubjectPublicKeyInfo). */
export function p521PointOfSpki(spki: Buffer): EcPoint {
  const jwk = ecPublicKeyFromSpki(spki, "P-521").export({ format: "jwk" });
  return { x: Buffer.from(jwk.x ?? "", "base64url"), y: Buffer.from(jwk.y ?? "", "base64url") };
}

export function p521Jwk(point: EcPoint): P521Jwk {
  return { kty: "EC", crv: "P-521", x: point.x.toString("base64url"), y: point.y.toString("base64url") };
}

/** RFC 7638: the hash of the required members in lexicographic order, without white space. */
export function jwkThumbprint(jwk: P521Jwk, hash: ThumbprintHash): string {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash(THUMBPRINT_HASHES[hash]).update(canonical).digest("base64url");
}

/** Whether `thumbprint` is the thumbprint of `jwk` under any of the hashes tangd matches. */
export function matchesThumbprint(jwk: P521Jwk, thumbprint: string): boolean {
  return (Object.keys(THUMBPRINT_HASHES) as ThumbprintHash[]).some((hash) => jwkThumbprint(jwk, hash) === thumbprint);
}

export function tangJwk(point: EcPoint, use: "sign" | "exchange"): TangJwk {
  return use === "sign" ? { alg: "ES512", ...p521Jwk(point), key_ops: ["verify"] } : { alg: "ECMR", ...p521Jwk(point), key_ops: ["deriveKey"] };
}

/** The advertisement's payload and the signing input of its one protected header. */
export function advertisementPayload(keys: readonly TangJwk[]): { payload: string; protectedHeader: string; signingInput: Buffer } {
  const payload = Buffer.from(JSON.stringify({ keys })).toString("base64url");
  const protectedHeader = Buffer.from(JSON.stringify({ alg: "ES512", cty: "jwk-set+json" })).toString("base64url");
  return { payload, protectedHeader, signingInput: Buffer.from(`${protectedHeader}.${payload}`, "ascii") };
}

/**
 * The JWS as tangd serves it (jose_jws_sig): the flattened form for one signature, the general form
 * (a `signatures` array) for several. `signatures`: IEEE P1363 ES512 signatures of the signing input.
 */
export function advertisementJws(payload: string, protectedHeader: string, signatures: readonly Buffer[]): Record<string, unknown> {
  const entries = signatures.map((s) => ({ protected: protectedHeader, signature: s.toString("base64url") }));
  return entries.length === 1 ? { payload, ...entries[0] } : { payload, signatures: entries };
}
