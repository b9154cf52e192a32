// SigV4 (AWS4-HMAC-SHA256) verification of an AWS request against Tresor's own access keys: the
// access key id is a SecretId, the secret access key its SecretKey; X-Amz-Security-Token carries
// the token of AssumeRole's temporary credentials. The credential scope must name service kms and
// this server's region. X-Amz-Target must be signed, so a signature serves one action only.

import { timingSafeEqual } from "node:crypto";
import { sha256Hex } from "../../crypto/tc3.js";
import { parseAmzDate, parseSigV4Authorization, sigV4CanonicalRequest, sigV4Signature, sigV4SigningKey, sigV4StringToSign } from "../../crypto/sigv4.js";
import { KmsError, needs } from "../../service/errors.js";
import type { AccessControl, Caller } from "../../service/access-control.js";
import { MAX_CLOCK_SKEW_SECONDS, SigningKeyCache, signedParts, type IncomingSignedRequest } from "../tencent/authenticate.js";

export const SIGNING_SERVICE = "kms";
/** Headers every accepted signature covers. */
const REQUIRED_SIGNED_HEADERS = ["host", "x-amz-date", "x-amz-target"] as const;

function header(req: IncomingSignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

export class SigV4Authenticator {
  readonly #signingKeys = new SigningKeyCache();

  constructor(
    private readonly access: AccessControl,
    private readonly region: string,
    private readonly nowSeconds: () => number,
  ) {}

  /** The caller of a request whose signature verifies; the region of its credential scope is checked too. */
  async authenticate(req: IncomingSignedRequest): Promise<Caller> {
    const authorization = header(req, "authorization");
    needs(authorization, "InvalidAuthorization", `the "Authorization" header is required: sign the request with Signature Version 4`);
    const auth = parseSigV4Authorization(authorization);
    needs(auth, "InvalidAuthorization", `the "Authorization" header is not a valid AWS4-HMAC-SHA256 authorization`);
    for (const name of REQUIRED_SIGNED_HEADERS) {
      needs(auth.signedHeaders.includes(name), "InvalidAuthorization", `"SignedHeaders" must include ${REQUIRED_SIGNED_HEADERS.join(", ")}`);
    }
    needs(auth.service === SIGNING_SERVICE, "InvalidAuthorization", `the credential scope's service must be ${SIGNING_SERVICE}`);
    needs(auth.region === this.region, "UnsupportedRegion", `Credential should be scoped to a valid region: this service's region is ${this.region}`);

    const amzDate = header(req, "x-amz-date");
    needs(amzDate, "InvalidAuthorization", `the "X-Amz-Date" header is required`);
    const timestamp = parseAmzDate(amzDate);
    needs(timestamp !== undefined, "InvalidAuthorization", `"X-Amz-Date" must be a date like 20260101T000000Z`);
    needs(Math.abs(this.nowSeconds() - timestamp) <= MAX_CLOCK_SKEW_SECONDS, "SignatureExpire", `Signature expired: "X-Amz-Date" is more than 5 minutes away from the server's time`);
    needs(auth.date === amzDate.slice(0, 8), "SignatureFailure", `the credential scope's date does not match "X-Amz-Date"`);

    // With a session token the access key id is a TmpSecretId from AssumeRole; without, an access key's.
    const token = header(req, "x-amz-security-token");
    const credential = token ? await this.access.resolveTemporaryCredential(auth.accessKeyId, token) : await this.access.resolveAccessKey(auth.accessKeyId);
    needs(credential, "SecretIdNotFound", `The security token included in the request is invalid: the access key id is unknown or inactive`);

    // The payload hash is always computed here: a client may send none (the AWS CLI does not), and
    // one it sends is signed with the body it covers, so a mismatch fails the signature below.
    const canonical = sigV4CanonicalRequest({
      ...signedParts(req, auth.signedHeaders),
      method: req.method,
      signedHeaders: auth.signedHeaders,
      payloadHash: sha256Hex(req.body),
    });
    const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
    const signingKey = await this.#signingKeys.get(`aws4\0${auth.accessKeyId}\0${auth.date}\0${auth.region}`, credential.version, async () =>
      sigV4SigningKey(await credential.unwrapSecret(), auth.date, auth.region, auth.service),
    );
    const expected = sigV4Signature(signingKey, sigV4StringToSign(amzDate, scope, canonical));
    const given = Buffer.from(auth.signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new KmsError("SignatureFailure", "The request signature we calculated does not match the signature you provided");
    }
    return this.access.callerFor(credential, req.sourceIp);
  }
}
