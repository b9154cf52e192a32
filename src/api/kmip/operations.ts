// KMIP operations: each reads its request payload (KMIP 1.4 §4, KMIP 2.0 §6), calls the one core
// (service.kmip for the exportable objects) and writes its response payload in the request's version.
// Nothing here decides who may do what or in which state: the service does.

import type { KeySpec, KmipState } from "../../keys/key.js";
import type { SigningAlgorithm } from "../../keys/specs.js";
import type { Caller } from "../../service/access-control.js";
import { KmsError, type ErrorCode } from "../../service/errors.js";
import { KMIP_KEY_PAIR_SPECS, type KmipAttributeChange, type KmipCipher, type KmipKeyPairSpec, type KmipNewObject, type KmipSymmetricSpec } from "../../service/kmip-objects.js";
import type { KmsService } from "../../service/kms-service.js";
import {
  attributeItem,
  attributeOf1x,
  attributeOf2x,
  attributesOf,
  customOf,
  nameItem,
  valueItem,
  type AnyAttributeName,
  encodeAttributeNames,
  encodeAttributes,
  nameValue,
  numberOf,
  OBJECT_TYPE_OF,
  readAttributes,
  referencedName,
  requestedNames,
  valuesOf,
  type RequestAttribute,
} from "./attributes.js";
import {
  all,
  bytes,
  enumeration,
  isKmip2,
  KmipFault,
  optionalBytes,
  optionalDateTime,
  optionalEnumeration,
  optionalInteger,
  optionalInterval,
  optionalStruct,
  optionalText,
  SUPPORTED_VERSIONS,
  struct,
  versionItem,
  type ProtocolVersion,
} from "./messages.js";
import {
  BLOCK_CIPHER_MODE,
  CRYPTOGRAPHIC_ALGORITHM,
  DIGITAL_SIGNATURE_ALGORITHM,
  HASHING_ALGORITHM,
  KEY_FORMAT_TYPE,
  OBJECT_TYPE,
  OPERATION,
  PADDING_METHOD,
  PADDING_METHOD_SIGN,
  QUERY_FUNCTION,
  REVOCATION_REASON_CODE,
  STATE,
  TAG,
  VALIDITY_INDICATOR,
  type OperationName,
  type ResultReasonName,
} from "./tags.js";
import { certificateItem, inFormat, isKeyObject, keyBlock, OBJECT_FORMS, registeredCertificate, registeredMaterial, wrappingData, wrappingOf } from "./formats.js";
import { encodeTtlv, type Ttlv, type TtlvStructure } from "./ttlv.js";

export interface OperationContext {
  readonly service: KmsService;
  readonly caller: Caller;
  readonly version: ProtocolVersion;
  /** The ID Placeholder: the object the previous item of the batch made or named (KMIP 1.4 §6.1). */
  readonly placeholder: string | undefined;
}

export interface OperationResult {
  readonly payload: Ttlv[];
  /** The object the operation made or acted on, for the ID Placeholder of later items. */
  readonly id?: string;
}

interface Operation {
  /** Changes stored state (the audit record's read-only flag). */
  readonly writes: boolean;
  /** A KMIP 2.0 operation: refused in, and not listed by Query at, 1.x. */
  readonly since2?: true;
  run(payload: TtlvStructure, ctx: OperationContext): Promise<OperationResult>;
}

const SERVER_VENDOR = "Tresor";
const DEFAULT_LOCATE_ITEMS = 1000;

const uid = (id: string): Ttlv => ({ tag: TAG.UniqueIdentifier, type: "TextString", value: id });

/** The object a request names, or the ID Placeholder when it names none. */
function idOf(payload: TtlvStructure, ctx: OperationContext): string {
  const id = optionalText(payload, TAG.UniqueIdentifier, "Unique Identifier") ?? ctx.placeholder;
  if (id === undefined) throw new KmipFault("InvalidField", `"Unique Identifier" is required (no earlier batch item set the ID Placeholder)`);
  return id;
}

const TEMPLATE_CONTAINERS = [TAG.TemplateAttribute, TAG.Attributes];

function newObject(attributes: readonly RequestAttribute[]): KmipNewObject {
  return { names: valuesOf(attributes, "Name").map(nameValue), usageMask: numberOf(attributes, "Cryptographic Usage Mask") ?? 0, custom: customOf(attributes) };
}

/** The attribute an Add/Modify/Delete Attribute request names, in the version's encoding. */
function changedAttribute(payload: TtlvStructure, ctx: OperationContext, op: KmipAttributeChange["op"]): { name: AnyAttributeName; index: number; value?: Ttlv } {
  if (!isKmip2(ctx.version)) {
    if (op === "delete") {
      const name = optionalText(payload, TAG.AttributeName, "Attribute Name");
      if (name === undefined) throw new KmipFault("InvalidField", `"Attribute Name" is required`);
      const index = optionalInteger(payload, TAG.AttributeIndex, "Attribute Index") ?? 0;
      return { name: name as AnyAttributeName, index };
    }
    const attribute = attributeOf1x(struct(payload, TAG.Attribute, "Attribute"));
    return { name: attribute.name, index: attribute.index ?? 0, value: attribute.value };
  }
  const fresh = optionalStruct(payload, TAG.NewAttribute, "New Attribute");
  const current = optionalStruct(payload, TAG.CurrentAttribute, "Current Attribute");
  const only = (s: TtlvStructure | undefined, what: string) => {
    if (s?.value.length !== 1) throw new KmipFault("InvalidField", `"${what}" holds exactly one attribute`);
    return attributeOf2x(s.value[0] as Ttlv);
  };
  if (op === "add") {
    const a = only(fresh, "New Attribute");
    return { name: a.name, index: 0, value: a.value };
  }
  if (op === "modify") {
    const a = only(fresh, "New Attribute");
    return { name: a.name, index: 0, value: a.value, ...(current ? { current: only(current, "Current Attribute") } : {}) };
  }
  if (current) {
    const a = only(current, "Current Attribute");
    return { name: a.name, index: 0, value: a.value };
  }
  const reference = payload.value.find((c) => c.tag === TAG.AttributeReference);
  const name = reference === undefined ? undefined : referencedName(reference);
  if (!name) throw new KmipFault("InvalidField", `"Current Attribute" or an "Attribute Reference" to a known attribute is required`);
  return { name, index: 0 };
}

/** The value a changed attribute carries, as the core keeps it. */
function changeValue(name: AnyAttributeName, value: Ttlv | undefined): string | number | boolean | undefined {
  if (value === undefined) return undefined;
  if (name === "Name") return nameValue(value);
  if (value.type === "Integer" || value.type === "TextString" || value.type === "Boolean") return value.value;
  throw new KmipFault("InvalidField", `"${name}" cannot take a ${value.type}`);
}

function attributeOperation(op: KmipAttributeChange["op"]): Operation {
  return {
    writes: true,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const named = changedAttribute(payload, ctx, op);
      let index = named.index;
      // KMIP 2.0 names the value to modify or delete by its current value, not by index.
      if (isKmip2(ctx.version) && op !== "add" && "current" in named) index = await indexOfValue(ctx, id, named.name, (named as { current: RequestAttribute }).current.value);
      else if (isKmip2(ctx.version) && op === "delete" && named.value) index = await indexOfValue(ctx, id, named.name, named.value);
      const { key, value } = await ctx.service.kmip.changeAttribute(ctx.caller, id, { op, name: named.name, index, ...withValue(changeValue(named.name, named.value)) });
      if (isKmip2(ctx.version)) return { payload: [uid(key.keyId)], id: key.keyId };
      const item = named.name === "Name" ? nameItem(String(value)) : valueItem(TAG.AttributeValue, value);
      return { payload: [uid(key.keyId), attributeItem(named.name, item, op === "add" ? 0 : index)], id: key.keyId };
    },
  };
}

function withValue(value: string | number | boolean | undefined): { value?: string | number | boolean } {
  return value === undefined ? {} : { value };
}

async function indexOfValue(ctx: OperationContext, id: string, name: AnyAttributeName, value: Ttlv): Promise<number> {
  const key = await ctx.service.kmip.attributes(ctx.caller, id);
  const wanted = encodeTtlv({ ...value, tag: 0 });
  const index = attributesOf(key)
    .filter((a) => a.name === name)
    .findIndex((a) => encodeTtlv({ ...a.value, tag: 0 }).equals(wanted));
  if (index === -1) throw new KmipFault("InvalidField", `object ${id} has no such value of "${name}"`);
  return index;
}

function symmetricSpec(attributes: readonly RequestAttribute[]): KmipSymmetricSpec {
  const algorithm = numberOf(attributes, "Cryptographic Algorithm");
  const length = numberOf(attributes, "Cryptographic Length");
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.AES && length === 256) return "AES_256";
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.AES && length === 128) return "AES_128";
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.SM4 && (length === 128 || length === undefined)) return "SM4";
  for (const hmac of ["HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"] as const) {
    if (algorithm === CRYPTOGRAPHIC_ALGORITHM[hmac] && (length === undefined || length === Number(hmac.slice(8)))) return hmac;
  }
  if (algorithm === undefined) throw new KmipFault("InvalidField", `"Cryptographic Algorithm" is required`);
  throw new KmipFault("FeatureNotSupported", `symmetric keys of algorithm ${algorithm} and length ${length ?? "(none)"} are not supported: AES 128/256, SM4 128 and HMAC-SHA256/384/512 are`);
}

function keyPairSpec(attributes: readonly RequestAttribute[]): KmipKeyPairSpec {
  const algorithm = numberOf(attributes, "Cryptographic Algorithm");
  const length = numberOf(attributes, "Cryptographic Length");
  const spec =
    algorithm === CRYPTOGRAPHIC_ALGORITHM.RSA ? `RSA_${length}` : algorithm === CRYPTOGRAPHIC_ALGORITHM.ECDSA || algorithm === CRYPTOGRAPHIC_ALGORITHM.EC ? `ECC_P${length}` : "";
  if ((KMIP_KEY_PAIR_SPECS as readonly string[]).includes(spec)) return spec as KmipKeyPairSpec;
  throw new KmipFault("FeatureNotSupported", `key pairs of algorithm ${algorithm ?? "(none)"} and length ${length ?? "(none)"} are not supported: RSA 2048/3072/4096, EC 256/384 are`);
}

function cipherOf(payload: TtlvStructure): KmipCipher {
  const params = optionalStruct(payload, TAG.CryptographicParameters, "Cryptographic Parameters");
  const mode = params ? optionalEnumeration(params, TAG.BlockCipherMode, "Block Cipher Mode") : undefined;
  const iv = optionalBytes(payload, TAG.IvCounterNonce, "IV/Counter/Nonce");
  if (mode === BLOCK_CIPHER_MODE.GCM) {
    const tagLength = (params && optionalInteger(params, TAG.TagLength, "Tag Length")) ?? 16;
    const aad = optionalBytes(payload, TAG.AuthenticatedEncryptionAdditionalData, "Authenticated Encryption Additional Data") ?? Buffer.alloc(0);
    return { mode: "GCM", ...(iv ? { iv } : {}), aad, tagLength };
  }
  if (mode === BLOCK_CIPHER_MODE.CBC || mode === undefined) {
    const padding = params ? optionalEnumeration(params, TAG.PaddingMethod, "Padding Method") : undefined;
    if (padding !== undefined && padding !== PADDING_METHOD.PKCS5 && padding !== PADDING_METHOD.None) throw new KmipFault("FeatureNotSupported", `"Padding Method" ${padding} is not supported with CBC: PKCS5 or None`);
    return { mode: "CBC", ...(iv ? { iv } : {}), padded: padding !== PADDING_METHOD.None };
  }
  throw new KmipFault("FeatureNotSupported", `"Block Cipher Mode" ${mode} is not supported: CBC or GCM`);
}

/** KMIP's signing parameters as Tresor's algorithm names (the key's spec decides among them). */
function signingAlgorithm(payload: TtlvStructure, spec: KeySpec | undefined): SigningAlgorithm {
  const params = optionalStruct(payload, TAG.CryptographicParameters, "Cryptographic Parameters");
  const padding = params ? optionalEnumeration(params, TAG.PaddingMethod, "Padding Method") : undefined;
  const hash = params ? optionalEnumeration(params, TAG.HashingAlgorithm, "Hashing Algorithm") : undefined;
  const digital = params ? optionalEnumeration(params, TAG.DigitalSignatureAlgorithm, "Digital Signature Algorithm") : undefined;
  if (spec?.startsWith("RSA_")) {
    if (digital === DIGITAL_SIGNATURE_ALGORITHM.RSASSA_PSS || (padding === PADDING_METHOD_SIGN.PSS && (hash === undefined || hash === HASHING_ALGORITHM.SHA256))) return "RSA_PSS_SHA_256";
    if (digital === DIGITAL_SIGNATURE_ALGORITHM.SHA256WithRSA || (padding === PADDING_METHOD_SIGN.PKCS1v15 && (hash === undefined || hash === HASHING_ALGORITHM.SHA256))) return "RSA_PKCS1_SHA_256";
  }
  if (spec === "ECC_P256" && (hash === undefined || hash === HASHING_ALGORITHM.SHA256)) return "ECC_P256_R1";
  if (spec === "ECC_P384" && (hash === undefined || hash === HASHING_ALGORITHM.SHA384)) return "ECDSA_P384_SHA_384";
  throw new KmipFault("FeatureNotSupported", `these signing parameters do not fit a ${spec ?? "missing"} key: RSA takes PSS or PKCS#1 v1.5 with SHA-256, P-256 SHA-256, P-384 SHA-384`);
}

const STATES_BY_CODE = new Map<number, KmipState>(Object.entries(STATE).map(([name, code]) => [code, name as KmipState]));
const OBJECT_TYPES_BY_CODE = new Map<number, keyof typeof OBJECT_TYPE_OF>(Object.entries(OBJECT_TYPE_OF).map(([name, code]) => [code, name as keyof typeof OBJECT_TYPE_OF]));

export const OPERATIONS: Readonly<Partial<Record<OperationName, Operation>>> = {
  DiscoverVersions: {
    writes: false,
    async run(payload) {
      const asked = all(payload, TAG.ProtocolVersion).map((v) => {
        if (v.type !== "Structure") throw new KmipFault("InvalidField", `"Protocol Version" must be a structure`);
        return { major: enumerationOrInteger(v, TAG.ProtocolVersionMajor), minor: enumerationOrInteger(v, TAG.ProtocolVersionMinor) };
      });
      const answer = asked.length === 0 ? SUPPORTED_VERSIONS : asked.filter((a) => SUPPORTED_VERSIONS.some((s) => s.major === a.major && s.minor === a.minor));
      return { payload: answer.map(versionItem) };
    },
  },

  Query: {
    writes: false,
    async run(payload, ctx) {
      const functions = all(payload, TAG.QueryFunction).map((f) => (f.type === "Enumeration" ? f.value : -1));
      const out: Ttlv[] = [];
      if (functions.includes(QUERY_FUNCTION.QueryOperations)) {
        for (const [name, operation] of Object.entries(OPERATIONS) as [OperationName, Operation][]) {
          if (!operation.since2 || isKmip2(ctx.version)) out.push({ tag: TAG.Operation, type: "Enumeration", value: OPERATION[name] });
        }
      }
      if (functions.includes(QUERY_FUNCTION.QueryObjects)) {
        for (const code of Object.values(OBJECT_TYPE_OF)) out.push({ tag: TAG.ObjectType, type: "Enumeration", value: code });
      }
      if (functions.includes(QUERY_FUNCTION.QueryServerInformation)) {
        out.push({ tag: TAG.VendorIdentification, type: "TextString", value: SERVER_VENDOR });
        out.push({ tag: TAG.ServerInformation, type: "Structure", value: [] });
      }
      ctx.caller.permissions.require("kms:GetServiceStatus", ["*"]);
      return { payload: out };
    },
  },

  Create: {
    writes: true,
    async run(payload, ctx) {
      const type = enumeration(payload, TAG.ObjectType, "Object Type");
      if (type !== OBJECT_TYPE.SymmetricKey) throw new KmipFault("InvalidField", `Create makes symmetric keys (Object Type 2), not Object Type ${type}: use Create Key Pair`);
      const attributes = readAttributes(payload, TEMPLATE_CONTAINERS);
      const key = await ctx.service.kmip.createSymmetric(ctx.caller, { ...newObject(attributes), keySpec: symmetricSpec(attributes) });
      return { payload: [{ tag: TAG.ObjectType, type: "Enumeration", value: type }, uid(key.keyId)], id: key.keyId };
    },
  },

  CreateKeyPair: {
    writes: true,
    async run(payload, ctx) {
      const common = readAttributes(payload, [TAG.CommonTemplateAttribute, TAG.CommonAttributes]);
      const privateAttributes = [...common, ...readAttributes(payload, [TAG.PrivateKeyTemplateAttribute, TAG.PrivateKeyAttributes])];
      const publicAttributes = [...common, ...readAttributes(payload, [TAG.PublicKeyTemplateAttribute, TAG.PublicKeyAttributes])];
      const { privateKey, publicKey } = await ctx.service.kmip.createKeyPair(ctx.caller, {
        keySpec: keyPairSpec(privateAttributes),
        privateKey: newObject(privateAttributes.filter((a) => !(a.name === "Name" && common.includes(a)))),
        publicKey: newObject(publicAttributes.filter((a) => !(a.name === "Name" && common.includes(a)))),
      });
      return {
        payload: [
          { tag: TAG.PrivateKeyUniqueIdentifier, type: "TextString", value: privateKey.keyId },
          { tag: TAG.PublicKeyUniqueIdentifier, type: "TextString", value: publicKey.keyId },
        ],
        id: privateKey.keyId,
      };
    },
  },

  Register: {
    writes: true,
    async run(payload, ctx) {
      const type = enumeration(payload, TAG.ObjectType, "Object Type");
      const attributes = readAttributes(payload, TEMPLATE_CONTAINERS);
      if (type === OBJECT_TYPE.PrivateKey || type === OBJECT_TYPE.PublicKey) {
        const objectType = type === OBJECT_TYPE.PrivateKey ? "PrivateKey" : "PublicKey";
        const { material } = registeredMaterial(payload, OBJECT_FORMS[objectType]);
        try {
          const key = await ctx.service.kmip.registerAsymmetric(ctx.caller, { ...newObject(attributes), objectType, der: material });
          return { payload: [uid(key.keyId)], id: key.keyId };
        } finally {
          material.fill(0);
        }
      }
      if (type === OBJECT_TYPE.Certificate) {
        const key = await ctx.service.kmip.registerCertificate(ctx.caller, { ...newObject(attributes), der: registeredCertificate(payload) });
        return { payload: [uid(key.keyId)], id: key.keyId };
      }
      if (type !== OBJECT_TYPE.SymmetricKey && type !== OBJECT_TYPE.SecretData) {
        throw new KmipFault("FeatureNotSupported", `Register takes certificates (1), symmetric keys (2), public keys (3), private keys (4) and secret data (7), not Object Type ${type}`);
      }
      const secret = type === OBJECT_TYPE.SecretData;
      const { material, object } = registeredMaterial(payload, OBJECT_FORMS[secret ? "SecretData" : "SymmetricKey"]);
      try {
        const kind = secret
          ? { objectType: "SecretData" as const, secretDataType: enumeration(object, TAG.SecretDataType, "Secret Data Type") }
          : { objectType: "SymmetricKey" as const, keySpec: symmetricSpec(attributes) };
        const key = await ctx.service.kmip.register(ctx.caller, { ...newObject(attributes), ...kind, material });
        return { payload: [uid(key.keyId)], id: key.keyId };
      } finally {
        material.fill(0);
      }
    },
  },

  Get: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const wrap = wrappingOf(payload);
      const asked = optionalEnumeration(payload, TAG.KeyFormatType, "Key Format Type");
      const { key, material } = await ctx.service.kmip.getMaterial(ctx.caller, id);
      try {
        const objectType = key.kmip?.objectType ?? "SymmetricKey";
        const head: Ttlv[] = [{ tag: TAG.ObjectType, type: "Enumeration", value: OBJECT_TYPE_OF[objectType] }, uid(key.keyId)];
        if (!isKeyObject(objectType)) {
          if (wrap || (asked !== undefined && asked !== KEY_FORMAT_TYPE.X509)) throw new KmipFault("KeyFormatTypeNotSupported", "a certificate is given as it is: X.509, unwrapped");
          return { payload: [...head, certificateItem(material)], id: key.keyId };
        }
        const { tag, format: stored } = OBJECT_FORMS[objectType];
        const format = asked ?? stored;
        let keyMaterial = inFormat(objectType, key.keySpec, material, format);
        let wrapping: Ttlv | undefined;
        if (wrap) {
          if (keyMaterial.type !== "ByteString") throw new KmipFault("FeatureNotSupported", `"Key Format Type" ${format} is a structure, which No Encoding cannot wrap: ask a byte-string format`);
          const plain = keyMaterial.value;
          try {
            keyMaterial = { tag: TAG.KeyMaterial, type: "ByteString", value: await ctx.service.kmip.wrapKey(ctx.caller, wrap.wrappingId, wrap.algorithm, plain) };
          } finally {
            plain.fill(0);
          }
          wrapping = wrappingData(wrap);
        }
        const secretType: Ttlv[] = objectType === "SecretData" ? [{ tag: TAG.SecretDataType, type: "Enumeration", value: key.kmip?.secretDataType ?? 1 }] : [];
        return { payload: [...head, { tag, type: "Structure", value: [...secretType, keyBlock(format, keyMaterial, key.keySpec, wrapping)] }], id: key.keyId };
      } finally {
        material.fill(0);
      }
    },
  },

  GetAttributes: {
    writes: false,
    async run(payload, ctx) {
      const key = await ctx.service.kmip.attributes(ctx.caller, idOf(payload, ctx));
      const wanted = requestedNames(payload, ctx.version);
      const attributes = attributesOf(key).filter((a) => wanted === undefined || wanted.includes(a.name));
      return { payload: [uid(key.keyId), ...encodeAttributes(ctx.version, attributes)], id: key.keyId };
    },
  },

  GetAttributeList: {
    writes: false,
    async run(payload, ctx) {
      const key = await ctx.service.kmip.attributes(ctx.caller, idOf(payload, ctx));
      const names = [...new Set(attributesOf(key).map((a) => a.name))];
      return { payload: [uid(key.keyId), ...encodeAttributeNames(ctx.version, names)], id: key.keyId };
    },
  },

  Locate: {
    writes: false,
    async run(payload, ctx) {
      const attributes = readAttributes(payload, isKmip2(ctx.version) ? [TAG.Attributes] : []);
      const state = numberOf(attributes, "State");
      const objectType = numberOf(attributes, "Object Type");
      const algorithm = numberOf(attributes, "Cryptographic Algorithm");
      const length = numberOf(attributes, "Cryptographic Length");
      const ids = await ctx.service.kmip.locate(ctx.caller, {
        names: valuesOf(attributes, "Name").map(nameValue),
        ...(state === undefined ? {} : { state: known(STATES_BY_CODE, state, "State") }),
        ...(objectType === undefined ? {} : { objectType: known(OBJECT_TYPES_BY_CODE, objectType, "Object Type") }),
        ...(algorithm === undefined ? {} : { keySpec: specOf(algorithm, length) }),
        custom: customOf(attributes),
        maxItems: optionalInteger(payload, TAG.MaximumItems, "Maximum Items") ?? DEFAULT_LOCATE_ITEMS,
        offset: optionalInteger(payload, TAG.OffsetItems, "Offset Items") ?? 0,
      });
      return { payload: ids.map(uid) };
    },
  },

  Activate: {
    writes: true,
    async run(payload, ctx) {
      const key = await ctx.service.kmip.activate(ctx.caller, idOf(payload, ctx));
      return { payload: [uid(key.keyId)], id: key.keyId };
    },
  },

  ReKey: {
    writes: true,
    async run(payload, ctx) {
      // PyKMIP sends an empty Template-Attribute: only attributes in it are refused.
      if (readAttributes(payload, TEMPLATE_CONTAINERS).length > 0) {
        throw new KmipFault("FeatureNotSupported", "ReKey with new attributes (Template-Attribute) is not supported: the replacement takes the old key's attributes");
      }
      const offset = optionalInterval(payload, TAG.Offset, "Offset");
      const key = await ctx.service.kmip.rekey(ctx.caller, idOf(payload, ctx), offset ?? 0);
      return { payload: [uid(key.keyId)], id: key.keyId };
    },
  },

  AddAttribute: attributeOperation("add"),
  ModifyAttribute: attributeOperation("modify"),
  DeleteAttribute: attributeOperation("delete"),
  SetAttribute: {
    writes: true,
    since2: true,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const fresh = struct(payload, TAG.NewAttribute, "New Attribute");
      if (fresh.value.length !== 1) throw new KmipFault("InvalidField", `"New Attribute" holds exactly one attribute`);
      const attribute = attributeOf2x(fresh.value[0] as Ttlv);
      const { key } = await ctx.service.kmip.changeAttribute(ctx.caller, id, { op: "set", name: attribute.name, index: 0, ...withValue(changeValue(attribute.name, attribute.value)) });
      return { payload: [uid(key.keyId)], id: key.keyId };
    },
  },

  Revoke: {
    writes: true,
    async run(payload, ctx) {
      const reason = struct(payload, TAG.RevocationReason, "Revocation Reason");
      const code = enumeration(reason, TAG.RevocationReasonCode, "Revocation Reason Code");
      const compromised = code === REVOCATION_REASON_CODE.KeyCompromise || code === REVOCATION_REASON_CODE.CACompromise;
      const occurred = optionalDateTime(payload, TAG.CompromiseOccurrenceDate, "Compromise Occurrence Date");
      const key = await ctx.service.kmip.revoke(ctx.caller, idOf(payload, ctx), { compromised, ...(occurred === undefined ? {} : { occurrenceDate: Number(occurred) }) });
      return { payload: [uid(key.keyId)], id: key.keyId };
    },
  },

  Destroy: {
    writes: true,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      await ctx.service.kmip.destroy(ctx.caller, id);
      return { payload: [uid(id)], id };
    },
  },

  Encrypt: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const out = await ctx.service.kmip.encrypt(ctx.caller, id, cipherOf(payload), bytes(payload, TAG.Data, "Data"));
      const items: Ttlv[] = [uid(id), { tag: TAG.Data, type: "ByteString", value: out.data }, { tag: TAG.IvCounterNonce, type: "ByteString", value: out.iv }];
      if (out.tag) items.push({ tag: TAG.AuthenticatedEncryptionTag, type: "ByteString", value: out.tag });
      return { payload: items, id };
    },
  },

  Decrypt: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const tag = optionalBytes(payload, TAG.AuthenticatedEncryptionTag, "Authenticated Encryption Tag");
      const plaintext = await ctx.service.kmip.decrypt(ctx.caller, id, cipherOf(payload), bytes(payload, TAG.Data, "Data"), tag);
      return { payload: [uid(id), { tag: TAG.Data, type: "ByteString", value: plaintext }], id };
    },
  },

  MAC: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const mac = await ctx.service.kmip.mac(ctx.caller, id, bytes(payload, TAG.Data, "Data"));
      return { payload: [uid(id), { tag: TAG.MacData, type: "ByteString", value: mac }], id };
    },
  },

  Sign: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const key = await ctx.service.kmip.attributes(ctx.caller, id);
      const signature = await ctx.service.kmip.sign(ctx.caller, id, signingAlgorithm(payload, key.keySpec), bytes(payload, TAG.Data, "Data"));
      return { payload: [uid(id), { tag: TAG.SignatureData, type: "ByteString", value: signature }], id };
    },
  },

  SignatureVerify: {
    writes: false,
    async run(payload, ctx) {
      const id = idOf(payload, ctx);
      const key = await ctx.service.kmip.attributes(ctx.caller, id);
      const valid = await ctx.service.kmip.verify(ctx.caller, id, signingAlgorithm(payload, key.keySpec), bytes(payload, TAG.Data, "Data"), bytes(payload, TAG.SignatureData, "Signature Data"));
      return { payload: [uid(id), { tag: TAG.ValidityIndicator, type: "Enumeration", value: valid ? VALIDITY_INDICATOR.Valid : VALIDITY_INDICATOR.Invalid }], id };
    },
  },
};

function enumerationOrInteger(s: TtlvStructure, tag: number): number {
  const item = s.value.find((c) => c.tag === tag);
  if (item?.type !== "Integer") throw new KmipFault("InvalidField", `a Protocol Version's major and minor are Integers`);
  return item.value;
}

function known<T>(map: ReadonlyMap<number, T>, code: number, name: string): T {
  const value = map.get(code);
  if (value === undefined) throw new KmipFault("InvalidField", `"${name}" ${code} is not one Tresor holds`);
  return value;
}

function specOf(algorithm: number, length: number | undefined): KeySpec {
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.AES && (length === undefined || length === 256)) return "AES_256";
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.AES && length === 128) return "AES_128";
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.SM4) return "SM4";
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.RSA && length !== undefined) return `RSA_${length}` as KeySpec;
  if (algorithm === CRYPTOGRAPHIC_ALGORITHM.ECDSA && length !== undefined) return `ECC_P${length}` as KeySpec;
  throw new KmipFault("InvalidField", `"Cryptographic Algorithm" ${algorithm} with length ${length ?? "(none)"} matches no object Tresor holds`);
}

/** The core's errors in KMIP's result reasons; the message goes along (it names no material). */
const REASON_OF: Partial<Record<ErrorCode, ResultReasonName>> = {
  CmkNotFound: "ItemNotFound",
  InvalidKeyId: "ItemNotFound",
  UnauthorizedOperation: "PermissionDenied",
  OperationDenied: "PermissionDenied",
  // As PyKMIP's server answers an operation the object's state does not allow.
  CmkDisabled: "PermissionDenied",
  CmkArchived: "PermissionDenied",
  CmkStateNotSupport: "PermissionDenied",
  CmkShouldBeDisabled: "PermissionDenied",
  MissingParameter: "MissingData",
  InvalidParameter: "InvalidField",
  InvalidParameterValue: "InvalidField",
  AliasAlreadyExists: "InvalidField",
  InvalidKeyUsage: "IllegalOperation",
  CmkLimitExceeded: "IllegalOperation",
  UnsupportedOperation: "FeatureNotSupported",
  DecryptError: "CryptographicFailure",
  InvalidCiphertext: "CryptographicFailure",
};

export function kmipReasonOf(e: KmsError): ResultReasonName {
  return REASON_OF[e.code] ?? "GeneralFailure";
}
