// The preset policies every account has, built from the action catalogue and checked by the parser
// when this module loads, so a preset can never hold what a user's document could not.

import { KNOWN_ACTIONS, parsePolicyDocument, type PolicyDocument } from "./document.js";

export interface PresetPolicy {
  readonly policyId: number;
  readonly policyName: string;
  readonly description: string;
  readonly document: PolicyDocument;
}

/** Deep-freezes a parsed document: evaluate() caches compiled patterns per document object. */
function frozen(document: PolicyDocument): PolicyDocument {
  for (const s of document.statement) {
    Object.freeze(s.action);
    Object.freeze(s.resource);
    Object.freeze(s);
  }
  Object.freeze(document.statement);
  return Object.freeze(document);
}

function preset(policyId: number, policyName: string, description: string, actions: readonly string[]): PresetPolicy {
  const text = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: actions, resource: "*" }] });
  return Object.freeze({ policyId, policyName, description, document: frozen(parsePolicyDocument(text, "identity")) });
}

/**
 * Read-only: every kms Describe*, List* and Get* action except GetParametersForImport, which is not
 * a read: it mints an import token and a wrapping key pair, the first step of changing a key's
 * material. Named one by one rather than as wildcards, so that a Get* action added later is not
 * granted to read-only users without a decision.
 */
const READ_ONLY_ACTIONS = KNOWN_ACTIONS.kms.filter((a) => /^(Describe|List|Get)/.test(a) && a !== "GetParametersForImport");

/**
 * Crypto use only: what an application needs to use keys it is given, nothing that changes a key
 * or lists the account. DescribeKey and DescribeKeys are included: an application checks a key's
 * state, usage and spec before choosing an algorithm, and metadata holds no key material.
 * GetPublicKey is included: encrypting to or verifying with an asymmetric key locally needs it.
 * ListKeys, ListKeyDetail and the account-level service queries are left out.
 */
const CRYPTO_ACTIONS = [
  "Encrypt",
  "Decrypt",
  "ReEncrypt",
  "GenerateDataKey",
  "GenerateRandom",
  "SignByAsymmetricKey",
  "VerifyByAsymmetricKey",
  "AsymmetricRsaDecrypt",
  "AsymmetricSm2Decrypt",
  "GetPublicKey",
  "DescribeKey",
  "DescribeKeys",
] as const;

export const QcloudKMSFullAccess: PresetPolicy = preset(1, "QcloudKMSFullAccess", "Full access to KMS: every kms action on every key.", ["name/kms:*"]);

export const QcloudKMSReadOnlyAccess: PresetPolicy = preset(
  2,
  "QcloudKMSReadOnlyAccess",
  "Read-only access to KMS: describe, list and get key metadata, public keys and service status; no cryptographic use, no changes.",
  READ_ONLY_ACTIONS.map((a) => `name/kms:${a}`),
);

export const QcloudKMSCryptoAccess: PresetPolicy = preset(
  3,
  "QcloudKMSCryptoAccess",
  "Crypto use of KMS keys only: encrypt, decrypt, re-encrypt, data keys, random, sign, verify, asymmetric decrypt, public keys and key metadata; no key management.",
  CRYPTO_ACTIONS.map((a) => `name/kms:${a}`),
);

export const PRESET_POLICIES: readonly PresetPolicy[] = Object.freeze([QcloudKMSFullAccess, QcloudKMSReadOnlyAccess, QcloudKMSCryptoAccess]);
