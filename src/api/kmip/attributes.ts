// KMIP attributes at the door: reading the attributes a request brings (KMIP 1.x Template-Attribute
// and Attribute structures naming each attribute by text; KMIP 2.0 Attributes structures holding
// each attribute under its own tag) and writing a key's attributes back in the request's version.

import type { KeyRecord, KeySpec, KmipObjectType, KmipState } from "../../keys/key.js";
import { kmipState } from "../../service/kmip-objects.js";
import { all, isKmip2, KmipFault, type ProtocolVersion } from "./messages.js";
import { CRYPTOGRAPHIC_ALGORITHM, LINK_TYPE, NAME_TYPE, OBJECT_TYPE, STATE, TAG } from "./tags.js";
import type { Ttlv, TtlvStructure } from "./ttlv.js";

type ValueType = Exclude<Ttlv["type"], "Structure"> | "Structure";

/** The attributes Tresor reads or reports: KMIP 1.4 §3 names, their tags and types. */
export const ATTRIBUTES = {
  "Unique Identifier": { tag: TAG.UniqueIdentifier, type: "TextString" },
  Name: { tag: TAG.Name, type: "Structure" },
  "Object Type": { tag: TAG.ObjectType, type: "Enumeration" },
  "Cryptographic Algorithm": { tag: TAG.CryptographicAlgorithm, type: "Enumeration" },
  "Cryptographic Length": { tag: TAG.CryptographicLength, type: "Integer" },
  "Cryptographic Usage Mask": { tag: TAG.CryptographicUsageMask, type: "Integer" },
  State: { tag: TAG.State, type: "Enumeration" },
  "Initial Date": { tag: TAG.InitialDate, type: "DateTime" },
  "Activation Date": { tag: TAG.ActivationDate, type: "DateTime" },
  "Deactivation Date": { tag: TAG.DeactivationDate, type: "DateTime" },
  "Compromise Date": { tag: TAG.CompromiseDate, type: "DateTime" },
  "Operation Policy Name": { tag: TAG.OperationPolicyName, type: "TextString" },
  Link: { tag: TAG.Link, type: "Structure" },
} as const satisfies Record<string, { tag: number; type: ValueType }>;
export type AttributeName = keyof typeof ATTRIBUTES;

const BY_TAG = new Map<number, AttributeName>(Object.entries(ATTRIBUTES).map(([name, a]) => [a.tag, name as AttributeName]));

/** A custom attribute's name (KMIP 1.4 §3.39): "x-…" from clients, "y-…" from servers. */
export type CustomName = `x-${string}` | `y-${string}`;
export type AnyAttributeName = AttributeName | CustomName;

export function isCustomName(name: string): name is CustomName {
  return /^[xy]-/.test(name);
}

/** One attribute of a request: its name, its value item, and its index when the request gave one (KMIP 1.x). */
export interface RequestAttribute {
  readonly name: AnyAttributeName;
  readonly value: Ttlv;
  readonly index?: number;
}

/**
 * The attributes under `containers` (Template-Attribute-like structures of KMIP 1.x, Attributes-like
 * ones of 2.0) and the bare Attribute items of `payload` (KMIP 1.x Locate).
 */
export function readAttributes(payload: TtlvStructure, containers: readonly number[]): RequestAttribute[] {
  const found: RequestAttribute[] = [];
  const fromAttribute = (item: Ttlv) => found.push(attributeOf1x(item));
  for (const item of all(payload, TAG.Attribute)) fromAttribute(item);
  for (const tag of containers) {
    for (const container of all(payload, tag)) {
      if (container.type !== "Structure") throw new KmipFault("InvalidField", "an attribute container must be a structure");
      for (const child of container.value) {
        if (isAttributesTag(tag)) found.push(attributeOf2x(child));
        else if (child.tag === TAG.Attribute) fromAttribute(child);
        // A 1.x template may also name a stored template (deprecated since 1.3): none exist here.
        else if (child.tag === TAG.Name) throw new KmipFault("FeatureNotSupported", "named templates are not supported: give the attributes themselves");
        else throw new KmipFault("InvalidField", `a template attribute holds a tag 0x${child.tag.toString(16)} that is not an Attribute`);
      }
    }
  }
  return found;
}

function isAttributesTag(tag: number): boolean {
  return tag === TAG.Attributes || tag === TAG.CommonAttributes || tag === TAG.PrivateKeyAttributes || tag === TAG.PublicKeyAttributes;
}

export function attributeOf1x(item: Ttlv, valueRequired = true): RequestAttribute {
  if (item.type !== "Structure") throw new KmipFault("InvalidField", `"Attribute" must be a structure`);
  const nameItem = item.value.find((c) => c.tag === TAG.AttributeName);
  const indexItem = item.value.find((c) => c.tag === TAG.AttributeIndex);
  const value = item.value.find((c) => c.tag === TAG.AttributeValue);
  if (nameItem?.type !== "TextString") throw new KmipFault("InvalidField", `"Attribute Name" must be a text string`);
  if (indexItem !== undefined && (indexItem.type !== "Integer" || indexItem.value < 0)) throw new KmipFault("InvalidField", `"Attribute Index" must be a non-negative Integer`);
  const index = indexItem?.type === "Integer" ? { index: indexItem.value } : {};
  const name = nameItem.value;
  if (!value) {
    if (valueRequired) throw new KmipFault("InvalidField", `"Attribute Value" of ${name.slice(0, 64)} is missing`);
    return { name: name as AnyAttributeName, value: { tag: TAG.AttributeValue, type: "Structure", value: [] }, ...index };
  }
  if (isCustomName(name)) {
    if (value.type !== "TextString" && value.type !== "Integer" && value.type !== "Boolean") throw new KmipFault("InvalidField", `custom attribute values are Text Strings, Integers or Booleans, not ${value.type}`);
    return { name, value, ...index };
  }
  if (!Object.hasOwn(ATTRIBUTES, name)) throw new KmipFault("InvalidField", `attribute "${name.slice(0, 64)}" is not supported`);
  return { ...checked(name as AttributeName, value), ...index };
}

export function attributeOf2x(item: Ttlv): RequestAttribute {
  if (item.tag === TAG.Attribute) return vendorAttribute(item);
  const name = BY_TAG.get(item.tag);
  if (!name) throw new KmipFault("InvalidField", `attribute tag 0x${item.tag.toString(16)} is not supported`);
  return checked(name, item);
}

/**
 * A KMIP 2.0 Vendor Attribute (KMIP 2.0 §4.54): an Attribute structure of Vendor Identification,
 * Attribute Name and Attribute Value. Vendor "x" (client) and "y" (server) are KMIP 1.x's custom
 * attributes, kept as "x-NAME" and "y-NAME"; other vendors' attributes are not kept.
 */
function vendorAttribute(item: Ttlv): RequestAttribute {
  const { name } = vendorReference(item, "Vendor Attribute");
  const value = item.type === "Structure" ? item.value.find((c) => c.tag === TAG.AttributeValue) : undefined;
  if (!value) throw new KmipFault("InvalidField", `"Attribute Value" of ${name.slice(0, 64)} is missing`);
  plainValue(value); // refuses any type a custom attribute cannot hold
  return { name, value };
}

/** The custom attribute a Vendor Attribute or a vendor Attribute Reference names (Vendor Identification and Attribute Name). */
function vendorReference(item: Ttlv, what: string): { name: CustomName } {
  if (item.type !== "Structure") throw new KmipFault("InvalidField", `"${what}" must be a structure`);
  const vendor = item.value.find((c) => c.tag === TAG.VendorIdentification);
  const attributeName = item.value.find((c) => c.tag === TAG.AttributeName);
  if (vendor?.type !== "TextString" || attributeName?.type !== "TextString") throw new KmipFault("InvalidField", `"${what}" needs a "Vendor Identification" and an "Attribute Name", text strings`);
  if (vendor.value !== "x" && vendor.value !== "y") throw new KmipFault("FeatureNotSupported", `vendor attributes of "${vendor.value.slice(0, 64)}" are not kept: vendors "x" and "y" (custom attributes) are`);
  return { name: `${vendor.value}-${attributeName.value}` as CustomName };
}

/** A custom attribute's name as KMIP 2.0's Vendor Identification and Attribute Name items. */
function vendorItems(name: CustomName): Ttlv[] {
  return [
    { tag: TAG.VendorIdentification, type: "TextString", value: name.slice(0, 1) },
    { tag: TAG.AttributeName, type: "TextString", value: name.slice(2) },
  ];
}

/** The attribute a KMIP 2.0 Attribute Reference names: a tag (Enumeration) or a vendor attribute (structure). */
export function referencedName(reference: Ttlv): AnyAttributeName | undefined {
  if (reference.type === "Enumeration") return BY_TAG.get(reference.value);
  if (reference.type === "Structure") return vendorReference(reference, "Attribute Reference").name;
  throw new KmipFault("InvalidField", `an "Attribute Reference" is a tag (Enumeration) or a vendor attribute (structure), not a ${reference.type}`);
}

function checked(name: AttributeName, value: Ttlv): RequestAttribute {
  if (value.type !== ATTRIBUTES[name].type) throw new KmipFault("InvalidField", `"${name}" must be a ${ATTRIBUTES[name].type}, not a ${value.type}`);
  return { name, value };
}

/** The text of a Name attribute's value. */
export function nameValue(value: Ttlv): string {
  const text = value.type === "Structure" ? value.value.find((c) => c.tag === TAG.NameValue) : undefined;
  if (text?.type !== "TextString" || text.value.length === 0 || text.value.length > 256) throw new KmipFault("InvalidField", `"Name Value" must be a text string of 1 to 256 characters`);
  return text.value;
}

/** The attribute `name`'s values of one request, by type. */
export function valuesOf(attributes: readonly RequestAttribute[], name: AttributeName): Ttlv[] {
  return attributes.filter((a) => a.name === name).map((a) => a.value);
}

/** Custom attributes' values by name, as the core keeps them. */
export function customOf(attributes: readonly RequestAttribute[]): Record<string, (string | number | boolean)[]> {
  const out: Record<string, (string | number | boolean)[]> = {};
  for (const a of attributes) {
    if (!isCustomName(a.name)) continue;
    (out[a.name] ??= []).push(plainValue(a.value));
  }
  return out;
}

/** A custom attribute's value item as a plain value. */
export function plainValue(value: Ttlv): string | number | boolean {
  if (value.type === "TextString" || value.type === "Integer" || value.type === "Boolean") return value.value;
  throw new KmipFault("InvalidField", `custom attribute values are Text Strings, Integers or Booleans, not ${value.type}`);
}

/** A plain value as a value item under `tag`. */
export function valueItem(tag: number, value: string | number | boolean): Ttlv {
  if (typeof value === "string") return { tag, type: "TextString", value };
  if (typeof value === "number") return { tag, type: "Integer", value };
  return { tag, type: "Boolean", value };
}

export function numberOf(attributes: readonly RequestAttribute[], name: AttributeName): number | undefined {
  const values = valuesOf(attributes, name);
  if (values.length > 1) throw new KmipFault("InvalidField", `"${name}" is given more than once`);
  const v = values[0];
  return v && (v.type === "Integer" || v.type === "Enumeration") ? v.value : undefined;
}

// ---- what Tresor reports ----

export const OBJECT_TYPE_OF: Readonly<Record<KmipObjectType, number>> = {
  SymmetricKey: OBJECT_TYPE.SymmetricKey,
  PublicKey: OBJECT_TYPE.PublicKey,
  PrivateKey: OBJECT_TYPE.PrivateKey,
  SecretData: OBJECT_TYPE.SecretData,
  Certificate: OBJECT_TYPE.Certificate,
};
export const STATE_OF: Readonly<Record<KmipState, number>> = STATE;

/** KMIP's algorithm and length of a key spec; secret data has none. */
export function algorithmOf(spec: KeySpec): { algorithm: number; length: number } | undefined {
  switch (spec) {
    case "SECRET_DATA":
      return undefined;
    case "AES_128":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.AES, length: 128 };
    case "HMAC_SHA256":
    case "HMAC_SHA384":
    case "HMAC_SHA512":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM[spec], length: Number(spec.slice(8)) };
    case "AES_256":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.AES, length: 256 };
    case "SM4":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.SM4, length: 128 };
    case "RSA_2048":
    case "RSA_3072":
    case "RSA_4096":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.RSA, length: Number(spec.slice(4)) };
    case "ECC_P256":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.ECDSA, length: 256 };
    case "ECC_P384":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.ECDSA, length: 384 };
    // Tang servers' keys (not KMIP objects; KMIP creates no P-521 pair).
    case "ECC_P521":
      return { algorithm: CRYPTOGRAPHIC_ALGORITHM.ECDSA, length: 521 };
    case "SM2":
      return { algorithm: 0x2b, length: 256 };
    // CMK specs KMIP 1.4 names no algorithm for (never KMIP objects): none.
    case "ED25519":
    case "ML_DSA_44":
    case "ML_DSA_65":
    case "ML_DSA_87":
    case "ML_KEM_768":
    case "ML_KEM_1024":
    case "HMAC_SM3":
      return undefined;
  }
}

/** Every attribute the object has, in KMIP's names, as value items under each attribute's own tag (custom ones under Attribute Value). */
export function attributesOf(key: KeyRecord): { name: AnyAttributeName; value: Ttlv }[] {
  const meta = key.kmip;
  if (!meta) return [];
  const crypto = algorithmOf(key.keySpec);
  const date = (name: AttributeName, seconds: number) => ({ name, value: { tag: ATTRIBUTES[name].tag, type: "DateTime" as const, value: BigInt(seconds) } });
  const out: { name: AnyAttributeName; value: Ttlv }[] = [
    { name: "Unique Identifier", value: { tag: TAG.UniqueIdentifier, type: "TextString", value: key.keyId } },
    { name: "Object Type", value: { tag: TAG.ObjectType, type: "Enumeration", value: OBJECT_TYPE_OF[meta.objectType] } },
    ...(crypto
      ? [
          { name: "Cryptographic Algorithm" as const, value: { tag: TAG.CryptographicAlgorithm, type: "Enumeration" as const, value: crypto.algorithm } },
          { name: "Cryptographic Length" as const, value: { tag: TAG.CryptographicLength, type: "Integer" as const, value: crypto.length } },
        ]
      : []),
    ...meta.names.map((n) => ({ name: "Name" as const, value: nameItem(n) })),
    { name: "State", value: { tag: TAG.State, type: "Enumeration", value: STATE_OF[kmipState(key)] } },
    date("Initial Date", key.createTime),
  ];
  if (meta.usageMask) out.push({ name: "Cryptographic Usage Mask", value: { tag: TAG.CryptographicUsageMask, type: "Integer", value: meta.usageMask } });
  if (meta.activationDate) out.push(date("Activation Date", meta.activationDate));
  if (meta.deactivationDate) out.push(date("Deactivation Date", meta.deactivationDate));
  if (meta.compromiseDate) out.push(date("Compromise Date", meta.compromiseDate));
  for (const [name, values] of Object.entries(meta.custom ?? {})) {
    for (const v of values) out.push({ name: name as CustomName, value: valueItem(TAG.AttributeValue, v) });
  }
  if (meta.linkedId) out.push(link(meta.objectType === "PrivateKey" ? LINK_TYPE.PublicKeyLink : LINK_TYPE.PrivateKeyLink, meta.linkedId));
  if (meta.replacementId) out.push(link(LINK_TYPE.ReplacementObjectLink, meta.replacementId));
  if (meta.replacedId) out.push(link(LINK_TYPE.ReplacedObjectLink, meta.replacedId));
  return out;
}

function link(type: number, id: string): { name: "Link"; value: Ttlv } {
  return {
    name: "Link",
    value: {
      tag: TAG.Link,
      type: "Structure",
      value: [
        { tag: TAG.LinkType, type: "Enumeration", value: type },
        { tag: TAG.LinkedObjectIdentifier, type: "TextString", value: id },
      ],
    },
  };
}

export function nameItem(name: string): Ttlv {
  return {
    tag: TAG.Name,
    type: "Structure",
    value: [
      { tag: TAG.NameValue, type: "TextString", value: name },
      { tag: TAG.NameType, type: "Enumeration", value: NAME_TYPE.UninterpretedTextString },
    ],
  };
}

/**
 * Attributes as the version writes them: 1.x Attribute structures (with an Attribute Index from the
 * second value of a name on), 2.0 one Attributes structure (custom attributes as Vendor Attributes).
 */
export function encodeAttributes(version: ProtocolVersion, attributes: readonly { name: AnyAttributeName; value: Ttlv }[]): Ttlv[] {
  if (isKmip2(version)) return [{ tag: TAG.Attributes, type: "Structure", value: attributes.map((a) => (isCustomName(a.name) ? vendorAttributeItem(a.name, a.value) : a.value)) }];
  const seen = new Map<string, number>();
  return attributes.map((a) => {
    const index = seen.get(a.name) ?? 0;
    seen.set(a.name, index + 1);
    return attributeItem(a.name, a.value, index);
  });
}

/** One KMIP 2.0 Vendor Attribute. */
export function vendorAttributeItem(name: CustomName, value: Ttlv): Ttlv {
  return { tag: TAG.Attribute, type: "Structure", value: [...vendorItems(name), { ...value, tag: TAG.AttributeValue } as Ttlv] };
}

/** One KMIP 1.x Attribute structure. */
export function attributeItem(name: AnyAttributeName, value: Ttlv, index: number): Ttlv {
  return {
    tag: TAG.Attribute,
    type: "Structure",
    value: [
      { tag: TAG.AttributeName, type: "TextString", value: name },
      ...(index > 0 ? [{ tag: TAG.AttributeIndex, type: "Integer" as const, value: index }] : []),
      { ...value, tag: TAG.AttributeValue } as Ttlv,
    ],
  };
}

/** The attribute names a 1.x Get Attributes asks for, or the tags a 2.0 one references. */
export function requestedNames(payload: TtlvStructure, version: ProtocolVersion): AnyAttributeName[] | undefined {
  const refs = isKmip2(version) ? all(payload, TAG.AttributeReference) : all(payload, TAG.AttributeName);
  if (refs.length === 0) return undefined;
  return refs.flatMap((r): AnyAttributeName[] => {
    if (!isKmip2(version)) {
      if (r.type !== "TextString") throw new KmipFault("InvalidField", `an "Attribute Name" must be a text string, not a ${r.type}`);
      return Object.hasOwn(ATTRIBUTES, r.value) || isCustomName(r.value) ? [r.value as AnyAttributeName] : [];
    }
    const name = referencedName(r);
    return name === undefined ? [] : [name];
  });
}

/** Attribute names as Get Attribute List answers them in the version. */
export function encodeAttributeNames(version: ProtocolVersion, names: readonly AnyAttributeName[]): Ttlv[] {
  if (isKmip2(version)) {
    return names.map((n): Ttlv => (isCustomName(n) ? { tag: TAG.AttributeReference, type: "Structure", value: vendorItems(n) } : { tag: TAG.AttributeReference, type: "Enumeration", value: ATTRIBUTES[n].tag }));
  }
  return names.map((n) => ({ tag: TAG.AttributeName, type: "TextString" as const, value: n }));
}
