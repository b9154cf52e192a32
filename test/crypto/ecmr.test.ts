// The Tang primitives against the `jose` command line (latchset/jose, the library tangd and clevis
// use), the independent implementation: the McCallum-Relyea exchange s·X against `jose jwk exc`
// (and its x coordinate against OpenSSL's ECDH), ES512 JWS signatures against `jose jws ver`,
// RFC 7638 thumbprints against `jose jwk thp`; and points that are not on P-521 are refused.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createECDH, createPrivateKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { p521 } from "@noble/curves/nist.js";
import { EcdsaPrivateKey, ecGenerateKeyPair, ecdsaDerToP1363 } from "../../src/crypto/ecc.js";
import { checkP521Point, EcPointError, ecmrCheckPoint, ecmrFromX, ecmrMultiply, P521_COORDINATE_LENGTH, type EcPoint } from "../../src/crypto/ecmr.js";
import { EcmrBusyError, EcmrThread, MAX_QUEUED_ECMR } from "../../src/crypto/ecmr-worker.js";
import { advertisementJws, advertisementPayload, jwkThumbprint, matchesThumbprint, p521Jwk, p521PointOfSpki, tangJwk, THUMBPRINT_HASHES, type ThumbprintHash } from "../../src/keys/jwk.js";

const HAS_JOSE = (() => {
  try {
    execFileSync("jose", ["alg"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
})();
const skip = HAS_JOSE || process.env.CI ? false : "the jose command (Debian package jose) is not installed";

const dir = mkdtempSync(path.join(tmpdir(), "tresor-ecmr-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** jose reads JSON from files reliably (some JSON arguments it refuses as "Invalid input"). */
function file(value: unknown): string {
  const name = path.join(dir, `${files++}.json`);
  writeFileSync(name, JSON.stringify(value));
  return name;
}

function jose(args: string[]): string {
  return execFileSync("jose", args, { stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 }).toString("utf8");
}

/** A P-521 key pair: its point, its scalar, and the private JWK jose reads. */
function p521Pair(): { point: EcPoint; scalar: Buffer; privateJwk: Record<string, string> } {
  const pair = ecGenerateKeyPair("P-521");
  const jwk = createPrivateKey({ key: pair.privateKey, format: "der", type: "pkcs8" }).export({ format: "jwk" });
  const point = p521PointOfSpki(pair.publicKey);
  return { point, scalar: Buffer.from(jwk.d ?? "", "base64url"), privateJwk: { alg: "ECMR", kty: "EC", crv: "P-521", x: jwk.x!, y: jwk.y!, d: jwk.d! } };
}

describe("ECMR on P-521", { skip }, () => {
  it("s·X equals jose jwk exc's full point, and its x equals OpenSSL's ECDH secret", () => {
    for (let i = 0; i < 3; i++) {
      const server = p521Pair();
      const client = p521Pair();
      const product = ecmrMultiply(server.scalar, client.point);
      const theirs = JSON.parse(jose(["jwk", "exc", "-i", file({ alg: "ECMR" }), "-l", file(server.privateJwk), "-r", file(tangJwk(client.point, "exchange"))]));
      assert.deepEqual({ x: product.x.toString("base64url"), y: product.y.toString("base64url") }, { x: theirs.x, y: theirs.y });
      const ecdh = createECDH("secp521r1");
      ecdh.setPrivateKey(server.scalar);
      assert.deepEqual(ecdh.computeSecret(Buffer.concat([Buffer.of(4), client.point.x, client.point.y])), product.x);
    }
  });

  it("refuses points off the curve, the point at infinity, out-of-range coordinates and wrong lengths", () => {
    const { point, scalar } = p521Pair();
    const bumped = Buffer.from(point.y);
    bumped[bumped.length - 1] = bumped[bumped.length - 1]! ^ 1;
    const zero = Buffer.alloc(P521_COORDINATE_LENGTH);
    const bad: EcPoint[] = [
      { x: point.x, y: bumped },
      { x: zero, y: zero },
      { x: Buffer.alloc(P521_COORDINATE_LENGTH, 0xff), y: point.y },
      { x: point.x.subarray(1), y: point.y },
      { x: Buffer.concat([Buffer.of(0), point.x]), y: point.y },
    ];
    for (const p of bad) {
      assert.throws(() => checkP521Point(p), EcPointError);
      assert.throws(() => ecmrMultiply(scalar, p), EcPointError);
    }
    checkP521Point(point);
  });
});

describe("s·X from x coordinates alone (the HSM path)", () => {
  it("recovers the point from OpenSSL's x(s·X) and x(s·(X + G)), as ecmrMultiply computes it", () => {
    const uncompressed = (p: EcPoint) => Buffer.concat([Buffer.of(4), p.x, p.y]);
    for (let i = 0; i < 4; i++) {
      const server = p521Pair();
      const client = p521Pair();
      const ecdh = createECDH("secp521r1");
      ecdh.setPrivateKey(server.scalar);
      const check = ecmrCheckPoint(client.point);
      assert.equal(check.c, 1n);
      const x = ecdh.computeSecret(uncompressed(client.point));
      const xCheck = ecdh.computeSecret(uncompressed(check.point));
      assert.deepEqual(ecmrFromX(x, xCheck, server.point, check.c), ecmrMultiply(server.scalar, client.point));
      assert.throws(() => ecmrFromX(x, x, server.point, check.c), EcPointError, "a check value that fits neither point");
    }
  });

  it("uses X + 2G when X + G is the point at infinity", () => {
    const g = p521.Point.BASE.negate().toBytes(false);
    const minusG = { x: Buffer.from(g.subarray(1, 67)), y: Buffer.from(g.subarray(67)) };
    const server = p521Pair();
    const check = ecmrCheckPoint(minusG);
    assert.equal(check.c, 2n);
    const ecdh = createECDH("secp521r1");
    ecdh.setPrivateKey(server.scalar);
    const x = ecdh.computeSecret(Buffer.concat([Buffer.of(4), minusG.x, minusG.y]));
    const xCheck = ecdh.computeSecret(Buffer.concat([Buffer.of(4), check.point.x, check.point.y]));
    assert.deepEqual(ecmrFromX(x, xCheck, server.point, check.c), ecmrMultiply(server.scalar, minusG));
  });
});

describe("the ECMR thread", () => {
  it("gives what ecmrMultiply gives, off the event loop, and EcPointError for a bad point", async () => {
    const thread = new EcmrThread();
    try {
      const server = p521Pair();
      const clients = [p521Pair(), p521Pair(), p521Pair()];
      const products = await Promise.all(clients.map((c) => thread.multiply(server.scalar, c.point)));
      clients.forEach((c, i) => assert.deepEqual(products[i], ecmrMultiply(server.scalar, c.point)));
      const zero = Buffer.alloc(P521_COORDINATE_LENGTH);
      await assert.rejects(thread.multiply(server.scalar, { x: zero, y: zero }), EcPointError);
      assert.notDeepEqual(server.scalar, Buffer.alloc(P521_COORDINATE_LENGTH), "the caller's scalar is left as it was");
    } finally {
      thread.close();
    }
  });

  it("refuses work beyond its queue instead of queueing without bound", async () => {
    const thread = new EcmrThread();
    try {
      const server = p521Pair();
      const client = p521Pair();
      const queued = Array.from({ length: MAX_QUEUED_ECMR }, () => thread.multiply(server.scalar, client.point));
      await assert.rejects(thread.multiply(server.scalar, client.point), EcmrBusyError);
      thread.close();
      await Promise.allSettled(queued);
    } finally {
      thread.close();
    }
  });
});

describe("Tang advertisement JWS and thumbprints", { skip }, () => {
  it("an ES512 JWS of two signers verifies with jose jws ver against each signing key", () => {
    const signers = [ecGenerateKeyPair("P-521"), ecGenerateKeyPair("P-521")];
    const exchange = p521Pair();
    const keys = [tangJwk(p521PointOfSpki(signers[0]!.publicKey), "sign"), tangJwk(exchange.point, "exchange")];
    const { payload, protectedHeader, signingInput } = advertisementPayload(keys);
    const signatures = signers.map((s) => ecdsaDerToP1363(new EcdsaPrivateKey(s.privateKey, "P-521").sign(signingInput), "P-521"));
    assert.ok(signatures.every((s) => s.length === 2 * P521_COORDINATE_LENGTH));
    const jws = file(advertisementJws(payload, protectedHeader, signatures));
    for (const s of signers) {
      const verified = jose(["jws", "ver", "-i", jws, "-k", file(tangJwk(p521PointOfSpki(s.publicKey), "sign")), "-O", "-"]);
      assert.deepEqual(JSON.parse(verified), { keys });
    }
    jose(["jws", "ver", "-i", file(advertisementJws(payload, protectedHeader, [signatures[0]!])), "-k", file(keys[0])]);
    const tampered = Buffer.from(signatures[0]!);
    tampered[10] = tampered[10]! ^ 1;
    assert.throws(() => jose(["jws", "ver", "-i", file(advertisementJws(payload, protectedHeader, [tampered])), "-k", file(keys[0])]));
  });

  it("thumbprints under every hash tangd matches equal jose jwk thp's", () => {
    // jose reads a JWK with its "alg" only; the thumbprint covers crv, kty, x and y alone.
    const advertised = tangJwk(p521Pair().point, "sign");
    const jwk = p521Jwk({ x: Buffer.from(advertised.x, "base64url"), y: Buffer.from(advertised.y, "base64url") });
    for (const hash of Object.keys(THUMBPRINT_HASHES) as ThumbprintHash[]) {
      const theirs = jose(["jwk", "thp", "-i", file(advertised), "-a", hash]).trim();
      assert.equal(jwkThumbprint(jwk, hash), theirs, hash);
      assert.ok(matchesThumbprint(jwk, theirs));
    }
    assert.equal(matchesThumbprint(jwk, randomBytes(32).toString("base64url")), false);
  });

  it("a DER signature that is not one on P-521 is refused", () => {
    assert.throws(() => ecdsaDerToP1363(Buffer.from("3006020101020101", "hex").subarray(0, 5), "P-521"), RangeError);
  });
});

// Published P-521 multiples of the base point G: the NIST test vectors collected at
// point-at-infinity.org/ecc/nisttv (k = 1, 2, 3).
const NIST_P521_MULTIPLES: readonly { k: number; x: string; y: string }[] = [
  {
    k: 1,
    x: "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66",
    y: "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650",
  },
  {
    k: 2,
    x: "00433C219024277E7E682FCB288148C282747403279B1CCC06352C6E5505D769BE97B3B204DA6EF55507AA104A3A35C5AF41CF2FA364D60FD967F43E3933BA6D783D",
    y: "00F4BB8CC7F86DB26700A7F3ECEEEED3F0B5C6B5107C4DA97740AB21A29906C42DBBB3E377DE9F251F6B93937FA99A3248F4EAFCBE95EDC0F4F71BE356D661F41B02",
  },
  {
    k: 3,
    x: "01A73D352443DE29195DD91D6A64B5959479B52A6E5B123D9AB9E5AD7A112D7A8DD1AD3F164A3A4832051DA6BD16B59FE21BAEB490862C32EA05A5919D2EDE37AD7D",
    y: "013E9B03B97DFA62DDD9979F86C6CAB814F2F1557FA82A9D0317D2F8AB1FA355CEEC2E2DD4CF8DC575B02D5ACED1DEC3C70CF105C9BC93A590425F588CA1EE86C0E5",
  },
];

describe("s·X against published P-521 vectors", () => {
  const point = (v: { x: string; y: string }): EcPoint => ({ x: Buffer.from(v.x, "hex"), y: Buffer.from(v.y, "hex") });
  const scalar = (k: number): Buffer => {
    const s = Buffer.alloc(P521_COORDINATE_LENGTH);
    s.writeUInt32BE(k, P521_COORDINATE_LENGTH - 4);
    return s;
  };
  const G = point(NIST_P521_MULTIPLES[0]!);

  it("k·G is the published multiple for k = 1, 2, 3, and each published point passes the point check", () => {
    for (const v of NIST_P521_MULTIPLES) {
      checkP521Point(point(v));
      assert.deepEqual(ecmrMultiply(scalar(v.k), G), point(v), `k = ${v.k}`);
    }
  });
});
