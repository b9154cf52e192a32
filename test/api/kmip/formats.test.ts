// KMIP Get's transparent key formats (KMIP 1.4 §2.1.7.3/.4 RSA, §2.1.7.11/.12 EC), wrapped Get's
// refusals (§2.1.6) and SM4-CBC Encrypt/Decrypt over the wire, with Tresor's own TTLV client where
// PyKMIP's cannot ask (it sends no Key Format Type and reads Key Material as bytes only). The
// transparent integers are rebuilt into keys by OpenSSL (JWK import) and compared with the PKCS#8
// Get returns; wrapped material is unwrapped with @noble/ciphers; SM4-CBC is checked with OpenSSL.

import assert from "node:assert/strict";
import { createDecipheriv, createPrivateKey, type JsonWebKey } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { aeskwp } from "@noble/ciphers/aes.js";
import { KEY_FORMAT_TYPE, OPERATION, RESULT_REASON, TAG } from "../../../src/api/kmip/tags.js";
import { DerReader, derSequence, derTlv, TAG_BIT_STRING, TAG_INTEGER, TAG_SEQUENCE } from "../../../src/crypto/asn1.js";
import type { Ttlv, TtlvStructure } from "../../../src/api/kmip/ttlv.js";
import type { RunningNode } from "../../../src/node/node.js";
import { Connection, enumeration, int, request, startKmipNode, struct, text, type Answer } from "./wire.js";

const uid = (id: string): Ttlv => text(TAG.UniqueIdentifier, id);
const item = (operation: number, payload: Ttlv[]): Ttlv[] => [enumeration(TAG.Operation, operation), struct(TAG.RequestPayload, payload)];
const V2 = { major: 2, minor: 0 };
const USAGE = { Encrypt: 4, Decrypt: 8, WrapKey: 16 } as const;

function ok(a: Answer | "closed"): TtlvStructure {
  assert.notEqual(a, "closed");
  const first = (a as Answer).items[0];
  assert.equal(first?.status, 0, first?.message);
  return first!.payload!;
}

function idIn(payload: TtlvStructure, tag: number = TAG.UniqueIdentifier): string {
  return (payload.value.find((c) => c.tag === tag) as { value: string }).value;
}

/** A BigInteger item as the unsigned big-endian base64url of a JWK member. */
function jwkMember(item: Ttlv | undefined): string {
  assert.equal(item?.type, "BigInteger");
  const n = (item as { value: bigint }).value;
  assert.ok(n > 0n, "a key component is positive (sign-extended on the wire)");
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex").toString("base64url");
}

/**
 * An X.509 certificate (DER, with extensions) whose P-384 public key is replaced by the point at
 * infinity (the one-byte encoding 00); its signature is left as it was (Register does not check it).
 */
function withInfinityKey(der: Buffer): Buffer {
  const certificate = new DerReader(der).readSequence();
  const tbs = certificate.readSequence();
  const parts = [derTlv(0xa0, tbs.read(0xa0)), derTlv(TAG_INTEGER, tbs.read(TAG_INTEGER))];
  for (const _field of ["signature", "issuer", "validity", "subject"]) parts.push(derSequence(tbs.read(TAG_SEQUENCE)));
  tbs.read(TAG_SEQUENCE);
  const p384 = derSequence(Buffer.from("06072a8648ce3d020106052b81040022", "hex"));
  parts.push(derSequence(p384, derTlv(TAG_BIT_STRING, Buffer.from([0, 0]))), derTlv(0xa3, tbs.read(0xa3)));
  tbs.end();
  return derSequence(derSequence(...parts), derSequence(certificate.read(TAG_SEQUENCE)), derTlv(TAG_BIT_STRING, certificate.read(TAG_BIT_STRING)));
}

describe("KMIP key formats, wrapped Get and SM4-CBC over the wire", () => {
  let work: string;
  let node: RunningNode;
  let conn: Connection;
  const send = async (items: Ttlv[][], header?: { major?: number; minor?: number }) => conn.exchange(request(items, header));

  async function create(algorithm: number, length: number, usageMask: number, activate = true): Promise<string> {
    const id = idIn(ok(await send([item(OPERATION.Create, [enumeration(TAG.ObjectType, 2), struct(TAG.Attributes, [enumeration(TAG.CryptographicAlgorithm, algorithm), int(TAG.CryptographicLength, length), int(TAG.CryptographicUsageMask, usageMask)])])], V2)));
    if (activate) ok(await send([item(OPERATION.Activate, [uid(id)])]));
    return id;
  }

  async function keyPair(algorithm: number, length: number): Promise<{ privateId: string; publicId: string }> {
    const pair = ok(await send([item(OPERATION.CreateKeyPair, [struct(TAG.CommonAttributes, [enumeration(TAG.CryptographicAlgorithm, algorithm), int(TAG.CryptographicLength, length)])])], V2));
    return { privateId: idIn(pair, TAG.PrivateKeyUniqueIdentifier), publicId: idIn(pair, TAG.PublicKeyUniqueIdentifier) };
  }

  /** Get's key block: its Key Material item and Key Wrapping Data, if any. */
  async function get(id: string, extra: Ttlv[] = []): Promise<{ material: Ttlv; wrapping?: TtlvStructure }> {
    const got = ok(await send([item(OPERATION.Get, [uid(id), ...extra])]));
    const object = got.value.find((c) => c.type === "Structure") as TtlvStructure;
    const block = object.value.find((c) => c.tag === TAG.KeyBlock) as TtlvStructure;
    const material = (block.value.find((c) => c.tag === TAG.KeyValue) as TtlvStructure).value[0] as Ttlv;
    const wrapping = block.value.find((c) => c.tag === TAG.KeyWrappingData) as TtlvStructure | undefined;
    return { material, ...(wrapping ? { wrapping } : {}) };
  }

  const format = (f: number): Ttlv => enumeration(TAG.KeyFormatType, f);
  const bytesOf = (t: Ttlv): Buffer => (t as { value: Buffer }).value;
  const fields = (t: Ttlv): Map<number, Ttlv> => new Map((t as TtlvStructure).value.map((c) => [c.tag, c]));

  function wrapSpec(wrappingId: string, options: { mode?: number; encoding?: number | null; method?: number } = {}): Ttlv {
    const params = options.mode === undefined ? [] : [struct(TAG.CryptographicParameters, [enumeration(TAG.BlockCipherMode, options.mode)])];
    return struct(TAG.KeyWrappingSpecification, [
      enumeration(TAG.WrappingMethod, options.method ?? 1),
      struct(TAG.EncryptionKeyInformation, [uid(wrappingId), ...params]),
      ...(options.encoding === null ? [] : [enumeration(TAG.EncodingOption, options.encoding ?? 1)]),
    ]);
  }

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tresor-kmip-formats-"));
    const started = await startKmipNode(work);
    node = started.node;
    conn = await Connection.open(node.kmipPort as number, { caPem: started.caPem }, started.client);
  });

  after(async () => {
    conn?.close();
    await node?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("gives an RSA pair in Transparent RSA Private and Public Key formats whose integers are the PKCS#8 key", async () => {
    const { privateId, publicId } = await keyPair(4, 2048);
    const pkcs8 = bytesOf((await get(privateId)).material);
    const priv = fields((await get(privateId, [format(KEY_FORMAT_TYPE.TransparentRSAPrivateKey)])).material);
    const pub = fields((await get(publicId, [format(KEY_FORMAT_TYPE.TransparentRSAPublicKey)])).material);
    const jwk: JsonWebKey = {
      kty: "RSA",
      n: jwkMember(priv.get(TAG.Modulus)),
      e: jwkMember(priv.get(TAG.PublicExponent)),
      d: jwkMember(priv.get(TAG.PrivateExponent)),
      p: jwkMember(priv.get(TAG.P)),
      q: jwkMember(priv.get(TAG.Q)),
      dp: jwkMember(priv.get(TAG.PrimeExponentP)),
      dq: jwkMember(priv.get(TAG.PrimeExponentQ)),
      qi: jwkMember(priv.get(TAG.CrtCoefficient)),
    };
    assert.deepEqual(createPrivateKey({ key: jwk, format: "jwk" }).export({ format: "der", type: "pkcs8" }), pkcs8);
    assert.deepEqual([jwkMember(pub.get(TAG.Modulus)), jwkMember(pub.get(TAG.PublicExponent))], [jwk.n, jwk.e]);
    // 65537's first byte has its top bit clear; a 2048-bit modulus's has it set, so it travels with a sign byte.
    assert.equal(jwk.e, "AQAB");
  });

  it("gives an EC P-256 pair in Transparent EC Private and Public Key formats (Recommended Curve P-256, D, Q String)", async () => {
    const { privateId, publicId } = await keyPair(6, 256);
    const pkcs8 = bytesOf((await get(privateId)).material);
    const priv = fields((await get(privateId, [format(KEY_FORMAT_TYPE.TransparentECPrivateKey)])).material);
    const pub = fields((await get(publicId, [format(KEY_FORMAT_TYPE.TransparentECPublicKey)])).material);
    assert.equal((priv.get(TAG.RecommendedCurve) as { value: number }).value, 7);
    assert.equal((pub.get(TAG.RecommendedCurve) as { value: number }).value, 7);
    const point = bytesOf(pub.get(TAG.QString)!);
    assert.equal(point.length, 65);
    assert.equal(point[0], 4, "uncompressed");
    const d = Buffer.from(jwkMember(priv.get(TAG.D)), "base64url");
    const jwk: JsonWebKey = { kty: "EC", crv: "P-256", d: Buffer.concat([Buffer.alloc(32 - d.length), d]).toString("base64url"), x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33).toString("base64url") };
    assert.deepEqual(createPrivateKey({ key: jwk, format: "jwk" }).export({ format: "der", type: "pkcs8" }), createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ format: "der", type: "pkcs8" }));
    const refused = (await send([item(OPERATION.Get, [uid(privateId), format(KEY_FORMAT_TYPE.TransparentRSAPrivateKey)])])) as Answer;
    assert.equal(refused.items[0]?.reason, RESULT_REASON.KeyFormatTypeNotSupported);
  });

  it("wraps a private key with AES Key Wrap Padding (RFC 5649), which unwraps to its PKCS#8", async () => {
    const kek = await create(3, 256, USAGE.WrapKey);
    const { privateId } = await keyPair(6, 256);
    const pkcs8 = bytesOf((await get(privateId)).material);
    const { material, wrapping } = await get(privateId, [wrapSpec(kek, { mode: 0x0c })]);
    const kekBytes = bytesOf((await get(kek)).material);
    assert.deepEqual(Buffer.from(aeskwp(kekBytes).decrypt(bytesOf(material))), pkcs8);
    const w = fields(wrapping!);
    assert.equal((w.get(TAG.WrappingMethod) as { value: number }).value, 1);
    assert.equal((w.get(TAG.EncodingOption) as { value: number }).value, 1);
  });

  it("refuses a wrapped Get it cannot do as asked, and answers nothing of the key", async () => {
    const dek = await create(3, 256, USAGE.Encrypt | USAGE.Decrypt);
    const kek = await create(3, 256, USAGE.WrapKey);
    const preActive = await create(3, 256, USAGE.WrapKey, false);
    const sm4 = await create(0x2d, 128, USAGE.WrapKey);
    const { privateId } = await keyPair(6, 256);
    const cases: [string, Ttlv[], keyof typeof RESULT_REASON][] = [
      ["no Encoding Option (TTLV encoding)", [uid(dek), wrapSpec(kek, { encoding: null })], "FeatureNotSupported"],
      ["Wrapping Method MAC/sign", [uid(dek), wrapSpec(kek, { method: 2 })], "FeatureNotSupported"],
      ["Block Cipher Mode CBC", [uid(dek), wrapSpec(kek, { mode: 1 })], "FeatureNotSupported"],
      ["a wrapping key that does not exist", [uid(dek), wrapSpec("00000000-0000-4000-8000-000000000000")], "ItemNotFound"],
      ["a Pre-Active wrapping key", [uid(dek), wrapSpec(preActive)], "PermissionDenied"],
      ["an SM4 wrapping key", [uid(dek), wrapSpec(sm4)], "IllegalOperation"],
      ["a transparent format", [uid(dek), format(KEY_FORMAT_TYPE.TransparentSymmetricKey), wrapSpec(kek)], "FeatureNotSupported"],
      ["NIST Key Wrap of 138 bytes of PKCS#8", [uid(privateId), wrapSpec(kek, { mode: 0x0d })], "InvalidField"],
      ["a Key Wrapping Specification of the wrong type", [uid(dek), text(TAG.KeyWrappingSpecification, "x")], "InvalidField"],
    ];
    for (const [what, payload, reason] of cases) {
      const a = (await send([item(OPERATION.Get, payload)])) as Answer;
      assert.equal(a.items[0]?.status, 1, what);
      assert.equal(a.items[0]?.reason, RESULT_REASON[reason], `${what}: ${a.items[0]?.message}`);
      assert.equal(a.items[0]?.payload, undefined, `${what}: no payload`);
    }
  });

  it("registers an X.509 certificate in DER and gets it back, and refuses what is not one, storing nothing", async () => {
    const dir = await mkdtemp(path.join(work, "cert-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", "k.pem", "-out", "c.der", "-outform", "DER", "-days", "1", "-subj", "/CN=registered"], { cwd: dir, stdio: "pipe" });
    execFileSync("openssl", ["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", "e.pem", "-out", "e.der", "-outform", "DER", "-days", "1", "-subj", "/CN=ed"], { cwd: dir, stdio: "pipe" });
    const der = await readFile(path.join(dir, "c.der"));
    const certificate = (value: Buffer, type = 1): Ttlv => struct(TAG.Certificate, [enumeration(TAG.CertificateType, type), { tag: TAG.CertificateValue, type: "ByteString", value }]);
    const register = (object: Ttlv) => send([item(OPERATION.Register, [enumeration(TAG.ObjectType, 1), struct(TAG.Attributes, []), object])], V2);
    const id = idIn(ok(await register(certificate(der))));
    const got = ok(await send([item(OPERATION.Get, [uid(id)])]));
    const cert = got.value.find((c) => c.tag === TAG.Certificate) as TtlvStructure;
    assert.deepEqual(bytesOf(cert.value.find((c) => c.tag === TAG.CertificateValue)!), der);
    assert.equal((await node.store.getKey(id))?.keySpec, "ECC_P384");
    const count = async () => (await node.store.listKeys({ offset: 0, limit: 1000, order: "asc" })).keys.length;
    const before = await count();
    const pem = Buffer.from(`-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----\n`);
    for (const [what, object, reason] of [
      ["bytes that are no certificate", certificate(Buffer.from("not a certificate")), "InvalidField"],
      ["a PEM certificate", certificate(pem), "InvalidField"],
      ["a truncated certificate", certificate(der.subarray(0, der.length - 10)), "InvalidField"],
      ["an Ed25519 certificate", certificate(await readFile(path.join(dir, "e.der"))), "FeatureNotSupported"],
      ["a PGP certificate type", certificate(der, 2), "FeatureNotSupported"],
      // Node 20 aborts the process when it reads such a key's details: the server must survive it.
      ["a certificate whose key is the point at infinity", certificate(withInfinityKey(der)), "InvalidField"],
      ["a Certificate Value of the wrong type", struct(TAG.Certificate, [enumeration(TAG.CertificateType, 1), text(TAG.CertificateValue, "x")]), "InvalidField"],
    ] as const) {
      const a = (await register(object)) as Answer;
      assert.equal(a.items[0]?.reason, RESULT_REASON[reason], `${what}: ${a.items[0]?.message}`);
    }
    assert.equal(await count(), before, "nothing stored");
    // A certificate is given as it is: no other format, no wrapping.
    const refused = (await send([item(OPERATION.Get, [uid(id), format(KEY_FORMAT_TYPE.PKCS1)])])) as Answer;
    assert.equal(refused.items[0]?.reason, RESULT_REASON.KeyFormatTypeNotSupported);
  });

  it("encrypts and decrypts with an SM4 key in CBC mode with PKCS#5 padding, as OpenSSL's sm4-cbc does", async () => {
    const id = await create(0x2d, 128, USAGE.Encrypt | USAGE.Decrypt);
    const params = struct(TAG.CryptographicParameters, [enumeration(TAG.BlockCipherMode, 1), enumeration(TAG.PaddingMethod, 3)]);
    const iv = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
    const data = Buffer.from("SM4 in cipher block chaining, padded");
    const sealed = ok(await send([item(OPERATION.Encrypt, [uid(id), params, { tag: TAG.Data, type: "ByteString", value: data }, { tag: TAG.IvCounterNonce, type: "ByteString", value: iv }])]));
    const ciphertext = bytesOf(sealed.value.find((c) => c.tag === TAG.Data)!);
    const key = bytesOf((await get(id)).material);
    const decipher = createDecipheriv("sm4-cbc", key, iv);
    assert.deepEqual(Buffer.concat([decipher.update(ciphertext), decipher.final()]), data);
    const opened = ok(await send([item(OPERATION.Decrypt, [uid(id), params, { tag: TAG.Data, type: "ByteString", value: ciphertext }, { tag: TAG.IvCounterNonce, type: "ByteString", value: iv }])]));
    assert.deepEqual(bytesOf(opened.value.find((c) => c.tag === TAG.Data)!), data);
  });
});
