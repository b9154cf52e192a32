// TC3-HMAC-SHA256 against the tencentcloud-sdk-nodejs known answers, and against the SDK's own signer.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import sdkSign from "tencentcloud-sdk-nodejs/tencentcloud/common/sign.js";
import { parseTc3Authorization, tc3Authorization, tc3Date, type Tc3SignInput } from "../../src/crypto/tc3.js";

interface Tc3Vector {
  name: string;
  secretId: string;
  secretKey: string;
  method: string;
  host: string;
  contentType: string;
  body: string;
  timestamp: number;
  service: string;
  signedHeaders: string[];
  authorization: string;
}

const file = JSON.parse(readFileSync(new URL("../../../test/vectors/tencentcloud-sdk-nodejs-sign3.json", import.meta.url), "utf8")) as {
  source: string;
  vectors: Tc3Vector[];
};

// The SDK module is CommonJS with `exports.default = Sign`.
const Sign = sdkSign.default;

function signInput(v: Omit<Tc3Vector, "name" | "authorization">): Tc3SignInput {
  return {
    secretId: v.secretId,
    secretKey: v.secretKey,
    service: v.service,
    timestamp: v.timestamp,
    request: {
      method: v.method,
      path: "/",
      query: "",
      headers: { "content-type": v.contentType, host: v.host },
      signedHeaders: v.signedHeaders,
      payload: v.body,
    },
  };
}

const SIGNATURE_OF_REFERENCE = "96473b50fe407833672a5d6d067238d88bb44c8abcc39ef83baa3132afbfadd3";

describe("tc3Authorization", () => {
  it("gives the signature of shared/reference/tencent-kms-api.md §2.2", () => {
    const auth = tc3Authorization(
      signInput({
        secretId: "test-secret-id",
        secretKey: "test-secret-key",
        method: "POST",
        host: "cvm.tencentcloudapi.com",
        contentType: "application/json",
        body: '{"Action":"DescribeInstances","Version":"2017-03-12"}',
        timestamp: 1640995200,
        service: "cvm",
        signedHeaders: ["content-type", "host"],
      }),
    );
    assert.ok(auth.endsWith(`, Signature=${SIGNATURE_OF_REFERENCE}`), auth);
  });

  for (const v of file.vectors) {
    it(`reproduces the SDK's known answer: ${v.name}`, () => {
      assert.equal(tc3Authorization(signInput(v)), v.authorization);
    });
  }

  it("agrees with the SDK's Sign.sign3 on random inputs", () => {
    const alnum = (n: number): string => randomBytes(n).toString("base64url").replace(/[-_]/g, "x").slice(0, n);
    for (let i = 0; i < 50; i++) {
      const secretId = `AKID${alnum(32)}`;
      const secretKey = alnum(32);
      const service = alnum(3 + (i % 5)).toLowerCase();
      const host = `${service}.${alnum(6).toLowerCase()}.example`;
      const body = Buffer.from(JSON.stringify({ Action: "Encrypt", KeyId: alnum(10), Plaintext: randomBytes(randomInt(0, 200)).toString("base64") }));
      const timestamp = randomInt(1_000_000_000, 4_000_000_000);
      const contentType = i % 2 === 0 ? "application/json" : "application/json; charset=utf-8";
      const ours = tc3Authorization({
        secretId,
        secretKey,
        service,
        timestamp,
        request: {
          method: "POST",
          path: "/",
          query: "",
          headers: { "content-type": contentType, host },
          signedHeaders: ["content-type", "host"],
          payload: body,
        },
      });
      const theirs = Sign.sign3({
        method: "POST",
        url: `https://${host}/`,
        payload: body,
        timestamp,
        service,
        secretId,
        secretKey,
        multipart: false,
        boundary: "",
        headers: { "Content-Type": contentType },
      });
      assert.equal(ours, theirs, `case ${i}`);
    }
  });
});

describe("tc3Date", () => {
  it("is the UTC date of the timestamp, across day boundaries and back (it keeps the last day)", () => {
    const midnight = 1_733_443_200; // 2024-12-06T00:00:00Z
    const times = [midnight - 1, midnight, midnight + 86_399, midnight + 86_400, midnight - 1, 0, 253_402_300_799, midnight];
    for (let i = 0; i < 200; i++) times.push(randomInt(0, 2 ** 32));
    for (const t of times) assert.equal(tc3Date(t), new Date(t * 1000).toISOString().slice(0, 10), `timestamp ${t}`);
  });
});

describe("parseTc3Authorization", () => {
  const header = file.vectors[0]!.authorization;

  it("round-trips what tc3Authorization produces", () => {
    const v = file.vectors[0]!;
    const parsed = parseTc3Authorization(tc3Authorization(signInput(v)));
    assert.deepEqual(parsed, {
      secretId: "test-secret-id",
      date: "2022-01-01",
      service: "cvm",
      signedHeaders: ["content-type", "host"],
      signature: SIGNATURE_OF_REFERENCE,
    });
  });

  it("accepts the header without the space after each comma", () => {
    assert.equal(parseTc3Authorization(header.replaceAll(", ", ","))?.signature, SIGNATURE_OF_REFERENCE);
  });

  const rejects: Array<[string, string]> = [
    ["empty", ""],
    ["missing Credential", header.replace(/Credential=[^,]+, /, "")],
    ["missing SignedHeaders", header.replace(/SignedHeaders=[^,]+, /, "")],
    ["missing Signature", header.replace(/, Signature=.*$/, "")],
    ["empty signature", header.replace(/Signature=.*$/, "Signature=")],
    ["short signature", header.slice(0, -2)],
    ["credential scope without tc3_request", header.replace("/tc3_request", "")],
    ["credential scope without date", header.replace("/2022-01-01", "")],
    ["wrong algorithm", header.replace("TC3-HMAC-SHA256", "TC3-HMAC-SHA1")],
    ["lower-case algorithm", header.replace("TC3-HMAC-SHA256", "tc3-hmac-sha256")],
    ["upper-case hex signature", header.replace(SIGNATURE_OF_REFERENCE, SIGNATURE_OF_REFERENCE.toUpperCase())],
    ["leading space", ` ${header}`],
    ["trailing space", `${header} `],
    ["two spaces after the algorithm", header.replace("TC3-HMAC-SHA256 ", "TC3-HMAC-SHA256  ")],
    ["two spaces after a comma", header.replace(", SignedHeaders", ",  SignedHeaders")],
    ["space before a comma", header.replace(", Signature", " , Signature")],
    ["space around =", header.replace("Signature=", "Signature = ")],
    ["upper-case signed header", header.replace("content-type;host", "Content-Type;host")],
    ["parts reordered", header.replace(/Credential=([^,]+), SignedHeaders=([^,]+),/, "SignedHeaders=$2, Credential=$1,")],
  ];
  for (const [what, value] of rejects) {
    it(`rejects: ${what}`, () => {
      assert.notEqual(value, header, "the mutation must change the header");
      assert.equal(parseTc3Authorization(value), undefined, value);
    });
  }
});
