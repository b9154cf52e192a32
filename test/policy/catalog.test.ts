// The action catalogue (src/policy/catalog.ts) against everything that derives from it or must
// agree with it: each protocol's action table, the policy parser's known actions, the presets, the
// audit records' readOnly flag, the SDK's action names, and the lists it replaced.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ACTIONS, SERVICE_INFORMATION_ACTIONS, type ActionTable } from "../../src/api/tencent/actions.js";
import { CAM_ACTIONS, STS_ACTIONS } from "../../src/api/tencent/cam.js";
import { CLOUDAUDIT_ACTIONS } from "../../src/api/tencent/cloudaudit.js";
import { AUDIT_SERVICES } from "../../src/audit/record.js";
import { LIFECYCLE, type KeyAction } from "../../src/keys/lifecycle.js";
import {
  actionNames,
  catalogAction,
  CATALOG_ACTIONS,
  changesState,
  KMS_POLICY_ACTIONS_OF,
  PRODUCTS,
  type CatalogActionName,
  type Product,
} from "../../src/policy/catalog.js";
import { KNOWN_ACTIONS, POLICY_SERVICES } from "../../src/policy/document.js";
import { QcloudKMSCryptoAccess, QcloudKMSFullAccess, QcloudKMSReadOnlyAccess } from "../../src/policy/presets.js";
import type { Product as SdkProduct } from "../../src/sdk/client.js";
import type { KmsAction } from "../../src/sdk/index.js";

/** True when A and B are the same union of names (compile-time). */
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// The SDK may not import server code, so its names are checked here: this fails to compile when they differ.
const sdkActionsAreTheCatalogue: Equal<KmsAction, CatalogActionName<"kms">> = true;
const sdkProductsAreTheCatalogue: Equal<SdkProduct, Product> = true;

const TABLES: Readonly<Record<Product, object>> = { kms: ACTIONS, cam: CAM_ACTIONS, sts: STS_ACTIONS, cloudaudit: CLOUDAUDIT_ACTIONS };

/** The audit records' state-changing actions before the catalogue (api/server.ts STATE_CHANGING), kept once to prove the move changed nothing. */
const OLD_STATE_CHANGING = [
  ...[
    "CreateKey",
    "EnableKey",
    "DisableKey",
    "EnableKeys",
    "DisableKeys",
    "UpdateAlias",
    "UpdateKeyDescription",
    // Added with the AWS door (Tresor extensions of the Tencent door too): they change a key's tags.
    "TagResource",
    "UntagResource",
    "ArchiveKey",
    "CancelKeyArchive",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKey",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteImportedKeyMaterial",
    // KMIP's (after the move): Register, Activate, Revoke and Destroy change state.
    "RegisterKey",
    "ActivateKey",
    "ModifyKeyAttributes",
    "RevokeKey",
    "DestroyKey",
    // Added with Tang servers, after the move.
    "CreateTangServer",
    "UpdateTangServer",
    "RotateTangServer",
    "EnableTangServer",
    "DisableTangServer",
  ].map((a) => `kms:${a}`),
  ...[
    "AddUser",
    "DeleteUser",
    "AddKmipClient",
    "DeleteKmipClient",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreatePolicy",
    "DeletePolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "CreateRole",
    "DeleteRole",
    "AttachRolePolicy",
    "DetachRolePolicy",
  ].map((a) => `cam:${a}`),
  "sts:AssumeRole",
];

/** The presets' action lists before the catalogue (policy/presets.ts), kept once. */
const OLD_CRYPTO_ACTIONS = [
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
];
// GetKeyMaterial (KMIP's export) reads, but no read-only preset may hand out key material.
const OLD_READ_ONLY_ACTIONS = KNOWN_ACTIONS.kms.filter((a) => /^(Describe|List|Get)/.test(a) && a !== "GetParametersForImport" && a !== "GetKeyMaterial");

const sorted = (list: Iterable<string>): string[] => [...list].sort();

describe("the action catalogue", () => {
  it("has exactly the actions each protocol's table serves, product by product", () => {
    assert.deepEqual([...PRODUCTS], ["kms", "cam", "sts", "cloudaudit"]);
    const everyDoor = (product: Product) => actionNames(product).filter((name) => catalogAction(product, name)?.only === undefined);
    for (const product of PRODUCTS) assert.deepEqual(sorted(Object.keys(TABLES[product])), sorted(everyDoor(product)), product);
    // The KMIP door's own: the exportable objects' operations that no HTTP door has.
    assert.deepEqual(CATALOG_ACTIONS.filter((a) => a.only === "kmip").map((a) => a.camName), ["kms:GetKeyMaterial", "kms:RegisterKey", "kms:ActivateKey", "kms:ModifyKeyAttributes", "kms:RevokeKey", "kms:DestroyKey"]);
  });

  it("types each table so that a missing or an extra handler does not compile", () => {
    const handler = CLOUDAUDIT_ACTIONS.LookUpEvents;
    // @ts-expect-error DescribeEvents, a catalogue action, has no handler
    const missing: ActionTable<"cloudaudit"> = { LookUpEvents: handler };
    // @ts-expect-error Nonsense has no catalogue entry
    const extra: ActionTable<"cloudaudit"> = { LookUpEvents: handler, DescribeEvents: handler, Nonsense: handler };
    assert.ok(missing && extra);
    assert.equal(sdkActionsAreTheCatalogue, true);
    assert.equal(sdkProductsAreTheCatalogue, true);
  });

  it("has no duplicate and names each action product:Action", () => {
    assert.equal(new Set(CATALOG_ACTIONS.map((a) => a.camName)).size, CATALOG_ACTIONS.length);
    for (const a of CATALOG_ACTIONS) {
      assert.equal(a.camName, `${a.product}:${a.name}`);
      assert.match(a.name, /^[A-Z][A-Za-z0-9]+$/);
    }
  });

  it("is what the policy parser knows, and the audit log's services", () => {
    assert.deepEqual([...POLICY_SERVICES], [...PRODUCTS]);
    for (const product of PRODUCTS) assert.deepEqual([...KNOWN_ACTIONS[product]], [...actionNames(product)]);
    // "tang": the Tang door's records (advertise, recover); it has no caller, so no policy actions.
    assert.deepEqual(
      AUDIT_SERVICES.filter((s) => s !== "" && s !== "tang"),
      [...PRODUCTS],
    );
  });

  it("flags exactly the actions the audit records called state-changing before it", () => {
    assert.deepEqual(sorted(CATALOG_ACTIONS.filter((a) => a.writes).map((a) => a.camName)), sorted(OLD_STATE_CHANGING));
    for (const a of CATALOG_ACTIONS) assert.equal(changesState(a.product, a.name), OLD_STATE_CHANGING.includes(a.camName), a.camName);
  });

  it("flags every action that creates, changes or deletes, whatever its name says", () => {
    const changingVerb = /^(Create|Add|Delete|Update|Enable|Disable|Attach|Detach|Schedule|Cancel|Archive|Rotate|Import|Assume|Tag|Untag)/;
    const readingVerb = /^(Describe|List|Get|LookUp|Simulate)/;
    for (const a of CATALOG_ACTIONS) {
      if (changingVerb.test(a.name)) assert.equal(a.writes, true, `${a.camName} changes state`);
      // GetParametersForImport mints an import token and a wrapping key pair: it writes.
      else if (readingVerb.test(a.name) && a.name !== "GetParametersForImport") assert.equal(a.writes, false, `${a.camName} only reads`);
    }
    // A key action that moves a key to another state writes.
    for (const [step, row] of Object.entries(LIFECYCLE)) {
      if ("to" in row) assert.equal(catalogAction("kms", KMS_POLICY_ACTIONS_OF[step as KeyAction]?.[0] ?? step)?.writes, true, step);
    }
    assert.equal(changesState("kms", "GetParametersForImport"), true);
  });

  it("calls an unknown action, or a prototype's property, read-only and absent", () => {
    for (const [product, name] of [["kms", "Nonsense"], ["", "Encrypt"], ["kms", "__proto__"], ["kms", "constructor"], ["toString", ""]] as const) {
      assert.equal(catalogAction(product, name), undefined);
      assert.equal(changesState(product, name), false);
    }
  });

  it("derives the presets the regex and the hand list gave before, and full access as name/kms:*", () => {
    const named = (p: typeof QcloudKMSFullAccess) => p.document.statement.flatMap((s) => s.action);
    assert.deepEqual(named(QcloudKMSFullAccess), ["name/kms:*"]);
    assert.deepEqual(named(QcloudKMSReadOnlyAccess), OLD_READ_ONLY_ACTIONS.map((a) => `name/kms:${a}`));
    // Later additions, each a crypto use granted by a decision (issue 22): the post-quantum and MAC actions.
    const added = ["PostQuantumCryptoEncrypt", "PostQuantumCryptoDecrypt", "PostQuantumCryptoSign", "PostQuantumCryptoVerify", "GenerateMac", "VerifyMac", "DeriveSharedSecret"];
    assert.deepEqual(sorted(named(QcloudKMSCryptoAccess)), sorted([...OLD_CRYPTO_ACTIONS, ...added].map((a) => `name/kms:${a}`)));
    for (const p of [QcloudKMSFullAccess, QcloudKMSReadOnlyAccess, QcloudKMSCryptoAccess]) {
      assert.deepEqual(p.document.statement.map((s) => s.resource), [["*"]]);
      for (const a of CATALOG_ACTIONS.filter((x) => x.product !== "kms")) assert.ok(!a.presets.includes(p.policyName), `${a.camName} is in ${p.policyName}`);
    }
  });

  it("grants nothing that changes state through the read-only or crypto presets", () => {
    for (const a of CATALOG_ACTIONS) {
      if (a.presets.includes("QcloudKMSReadOnlyAccess") || a.presets.includes("QcloudKMSCryptoAccess")) assert.equal(a.writes, false, a.camName);
    }
  });

  it("gives ReEncrypt's halves the checks they had, and AWS's ScheduleKeyDeletion its own, each naming an action of its product", () => {
    assert.deepEqual(
      { ...KMS_POLICY_ACTIONS_OF },
      { ReEncryptSource: ["ReEncrypt", "Decrypt"], ReEncryptDestination: ["ReEncrypt", "Encrypt"], ScheduleKeyDeletionAws: ["ScheduleKeyDeletion"] },
    );
    for (const a of CATALOG_ACTIONS) {
      for (const [step, names] of Object.entries(a.alsoNeeds ?? {})) {
        assert.ok(step in LIFECYCLE, `${a.camName}: ${step} is not a step of the key lifecycle`);
        for (const n of names) assert.ok(catalogAction(a.product, n), `${a.camName} also needs ${a.product}:${n}, which is not in the catalogue`);
      }
    }
  });

  it("marks as service information the three actions that shared a signature before, none of which writes", () => {
    assert.deepEqual(sorted(SERVICE_INFORMATION_ACTIONS), sorted(["GetServiceStatus", "ListAlgorithms", "GetRegions"]));
    for (const a of CATALOG_ACTIONS.filter((x) => x.serviceInformation)) assert.equal(a.writes, false, a.camName);
  });
});
