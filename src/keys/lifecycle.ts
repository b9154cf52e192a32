// Which key action is allowed in which key state, and what it leads to. This table is the only
// place those rules live: the service reads it, docs/api.md prints it, a test walks it row by row.

import { KEY_STATES, KMIP_STATES, type KeyState, type KmipState } from "./key.js";

/** Why an action is refused in a state; the service turns each into the error of the same name. */
export type StateError = "CmkDisabled" | "CmkArchived" | "CmkStateNotSupport" | "CmkShouldBeDisabled" | "CmkNotPendingDelete";

/** "allow", or the error a caller gets when the key is in that state. */
export type Rule = "allow" | StateError;

export interface LifecycleRow {
  readonly rules: Readonly<Record<KeyState, Rule>>;
  /** The state the key is in after the action succeeds; absent when the action leaves it alone. */
  readonly to?: KeyState;
  /** The action removes the key at once (KMIP Destroy). */
  readonly removes?: true;
}

const usable = { Enabled: "allow", Disabled: "CmkDisabled", PendingDelete: "CmkStateNotSupport", PendingImport: "CmkStateNotSupport", Archived: "CmkArchived" } as const;
const decryptable = { ...usable, Archived: "allow" } as const;
const anyState = { Enabled: "allow", Disabled: "allow", PendingDelete: "allow", PendingImport: "allow", Archived: "allow" } as const;
const notPendingDelete = { ...anyState, PendingDelete: "CmkStateNotSupport" } as const;
/** Tencent: the asymmetric actions need an Enabled key and answer CmkStateNotSupport otherwise. */
const enabledOnly = { Enabled: "allow", Disabled: "CmkStateNotSupport", PendingDelete: "CmkStateNotSupport", PendingImport: "CmkStateNotSupport", Archived: "CmkStateNotSupport" } as const;
const archivedOnly = { ...enabledOnly, Enabled: "CmkStateNotSupport", Archived: "allow" } as const;
/** Tencent: ImportKeyMaterial (and so GetParametersForImport) only in Enabled and PendingImport. */
const importable = { ...enabledOnly, PendingImport: "allow" } as const;
/** Material can be deleted while the key has some and is not on its way out. */
const hasMaterial = { Enabled: "allow", Disabled: "allow", PendingDelete: "CmkStateNotSupport", PendingImport: "CmkStateNotSupport", Archived: "allow" } as const;
/** Tencent: a key must be Disabled first; a PendingImport key (no material to disable) may go as AWS allows. */
const deletable = { Enabled: "CmkShouldBeDisabled", Disabled: "allow", PendingDelete: "CmkStateNotSupport", PendingImport: "allow", Archived: "CmkShouldBeDisabled" } as const;
const pendingDeleteOnly = { Enabled: "CmkNotPendingDelete", Disabled: "CmkNotPendingDelete", PendingDelete: "allow", PendingImport: "CmkNotPendingDelete", Archived: "CmkNotPendingDelete" } as const;
/** KMIP Activate: only a Pre-Active object (a Disabled KMIP-class key) becomes Active. */
const preActiveOnly = { Enabled: "CmkStateNotSupport", Disabled: "allow", PendingDelete: "CmkStateNotSupport", PendingImport: "CmkStateNotSupport", Archived: "CmkStateNotSupport" } as const;
/** KMIP Revoke: from Pre-Active, Active or Deactivated (Compromised again, for a later compromise). */
const revocable = { ...preActiveOnly, Enabled: "allow", Archived: "allow" } as const;
/** KMIP Destroy is refused while the object is Active (KMIP 1.4 §4.21): revoke first. */
const destroyable = { Enabled: "CmkShouldBeDisabled", Disabled: "allow", PendingDelete: "allow", PendingImport: "allow", Archived: "allow" } as const;
const enableOrDisable = { Enabled: "allow", Disabled: "allow", PendingDelete: "CmkStateNotSupport", PendingImport: "CmkStateNotSupport", Archived: "CmkStateNotSupport" } as const;

export const LIFECYCLE = {
  DescribeKey: { rules: anyState },
  Encrypt: { rules: usable },
  GenerateDataKey: { rules: usable },
  Decrypt: { rules: decryptable },
  /** The key the ciphertext was made under. */
  ReEncryptSource: { rules: decryptable },
  /** The key the new ciphertext is made under. */
  ReEncryptDestination: { rules: usable },
  EnableKey: { rules: enableOrDisable, to: "Enabled" },
  DisableKey: { rules: enableOrDisable, to: "Disabled" },
  UpdateAlias: { rules: notPendingDelete },
  UpdateKeyDescription: { rules: notPendingDelete },
  TagResource: { rules: notPendingDelete },
  UntagResource: { rules: notPendingDelete },
  /** Tresor extension: a key's tags, in every state (as DescribeKey shows the rest of it). */
  ListResourceTags: { rules: anyState },
  GetPublicKey: { rules: enabledOnly },
  SignByAsymmetricKey: { rules: enabledOnly },
  VerifyByAsymmetricKey: { rules: enabledOnly },
  AsymmetricRsaDecrypt: { rules: enabledOnly },
  AsymmetricSm2Decrypt: { rules: enabledOnly },
  PostQuantumCryptoEncrypt: { rules: enabledOnly },
  PostQuantumCryptoDecrypt: { rules: enabledOnly },
  PostQuantumCryptoSign: { rules: enabledOnly },
  PostQuantumCryptoVerify: { rules: enabledOnly },
  /** HMAC keys, and KMIP MAC: an Archived key verifies old MACs but makes no new one (as Decrypt and Encrypt). */
  GenerateMac: { rules: usable },
  VerifyMac: { rules: decryptable },
  DeriveSharedSecret: { rules: enabledOnly },
  ArchiveKey: { rules: enabledOnly, to: "Archived" },
  CancelKeyArchive: { rules: archivedOnly, to: "Enabled" },
  /** A PendingImport key goes too: it has nothing to disable. */
  ScheduleKeyDeletion: { rules: deletable, to: "PendingDelete" },
  /** AWS's ScheduleKeyDeletion: an Enabled (or archived) key may be scheduled without disabling it first. */
  ScheduleKeyDeletionAws: { rules: { ...deletable, Enabled: "allow", Archived: "allow" }, to: "PendingDelete" },
  /** Back to Disabled; an EXTERNAL key whose material is gone (deleted or expired) goes to PendingImport instead. */
  CancelKeyDeletion: { rules: pendingDeleteOnly, to: "Disabled" },
  EnableKeyRotation: { rules: usable },
  DisableKeyRotation: { rules: usable },
  GetKeyRotationStatus: { rules: anyState },
  RotateKey: { rules: usable },
  /** Tresor extension: the key's versions and their creation times, never material. */
  ListKeyVersions: { rules: anyState },
  /** Tresor extension: a Tang advertisement, for new bindings (both of the Tang server's keys). */
  TangAdvertise: { rules: usable },
  /** Tresor extension: a Tang recovery with an exchange key; an Archived one still unlocks old bindings. */
  TangRecover: { rules: decryptable },
  GetParametersForImport: { rules: importable },
  ImportKeyMaterial: { rules: importable, to: "Enabled" },
  DeleteImportedKeyMaterial: { rules: hasMaterial, to: "PendingImport" },
  /** KMIP Get of an exportable key's material (the KMIP class only; the service checks). */
  GetKeyMaterial: { rules: anyState },
  /** KMIP Activate. */
  ActivateKey: { rules: preActiveOnly, to: "Enabled" },
  /** KMIP Add/Modify/Delete Attribute. */
  ModifyKeyAttributes: { rules: notPendingDelete },
  RevokeKey: { rules: revocable, to: "Archived" },
  DestroyKey: { rules: destroyable, removes: true },
} as const satisfies Record<string, LifecycleRow>;

export type KeyAction = keyof typeof LIFECYCLE;

/** The table's rule for `action` when the key is in `state`. */
export function ruleFor(action: KeyAction, state: KeyState): Rule {
  const row: LifecycleRow = LIFECYCLE[action];
  return row.rules[state];
}

/** The state after `action`, or the current one when the action does not change it. */
export function stateAfter(action: KeyAction, current: KeyState): KeyState {
  const row: LifecycleRow = LIFECYCLE[action];
  return row.to ?? current;
}

/**
 * KMIP's object states (KMIP 1.4 §3.22) on Tresor's: the state a KMIP-class key has in Tresor while
 * KMIP reports it in each. Destroyed objects are removed (KMIP Get then finds nothing).
 */
export const KMIP_STATE_OF: Readonly<Record<KmipState, KeyState>> = Object.freeze({
  PreActive: "Disabled",
  Active: "Enabled",
  Deactivated: "Archived",
  Compromised: "Archived",
});

/**
 * Actions of the Tencent and AWS APIs that a KMIP-class key refuses (UnsupportedOperation): its
 * state and material follow KMIP's lifecycle alone. Tresor's states cannot say every KMIP one
 * (Disabled would read as Pre-Active, which an Active object can never return to), and a KMIP
 * client that fetched the key must not find other material behind the same id after a rotation.
 */
export const KMIP_LIFECYCLE_ONLY: readonly KeyAction[] = Object.freeze([
  "EnableKey",
  "DisableKey",
  "ArchiveKey",
  "CancelKeyArchive",
  "ScheduleKeyDeletion",
  "ScheduleKeyDeletionAws",
  "CancelKeyDeletion",
  "RotateKey",
  "EnableKeyRotation",
] satisfies KeyAction[]);

/** The KMIP state table as Markdown, for docs/kmip.md. */
export function kmipStateMarkdown(): string {
  const meaning: Record<KmipState, string> = {
    PreActive: "created or registered: Get, attributes, Activate, Revoke, Destroy; no cryptography",
    Active: "also encrypts, decrypts, signs and verifies; Destroy is refused (Revoke first)",
    Deactivated: "revoked: decrypts only (as an Archived CMK); Get, attributes, Destroy",
    Compromised: "revoked with a compromise reason: as Deactivated",
  };
  const rows = KMIP_STATES.map((s) => `| ${s} | ${KMIP_STATE_OF[s]} | ${meaning[s]} |`);
  const refused = `Refused for a KMIP object through the Tencent and AWS APIs (\`UnsupportedOperation\`): ${KMIP_LIFECYCLE_ONLY.map((a) => `\`${a}\``).join(", ")}.`;
  return ["| KMIP state | Tresor state | what it allows |", "| --- | --- | --- |", ...rows, "| Destroyed | (removed) | nothing: the object is gone |", "", refused].join("\n");
}

/** The table as Markdown, for docs/api.md. */
export function lifecycleMarkdown(): string {
  const header = `| action | ${KEY_STATES.join(" | ")} | resulting state |`;
  const rule = `| --- | ${KEY_STATES.map(() => "---").join(" | ")} | --- |`;
  const rows = Object.entries(LIFECYCLE).map(([action, row]: [string, LifecycleRow]) => {
    const cells = KEY_STATES.map((s) => (row.rules[s] === "allow" ? "yes" : `no: ${row.rules[s]}`));
    return `| ${action} | ${cells.join(" | ")} | ${row.removes ? "(removed)" : (row.to ?? "unchanged")} |`;
  });
  return [header, rule, ...rows].join("\n");
}
