// HSM-protected keys: token objects named by key id and version, created, used (AES-GCM, signing,
// RSA-OAEP decryption) and destroyed through the root of trust's connection and sessions.

import { createHash, createPublicKey } from "node:crypto";
import pkcs11js from "pkcs11js";
import { GCM_IV_LENGTH, GCM_TAG_LENGTH } from "../crypto/aes.js";
import { randomBytes } from "../crypto/random.js";
import { Pkcs11Error, UNAVAILABLE, call, checkBuffer, isUnavailable, translate, unwrapFailed } from "./pkcs11-errors.js";
import { KEY_ID_LENGTH, bool, checkKey, closeQuietly, findObjects, gcmMechanism, nonExtractableAes256Template, openSession, type Api, type Connection, type Handle, type SharedModule } from "./pkcs11-token.js";
import { HsmUnsupportedError, RootOfTrustError, type HsmKeyPairPurpose, type HsmKeyPairSpec, type HsmKeys, type HsmSignatureAlgorithm, type RootOfTrustUnavailableError } from "./root-of-trust.js";

/** What the HSM key operations use of the root of trust that holds them: its module, connection and sessions. */
export interface TokenAccess {
  readonly description: string;
  readonly module: SharedModule;
  /** Throws once the root of trust is closed. */
  live(): void;
  withSession<T>(fn: (api: Api, session: Handle, key: Handle, connection: Connection) => T, readWrite?: boolean): T;
  ensureConnection(): Connection;
  /** Drops the connection and names the root of trust as unavailable. */
  unavailable(cause: unknown): RootOfTrustUnavailableError;
}

/** The HSM keys of the root of trust behind `token`. */
export function pkcs11HsmKeys(token: TokenAccess): HsmKeys {
  const keys = new Pkcs11HsmKeys(token);
  return Object.freeze({
    description: token.description,
    belongsTo: hsmReferenceBelongsTo,
    generateAes256: async (keyId: string, version: number) => keys.generateAes256(keyId, version),
    aesGcmEncrypt: async (reference: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer) => keys.aesGcmEncrypt(reference, iv, plaintext, aad),
    aesGcmDecrypt: async (reference: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer) => keys.aesGcmDecrypt(reference, iv, ciphertext, tag, aad),
    generateKeyPair: async (spec: HsmKeyPairSpec, purpose: HsmKeyPairPurpose, keyId: string, version: number) => keys.generateKeyPair(spec, purpose, keyId, version),
    ecdhDerive: async (reference: Buffer, point: Buffer) => keys.ecdhDerive(reference, point),
    sign: async (reference: Buffer, algorithm: HsmSignatureAlgorithm, digest: Buffer) => keys.sign(reference, algorithm, digest),
    rsaOaepDecrypt: async (reference: Buffer, hash: "sha1" | "sha256", ciphertext: Buffer) => keys.rsaOaepDecrypt(reference, hash, ciphertext),
    destroy: async (reference: Buffer) => keys.destroy(reference),
  });
}

// --- HSM-protected key references -------------------------------------------------------------

/** An HSM-protected key's token object is not in the token (destroyed, or a token restored without it). */
export class HsmKeyMissingError extends Error {
  override readonly name = "HsmKeyMissingError";
}

// A reference is what the store keeps for an HSM key version: 'H' (0x48), format 0x01, then the
// object's CKA_LABEL in UTF-8, `tresor-cmk/<key id>/v<version>/<16 hex digits>`. Never material.
// The random suffix makes every generation a distinct object: two nodes rotating one key at once
// each make their own, the loser destroys only its own, and a leftover of a crash between
// generating and committing never blocks a retry (it is an orphan, listed by its label).
const HSM_REFERENCE_MAGIC = 0x48;
const HSM_REFERENCE_FORMAT = 0x01;
const HSM_LABEL_PREFIX = "tresor-cmk/";

function newHsmKeyReference(keyId: string, version: number): Buffer {
  if (typeof keyId !== "string" || !/^[A-Za-z0-9-]{1,64}$/.test(keyId)) throw new TypeError(`"keyId" must be a key id`);
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`"version" must be a positive integer`);
  const label = `${HSM_LABEL_PREFIX}${keyId}/v${version}/${randomBytes(8).toString("hex")}`;
  return Buffer.concat([Buffer.of(HSM_REFERENCE_MAGIC, HSM_REFERENCE_FORMAT), Buffer.from(label, "utf8")]);
}

function hsmReferenceBelongsTo(reference: Buffer, keyId: string, version: number): boolean {
  try {
    const label = hsmLabel(reference);
    const prefix = `${HSM_LABEL_PREFIX}${keyId}/v${version}/`;
    return label.startsWith(prefix) && /^[0-9a-f]{16}$/.test(label.slice(prefix.length));
  } catch {
    return false;
  }
}

function hsmLabel(reference: Buffer): string {
  if (!Buffer.isBuffer(reference) || reference.length < 3 || reference[0] !== HSM_REFERENCE_MAGIC || reference[1] !== HSM_REFERENCE_FORMAT) {
    throw new TypeError(`"reference" is not an HSM key reference`);
  }
  return reference.subarray(2).toString("utf8");
}

/** CKA_ID of an HSM key object: the first 16 bytes of SHA-256 of its label, so another object given the label does not match. */
function hsmObjectId(label: string): Buffer {
  return createHash("sha256").update(`tresor/hsm-key-id/v1\0${label}`).digest().subarray(0, KEY_ID_LENGTH);
}

// Key pairs the token makes for HSM keys: RSA by modulus size, EC by named curve (CKA_EC_PARAMS is
// the curve's DER OID).
type KeyPairShape = { kind: "RSA"; bits: number } | { kind: "EC"; params: Buffer; crv: "P-256" | "P-384" | "P-521"; size: number };
const KEY_PAIR_SHAPES: Readonly<Record<HsmKeyPairSpec, KeyPairShape>> = {
  RSA_2048: { kind: "RSA", bits: 2048 },
  RSA_3072: { kind: "RSA", bits: 3072 },
  RSA_4096: { kind: "RSA", bits: 4096 },
  ECC_P256: { kind: "EC", params: Buffer.from("06082a8648ce3d030107", "hex"), crv: "P-256", size: 32 },
  ECC_P384: { kind: "EC", params: Buffer.from("06052b81040022", "hex"), crv: "P-384", size: 48 },
  ECC_P521: { kind: "EC", params: Buffer.from("06052b81040023", "hex"), crv: "P-521", size: 66 },
};
/** RSA-4096 signatures and decryption outputs are 512 bytes; ECDSA's are far shorter. */
const MAX_SIGNATURE_BYTES = 512;
/** What a token answers for a mechanism, or mechanism parameters, it does not offer. */
const REFUSED_PARAMETERS = new Set(["CKR_ARGUMENTS_BAD", "CKR_MECHANISM_INVALID", "CKR_MECHANISM_PARAM_INVALID"]);
/** PKCS#11's CKZ_DATA_SPECIFIED (OAEP label source), which pkcs11js does not export. */
const CKZ_DATA_SPECIFIED = 0x00000001;
const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

/** The public key object's SubjectPublicKeyInfo (DER), built through node:crypto from its attributes. */
function spkiOf(api: Api, session: Handle, publicKey: Handle, shape: KeyPairShape): Buffer {
  const b64url = (b: Buffer) => b.toString("base64url");
  if (shape.kind === "RSA") {
    const attrs = call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]));
    const n = attrs.find((a) => a.type === pkcs11js.CKA_MODULUS)?.value;
    const e = attrs.find((a) => a.type === pkcs11js.CKA_PUBLIC_EXPONENT)?.value;
    if (!Buffer.isBuffer(n) || !Buffer.isBuffer(e) || n.length * 8 !== shape.bits) throw new Error("the token returned an RSA public key of another size");
    return createPublicKey({ key: { kty: "RSA", n: b64url(n), e: b64url(e) }, format: "jwk" }).export({ type: "spki", format: "der" });
  }
  const attrs = call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }]));
  let point = attrs[0]?.value;
  if (!Buffer.isBuffer(point)) throw new Error("the token returned no EC point");
  // CKA_EC_POINT is DER OCTET STRING around the uncompressed point (some tokens give the bare point).
  const bare = 1 + 2 * shape.size;
  if (point.length !== bare && point[0] === 0x04 && point.length > bare) point = point.subarray(point.length - bare);
  if (point.length !== bare || point[0] !== 0x04) throw new Error("the token returned an EC point that is not uncompressed");
  const x = point.subarray(1, 1 + shape.size);
  const y = point.subarray(1 + shape.size);
  return createPublicKey({ key: { kty: "EC", crv: shape.crv, x: b64url(x), y: b64url(y) }, format: "jwk" }).export({ type: "spki", format: "der" });
}

/** r || s (each half of the input) as the DER SEQUENCE { INTEGER r, INTEGER s } of RFC 3279. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new RangeError(`an ECDSA signature r || s has an even, non-zero length, got ${raw.length}`);
  const integer = (bytes: Buffer): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let body = bytes.subarray(i);
    // A set high bit would make the INTEGER negative: prefix a zero byte.
    if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.of(0), body]);
    return Buffer.concat([Buffer.of(0x02), derLength(body.length), body]);
  };
  const half = raw.length / 2;
  const content = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.of(0x30), derLength(content.length), content]);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  if (length < 0x100) return Buffer.of(0x81, length);
  return Buffer.of(0x82, length >> 8, length & 0xff);
}

// --- the operations ----------------------------------------------------------------------------

class Pkcs11HsmKeys {
  readonly #token: TokenAccess;

  constructor(token: TokenAccess) {
    this.#token = token;
  }

  generateAes256(keyId: string, version: number): Buffer {
    this.#token.live();
    const reference = newHsmKeyReference(keyId, version);
    const label = hsmLabel(reference);
    this.#token.withSession((api, session, _root, connection) => {
      const key = call(
        "C_GenerateKey",
        () =>
          api.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, nonExtractableAes256Template(label, hsmObjectId(label))),
        `cannot generate HSM key ${label}`,
      );
      try {
        checkKey(api, session, key, label, this.#token.description);
      } catch (err) {
        try {
          api.C_DestroyObject(session, key);
        } catch {
          // Reported below through the original error.
        }
        throw err;
      }
      connection.objects.set(label, key);
    }, true);
    return reference;
  }

  aesGcmEncrypt(reference: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
    this.#token.live();
    checkBuffer("plaintext", plaintext);
    checkBuffer("aad", aad);
    if (!Buffer.isBuffer(iv) || iv.length !== GCM_IV_LENGTH) throw new RangeError(`"iv" must be ${GCM_IV_LENGTH} bytes`);
    const label = hsmLabel(reference);
    const sealed = this.#token.withSession((api, session, _root, connection) => {
      const key = this.#object(api, session, connection, label);
      call("C_EncryptInit", () => api.C_EncryptInit(session, gcmMechanism(iv, aad), key), `HSM key ${label}`);
      const out = Buffer.alloc(plaintext.length + GCM_TAG_LENGTH);
      // As in wrap(): an empty plaintext goes through C_EncryptFinal alone.
      const result =
        plaintext.length === 0
          ? call("C_EncryptFinal", () => api.C_EncryptFinal(session, out), `HSM key ${label}`)
          : call("C_Encrypt", () => api.C_Encrypt(session, plaintext, out), `HSM key ${label}`);
      if (result.length !== out.length) throw new Error(`the token returned ${result.length} bytes of AES-GCM output, expected ${out.length}`);
      return Buffer.from(result);
    });
    return { ciphertext: sealed.subarray(0, sealed.length - GCM_TAG_LENGTH), tag: sealed.subarray(sealed.length - GCM_TAG_LENGTH) };
  }

  aesGcmDecrypt(reference: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
    this.#token.live();
    checkBuffer("ciphertext", ciphertext);
    checkBuffer("aad", aad);
    if (!Buffer.isBuffer(iv) || iv.length !== GCM_IV_LENGTH || !Buffer.isBuffer(tag) || tag.length !== GCM_TAG_LENGTH) throw unwrapFailed();
    const label = hsmLabel(reference);
    const sealed = Buffer.concat([ciphertext, tag]);
    return this.#token.withSession((api, session, _root, connection) => {
      const key = this.#object(api, session, connection, label);
      call("C_DecryptInit", () => api.C_DecryptInit(session, gcmMechanism(iv, aad), key), `HSM key ${label}`);
      const out = Buffer.alloc(sealed.length);
      try {
        let result: Buffer;
        try {
          result = api.C_Decrypt(session, sealed, out);
        } catch (err) {
          const translated = translate("C_Decrypt", err, `HSM key ${label}`);
          if (!(translated instanceof Pkcs11Error) || UNAVAILABLE.has(translated.ckr)) throw translated;
          // A tag mismatch, unless the session itself went away (as in unwrap()).
          call("C_GetSessionInfo", () => api.C_GetSessionInfo(session));
          throw unwrapFailed();
        }
        if (result.length !== ciphertext.length) throw unwrapFailed();
        const plaintext = Buffer.alloc(result.length);
        result.copy(plaintext);
        return plaintext;
      } finally {
        out.fill(0);
      }
    });
  }

  async generateKeyPair(spec: HsmKeyPairSpec, purpose: HsmKeyPairPurpose, keyId: string, version: number): Promise<{ reference: Buffer; publicKey: Buffer }> {
    this.#token.live();
    const shape = KEY_PAIR_SHAPES[spec];
    if (shape === undefined) throw new TypeError(`"spec" ${String(spec)} is not a key pair the token makes`);
    if (purpose === "decrypt" && shape.kind !== "RSA") throw new TypeError(`"purpose" decrypt needs an RSA key`);
    if (purpose === "derive" && shape.kind !== "EC") throw new TypeError(`"purpose" derive needs an EC key`);
    const reference = newHsmKeyReference(keyId, version);
    const label = hsmLabel(reference);
    const id = hsmObjectId(label);
    // The public half is a session object: it goes with the session, the caller keeps its SPKI.
    const publicTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_VERIFY, value: purpose === "sign" },
      { type: pkcs11js.CKA_ENCRYPT, value: purpose === "decrypt" },
      ...(shape.kind === "RSA"
        ? [
            { type: pkcs11js.CKA_MODULUS_BITS, value: shape.bits },
            { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ]
        : [{ type: pkcs11js.CKA_EC_PARAMS, value: shape.params }]),
    ];
    const privateTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: purpose === "sign" },
      { type: pkcs11js.CKA_DECRYPT, value: purpose === "decrypt" },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: purpose === "derive" },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    const mechanism = shape.kind === "RSA" ? pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN;
    const publicKey = await this.#token.module.offThread(async () => {
      this.#token.live();
      const api = this.#token.module.api;
      const connection = this.#token.ensureConnection();
      let session: Handle;
      try {
        // A read-write session of its own, opened for this call only, as #withSession's.
        session = openSession(api, connection.slot, true);
      } catch (err) {
        throw this.#token.unavailable(err);
      }
      try {
        let pair: pkcs11js.KeyPair;
        try {
          pair = await api.C_GenerateKeyPairAsync(session, { mechanism }, publicTemplate, privateTemplate);
        } catch (err) {
          throw translate("C_GenerateKeyPair", err, `cannot generate HSM key pair ${label}`);
        }
        try {
          const flags = call("C_GetAttributeValue", () =>
            api.C_GetAttributeValue(session, pair.privateKey, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_TOKEN }]),
          );
          const flag = (type: number) => bool(flags.find((a) => a.type === type)?.value ?? Buffer.alloc(0));
          if (!flag(pkcs11js.CKA_SENSITIVE) || flag(pkcs11js.CKA_EXTRACTABLE) || !flag(pkcs11js.CKA_TOKEN)) {
            throw new Error(`the token did not make HSM key pair ${label} a sensitive, non-extractable token object`);
          }
          const spki = spkiOf(api, session, pair.publicKey, shape);
          connection.objects.set(label, pair.privateKey);
          return spki;
        } catch (err) {
          try {
            api.C_DestroyObject(session, pair.privateKey);
          } catch {
            // Reported below through the original error.
          }
          throw err;
        } finally {
          try {
            api.C_DestroyObject(session, pair.publicKey);
          } catch {
            // A session object; it goes with the session anyway.
          }
        }
      } catch (err) {
        if (isUnavailable(err)) throw this.#token.unavailable(err);
        throw err;
      } finally {
        closeQuietly(api, session);
      }
    });
    return { reference, publicKey };
  }

  sign(reference: Buffer, algorithm: HsmSignatureAlgorithm, digest: Buffer): Buffer {
    this.#token.live();
    checkBuffer("digest", digest);
    const label = hsmLabel(reference);
    let mechanism: pkcs11js.Mechanism;
    let input = digest;
    if (algorithm === "RSA_PKCS1_SHA_256" || algorithm === "RSA_PSS_SHA_256") {
      if (digest.length !== 32) throw new RangeError(`"digest" must be a 32-byte SHA-256 digest for ${algorithm}`);
      if (algorithm === "RSA_PKCS1_SHA_256") {
        // CKM_RSA_PKCS signs what it is given: the DigestInfo of RFC 8017 §9.2 around the digest.
        mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS };
        input = Buffer.concat([SHA256_DIGEST_INFO, digest]);
      } else {
        const parameter: pkcs11js.RsaPSS = { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, saltLen: 32 };
        mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS_PSS, parameter };
      }
    } else if (algorithm === "ECDSA") {
      if (digest.length !== 32 && digest.length !== 48 && digest.length !== 64) throw new RangeError(`"digest" must be a SHA-256, SHA-384 or SHA-512 digest for ECDSA`);
      mechanism = { mechanism: pkcs11js.CKM_ECDSA };
    } else {
      throw new TypeError(`"algorithm" ${String(algorithm)} is not a signature algorithm of the token`);
    }
    return this.#token.withSession((api, session, _root, connection) => {
      const key = this.#object(api, session, connection, label);
      call("C_SignInit", () => api.C_SignInit(session, mechanism, key), `HSM key ${label}`);
      const signature = Buffer.from(call("C_Sign", () => api.C_Sign(session, input, Buffer.alloc(MAX_SIGNATURE_BYTES)), `HSM key ${label}`));
      // PKCS#11 gives ECDSA as r || s, each as long as the order; the API speaks DER (RFC 3279).
      return algorithm === "ECDSA" ? ecdsaRawToDer(signature) : signature;
    });
  }

  ecdhDerive(reference: Buffer, point: Buffer): Buffer {
    this.#token.live();
    checkBuffer("point", point);
    const label = hsmLabel(reference);
    const parameter: pkcs11js.ECDH1 = { type: pkcs11js.CK_PARAMS_EC_DH, kdf: pkcs11js.CKD_NULL, publicData: point };
    // The shared secret (x of s·X) is what the Tang answer discloses anyway: a session object the
    // token lets this process read, destroyed at once.
    const template: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SENSITIVE, value: false },
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      { type: pkcs11js.CKA_VALUE_LEN, value: (point.length - 1) / 2 },
    ];
    return this.#token.withSession((api, session, _root, connection) => {
      const key = this.#object(api, session, connection, label);
      const secret = call("C_DeriveKey", () => api.C_DeriveKey(session, { mechanism: pkcs11js.CKM_ECDH1_DERIVE, parameter }, key, template), `HSM key ${label}`);
      try {
        const value = call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]))[0]?.value;
        if (!Buffer.isBuffer(value)) throw new Error(`the token gave no ECDH secret for HSM key ${label}`);
        return Buffer.from(value);
      } finally {
        try {
          api.C_DestroyObject(session, secret);
        } catch {
          // A session object; it goes with the session anyway.
        }
      }
    });
  }

  rsaOaepDecrypt(reference: Buffer, hash: "sha1" | "sha256", ciphertext: Buffer): Buffer {
    this.#token.live();
    checkBuffer("ciphertext", ciphertext);
    const label = hsmLabel(reference);
    const parameter: pkcs11js.RsaOAEP = {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === "sha1" ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
      mgf: hash === "sha1" ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
      source: CKZ_DATA_SPECIFIED,
    };
    return this.#token.withSession((api, session, _root, connection) => {
      const key = this.#object(api, session, connection, label);
      try {
        call("C_DecryptInit", () => api.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_PKCS_OAEP, parameter }, key), `HSM key ${label}`);
      } catch (err) {
        if (err instanceof Pkcs11Error && REFUSED_PARAMETERS.has(err.ckr)) {
          throw new HsmUnsupportedError(`${this.#token.description} does not offer RSAES-OAEP with ${hash.toUpperCase()} (C_DecryptInit returned ${err.ckr})`, { cause: err });
        }
        throw err;
      }
      const out = Buffer.alloc(MAX_SIGNATURE_BYTES);
      try {
        let result: Buffer;
        try {
          result = api.C_Decrypt(session, ciphertext, out);
        } catch (err) {
          const translated = translate("C_Decrypt", err, `HSM key ${label}`);
          if (!(translated instanceof Pkcs11Error) || UNAVAILABLE.has(translated.ckr)) throw translated;
          call("C_GetSessionInfo", () => api.C_GetSessionInfo(session));
          throw new RootOfTrustError("the ciphertext does not decrypt under the HSM key");
        }
        const plaintext = Buffer.alloc(result.length);
        result.copy(plaintext);
        return plaintext;
      } finally {
        out.fill(0);
      }
    });
  }

  destroy(reference: Buffer): number {
    this.#token.live();
    const label = hsmLabel(reference);
    return this.#token.withSession((api, session, _root, connection) => {
      const found = findObjects(api, session, label);
      for (const object of found) call("C_DestroyObject", () => api.C_DestroyObject(session, object), `cannot destroy HSM key ${label}`);
      connection.objects.delete(label);
      return found.length;
    }, true);
  }

  /** The handle of the key object labelled `label`, found once per connection. */
  #object(api: Api, session: Handle, connection: Connection, label: string): Handle {
    const cached = connection.objects.get(label);
    if (cached !== undefined) return cached;
    const found = findObjects(api, session, label, hsmObjectId(label));
    if (found.length === 0) {
      // SoftHSM2 finds nothing on a token whose storage went away: ask the root key whether the
      // token is still there, so that an absent token is reported as unavailable, not as a lost key.
      call("C_GetAttributeValue", () => api.C_GetAttributeValue(session, connection.key, [{ type: pkcs11js.CKA_KEY_TYPE }]));
    }
    if (found.length !== 1) throw new HsmKeyMissingError(`${found.length === 0 ? "no" : found.length} key object${found.length === 1 ? "" : "s"} labelled "${label}" on ${this.#token.description}`);
    connection.objects.set(label, found[0]!);
    return found[0]!;
  }
}
