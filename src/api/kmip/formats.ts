// How a KMIP object's material travels (KMIP 1.4 §2.1 and §2.2, KMIP 2.0 §2): key blocks in each
// Key Format Type Tresor offers, certificates, and the Key Wrapping Specification of a wrapped Get
// with the Key Wrapping Data that answers it. Pure translation: the core wraps, this file encodes.

import { createPrivateKey, createPublicKey, type JsonWebKey } from "node:crypto";
import type { KeySpec, KmipObjectType } from "../../keys/key.js";
import type { KmipKeyWrap } from "../../service/kmip-objects.js";
import { algorithmOf } from "./attributes.js";
import { bytes, enumeration, KmipFault, optionalEnumeration, optionalStruct, optionalText, struct } from "./messages.js";
import { BLOCK_CIPHER_MODE, CERTIFICATE_TYPE, ENCODING_OPTION, KEY_FORMAT_TYPE, RECOMMENDED_CURVE, TAG, WRAPPING_METHOD } from "./tags.js";
import type { Ttlv, TtlvStructure } from "./ttlv.js";

/** How each key object type's material travels: its structure's tag and its stored key format. */
export const OBJECT_FORMS = {
  SymmetricKey: { tag: TAG.SymmetricKey, format: KEY_FORMAT_TYPE.Raw },
  PrivateKey: { tag: TAG.PrivateKey, format: KEY_FORMAT_TYPE.PKCS8 },
  PublicKey: { tag: TAG.PublicKey, format: KEY_FORMAT_TYPE.X509 },
  SecretData: { tag: TAG.SecretData, format: KEY_FORMAT_TYPE.Opaque },
} as const;
export type KeyObjectType = keyof typeof OBJECT_FORMS;

const OBJECT_NAMES: Record<number, string> = { [TAG.SymmetricKey]: "Symmetric Key", [TAG.SecretData]: "Secret Data", [TAG.PrivateKey]: "Private Key", [TAG.PublicKey]: "Public Key" };

export function isKeyObject(type: KmipObjectType): type is KeyObjectType {
  return type in OBJECT_FORMS;
}

export function keyBlock(format: number, keyMaterial: Ttlv, spec: KeySpec, wrapping?: Ttlv): Ttlv {
  const crypto = algorithmOf(spec);
  return {
    tag: TAG.KeyBlock,
    type: "Structure",
    value: [
      { tag: TAG.KeyFormatType, type: "Enumeration", value: format },
      { tag: TAG.KeyValue, type: "Structure", value: [keyMaterial] },
      ...(crypto
        ? [
            { tag: TAG.CryptographicAlgorithm, type: "Enumeration" as const, value: crypto.algorithm },
            { tag: TAG.CryptographicLength, type: "Integer" as const, value: crypto.length },
          ]
        : []),
      ...(wrapping ? [wrapping] : []),
    ],
  };
}

const bytesItem = (tag: number, value: Buffer): Ttlv => ({ tag, type: "ByteString", value: Buffer.from(value) });

/**
 * The Key Material item of a Get in the Key Format Type asked (KMIP 1.4 §2.1.7, §9.1.3.2.3): the
 * stored format as it is, Transparent Symmetric Key, PKCS#1 for RSA halves, EC Private Key (SEC 1),
 * Transparent RSA Private/Public Key and Transparent EC Private/Public Key. Any other is Key Format
 * Type Not Supported.
 */
export function inFormat(objectType: KeyObjectType, spec: KeySpec, material: Buffer, format: number): Ttlv {
  if (format === OBJECT_FORMS[objectType].format) return bytesItem(TAG.KeyMaterial, material);
  if (objectType === "SymmetricKey" && format === KEY_FORMAT_TYPE.TransparentSymmetricKey) return transparent([bytesItem(TAG.Key, material)]);
  const rsa = spec.startsWith("RSA_");
  if (objectType === "PrivateKey") {
    const key = createPrivateKey({ key: material, format: "der", type: "pkcs8" });
    if ((rsa && format === KEY_FORMAT_TYPE.PKCS1) || (!rsa && format === KEY_FORMAT_TYPE.ECPrivateKey)) return bytesItem(TAG.KeyMaterial, key.export({ format: "der", type: rsa ? "pkcs1" : "sec1" }));
    if (rsa && format === KEY_FORMAT_TYPE.TransparentRSAPrivateKey) return transparentRsa(key.export({ format: "jwk" }), true);
    if (!rsa && format === KEY_FORMAT_TYPE.TransparentECPrivateKey) return transparentEc(spec, key.export({ format: "jwk" }), true);
  }
  if (objectType === "PublicKey") {
    const key = createPublicKey({ key: material, format: "der", type: "spki" });
    if (rsa && format === KEY_FORMAT_TYPE.PKCS1) return bytesItem(TAG.KeyMaterial, key.export({ format: "der", type: "pkcs1" }));
    if (rsa && format === KEY_FORMAT_TYPE.TransparentRSAPublicKey) return transparentRsa(key.export({ format: "jwk" }), false);
    if (!rsa && format === KEY_FORMAT_TYPE.TransparentECPublicKey) return transparentEc(spec, key.export({ format: "jwk" }), false);
  }
  throw new KmipFault("KeyFormatTypeNotSupported", `"Key Format Type" ${format} is not offered for this ${objectType}`);
}

function transparent(items: Ttlv[]): Ttlv {
  return { tag: TAG.KeyMaterial, type: "Structure", value: items };
}

/** A JWK member (base64url, big-endian, unsigned) as a Big Integer item. */
function bigInteger(tag: number, member: string | undefined): Ttlv {
  if (member === undefined) throw new KmipFault("GeneralFailure", "the key lacks a component of its transparent form");
  const hex = Buffer.from(member, "base64url").toString("hex");
  return { tag, type: "BigInteger", value: BigInt(`0x${hex || "0"}`) };
}

/** KMIP 1.4 §2.1.7.3 (private: n, d, e, p, q, dp, dq, qi in that order) and §2.1.7.4 (public: n, e). */
function transparentRsa(jwk: JsonWebKey, isPrivate: boolean): Ttlv {
  if (!isPrivate) return transparent([bigInteger(TAG.Modulus, jwk.n), bigInteger(TAG.PublicExponent, jwk.e)]);
  return transparent([
    bigInteger(TAG.Modulus, jwk.n),
    bigInteger(TAG.PrivateExponent, jwk.d),
    bigInteger(TAG.PublicExponent, jwk.e),
    bigInteger(TAG.P, jwk.p),
    bigInteger(TAG.Q, jwk.q),
    bigInteger(TAG.PrimeExponentP, jwk.dp),
    bigInteger(TAG.PrimeExponentQ, jwk.dq),
    bigInteger(TAG.CrtCoefficient, jwk.qi),
  ]);
}

/** KMIP 1.4 §2.1.7.11 (private: Recommended Curve, D) and §2.1.7.12 (public: Recommended Curve, Q String, the uncompressed point). */
function transparentEc(spec: KeySpec, jwk: JsonWebKey, isPrivate: boolean): Ttlv {
  const curve: Ttlv = { tag: TAG.RecommendedCurve, type: "Enumeration", value: spec === "ECC_P384" ? RECOMMENDED_CURVE.P384 : RECOMMENDED_CURVE.P256 };
  if (isPrivate) return transparent([curve, bigInteger(TAG.D, jwk.d)]);
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]);
  return transparent([curve, bytesItem(TAG.QString, point)]);
}

/** The key material of a Register request's object (Raw symmetric key; Opaque secret data; PKCS#8, X.509 key pairs' halves). */
export function registeredMaterial(payload: TtlvStructure, form: (typeof OBJECT_FORMS)[KeyObjectType]): { material: Buffer; object: TtlvStructure } {
  const object = struct(payload, form.tag, OBJECT_NAMES[form.tag] ?? "object");
  const block = struct(object, TAG.KeyBlock, "Key Block");
  const format = enumeration(block, TAG.KeyFormatType, "Key Format Type");
  if (format !== form.format) throw new KmipFault("KeyFormatTypeNotSupported", `"Key Format Type" ${format} is not supported for Register: ${form.format} is`);
  if (optionalStruct(block, TAG.KeyWrappingData, "Key Wrapping Data")) throw new KmipFault("FeatureNotSupported", "wrapped key material is not supported for Register");
  const value = struct(block, TAG.KeyValue, "Key Value");
  return { material: bytes(value, TAG.KeyMaterial, "Key Material"), object };
}

/** A Register request's X.509 certificate (KMIP 1.4 §2.2.1), DER. */
export function registeredCertificate(payload: TtlvStructure): Buffer {
  const object = struct(payload, TAG.Certificate, "Certificate");
  const type = enumeration(object, TAG.CertificateType, "Certificate Type");
  if (type !== CERTIFICATE_TYPE.X509) throw new KmipFault("FeatureNotSupported", `"Certificate Type" ${type} is not supported: X.509 (1) is`);
  return bytes(object, TAG.CertificateValue, "Certificate Value");
}

export function certificateItem(der: Buffer): Ttlv {
  return {
    tag: TAG.Certificate,
    type: "Structure",
    value: [
      { tag: TAG.CertificateType, type: "Enumeration", value: CERTIFICATE_TYPE.X509 },
      { tag: TAG.CertificateValue, type: "ByteString", value: Buffer.from(der) },
    ],
  };
}

export interface WrapRequest {
  wrappingId: string;
  algorithm: KmipKeyWrap;
  /** The request's Encryption Key Information, echoed in the Key Wrapping Data. */
  keyInformation: TtlvStructure;
}

/**
 * A Get's Key Wrapping Specification (KMIP 1.4 §2.1.6): Wrapping Method Encrypt under an Encryption
 * Key Information naming a key, with Block Cipher Mode NIST Key Wrap (the default) or AES Key Wrap
 * Padding, and Encoding Option No Encoding (the key material alone is wrapped, as PyKMIP's server
 * requires). MAC/Signature wrapping, wrapped attributes and TTLV encoding are refused.
 */
export function wrappingOf(payload: TtlvStructure): WrapRequest | undefined {
  const spec = optionalStruct(payload, TAG.KeyWrappingSpecification, "Key Wrapping Specification");
  if (!spec) return undefined;
  const method = enumeration(spec, TAG.WrappingMethod, "Wrapping Method");
  if (method !== WRAPPING_METHOD.Encrypt) throw new KmipFault("FeatureNotSupported", `"Wrapping Method" ${method} is not supported: Encrypt (1) is`);
  if (optionalStruct(spec, TAG.MacSignatureKeyInformation, "MAC/Signature Key Information")) throw new KmipFault("FeatureNotSupported", "wrapping with MAC/Signature Key Information is not supported");
  if (spec.value.some((c) => c.tag === TAG.AttributeName)) throw new KmipFault("FeatureNotSupported", "wrapping attributes with the key (Attribute Name) is not supported");
  const encoding = optionalEnumeration(spec, TAG.EncodingOption, "Encoding Option");
  if (encoding !== ENCODING_OPTION.NoEncoding) throw new KmipFault("FeatureNotSupported", `"Encoding Option" ${encoding ?? "(absent: TTLV Encoding)"} is not supported: No Encoding (1) is`);
  const info = struct(spec, TAG.EncryptionKeyInformation, "Encryption Key Information");
  const wrappingId = optionalText(info, TAG.UniqueIdentifier, "Unique Identifier");
  if (wrappingId === undefined) throw new KmipFault("InvalidField", `"Encryption Key Information" must name the wrapping key's "Unique Identifier"`);
  const params = optionalStruct(info, TAG.CryptographicParameters, "Cryptographic Parameters");
  const mode = params ? optionalEnumeration(params, TAG.BlockCipherMode, "Block Cipher Mode") : undefined;
  if (mode !== undefined && mode !== BLOCK_CIPHER_MODE.NISTKeyWrap && mode !== BLOCK_CIPHER_MODE.AESKeyWrapPadding) {
    throw new KmipFault("FeatureNotSupported", `"Block Cipher Mode" ${mode} is not a key wrapping Tresor offers: NIST Key Wrap (13) or AES Key Wrap Padding (12)`);
  }
  return { wrappingId, algorithm: mode === BLOCK_CIPHER_MODE.AESKeyWrapPadding ? "AESKeyWrapPadding" : "NISTKeyWrap", keyInformation: info };
}

/** The Key Wrapping Data of a wrapped key block (KMIP 1.4 §2.1.5). */
export function wrappingData(request: WrapRequest): Ttlv {
  return {
    tag: TAG.KeyWrappingData,
    type: "Structure",
    value: [
      { tag: TAG.WrappingMethod, type: "Enumeration", value: WRAPPING_METHOD.Encrypt },
      request.keyInformation,
      { tag: TAG.EncodingOption, type: "Enumeration", value: ENCODING_OPTION.NoEncoding },
    ],
  };
}
