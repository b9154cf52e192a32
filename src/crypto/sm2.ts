// SM2 public key cryptography on elliptic curves, GB/T 32918-2016/2017 (the same algorithms as
// GM/T 0003-2012): the digital signature of part 2 and the public key encryption of part 4 on the
// recommended curve sm2p256v1 of part 5, with the default identity and the DER encodings of
// signatures and ciphertexts of GM/T 0009-2012. node:crypto offers neither (reference/measured.md:
// its sign/verify compute ECDSA over this curve; publicEncrypt refuses SM2 keys).
//
// Multiplications by secret scalars (k, d) run in OpenSSL through createECDH("SM2"); so does
// verification's s·G, while its t·Q runs in @noble/curves over a window table kept per public key;
// the holder of d verifies with a single native multiplication instead. SM3 and the KDF are native.

import { createECDH, createHash, createHmac, generateKeyPair, randomBytes, timingSafeEqual, type ECDH, type KeyObject } from "node:crypto";
import { weierstrass, type WeierstrassPoint } from "@noble/curves/abstract/weierstrass.js";
import { DerReader, derSequence, derTlv, derUnsignedInteger, TAG_BIT_STRING, TAG_OCTET_STRING, TAG_OID } from "./asn1.js";
import { CryptoError } from "./errors.js";
import { bigIntFromBytes, blindedScalar, randomScalar as randomScalarBelow } from "./scalar.js";

/** The default distinguishing identity of GM/T 0009-2012 (and of OpenSSL's `distid`, sm-crypto). */
export const SM2_DEFAULT_ID = "1234567812345678";

export interface Sm2KeyPair {
  /** 32-byte big-endian d, 1 <= d <= n-2. */
  privateKey: Buffer;
  /** 65-byte uncompressed 04||x||y. */
  publicKey: Buffer;
}

// GB/T 32918.5-2017 section 3: the recommended curve y^2 = x^3 + ax + b over F_p.
const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn;
const A = 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn;
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n;
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n;
const GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n;
const GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n;

type Point = WeierstrassPoint<bigint>;
const Curve = weierstrass({ p: P, n: N, h: 1n, a: A, b: B, Gx: GX, Gy: GY });
// An 8-bit window table for G (built lazily on first use, ~80 ms, ~4,000 points): verification's s·G.
Curve.BASE.precompute(8);

const FIELD_LENGTH = 32;
const POINT_LENGTH = 1 + 2 * FIELD_LENGTH;
const DIGEST_LENGTH = 32;
const MIN_RAW_CIPHERTEXT = POINT_LENGTH + DIGEST_LENGTH + 1;

// id-ecPublicKey (1.2.840.10045.2.1) and the SM2 curve sm2p256v1 (1.2.156.10197.1.301).
const OID_EC_PUBLIC_KEY = derTlv(TAG_OID, Buffer.from("2a8648ce3d0201", "hex"));
const OID_SM2_CURVE = derTlv(TAG_OID, Buffer.from("2a811ccf5501822d", "hex"));
const ALGORITHM = derSequence(OID_EC_PUBLIC_KEY, OID_SM2_CURVE);

const CURVE_BYTES = Buffer.concat([A, B, GX, GY].map(toField));

function toField(x: bigint): Buffer {
  return Buffer.from(x.toString(16).padStart(2 * FIELD_LENGTH, "0"), "hex");
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

function checkBytes(name: string, value: unknown, length?: number): asserts value is Buffer {
  if (!(value instanceof Uint8Array)) throw new TypeError(`"${name}" must be a Buffer or Uint8Array`);
  if (length !== undefined && value.length !== length) throw new RangeError(`"${name}" must be ${length} bytes, got ${value.length}`);
}

function isOnCurve(x: bigint, y: bigint): boolean {
  return mod(y * y - ((x * x + A) * x + B), P) === 0n;
}

/** d from a private key argument: 32 bytes, 1 <= d <= n-2 (n-1 has no inverse for 1 + d). */
function privateScalar(privateKey: unknown, name = "privateKey"): bigint {
  checkBytes(name, privateKey, FIELD_LENGTH);
  const d = bigIntFromBytes(privateKey);
  if (d < 1n || d > N - 2n) throw new RangeError(`"${name}" must be an integer in [1, n-2] for the SM2 curve`);
  return d;
}

/** A public key argument as a curve point: 65 bytes 04||x||y, coordinates < p, on the curve (not infinity). */
function publicPoint(publicKey: unknown, name = "publicKey"): Point {
  checkBytes(name, publicKey, POINT_LENGTH);
  if (publicKey[0] !== 0x04) throw new RangeError(`"${name}" must be an uncompressed point (first byte 04), got ${publicKey[0]}`);
  const x = bigIntFromBytes(publicKey.subarray(1, 1 + FIELD_LENGTH));
  const y = bigIntFromBytes(publicKey.subarray(1 + FIELD_LENGTH));
  // (0, 0), the usual stand-in for infinity, fails the curve equation since b != 0.
  if (x >= P || y >= P || !isOnCurve(x, y)) throw new RangeError(`"${name}" is not a point on the SM2 curve`);
  return Curve.fromAffine({ x, y });
}

function encodePoint(point: Point): Buffer {
  const { x, y } = point.toAffine();
  return Buffer.concat([Buffer.from([0x04]), toField(x), toField(y)]);
}

function identityBytes(id: unknown): Buffer {
  if (id === undefined) return Buffer.from(SM2_DEFAULT_ID, "utf8");
  let bytes: Buffer;
  if (typeof id === "string") bytes = Buffer.from(id, "utf8");
  else if (id instanceof Uint8Array) bytes = Buffer.from(id.buffer, id.byteOffset, id.length);
  else throw new TypeError(`"id" must be a string, Buffer or Uint8Array`);
  // ENTL is the identity's length in bits in two bytes.
  if (bytes.length * 8 > 0xffff) throw new RangeError(`"id" must be at most 8191 bytes, got ${bytes.length}`);
  return bytes;
}

/** Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A), part 2 section 5.5. */
function identityHash(publicKey: Buffer, id: Buffer): Buffer {
  const entl = Buffer.from([(id.length * 8) >> 8, (id.length * 8) & 0xff]);
  return createHash("sm3").update(entl).update(id).update(CURVE_BYTES).update(publicKey.subarray(1)).digest();
}

/** e = SM3(Z_A || M) with Z_A from the identity (default SM2_DEFAULT_ID) and the public key. */
export function sm2Digest(publicKey: Buffer, message: Buffer, id?: string | Buffer): Buffer {
  publicPoint(publicKey);
  checkBytes("message", message);
  const z = identityHash(publicKey, identityBytes(id));
  return createHash("sm3").update(z).update(message).digest();
}

/**
 * Z_A alone, for callers that hash a long message in pieces: SM3(Z_A || M) computed incrementally
 * equals sm2Digest(publicKey, M, id), and sm2SignDigest / sm2VerifyDigest take that digest.
 */
export function sm2IdentityDigest(publicKey: Buffer, id?: string | Buffer): Buffer {
  publicPoint(publicKey);
  return identityHash(publicKey, identityBytes(id));
}

/** k·G as 04||x||y, computed by OpenSSL (its constant-time ladder); the ECDH object keeps k for reuse. */
function nativeBaseMultiply(k: Buffer): { ecdh: ECDH; point: Buffer } {
  const ecdh = createECDH("SM2");
  ecdh.setPrivateKey(k);
  return { ecdh, point: ecdh.getPublicKey() };
}

function pointFromBytes(bytes: Buffer): Point {
  return Curve.fromAffine({ x: bigIntFromBytes(bytes.subarray(1, 1 + FIELD_LENGTH)), y: bigIntFromBytes(bytes.subarray(1 + FIELD_LENGTH)) });
}

/**
 * k·Q for a secret scalar k (1 <= k < n) and a validated point Q, plus k·G, with both
 * multiplications in OpenSSL. ECDH's computeSecret gives only the x coordinate of k·Q; of the two
 * points with that x, (x, ±y), the right one is the one whose sum with k·G has the x coordinate of
 * k·(Q + G), a second computeSecret under the same k. Falls back to noble's constant-time ladder in
 * the degenerate case Q = -G.
 */
function multiplySecret(k: Buffer, q: Point): { kG: Buffer; kQ: { x: bigint; y: bigint } } {
  const { ecdh, point: kG } = nativeBaseMultiply(k);
  const qPlusG = q.add(Curve.BASE);
  if (!qPlusG.is0()) {
    const x = bigIntFromBytes(ecdh.computeSecret(encodePoint(q)));
    const xSum = bigIntFromBytes(ecdh.computeSecret(encodePoint(qPlusG)));
    const y = Curve.Fp.sqrt(mod((x * x + A) * x + B, P));
    const kGPoint = pointFromBytes(kG);
    for (const candidate of [y, P - y]) {
      const sum = Curve.fromAffine({ x, y: candidate }).add(kGPoint);
      if (!sum.is0() && sum.toAffine().x === xSum) return { kG, kQ: { x, y: candidate } };
    }
  }
  const kQ = q.multiply(bigIntFromBytes(k)).toAffine();
  return { kG, kQ };
}

// sm2Sign needs the public key for Z_A, and deriving it costs a second base multiplication per
// signature. A bounded cache maps HMAC(per-process key, d) to the public key: the cache never holds
// d, and a public key is not secret.
const PUBLIC_KEY_CACHE_LIMIT = 1024;
const publicKeyCacheKey = randomBytes(32);
const publicKeyCache = new Map<string, Buffer>();

function cachedPublicKey(privateKey: Buffer): Buffer {
  const tag = createHmac("sha256", publicKeyCacheKey).update(privateKey).digest("base64");
  let publicKey = publicKeyCache.get(tag);
  if (publicKey === undefined) {
    publicKey = nativeBaseMultiply(privateKey).point;
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) {
      const oldest = publicKeyCache.keys().next();
      if (!oldest.done) publicKeyCache.delete(oldest.value);
    }
    publicKeyCache.set(tag, publicKey);
  }
  return publicKey;
}

export function sm2GenerateKeyPair(): Sm2KeyPair {
  for (;;) {
    const ecdh = createECDH("SM2");
    ecdh.generateKeys();
    const raw = ecdh.getPrivateKey(); // minimal big-endian bytes: may be shorter than 32
    const privateKey = Buffer.alloc(FIELD_LENGTH);
    raw.copy(privateKey, FIELD_LENGTH - raw.length);
    raw.fill(0);
    const d = bigIntFromBytes(privateKey);
    // OpenSSL draws d from [1, n-1]; SM2 excludes n-1, for which 1 + d has no inverse.
    if (d >= 1n && d <= N - 2n) return { privateKey, publicKey: ecdh.getPublicKey() };
    privateKey.fill(0);
  }
}

/** As sm2GenerateKeyPair, with d drawn by OpenSSL in libuv's thread pool (for the server). */
export async function sm2GenerateKeyPairAsync(): Promise<Sm2KeyPair> {
  for (;;) {
    const pair = await new Promise<KeyObject>((resolve, reject) =>
      generateKeyPair("ec", { namedCurve: "SM2" }, (err, _publicKey, privateKey) => (err ? reject(err) : resolve(privateKey))),
    );
    // SEC 1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING d, ... }; node has no JWK for SM2.
    const sec1 = pair.export({ format: "der", type: "sec1" });
    try {
      const body = new DerReader(new DerReader(sec1).read(0x30));
      if (body.readUnsignedInteger() !== 1n) throw new Error("an SM2 key from OpenSSL is not SEC 1 version 1");
      const raw = body.read(TAG_OCTET_STRING);
      if (raw.length > FIELD_LENGTH) throw new Error("an SM2 private key from OpenSSL is longer than 32 bytes");
      const privateKey = Buffer.alloc(FIELD_LENGTH);
      raw.copy(privateKey, FIELD_LENGTH - raw.length);
      const d = bigIntFromBytes(privateKey);
      // As above: SM2 excludes n-1.
      if (d >= 1n && d <= N - 2n) return { privateKey, publicKey: sm2PublicKeyFromPrivate(privateKey) };
      privateKey.fill(0);
    } finally {
      sec1.fill(0);
    }
  }
}

export function sm2PublicKeyFromPrivate(privateKey: Buffer): Buffer {
  privateScalar(privateKey);
  return Buffer.from(cachedPublicKey(privateKey));
}

/** A uniformly random scalar in [1, n-1] as 32 bytes. The caller wipes it. */
const randomScalar = (): Buffer => randomScalarBelow(N, FIELD_LENGTH);

function encodeSignature(r: bigint, s: bigint): Buffer {
  return derSequence(derUnsignedInteger(r), derUnsignedInteger(s));
}

/**
 * Part 2 section 6.1, steps A3-A6: r = (e + x1) mod n, s = (1 + d)^-1 (k - r·d) mod n, with a new k
 * from `nextK` whenever r = 0, r + k = n or s = 0. Each k is wiped after use.
 */
function signDigest(d: bigint, e: bigint, nextK: () => Buffer): Buffer {
  const inverse = Curve.Fn.inv(d + 1n);
  for (;;) {
    const kBytes = nextK();
    try {
      const k = bigIntFromBytes(kBytes);
      const x1 = bigIntFromBytes(nativeBaseMultiply(kBytes).point.subarray(1, 1 + FIELD_LENGTH));
      const r = mod(e + x1, N);
      if (r === 0n || r + k === N) continue;
      const s = mod(inverse * (k - r * d), N);
      if (s === 0n) continue;
      return encodeSignature(r, s);
    } finally {
      kBytes.fill(0);
    }
  }
}

export function sm2Sign(privateKey: Buffer, message: Buffer, options?: { id?: string | Buffer }): Buffer {
  const d = privateScalar(privateKey);
  checkBytes("message", message);
  const publicKey = cachedPublicKey(privateKey);
  const z = identityHash(publicKey, identityBytes(options?.id));
  const e = bigIntFromBytes(createHash("sm3").update(z).update(message).digest());
  return signDigest(d, e, randomScalar);
}

export function sm2SignDigest(privateKey: Buffer, digest: Buffer): Buffer {
  const d = privateScalar(privateKey);
  checkBytes("digest", digest, DIGEST_LENGTH);
  return signDigest(d, bigIntFromBytes(digest), randomScalar);
}

/** Tests only: signs a digest with a given k, to reproduce the standard's examples. Not for production. */
export function _sm2SignDigestWithK(privateKey: Buffer, digest: Buffer, k: Buffer): Buffer {
  const d = privateScalar(privateKey);
  checkBytes("digest", digest, DIGEST_LENGTH);
  privateScalar(k, "k");
  let used = false;
  return signDigest(d, bigIntFromBytes(digest), () => {
    if (used) throw new RangeError(`"k" gives r = 0, r + k = n or s = 0; the standard asks for another k`);
    used = true;
    return Buffer.from(k);
  });
}

/** (r, s) from strict DER, or undefined: no trailing bytes, minimal INTEGERs, both in [1, n-1]. */
function parseSignature(signature: Buffer): { r: bigint; s: bigint } | undefined {
  try {
    const outer = new DerReader(signature);
    const seq = outer.readSequence();
    outer.end();
    const r = seq.readUnsignedInteger();
    const s = seq.readUnsignedInteger();
    seq.end();
    if (r < 1n || r >= N || s < 1n || s >= N) return undefined;
    return { r, s };
  } catch {
    return undefined;
  }
}

// Verification's t·Q: the public key's window table is built on its first verification (about
// 500 points, a few ms) and kept with the point, so later verifications under the same key (a KMS
// verifies under few keys, many times) cost 64 additions instead of a full double-and-add.
const VERIFY_WINDOW = 4;
const VERIFY_POINT_CACHE_LIMIT = 256;
const verifyPoints = new Map<string, Point>();

function verifyingPoint(publicKey: Buffer): Point {
  const id = publicKey.toString("latin1");
  let q = verifyPoints.get(id);
  if (q === undefined) {
    q = publicPoint(publicKey);
    q.precompute(VERIFY_WINDOW, false);
    if (verifyPoints.size >= VERIFY_POINT_CACHE_LIMIT) verifyPoints.clear();
    verifyPoints.set(id, q);
  }
  return q;
}

// s·G for verification runs in OpenSSL (a public scalar: one reused ECDH object is fine).
const verifyEcdh = createECDH("SM2");

function nativePublicBaseMultiply(s: bigint): Point {
  verifyEcdh.setPrivateKey(toField(s));
  return pointFromBytes(verifyEcdh.getPublicKey());
}

/** Part 2 section 7.1, steps B1-B5: (r, s) and t = (r + s) mod n, or undefined when the signature already fails. */
function verificationScalars(signature: Buffer): { r: bigint; s: bigint; t: bigint } | undefined {
  const parsed = parseSignature(signature);
  if (parsed === undefined) return undefined;
  const t = mod(parsed.r + parsed.s, N);
  return t === 0n ? undefined : { ...parsed, t };
}

/** Part 2 section 7.1, steps B1-B7, with e already computed. */
function verifyDigest(q: Point, e: bigint, signature: Buffer): boolean {
  const scalars = verificationScalars(signature);
  if (scalars === undefined) return false;
  const { r, s, t } = scalars;
  // Public scalars only, so the faster non-constant-time multiplications are fine here.
  const sum = nativePublicBaseMultiply(s).add(q.multiplyUnsafe(t));
  if (sum.is0()) return false;
  return mod(e + sum.toAffine().x, N) === r;
}

/**
 * Steps B1-B7 by the holder of the private key d: with Q = d·G, s·G + t·Q = (s + t·d)·G, one
 * fixed-base multiplication in OpenSSL instead of a double one in JavaScript. s + t·d is as secret
 * as d (it gives d away with s and t), so it is computed over d + m·n for a fresh random m (the
 * operand's size no longer depends on d's) and the point's scalar is wiped after use.
 */
function verifyDigestByScalar(d: bigint, e: bigint, signature: Buffer): boolean {
  const scalars = verificationScalars(signature);
  if (scalars === undefined) return false;
  const { r, s, t } = scalars;
  const blinded = blindedScalar(d, N);
  const u = mod(s + t * blinded, N);
  if (u === 0n) return false;
  const scalar = toField(u);
  try {
    const x1 = bigIntFromBytes(nativeBaseMultiply(scalar).point.subarray(1, 1 + FIELD_LENGTH));
    return mod(e + x1, N) === r;
  } finally {
    scalar.fill(0);
  }
}

/** sm2Verify by the holder of the private key (the key's own public key, the default identity unless given); same answers, about twice as fast. */
export function sm2VerifyWithPrivateKey(privateKey: Buffer, message: Buffer, signature: Buffer, options?: { id?: string | Buffer }): boolean {
  const d = privateScalar(privateKey);
  checkBytes("message", message);
  checkBytes("signature", signature);
  const z = identityHash(cachedPublicKey(privateKey), identityBytes(options?.id));
  return verifyDigestByScalar(d, bigIntFromBytes(createHash("sm3").update(z).update(message).digest()), signature);
}

export function sm2VerifyDigestWithPrivateKey(privateKey: Buffer, digest: Buffer, signature: Buffer): boolean {
  const d = privateScalar(privateKey);
  checkBytes("digest", digest, DIGEST_LENGTH);
  checkBytes("signature", signature);
  return verifyDigestByScalar(d, bigIntFromBytes(digest), signature);
}

/** False for any signature that is not a valid strict-DER SM2 signature of the message; throws only for malformed arguments. */
export function sm2Verify(publicKey: Buffer, message: Buffer, signature: Buffer, options?: { id?: string | Buffer }): boolean {
  const q = verifyingPoint(publicKey);
  checkBytes("message", message);
  checkBytes("signature", signature);
  const z = identityHash(publicKey, identityBytes(options?.id));
  const e = bigIntFromBytes(createHash("sm3").update(z).update(message).digest());
  return verifyDigest(q, e, signature);
}

export function sm2VerifyDigest(publicKey: Buffer, digest: Buffer, signature: Buffer): boolean {
  const q = verifyingPoint(publicKey);
  checkBytes("digest", digest, DIGEST_LENGTH);
  checkBytes("signature", signature);
  return verifyDigest(q, bigIntFromBytes(digest), signature);
}

/** KDF of part 4 section 5.4.3: SM3(Z || ct) for ct = 1, 2, … (32-bit big-endian), truncated to `length`. */
function kdf(z: Buffer, length: number): Buffer {
  const out = Buffer.alloc(Math.ceil(length / DIGEST_LENGTH) * DIGEST_LENGTH);
  const counter = Buffer.alloc(4);
  for (let i = 0; i * DIGEST_LENGTH < length; i++) {
    counter.writeUInt32BE(i + 1);
    createHash("sm3").update(z).update(counter).digest().copy(out, i * DIGEST_LENGTH);
  }
  return out.subarray(0, length);
}

function isAllZero(bytes: Buffer): boolean {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}

function xorInto(data: Buffer, mask: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[i]!;
  return out;
}

function encodeCiphertext(x1: bigint, y1: bigint, c3: Buffer, c2: Buffer): Buffer {
  return derSequence(derUnsignedInteger(x1), derUnsignedInteger(y1), derTlv(TAG_OCTET_STRING, c3), derTlv(TAG_OCTET_STRING, c2));
}

/** GM/T 0009 SM2Cipher, strictly: SEQUENCE { INTEGER x, INTEGER y, OCTET STRING C3 (32), OCTET STRING C2 (non-empty) }. */
function parseCiphertext(der: Buffer): { x: bigint; y: bigint; c3: Buffer; c2: Buffer } {
  const outer = new DerReader(der);
  const seq = outer.readSequence();
  outer.end();
  const x = seq.readUnsignedInteger();
  const y = seq.readUnsignedInteger();
  const c3 = seq.read(TAG_OCTET_STRING);
  const c2 = seq.read(TAG_OCTET_STRING);
  seq.end();
  if (c3.length !== DIGEST_LENGTH || c2.length === 0) throw new RangeError("bad SM2 ciphertext lengths");
  return { x, y, c3, c2 };
}

/**
 * Part 4 section 6.1, steps A2-A8, with one k; undefined when the KDF output is all zero (the
 * standard then asks for a new k). The caller owns and wipes k.
 */
function encryptWithK(q: Point, plaintext: Buffer, k: Buffer): Buffer | undefined {
  const { kG, kQ } = multiplySecret(k, q);
  const x2 = toField(kQ.x);
  const y2 = toField(kQ.y);
  const t = kdf(Buffer.concat([x2, y2]), plaintext.length);
  try {
    if (isAllZero(t)) return undefined;
    const c2 = xorInto(plaintext, t);
    const c3 = createHash("sm3").update(x2).update(plaintext).update(y2).digest();
    const c1 = pointFromBytes(kG).toAffine();
    return encodeCiphertext(c1.x, c1.y, c3, c2);
  } finally {
    t.fill(0);
    x2.fill(0);
    y2.fill(0);
  }
}

/** GM/T 0009 DER: SEQUENCE { INTEGER x, INTEGER y, OCTET STRING C3 (SM3), OCTET STRING C2 }. */
export function sm2Encrypt(publicKey: Buffer, plaintext: Buffer): Buffer {
  const q = publicPoint(publicKey);
  checkBytes("plaintext", plaintext);
  // An empty message makes the KDF output empty, that is "all zero", forever.
  if (plaintext.length === 0) throw new RangeError(`"plaintext" must not be empty`);
  for (;;) {
    const k = randomScalar();
    try {
      const out = encryptWithK(q, plaintext, k);
      if (out !== undefined) return out;
    } finally {
      k.fill(0);
    }
  }
}

/** Tests only: encrypts with a given k, to reproduce the standard's examples. Not for production. */
export function _sm2EncryptWithK(publicKey: Buffer, plaintext: Buffer, k: Buffer): Buffer {
  const q = publicPoint(publicKey);
  checkBytes("plaintext", plaintext);
  if (plaintext.length === 0) throw new RangeError(`"plaintext" must not be empty`);
  checkBytes("k", k, FIELD_LENGTH);
  const kValue = bigIntFromBytes(k);
  if (kValue < 1n || kValue >= N) throw new RangeError(`"k" must be an integer in [1, n-1]`);
  const out = encryptWithK(q, plaintext, Buffer.from(k));
  if (out === undefined) throw new RangeError(`"k" gives an all-zero KDF output; the standard asks for another k`);
  return out;
}

/**
 * Part 4 section 7.1, steps B1-B7. Throws CryptoError("decryption failed") for anything wrong with
 * the ciphertext (bad DER, C1 not on the curve, all-zero KDF output, C3 mismatch), without saying
 * which; RangeError/TypeError only for a malformed private key or a non-bytes argument.
 */
export function sm2Decrypt(privateKey: Buffer, ciphertext: Buffer): Buffer {
  privateScalar(privateKey);
  checkBytes("ciphertext", ciphertext);
  let parsed: ReturnType<typeof parseCiphertext>;
  try {
    parsed = parseCiphertext(ciphertext);
  } catch {
    throw new CryptoError("decryption failed");
  }
  const { x, y, c3, c2 } = parsed;
  // h = 1 on this curve, so a point on the curve other than infinity is in the group of order n.
  if (x >= P || y >= P || !isOnCurve(x, y)) throw new CryptoError("decryption failed");
  const { kQ } = multiplySecret(privateKey, Curve.fromAffine({ x, y }));
  const x2 = toField(kQ.x);
  const y2 = toField(kQ.y);
  const t = kdf(Buffer.concat([x2, y2]), c2.length);
  try {
    if (isAllZero(t)) throw new CryptoError("decryption failed");
    const message = xorInto(c2, t);
    const u = createHash("sm3").update(x2).update(message).update(y2).digest();
    if (!timingSafeEqual(u, c3)) {
      message.fill(0);
      throw new CryptoError("decryption failed");
    }
    return message;
  } finally {
    t.fill(0);
    x2.fill(0);
    y2.fill(0);
  }
}

/**
 * Raw C1||C3||C2 (04||x||y||C3||C2, Tencent's "C1C3C2") to GM/T 0009 DER. Checks the shape only
 * (RangeError); the point and C3 are checked by sm2Decrypt.
 */
export function sm2CiphertextFromRaw(raw: Buffer): Buffer {
  checkBytes("raw", raw);
  if (raw.length < MIN_RAW_CIPHERTEXT) throw new RangeError(`"raw" must be at least ${MIN_RAW_CIPHERTEXT} bytes (04||x||y||C3||C2), got ${raw.length}`);
  if (raw[0] !== 0x04) throw new RangeError(`"raw" must start with 04 (an uncompressed C1), got ${raw[0]}`);
  const x = bigIntFromBytes(raw.subarray(1, 1 + FIELD_LENGTH));
  const y = bigIntFromBytes(raw.subarray(1 + FIELD_LENGTH, POINT_LENGTH));
  const c3 = raw.subarray(POINT_LENGTH, POINT_LENGTH + DIGEST_LENGTH);
  const c2 = raw.subarray(POINT_LENGTH + DIGEST_LENGTH);
  return encodeCiphertext(x, y, c3, c2);
}

/** GM/T 0009 DER to raw 04||x||y||C3||C2. Checks the shape only (RangeError), not the point. */
export function sm2CiphertextToRaw(der: Buffer): Buffer {
  checkBytes("der", der);
  let parsed: ReturnType<typeof parseCiphertext>;
  try {
    parsed = parseCiphertext(der);
  } catch {
    throw new RangeError(`"der" is not a GM/T 0009 SM2 ciphertext`);
  }
  if (parsed.x >= P || parsed.y >= P) throw new RangeError(`"der" holds a C1 coordinate out of range`);
  return Buffer.concat([Buffer.from([0x04]), toField(parsed.x), toField(parsed.y), parsed.c3, parsed.c2]);
}

/** DER SubjectPublicKeyInfo (id-ecPublicKey, curve 1.2.156.10197.1.301) of a validated public key. */
export function sm2PublicKeyToSpki(publicKey: Buffer): Buffer {
  publicPoint(publicKey);
  return derSequence(ALGORITHM, derTlv(TAG_BIT_STRING, Buffer.concat([Buffer.from([0]), publicKey])));
}

/** The 65-byte public key of an SM2 SubjectPublicKeyInfo; takes compressed or uncompressed points, validates the point. */
export function sm2PublicKeyFromSpki(spki: Buffer): Buffer {
  checkBytes("spki", spki);
  let point: Buffer;
  try {
    const outer = new DerReader(spki);
    const seq = outer.readSequence();
    outer.end();
    const algorithm = seq.read(0x30);
    const bits = seq.read(TAG_BIT_STRING);
    seq.end();
    if (!algorithm.equals(ALGORITHM.subarray(2))) throw new RangeError("not SM2");
    if (bits.length < 2 || bits[0] !== 0) throw new RangeError("bad BIT STRING");
    point = bits.subarray(1);
  } catch {
    throw new RangeError(`"spki" is not a DER SubjectPublicKeyInfo of an SM2 public key (id-ecPublicKey, curve 1.2.156.10197.1.301)`);
  }
  if (point.length === POINT_LENGTH && point[0] === 0x04) return Buffer.from(encodePoint(publicPoint(point, "spki")));
  if (point.length === 1 + FIELD_LENGTH && (point[0] === 0x02 || point[0] === 0x03)) {
    try {
      return encodePoint(Curve.fromBytes(point));
    } catch {
      throw new RangeError(`"spki" is not a point on the SM2 curve`);
    }
  }
  throw new RangeError(`"spki" must hold an uncompressed (65-byte) or compressed (33-byte) point, got ${point.length} bytes`);
}

/**
 * PKCS#8 (RFC 5208) DER of the private key with its public key: PrivateKeyInfo { 0, id-ecPublicKey
 * with the SM2 curve, ECPrivateKey (RFC 5915) { 1, d, [1] public key } }, loadable by `openssl pkey`.
 * The result holds d: the caller wipes it.
 */
export function sm2PrivateKeyToPkcs8(privateKey: Buffer): Buffer {
  privateScalar(privateKey);
  const publicKey = cachedPublicKey(privateKey);
  const secret = derTlv(TAG_OCTET_STRING, privateKey);
  const ecPrivateKey = derSequence(derUnsignedInteger(1n), secret, derTlv(0xa1, derTlv(TAG_BIT_STRING, Buffer.concat([Buffer.from([0]), publicKey]))));
  const wrapped = derTlv(TAG_OCTET_STRING, ecPrivateKey);
  try {
    return derSequence(derUnsignedInteger(0n), ALGORITHM, wrapped);
  } finally {
    secret.fill(0);
    ecPrivateKey.fill(0);
    wrapped.fill(0);
  }
}
