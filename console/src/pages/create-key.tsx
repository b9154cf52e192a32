// The create-key form: usage, spec, protection level and origin; an EXTERNAL key is followed by
// the import steps (GetParametersForImport, wrap, ImportKeyMaterial; `tresor key import`).

import { useState } from "preact/hooks";
import { KEY_USAGES, PROTECTION_LEVELS, SYMMETRIC_KEY_SPECS } from "../../../src/keys/key.js";
import { ASYMMETRIC_USAGES } from "../../../src/keys/specs.js";
import { call, type Json, type Session } from "../api.js";
import { ErrorBox, Field, useCall } from "../components.js";
import { t } from "../i18n.js";

/** Tang's exchange keys are made through CreateTangServer, not here. */
const CREATABLE_USAGES = KEY_USAGES.filter((u) => u !== "ASYMMETRIC_EXCHANGE_ECMR_P521");

export function CreateKeyPage({ session }: { session: Session }) {
  const [usage, setUsage] = useState<string>("ENCRYPT_DECRYPT");
  const [external, setExternal] = useState(false);
  const [created, setCreated] = useState<{ keyId: string; alias: string } | undefined>(undefined);
  const op = useCall<Json>();
  const symmetric = usage === "ENCRYPT_DECRYPT";
  const submit = async (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    const isExternal = symmetric && data.get("origin") === "EXTERNAL";
    const params: Json = {
      Alias: String(data.get("alias") ?? ""),
      Description: String(data.get("description") ?? ""),
      KeyUsage: usage,
      ProtectionLevel: String(data.get("protection") ?? "SOFTWARE"),
      ...(symmetric ? { KeySpec: String(data.get("spec") ?? "SM4") } : {}),
      ...(isExternal ? { Type: 2 } : {}),
    };
    const r = await op.run(() => call(session, "kms", "CreateKey", params));
    if (!r) return;
    if (isExternal) setCreated({ keyId: String(r.KeyId), alias: String(r.Alias) });
    else location.hash = `#/keys/${encodeURIComponent(String(r.KeyId))}`;
  };
  if (created) {
    return (
      <section aria-labelledby="import-title">
        <h1 id="import-title">{t("importSteps")}</h1>
        <p>{t("importHelp")}</p>
        <pre class="mono">tresor key import {created.keyId} --material FILE</pre>
        <a class="button primary" href={`#/keys/${encodeURIComponent(created.keyId)}`}>
          {created.alias || created.keyId}
        </a>
      </section>
    );
  }
  return (
    <section aria-labelledby="create-title">
      <p>
        <a href="#/keys">← {t("navKeys")}</a>
      </p>
      <h1 id="create-title">{t("createTitle")}</h1>
      <form onSubmit={submit} class="form">
        <Field id="new-alias" label={t("alias")}>
          <input id="new-alias" name="alias" required maxLength={60} />
        </Field>
        <Field id="new-description" label={t("description")}>
          <input id="new-description" name="description" maxLength={1024} />
        </Field>
        <Field id="new-usage" label={t("usage")}>
          <select id="new-usage" name="usage" value={usage} onChange={(e) => setUsage((e.target as HTMLSelectElement).value)}>
            {CREATABLE_USAGES.map((u) => (
              <option key={u}>{u}</option>
            ))}
          </select>
        </Field>
        <Field id="new-spec" label={t("keySpec")}>
          {symmetric ? (
            <select id="new-spec" name="spec">
              {SYMMETRIC_KEY_SPECS.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          ) : (
            <input id="new-spec" readOnly value={ASYMMETRIC_USAGES[usage as keyof typeof ASYMMETRIC_USAGES]?.spec ?? ""} />
          )}
        </Field>
        <Field id="new-protection" label={t("protectionLevel")}>
          <select id="new-protection" name="protection">
            {PROTECTION_LEVELS.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </Field>
        {symmetric ? (
          <fieldset>
            <legend>{t("origin")}</legend>
            <label>
              <input type="radio" name="origin" value="TENCENT_KMS" checked={!external} onChange={() => setExternal(false)} /> {t("originGenerated")}
            </label>
            <label>
              <input type="radio" name="origin" value="EXTERNAL" checked={external} onChange={() => setExternal(true)} /> {t("originExternal")}
            </label>
          </fieldset>
        ) : null}
        {external && symmetric ? <p class="muted">{t("importHelp")}</p> : null}
        <button type="submit" class="primary" disabled={op.busy}>
          {t("create")}
        </button>
      </form>
      <ErrorBox error={op.error} />
    </section>
  );
}
