// SigV4 (src/crypto/sigv4.ts) against AWS's published Signature Version 4 test suite vectors
// (get-vanilla, get-vanilla-query-order-key-case: credentials AKIDEXAMPLE, 20150830T123600Z,
// us-east-1, service "service") and against an independent signer, the AWS SDK's own
// (@smithy/signature-v4), over seeded random requests.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import {
  parseAmzDate,
  parseSigV4Authorization,
  sigV4CanonicalRequest,
  sigV4Signature,
  sigV4SigningKey,
  sigV4StringToSign,
} from "../../src/crypto/sigv4.js";
import { NodeSha256 } from "../api/aws/helpers.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE = "20150830T123600Z";
const SCOPE = "20150830/us-east-1/service/aws4_request";
const EMPTY_HASH = createHash("sha256").update("").digest("hex");

function signature(method: string, path: string, query: string, headers: Record<string, string>, payloadHash: string): string {
  const signedHeaders = Object.keys(headers).sort();
  const canonical = sigV4CanonicalRequest({ method, path, query, headers, signedHeaders, payloadHash });
  return sigV4Signature(sigV4SigningKey(SECRET, "20150830", "us-east-1", "service"), sigV4StringToSign(AMZ_DATE, SCOPE, canonical)).toString("hex");
}

describe("SigV4 against the AWS test suite", () => {
  const headers = { host: "example.amazonaws.com", "x-amz-date": AMZ_DATE };

  it("get-vanilla", () => {
    assert.equal(signature("GET", "/", "", headers, EMPTY_HASH), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  });

  it("get-vanilla-query-order-key-case: the query is sorted before signing", () => {
    assert.equal(signature("GET", "/", "Param2=value2&Param1=value1", headers, EMPTY_HASH), "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
  });

  it("parses the suite's Authorization header and refuses malformed ones", () => {
    const parsed = parseSigV4Authorization(
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    assert.deepEqual(parsed, {
      accessKeyId: "AKIDEXAMPLE",
      date: "20150830",
      region: "us-east-1",
      service: "service",
      signedHeaders: ["host", "x-amz-date"],
      signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    });
    for (const bad of [
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=XYZ",
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015-08-30/us-east-1/service/aws4_request, SignedHeaders=host, Signature=" + "0".repeat(64),
      "TC3-HMAC-SHA256 Credential=a/2015-08-30/kms/tc3_request, SignedHeaders=host, Signature=" + "0".repeat(64),
      "",
    ]) {
      assert.equal(parseSigV4Authorization(bad), undefined, bad);
    }
    assert.equal(parseAmzDate(AMZ_DATE), Date.UTC(2015, 7, 30, 12, 36, 0) / 1000);
    assert.equal(parseAmzDate("2015-08-30T12:36:00Z"), undefined);
  });
});

/** mulberry32: a small seeded generator, so a failure can be replayed from its printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("SigV4 against the AWS SDK's signer", () => {
  it("computes the SDK's signature for random POST requests (bodies, header values, targets)", async () => {
    const seed = Number(process.env.TRESOR_TEST_SEED ?? 20261206);
    const random = prng(seed);
    const pick = (chars: string, n: number) => Array.from({ length: n }, () => chars[Math.floor(random() * chars.length)]).join("");
    for (let i = 0; i < 50; i++) {
      const body = pick('abcXYZ019 {}":,\n\u00e9', Math.floor(random() * 200));
      const headers = {
        host: `127.0.0.1:${1024 + Math.floor(random() * 60000)}`,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `TrentService.${pick("ABCDEFGHabcdefgh", 1 + Math.floor(random() * 20))}`,
        "x-custom": `  ${pick("ab  c", 10)}  `,
      };
      const secret = pick("ABCDEFabcdef0123456789/+", 40);
      const date = new Date(Date.UTC(2026, 0, 1) + Math.floor(random() * 1e9) * 1000);
      const signer = new SignatureV4({ service: "kms", region: "eu-test-1", credentials: { accessKeyId: "AKIDTEST", secretAccessKey: secret }, sha256: NodeSha256 });
      const signed = await signer.sign({ method: "POST", protocol: "http:", hostname: "127.0.0.1", path: "/", headers: { ...headers }, body }, { signingDate: date });
      const auth = parseSigV4Authorization(String(signed.headers.authorization));
      assert.ok(auth, `seed ${seed}, case ${i}: ${String(signed.headers.authorization)}`);
      const sent: Record<string, string> = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
      const amzDate = sent["x-amz-date"]!;
      const canonical = sigV4CanonicalRequest({
        method: "POST",
        path: "/",
        query: "",
        headers: sent,
        signedHeaders: auth.signedHeaders,
        payloadHash: createHash("sha256").update(body).digest("hex"),
      });
      const ours = sigV4Signature(sigV4SigningKey(secret, auth.date, auth.region, auth.service), sigV4StringToSign(amzDate, `${auth.date}/${auth.region}/${auth.service}/aws4_request`, canonical));
      assert.equal(ours.toString("hex"), auth.signature, `seed ${seed}, case ${i}`);
    }
  });
});
