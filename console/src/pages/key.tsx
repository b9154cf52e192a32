// One key: its metadata, versions and rotation, the actions its state allows (from the lifecycle
// table the service enforces, src/keys/lifecycle.ts), each confirmed and each showing the API's
// refusal verbatim, and a panel to try it (encrypt/decrypt, or sign/verify).

import { useState } from "preact/hooks";
import type { KeyState } from "../../../src/keys/key.js";
import { ruleFor, type KeyAction } from "../../../src/keys/lifecycle.js";
import { ASYMMETRIC_USAGES } from "../../../src/keys/specs.js";
import { base64ToText, call, textToBase64, type Json, type Session } from "../api.js";
import { ConfirmDialog, ErrorBox, Field, Loading, Time, useCall, useLoad } from "../components.js";
import { t, type MessageKey } from "../i18n.js";
import type { KeyMetadata } from "./keys.js";

/** The actions the page offers, in the order shown; `input` names the one value the action takes. */
const KEY_ACTIONS: readonly { action: KeyAction; input?: "window" | "alias" | "description" | "days"; when?: (k: KeyMetadata) => boolean }[] = [
  { action: "EnableKey" },
  { action: "DisableKey" },
  { action: "ArchiveKey" },
  { action: "CancelKeyArchive" },
  { action: "RotateKey", when: (k) => k.KeyUsage === "ENCRYPT_DECRYPT" },
  { action: "EnableKeyRotation", input: "days", when: (k) => k.KeyUsage === "ENCRYPT_DECRYPT" && !k.KeyRotationEnabled },
  { action: "DisableKeyRotation", when: (k) => k.KeyUsage === "ENCRYPT_DECRYPT" && k.KeyRotationEnabled },
  { action: "ScheduleKeyDeletion", input: "window" },
  { action: "CancelKeyDeletion" },
  { action: "UpdateAlias", input: "alias" },
  { action: "UpdateKeyDescription", input: "description" },
];

/** Whether `action` is offered for a key: the lifecycle table allows it in the key's state (EnableKey on an Enabled key changes nothing and is not offered). */
function offered(entry: (typeof KEY_ACTIONS)[number], key: KeyMetadata): boolean {
  const state = key.KeyState as KeyState;
  if (ruleFor(entry.action, state) !== "allow") return false;
  if (entry.action === "EnableKey" && state === "Enabled") return false;
  if (entry.action === "DisableKey" && state === "Disabled") return false;
  return entry.when?.(key) ?? true;
}

function params(action: KeyAction, keyId: string, value: string): Json {
  switch (action) {
    case "ScheduleKeyDeletion":
      return { KeyId: keyId, PendingWindowInDays: Number(value) };
    case "UpdateAlias":
      return { KeyId: keyId, Alias: value };
    case "UpdateKeyDescription":
      return { KeyId: keyId, Description: value };
    case "EnableKeyRotation":
      return { KeyId: keyId, RotateDays: Number(value) };
    default:
      return { KeyId: keyId };
  }
}

export function KeyPage({ session, keyId }: { session: Session; keyId: string }) {
  const key = useLoad(
    async () => {
      const [described, versions] = await Promise.all([
        call<{ KeyMetadata: KeyMetadata }>(session, "kms", "DescribeKey", { KeyId: keyId }),
        call<{ CurrentVersion: number; Versions: { Version: number; CreateTime: number }[] }>(session, "kms", "ListKeyVersions", { KeyId: keyId }).catch(() => undefined),
      ]);
      return { meta: described.KeyMetadata, versions };
    },
    [session, keyId],
  );
  const [pending, setPending] = useState<(typeof KEY_ACTIONS)[number] | undefined>(undefined);
  const [value, setValue] = useState("");
  const act = useCall<Json>();
  const [done, setDone] = useState<string | undefined>(undefined);

  if (key.loading && !key.data) return <Loading />;
  if (!key.data) return <ErrorBox error={key.error} />;
  const meta = key.data.meta;
  const name = meta.Alias || meta.KeyId;
  const open = (entry: (typeof KEY_ACTIONS)[number]) => {
    act.reset();
    setDone(undefined);
    setValue(entry.input === "window" ? "7" : entry.input === "days" ? "365" : entry.input === "alias" ? meta.Alias : entry.input === "description" ? meta.Description : "");
    setPending(entry);
  };
  const confirm = async () => {
    if (!pending) return;
    const label = t(`act_${pending.action}` as MessageKey);
    const ok = await act.run(() => call(session, "kms", pending.action, params(pending.action, meta.KeyId, value)));
    setPending(undefined);
    if (ok !== undefined) {
      setDone(`${label}: ${t("done")}`);
      key.reload();
    }
  };
  const actions = KEY_ACTIONS.filter((a) => offered(a, meta));
  return (
    <section aria-labelledby="key-title">
      <p>
        <a href="#/keys">← {t("navKeys")}</a>
      </p>
      <h1 id="key-title">{name}</h1>
      <h2>{t("metadata")}</h2>
      <dl class="meta">
        {(
          [
            ["keyId", <span class="mono">{meta.KeyId}</span>],
            ["alias", meta.Alias],
            ["description", meta.Description || "—"],
            ["state", <span class={`state state-${meta.KeyState}`} data-testid="key-state">{meta.KeyState}</span>],
            ["usage", meta.KeyUsage],
            ["spec", meta.KeySpec],
            ["protection", meta.ProtectionLevel],
            ["origin", meta.Origin === "EXTERNAL" ? t("originExternal") : t("originGenerated")],
            ["keyClass", meta.KeyClass],
            ["creator", meta.CreatorUinString],
            ["created", <Time seconds={meta.CreateTime} />],
            ["rotation", meta.KeyRotationEnabled ? `${t("on")} (${meta.RotateDays})` : t("off")],
            ["nextRotation", <Time seconds={meta.NextRotateTime} />],
            ["lastRotation", <Time seconds={meta.LastRotateTime} />],
            ["deletionDate", <Time seconds={meta.DeletionDate} />],
            ["validTo", <Time seconds={meta.ValidTo} />],
          ] as const
        ).map(([label, v]) => (
          <div key={label}>
            <dt>{t(label)}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>

      <h2>{t("actions")}</h2>
      {actions.length === 0 ? <p class="muted">{t("actionsNone")}</p> : null}
      <div class="buttons wrap">
        {actions.map((a) => (
          <button type="button" key={a.action} onClick={() => open(a)} class={a.action === "ScheduleKeyDeletion" ? "danger" : undefined}>
            {t(`act_${a.action}` as MessageKey)}
          </button>
        ))}
      </div>
      <ErrorBox error={act.error} />
      {done ? (
        <p role="status" class="ok">
          {done}
        </p>
      ) : null}
      {pending ? (
        <ConfirmDialog title={t("confirmAction", { action: t(`act_${pending.action}` as MessageKey), key: name })} busy={act.busy} onConfirm={confirm} onCancel={() => setPending(undefined)}>
          {pending.input ? <ActionInput input={pending.input} value={value} onInput={setValue} /> : null}
        </ConfirmDialog>
      ) : null}

      <h2>{t("versions")}</h2>
      {key.data.versions ? (
        <ul>
          {key.data.versions.Versions.map((v) => (
            <li key={v.Version}>
              {t("version")} {v.Version} · <Time seconds={v.CreateTime} />
              {v.Version === key.data?.versions?.CurrentVersion ? ` (${t("currentVersion")})` : ""}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">—</p>
      )}
      <TryKey session={session} meta={meta} />
    </section>
  );
}

function ActionInput({ input, value, onInput }: { input: "window" | "alias" | "description" | "days"; value: string; onInput: (v: string) => void }) {
  const label = input === "window" ? t("pendingWindow") : input === "alias" ? t("newAlias") : input === "description" ? t("newDescription") : t("rotateDays");
  const numeric = input === "window" || input === "days";
  return (
    <Field id="action-input" label={label}>
      {numeric ? (
        <input id="action-input" type="number" min={7} max={input === "window" ? 30 : 365} value={value} onInput={(e) => onInput((e.target as HTMLInputElement).value)} required />
      ) : (
        <input id="action-input" type="text" value={value} onInput={(e) => onInput((e.target as HTMLInputElement).value)} required={input !== "description"} />
      )}
    </Field>
  );
}

/** Encrypt and decrypt (symmetric keys) or sign and verify (signing keys) with text. */
function TryKey({ session, meta }: { session: Session; meta: KeyMetadata }) {
  const usage = ASYMMETRIC_USAGES[meta.KeyUsage as keyof typeof ASYMMETRIC_USAGES];
  if (meta.KeyUsage === "ENCRYPT_DECRYPT") return <EncryptPanel session={session} keyId={meta.KeyId} />;
  if (usage?.purpose === "sign") return <SignPanel session={session} keyId={meta.KeyId} algorithms={usage.algorithms as readonly string[]} />;
  return null;
}

function EncryptPanel({ session, keyId }: { session: Session; keyId: string }) {
  const [plaintext, setPlaintext] = useState("");
  const [ciphertext, setCiphertext] = useState("");
  const [decrypted, setDecrypted] = useState<string | undefined>(undefined);
  const op = useCall<Json>();
  const encrypt = async () => {
    setDecrypted(undefined);
    const r = await op.run(() => call(session, "kms", "Encrypt", { KeyId: keyId, Plaintext: textToBase64(plaintext) }));
    if (r) setCiphertext(String(r.CiphertextBlob));
  };
  const decrypt = async () => {
    const r = await op.run(() => call(session, "kms", "Decrypt", { CiphertextBlob: ciphertext.trim() }));
    if (r) setDecrypted(base64ToText(String(r.Plaintext)) ?? String(r.Plaintext));
  };
  return (
    <section aria-labelledby="try-title" class="panel">
      <h2 id="try-title">{t("tryKey")}</h2>
      <Field id="try-plaintext" label={t("plaintext")}>
        <textarea id="try-plaintext" rows={2} value={plaintext} onInput={(e) => setPlaintext((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <button type="button" onClick={encrypt} disabled={op.busy}>
        {t("encrypt")}
      </button>
      <Field id="try-ciphertext" label={t("ciphertext")}>
        <textarea id="try-ciphertext" rows={3} class="mono" value={ciphertext} onInput={(e) => setCiphertext((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <button type="button" onClick={decrypt} disabled={op.busy || !ciphertext}>
        {t("decrypt")}
      </button>
      {decrypted !== undefined ? (
        <p role="status">
          {t("decrypted")}: <output>{decrypted}</output>
        </p>
      ) : null}
      <ErrorBox error={op.error} />
    </section>
  );
}

function SignPanel({ session, keyId, algorithms }: { session: Session; keyId: string; algorithms: readonly string[] }) {
  const [message, setMessage] = useState("");
  const [algorithm, setAlgorithm] = useState(algorithms[0] ?? "");
  const [signature, setSignature] = useState("");
  const [valid, setValid] = useState<boolean | undefined>(undefined);
  const op = useCall<Json>();
  const base = () => ({ KeyId: keyId, Algorithm: algorithm, Message: textToBase64(message), MessageType: "RAW" });
  const sign = async () => {
    setValid(undefined);
    const r = await op.run(() => call(session, "kms", "SignByAsymmetricKey", base()));
    if (r) setSignature(String(r.Signature));
  };
  const verify = async () => {
    const r = await op.run(() => call(session, "kms", "VerifyByAsymmetricKey", { ...base(), SignatureValue: signature.trim() }));
    if (r) setValid(r.SignatureValid === true);
  };
  return (
    <section aria-labelledby="try-title" class="panel">
      <h2 id="try-title">{t("tryKey")}</h2>
      <Field id="try-algorithm" label={t("algorithm")}>
        <select id="try-algorithm" value={algorithm} onChange={(e) => setAlgorithm((e.target as HTMLSelectElement).value)}>
          {algorithms.map((a) => (
            <option key={a}>{a}</option>
          ))}
        </select>
      </Field>
      <Field id="try-message" label={t("message")}>
        <textarea id="try-message" rows={2} value={message} onInput={(e) => setMessage((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <button type="button" onClick={sign} disabled={op.busy}>
        {t("sign")}
      </button>
      <Field id="try-signature" label={t("signature")}>
        <textarea id="try-signature" rows={3} class="mono" value={signature} onInput={(e) => setSignature((e.target as HTMLTextAreaElement).value)} />
      </Field>
      <button type="button" onClick={verify} disabled={op.busy || !signature}>
        {t("verify")}
      </button>
      {valid !== undefined ? <p role="status">{valid ? t("signatureValid") : t("signatureInvalid")}</p> : null}
      <ErrorBox error={op.error} />
    </section>
  );
}
