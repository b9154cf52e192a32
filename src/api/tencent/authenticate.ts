// TC3-HMAC-SHA256 verification of an incoming request. The credential scope's service must be the
// product the request is for (kms, cam, sts, cloudaudit), so a signature for one product never
// serves another; within a product a signature that does not cover X-TC-Action is bound to the
// first action it was accepted with (signature-bindings.ts).

import { timingSafeEqual } from "node:crypto";
import { parseTc3Authorization, tc3CanonicalRequest, tc3Date, tc3Signature, tc3SigningKey, tc3StringToSign } from "../../crypto/tc3.js";
import { KmsError, needs } from "../../service/errors.js";
import type { AccessControl, Caller } from "../../service/access-control.js";
import { AUDIT_FLAGS } from "../../service/request-audit.js";
import { SignatureBindings, type SignatureBinder } from "./signature-bindings.js";

export const MAX_CLOCK_SKEW_SECONDS = 300;
/** Signatures remembered per node for their validity window: about 60 MB at the cap. */
export const DEFAULT_SIGNATURE_BINDINGS = 1_000_000;

/** A table of signature bindings sized for a node, remembering each signature for its validity window. */
export function nodeSignatureBindings(maxEntries: number = DEFAULT_SIGNATURE_BINDINGS): SignatureBindings {
  return new SignatureBindings(maxEntries, MAX_CLOCK_SKEW_SECONDS);
}

export interface AuthenticatorOptions {
  /** Refuse requests whose SignedHeaders lack x-tc-action (`tresor serve --require-signed-action`). */
  requireSignedAction?: boolean;
  /** How many signatures without a signed action are remembered (default 1,000,000). */
  maxSignatureBindings?: number;
  /** Where bindings are kept when not in this process's own table (a worker: the supervisor's). */
  signatureBindings?: SignatureBinder;
}

/** What the request is for, as the server routed it. */
export interface RequestTarget {
  /** The product of X-TC-Version: the only service a credential scope may name. */
  product: string;
  /** "version:Action" for an action of the catalogue (an interned string); undefined for an unknown action. */
  action: string | undefined;
  /** The request's audit flags, for a signature reused with another action. */
  flags: Set<string>;
}

export interface IncomingSignedRequest {
  method: string;
  /** The path and query as received. */
  url: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
  /** The address the request came from, for policy conditions on qcs:ip. */
  sourceIp?: string;
}

function header(req: IncomingSignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * What a canonical request takes from the request as received: its path and query, and the value
 * of each signed header (`value` may rewrite one, as TC3 does the host); a signed header the
 * request lacks is InvalidAuthorization.
 */
export function signedParts(
  req: IncomingSignedRequest,
  signedHeaders: readonly string[],
  value: (name: string, value: string) => string = (_name, v) => v,
): { path: string; query: string; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const given = req.headers[name];
    const text = Array.isArray(given) ? given.join(",") : given;
    needs(text !== undefined, "InvalidAuthorization", `the signed header "${name}" is missing from the request`);
    headers[name] = value(name, text);
  }
  const queryStart = req.url.indexOf("?");
  return {
    path: queryStart === -1 ? req.url : req.url.slice(0, queryStart),
    query: queryStart === -1 ? "" : req.url.slice(queryStart + 1),
    headers,
  };
}

/** Host without port, as the SDKs put it in the canonical request. */
function hostname(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

/** Derived signing keys, per access key, date and service: saves three HMACs per request. */
export class SigningKeyCache {
  readonly #entries = new Map<string, { version: string; key: Buffer }>();
  async get(id: string, version: string, derive: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.#entries.get(id);
    if (hit && hit.version === version) return hit.key;
    const key = await derive();
    if (this.#entries.size >= 10_000) this.#entries.clear();
    this.#entries.set(id, { version, key });
    return key;
  }
}

export class Tc3Authenticator {
  readonly #signingKeys = new SigningKeyCache();
  readonly #bindings: SignatureBinder;
  readonly #requireSignedAction: boolean;

  constructor(
    private readonly access: AccessControl,
    private readonly nowSeconds: () => number,
    options: AuthenticatorOptions = {},
  ) {
    this.#requireSignedAction = options.requireSignedAction ?? false;
    this.#bindings = options.signatureBindings ?? nodeSignatureBindings(options.maxSignatureBindings);
  }

  async authenticate(req: IncomingSignedRequest, target: RequestTarget): Promise<Caller> {
    const authorization = header(req, "authorization");
    needs(authorization, "InvalidAuthorization", `the "Authorization" header is required`);
    const auth = parseTc3Authorization(authorization);
    needs(auth, "InvalidAuthorization", `the "Authorization" header is not a valid TC3-HMAC-SHA256 authorization`);
    needs(
      auth.signedHeaders.includes("content-type") && auth.signedHeaders.includes("host"),
      "InvalidAuthorization",
      `"SignedHeaders" must include content-type and host`,
    );
    const signsAction = auth.signedHeaders.includes("x-tc-action");
    needs(
      signsAction || !this.#requireSignedAction,
      "InvalidAuthorization",
      `"SignedHeaders" must include x-tc-action: this server refuses requests whose action is not signed`,
    );
    needs(
      auth.service === target.product,
      "InvalidAuthorization",
      `the credential scope's service "${printable(auth.service)}" must be "${target.product}", the product of this X-TC-Version ` +
        `(the official SDKs sign with the first label of their endpoint: use an endpoint named ${target.product}.<host>)`,
    );

    const timestampText = header(req, "x-tc-timestamp");
    needs(timestampText, "MissingParameter", `the "X-TC-Timestamp" header is required`);
    needs(/^\d{1,12}$/.test(timestampText), "InvalidParameter", `the "X-TC-Timestamp" header must be unix seconds`);
    const timestamp = Number(timestampText);
    needs(Math.abs(this.nowSeconds() - timestamp) <= MAX_CLOCK_SKEW_SECONDS, "SignatureExpire", `"X-TC-Timestamp" is more than 5 minutes away from the server's time`);
    needs(auth.date === tc3Date(timestamp), "SignatureFailure", `the credential scope's date does not match "X-TC-Timestamp"`);

    // With X-TC-Token the SecretId is a TmpSecretId from AssumeRole; without it, an access key's.
    const token = header(req, "x-tc-token");
    const credential = token ? await this.access.resolveTemporaryCredential(auth.secretId, token) : await this.access.resolveAccessKey(auth.secretId);
    needs(credential, "SecretIdNotFound", `the SecretId is unknown or inactive`);

    const canonical = tc3CanonicalRequest({
      ...signedParts(req, auth.signedHeaders, (name, value) => (name === "host" ? hostname(value) : value)),
      method: req.method,
      signedHeaders: auth.signedHeaders,
      payload: req.body,
    });
    const scope = `${auth.date}/${auth.service}/tc3_request`;
    const signingKey = await this.#signingKeys.get(`${auth.secretId}\0${auth.date}\0${auth.service}`, credential.version, async () =>
      tc3SigningKey(await credential.unwrapSecret(), auth.date, auth.service),
    );
    const expected = Buffer.from(tc3Signature(signingKey, tc3StringToSign(timestamp, scope, canonical)), "hex");
    const given = Buffer.from(auth.signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new KmsError("SignatureFailure", "the request signature does not match");
    }
    if (!signsAction && target.action !== undefined) {
      // Bound only once the signature verified, so no one can reserve signatures they cannot make.
      const outcome = await this.#bindings.bind(auth.signature, timestamp, target.action, this.nowSeconds());
      if (!outcome.bound && !outcome.sameAction) {
        target.flags.add(AUDIT_FLAGS.signatureReused);
        throw new KmsError(
          "SignatureFailure",
          `this signature was already used for another action within its validity window: a new request needs a new signature (sign x-tc-action to use one signature for several actions)`,
        );
      }
    }
    return this.access.callerFor(credential, req.sourceIp);
  }
}

/** At most 32 characters of a value, with anything outside printable ASCII shown as "?". */
function printable(value: string): string {
  return value.slice(0, 32).replace(/[^\x20-\x7e]/g, "?");
}
