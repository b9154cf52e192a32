// The preset policies every account has, built from the action catalogue (catalog.ts: which presets
// grant each action) and checked by the parser when this module loads, so a preset can never hold
// what a user's document could not.

import { actionNames, CATALOG_ACTIONS, type PresetName } from "./catalog.js";
import { parsePolicyDocument, type PolicyDocument } from "./document.js";

export interface PresetPolicy {
  readonly policyId: number;
  readonly policyName: PresetName;
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

/**
 * A preset's statement: the catalogue's actions that list it, named one by one, so that an action
 * added later is granted only by a decision in the catalogue. A preset granting every action of a
 * product is written as Tencent writes it, name/<product>:*.
 */
function presetActions(name: PresetName): string[] {
  const granted = CATALOG_ACTIONS.filter((a) => a.presets.includes(name));
  const products = [...new Set(granted.map((a) => a.product))];
  return products.flatMap((product) => {
    const mine = granted.filter((a) => a.product === product);
    return mine.length === actionNames(product).length ? [`name/${product}:*`] : mine.map((a) => `name/${a.camName}`);
  });
}

function preset(policyId: number, policyName: PresetName, description: string): PresetPolicy {
  const text = JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: presetActions(policyName), resource: "*" }] });
  return Object.freeze({ policyId, policyName, description, document: frozen(parsePolicyDocument(text, "identity")) });
}

export const QcloudKMSFullAccess: PresetPolicy = preset(1, "QcloudKMSFullAccess", "Full access to KMS: every kms action on every key.");

export const QcloudKMSReadOnlyAccess: PresetPolicy = preset(
  2,
  "QcloudKMSReadOnlyAccess",
  "Read-only access to KMS: describe, list and get key metadata, public keys and service status; no cryptographic use, no changes.",
);

export const QcloudKMSCryptoAccess: PresetPolicy = preset(
  3,
  "QcloudKMSCryptoAccess",
  "Crypto use of KMS keys only: encrypt, decrypt, re-encrypt, data keys, random, sign, verify, asymmetric decrypt, public keys and key metadata; no key management.",
);

export const PRESET_POLICIES: readonly PresetPolicy[] = Object.freeze([QcloudKMSFullAccess, QcloudKMSReadOnlyAccess, QcloudKMSCryptoAccess]);
