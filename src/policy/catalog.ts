// The action catalogue: every action Tresor serves, declared once and protocol-neutral. For each,
// its product, whether it changes stored state, the preset policies that grant it and the other
// policy actions it needs. The policy parser's known actions, the presets, the audit records'
// readOnly flag, the metrics' action labels and every protocol's action table derive from it.
// It lives in policy/ (not service/) because the policy parser and the presets read it, and
// imports point down only.

import type { KeyAction } from "../keys/lifecycle.js";

export type PresetName = "QcloudKMSFullAccess" | "QcloudKMSReadOnlyAccess" | "QcloudKMSCryptoAccess";

export interface ActionEntry {
  /** Changes stored state; its audit record is then not read-only. */
  readonly writes: boolean;
  /** The preset policies that grant it; each new action needs this decision. */
  readonly presets: readonly PresetName[];
  /**
   * Describes the service rather than the caller's keys or principals, and changes nothing: one
   * signature may serve any of these actions, since answering one in place of another discloses
   * nothing (api/tencent/signature-bindings.ts).
   */
  readonly serviceInformation?: true;
  /**
   * The one door that serves it (KMIP's exportable-key operations): the other doors' action tables
   * leave it out. Absent: every door of the product serves it.
   */
  readonly only?: "kmip";
  /** Per step of the key lifecycle, the other actions of its product whose permission it also needs. */
  readonly alsoNeeds?: Readonly<Partial<Record<KeyAction, readonly string[]>>>;
}

const MANAGE = ["QcloudKMSFullAccess"] as const;
const READ = ["QcloudKMSFullAccess", "QcloudKMSReadOnlyAccess"] as const;
const USE = ["QcloudKMSFullAccess", "QcloudKMSCryptoAccess"] as const;
const READ_AND_USE = ["QcloudKMSFullAccess", "QcloudKMSReadOnlyAccess", "QcloudKMSCryptoAccess"] as const;
const NONE = [] as const;

/**
 * The actions, by product. A kms action that lists or describes is read-only, but
 * GetParametersForImport writes: it mints an import token and a wrapping key pair, the first step
 * of changing a key's material. DescribeKey, DescribeKeys and GetPublicKey are crypto use too: an
 * application checks a key's state and spec, or encrypts and verifies locally, before using it.
 */
export const CATALOG = {
  kms: {
    CreateKey: { writes: true, presets: MANAGE },
    DescribeKey: { writes: false, presets: READ_AND_USE },
    DescribeKeys: { writes: false, presets: READ_AND_USE },
    ListKeys: { writes: false, presets: READ },
    ListKeyDetail: { writes: false, presets: READ },
    EnableKey: { writes: true, presets: MANAGE },
    DisableKey: { writes: true, presets: MANAGE },
    EnableKeys: { writes: true, presets: MANAGE },
    DisableKeys: { writes: true, presets: MANAGE },
    UpdateAlias: { writes: true, presets: MANAGE },
    UpdateKeyDescription: { writes: true, presets: MANAGE },
    /** Tresor extension (AWS's TagResource/UntagResource): a key's tags after CreateKey. */
    TagResource: { writes: true, presets: MANAGE },
    UntagResource: { writes: true, presets: MANAGE },
    /** Tresor extension (AWS's ListResourceTags, its own permission there too): a key's tags. */
    ListResourceTags: { writes: false, presets: READ },
    Encrypt: { writes: false, presets: USE },
    Decrypt: { writes: false, presets: USE },
    /**
     * Decrypts under the source key and encrypts under the destination, so each half also needs the
     * right it exercises (as AWS asks kms:ReEncryptFrom and kms:ReEncryptTo): otherwise a caller
     * denied kms:Decrypt on K2 could re-encrypt K2's ciphertexts under a key it may decrypt with.
     */
    ReEncrypt: { writes: false, presets: USE, alsoNeeds: { ReEncryptSource: ["Decrypt"], ReEncryptDestination: ["Encrypt"] } },
    GenerateDataKey: { writes: false, presets: USE },
    GenerateRandom: { writes: false, presets: USE },
    GetServiceStatus: { writes: false, presets: READ, serviceInformation: true },
    ListAlgorithms: { writes: false, presets: READ, serviceInformation: true },
    GetPublicKey: { writes: false, presets: READ_AND_USE },
    AsymmetricRsaDecrypt: { writes: false, presets: USE },
    AsymmetricSm2Decrypt: { writes: false, presets: USE },
    SignByAsymmetricKey: { writes: false, presets: USE },
    VerifyByAsymmetricKey: { writes: false, presets: USE },
    /** Tencent's post-quantum actions (ML-DSA signatures, hybrid ML-KEM encryption). */
    PostQuantumCryptoEncrypt: { writes: false, presets: USE },
    PostQuantumCryptoDecrypt: { writes: false, presets: USE },
    PostQuantumCryptoSign: { writes: false, presets: USE },
    PostQuantumCryptoVerify: { writes: false, presets: USE },
    /** HMAC keys (Tresor actions with AWS's names), and KMIP MAC with a KMIP HMAC object. */
    GenerateMac: { writes: false, presets: USE },
    VerifyMac: { writes: false, presets: USE },
    /** ECDH with a key agreement key (AWS's name and shape). */
    DeriveSharedSecret: { writes: false, presets: USE },
    GetRegions: { writes: false, presets: READ, serviceInformation: true },
    ArchiveKey: { writes: true, presets: MANAGE },
    CancelKeyArchive: { writes: true, presets: MANAGE },
    /** Its AWS form (lifecycle step ScheduleKeyDeletionAws, which also takes Enabled keys) is the same permission. */
    ScheduleKeyDeletion: { writes: true, presets: MANAGE, alsoNeeds: { ScheduleKeyDeletionAws: [] } },
    CancelKeyDeletion: { writes: true, presets: MANAGE },
    EnableKeyRotation: { writes: true, presets: MANAGE },
    DisableKeyRotation: { writes: true, presets: MANAGE },
    GetKeyRotationStatus: { writes: false, presets: READ },
    RotateKey: { writes: true, presets: MANAGE },
    ListKeyVersions: { writes: false, presets: READ },
    GetParametersForImport: { writes: true, presets: MANAGE },
    ImportKeyMaterial: { writes: true, presets: MANAGE },
    DeleteImportedKeyMaterial: { writes: true, presets: MANAGE },
    /**
     * KMIP Get of an exportable (KMIP class) object's material: full access grants it, the
     * read-only and crypto presets do not. CMKs never leave, whatever a policy says.
     */
    GetKeyMaterial: { writes: false, presets: MANAGE, only: "kmip" },
    /** KMIP Register: an object whose material the client brings. (KMIP Create and Create Key Pair are kms:CreateKey.) */
    RegisterKey: { writes: true, presets: MANAGE, only: "kmip" },
    /** KMIP Activate: a Pre-Active object becomes Active. */
    ActivateKey: { writes: true, presets: MANAGE, only: "kmip" },
    /** KMIP Add/Modify/Delete Attribute: an object's names, usage mask and custom attributes. */
    ModifyKeyAttributes: { writes: true, presets: MANAGE, only: "kmip" },
    /** KMIP Revoke: an object becomes Deactivated or Compromised (it still decrypts and verifies). */
    RevokeKey: { writes: true, presets: MANAGE, only: "kmip" },
    /** KMIP Destroy: the object and its material are removed at once (no pending window). */
    DestroyKey: { writes: true, presets: MANAGE, only: "kmip" },
    /** Tresor extensions: Tang servers (a name, a signing key and an exchange key; docs/disk-encryption.md). */
    CreateTangServer: { writes: true, presets: MANAGE },
    ListTangServers: { writes: false, presets: READ },
    DescribeTangServer: { writes: false, presets: READ },
    UpdateTangServer: { writes: true, presets: MANAGE },
    RotateTangServer: { writes: true, presets: MANAGE },
    EnableTangServer: { writes: true, presets: MANAGE },
    DisableTangServer: { writes: true, presets: MANAGE },
  },
  cam: {
    AddUser: { writes: true, presets: NONE },
    GetUser: { writes: false, presets: NONE },
    ListUsers: { writes: false, presets: NONE },
    DeleteUser: { writes: true, presets: NONE },
    CreateAccessKey: { writes: true, presets: NONE },
    ListAccessKeys: { writes: false, presets: NONE },
    UpdateAccessKey: { writes: true, presets: NONE },
    DeleteAccessKey: { writes: true, presets: NONE },
    CreatePolicy: { writes: true, presets: NONE },
    GetPolicy: { writes: false, presets: NONE },
    ListPolicies: { writes: false, presets: NONE },
    DeletePolicy: { writes: true, presets: NONE },
    AttachUserPolicy: { writes: true, presets: NONE },
    DetachUserPolicy: { writes: true, presets: NONE },
    ListAttachedUserPolicies: { writes: false, presets: NONE },
    CreateRole: { writes: true, presets: NONE },
    GetRole: { writes: false, presets: NONE },
    AttachRolePolicy: { writes: true, presets: NONE },
    DetachRolePolicy: { writes: true, presets: NONE },
    DeleteRole: { writes: true, presets: NONE },
    ListAttachedRolePolicies: { writes: false, presets: NONE },
    /** Tresor extension: which statement decides a user's or role's request. */
    SimulatePrincipalPolicy: { writes: false, presets: NONE },
    /** Tresor extensions: the KMIP client certificates mapped to a user (tresor admin kmip-client). */
    AddKmipClient: { writes: true, presets: NONE },
    ListKmipClients: { writes: false, presets: NONE },
    DeleteKmipClient: { writes: true, presets: NONE },
  },
  sts: {
    /** Writes: the session it issues is stored, so it can end with the role or user. */
    AssumeRole: { writes: true, presets: NONE },
  },
  cloudaudit: {
    LookUpEvents: { writes: false, presets: NONE },
    DescribeEvents: { writes: false, presets: NONE },
    /** Tresor extension: the whole audit chain checked as `tresor audit verify` checks it (the web console's status). */
    VerifyAuditChain: { writes: false, presets: NONE },
  },

} as const satisfies Readonly<Record<string, Readonly<Record<string, ActionEntry>>>>;

/** A product whose actions Tresor serves; a policy names its actions as name/<product>:<Action>. */
export type Product = keyof typeof CATALOG;
/**
 * The catalogue's action names of one product that every door serves: a protocol's table for it has
 * exactly these keys (not the ones `only` one door serves).
 */
export type CatalogActionName<P extends Product> = {
  [K in keyof (typeof CATALOG)[P]]: (typeof CATALOG)[P][K] extends { readonly only: string } ? never : K;
}[keyof (typeof CATALOG)[P]] &
  string;

export const PRODUCTS: readonly Product[] = Object.freeze(Object.keys(CATALOG) as Product[]);

/** One action of the catalogue, with its product and its name in policies. */
export interface CatalogAction extends ActionEntry {
  readonly product: Product;
  readonly name: string;
  /** As policies and simulations name it: "kms:Encrypt". */
  readonly camName: string;
}

/** Every action, product by product, in catalogue order. */
export const CATALOG_ACTIONS: readonly CatalogAction[] = Object.freeze(
  PRODUCTS.flatMap((product) =>
    Object.entries(CATALOG[product] as Readonly<Record<string, ActionEntry>>).map(([name, entry]) =>
      Object.freeze({ ...entry, product, name, camName: `${product}:${name}` }),
    ),
  ),
);

const BY_CAM_NAME: ReadonlyMap<string, CatalogAction> = new Map(CATALOG_ACTIONS.map((a) => [a.camName, a]));

/** The action `name` of `product`, or undefined when the catalogue has none (never a prototype's property). */
export function catalogAction(product: string, name: string): CatalogAction | undefined {
  return BY_CAM_NAME.get(`${product}:${name}`);
}

/** The action names of one product, in catalogue order. */
export function actionNames(product: Product): readonly string[] {
  return CATALOG_ACTIONS.filter((a) => a.product === product).map((a) => a.name);
}

/** Whether the action changes stored state; an unknown action changes nothing (it is refused). */
export function changesState(product: string, name: string): boolean {
  return catalogAction(product, name)?.writes ?? false;
}

/**
 * The kms policy actions checked for a step of the key lifecycle, where they are not just the
 * step's own name: the action itself, then what it also needs (ReEncryptSource → ReEncrypt, Decrypt).
 */
export const KMS_POLICY_ACTIONS_OF: Readonly<Partial<Record<KeyAction, readonly string[]>>> = Object.freeze(
  Object.fromEntries(
    CATALOG_ACTIONS.filter((a) => a.product === "kms").flatMap((a) =>
      Object.entries(a.alsoNeeds ?? {}).map(([step, extra]) => [step, Object.freeze([a.name, ...extra])]),
    ),
  ),
);

/** The catalogue as Markdown, for docs/api.md. */
export function catalogMarkdown(): string {
  const rows = CATALOG_ACTIONS.map((a) => {
    const also = Object.entries(a.alsoNeeds ?? {}).flatMap(([step, names]) => names.map((n) => `\`${a.product}:${n}\` (${step})`));
    const presets = a.presets.map((p) => `\`${p}\``).join(", ");
    return `| \`${a.camName}\` | ${a.writes ? "yes" : "no"} | ${presets || "none"} | ${also.join(", ")} |`;
  });
  return ["| action | changes state | in presets | also needs |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
