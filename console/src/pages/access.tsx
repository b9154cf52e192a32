// Access: users, access keys (a new SecretKey shown once), policies (view, create from a preset,
// JSON checked as typed and the server's validation error shown inline), roles and the policy
// simulator. Every call is a CAM action the signed-in principal must be allowed.

import { useState } from "preact/hooks";
import { call, type Json, type Session } from "../api.js";
import { ErrorBox, Field, Listing, Time, useCall, useLoad, type Column } from "../components.js";
import { t, type MessageKey } from "../i18n.js";

const TABS = [
  ["users", "users"],
  ["keys", "accessKeys"],
  ["policies", "policies"],
  ["roles", "roles"],
  ["simulator", "simulator"],
] as const satisfies readonly (readonly [string, MessageKey])[];

interface User {
  Uin: number;
  Name: string;
  Remark: string;
  CreateTime: string;
}

interface PolicyItem {
  PolicyId: number;
  PolicyName: string;
  Type: number;
  Description: string;
  AddTime: string;
}

interface AccessKey {
  AccessKeyId: string;
  Status: string;
  CreateTime: string;
  LastUsedTime: string | null;
}

const USER_COLUMNS: readonly Column<User>[] = [
  { label: "userName", cell: (u) => u.Name },
  { label: "uin", cell: (u) => u.Uin, class: "mono" },
  { label: "remark", cell: (u) => u.Remark },
  { label: "created", cell: (u) => <Time seconds={camSeconds(u.CreateTime)} /> },
];

const ACCESS_KEY_COLUMNS: readonly Column<AccessKey>[] = [
  { label: "secretId", cell: (k) => k.AccessKeyId, class: "mono" },
  { label: "status", cell: (k) => k.Status },
  { label: "created", cell: (k) => <Time seconds={camSeconds(k.CreateTime)} /> },
  { label: "lastUsed", cell: (k) => <Time seconds={camSeconds(k.LastUsedTime)} /> },
];

const POLICY_COLUMNS: readonly Column<PolicyItem>[] = [
  { label: "policyName", cell: (p) => p.PolicyName },
  { label: "policyType", cell: (p) => (p.Type === 2 ? "QCS" : "Local") },
  { label: "description", cell: (p) => p.Description, class: "wrap" },
  { label: "created", cell: (p) => <Time seconds={camSeconds(p.AddTime)} /> },
];

/** CAM's "2006-01-02 15:04:05" (UTC) as unix seconds. */
function camSeconds(text: string | null): number {
  return text ? Math.floor(Date.parse(`${text.replace(" ", "T")}Z`) / 1000) : 0;
}

export function AccessPage({ session, tab }: { session: Session; tab: string }) {
  return (
    <section aria-labelledby="access-title">
      <h1 id="access-title">{t("accessTitle")}</h1>
      <nav class="tabs" aria-label={t("accessTitle")}>
        <ul>
          {TABS.map(([path, label]) => (
            <li key={path}>
              <a href={`#/access/${path}`} aria-current={tab === path ? "page" : undefined}>
                {t(label)}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {tab === "keys" ? <AccessKeys session={session} /> : null}
      {tab === "policies" ? <Policies session={session} /> : null}
      {tab === "roles" ? <Roles session={session} /> : null}
      {tab === "simulator" ? <Simulator session={session} /> : null}
      {!["keys", "policies", "roles", "simulator"].includes(tab) ? <Users session={session} /> : null}
    </section>
  );
}

function useUsers(session: Session) {
  return useLoad(async () => (await call<{ Data: User[] }>(session, "cam", "ListUsers")).Data, [session]);
}

function usePolicies(session: Session) {
  return useLoad(async () => (await call<{ List: PolicyItem[] }>(session, "cam", "ListPolicies", { Rp: 200, Scope: "All" })).List, [session]);
}

function Users({ session }: { session: Session }) {
  const users = useUsers(session);
  const policies = usePolicies(session);
  const add = useCall<Json>();
  const attach = useCall<Json>();
  const addUser = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const r = await add.run(() => call(session, "cam", "AddUser", { Name: String(data.get("name")), Remark: String(data.get("remark") ?? ""), UseApi: 0 }));
    if (r) {
      form.reset();
      users.reload();
    }
  };
  const attachPolicy = async (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    await attach.run(() => call(session, "cam", "AttachUserPolicy", { AttachUin: Number(data.get("user")), PolicyId: Number(data.get("policy")) }));
  };
  return (
    <>
      <h2>{t("users")}</h2>
      <Listing label={t("users")} load={users} columns={USER_COLUMNS} rowKey={(u) => u.Uin} />
      <h3>{t("addUser")}</h3>
      <form class="form inline" onSubmit={addUser}>
        <Field id="user-name" label={t("userName")}>
          <input id="user-name" name="name" required maxLength={64} />
        </Field>
        <Field id="user-remark" label={t("remark")}>
          <input id="user-remark" name="remark" maxLength={255} />
        </Field>
        <button type="submit" class="primary" disabled={add.busy}>
          {t("addUser")}
        </button>
      </form>
      <ErrorBox error={add.error} />
      {add.result ? <p role="status" class="ok">{t("done")}</p> : null}
      <h3>{t("attachPolicy")}</h3>
      <form class="form inline" onSubmit={attachPolicy}>
        <Field id="attach-user" label={t("user")}>
          <select id="attach-user" name="user" required>
            {(users.data ?? []).map((u) => (
              <option key={u.Uin} value={String(u.Uin)}>
                {u.Name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="attach-policy" label={t("policy")}>
          <select id="attach-policy" name="policy" required>
            {(policies.data ?? []).map((p) => (
              <option key={p.PolicyId} value={String(p.PolicyId)}>
                {p.PolicyName}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" disabled={attach.busy}>
          {t("attach")}
        </button>
      </form>
      <ErrorBox error={attach.error} />
      {attach.result ? <p role="status" class="ok">{t("done")}</p> : null}
    </>
  );
}

function AccessKeys({ session }: { session: Session }) {
  const users = useUsers(session);
  const [target, setTarget] = useState("");
  const keys = useLoad(
    async () =>
      (await call<{ AccessKeys: AccessKey[] }>(session, "cam", "ListAccessKeys", target ? { TargetUin: Number(target) } : {}))
        .AccessKeys,
    [session, target],
  );
  const create = useCall<{ AccessKey: { AccessKeyId: string; SecretAccessKey: string } }>();
  const createKey = async () => {
    const r = await create.run(() => call(session, "cam", "CreateAccessKey", target ? { TargetUin: Number(target) } : {}));
    if (r) keys.reload();
  };
  return (
    <>
      <h2>{t("accessKeys")}</h2>
      <Field id="keys-user" label={t("user")}>
        <select id="keys-user" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
          <option value="">{session.secretId}</option>
          {(users.data ?? []).map((u) => (
            <option key={u.Uin} value={String(u.Uin)}>
              {u.Name}
            </option>
          ))}
        </select>
      </Field>
      <Listing label={t("accessKeys")} load={keys} columns={ACCESS_KEY_COLUMNS} rowKey={(k) => k.AccessKeyId} />
      <button type="button" class="primary" onClick={createKey} disabled={create.busy}>
        {t("createAccessKey")}
      </button>
      <ErrorBox error={create.error} />
      {create.result ? (
        <div class="secret" role="status">
          <p>
            <strong>{t("secretShownOnce")}</strong>
          </p>
          <dl class="meta">
            <div>
              <dt>{t("secretId")}</dt>
              <dd class="mono" data-testid="new-secret-id">
                {create.result.AccessKey.AccessKeyId}
              </dd>
            </div>
            <div>
              <dt>{t("secretKey")}</dt>
              <dd class="mono" data-testid="new-secret-key">
                {create.result.AccessKey.SecretAccessKey}
              </dd>
            </div>
          </dl>
        </div>
      ) : null}
    </>
  );
}

/** Starting points for a new policy document (the account's own; the preset policies are attached as they are). */
const POLICY_TEMPLATES: Readonly<Record<string, { label: MessageKey; document: object | undefined }>> = {
  encrypt: { label: "presetEncryptOnly", document: { version: "2.0", statement: [{ effect: "allow", action: ["name/kms:Encrypt"], resource: "*" }] } },
  crypto: {
    label: "presetCryptoAll",
    document: { version: "2.0", statement: [{ effect: "allow", action: ["name/kms:Encrypt", "name/kms:Decrypt", "name/kms:GenerateDataKey"], resource: "*" }] },
  },
  read: {
    label: "presetReadOnly",
    document: { version: "2.0", statement: [{ effect: "allow", action: ["name/kms:DescribeKey", "name/kms:ListKeys", "name/kms:ListKeyDetail"], resource: "*" }] },
  },
  empty: { label: "presetEmpty", document: undefined },
};

function templateText(name: string): string {
  const doc = POLICY_TEMPLATES[name]?.document;
  return doc === undefined ? "" : JSON.stringify(doc, null, 2);
}

/** The JSON error of `text`, or undefined when it parses. */
function jsonError(text: string): string | undefined {
  if (!text.trim()) return undefined;
  try {
    JSON.parse(text);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** A JSON document's text area: a syntax error as it is typed, else the server's refusal, shown beside it. */
function JsonField({ id, label, rows, value, onInput, refusal }: { id: string; label: string; rows: number; value: string; onInput: (v: string) => void; refusal: unknown }) {
  const syntax = jsonError(value);
  const invalid = syntax !== undefined || (refusal !== undefined && refusal !== null);
  return (
    <>
      <Field id={id} label={label}>
        <textarea
          id={id}
          class="mono"
          rows={rows}
          value={value}
          aria-invalid={invalid ? "true" : "false"}
          aria-describedby={`${id}-error`}
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
        />
      </Field>
      <div id={`${id}-error`}>
        {syntax ? (
          <p class="error" role="alert">
            {t("invalidJson", { error: syntax })}
          </p>
        ) : (
          <ErrorBox error={refusal} />
        )}
      </div>
    </>
  );
}

function Policies({ session }: { session: Session }) {
  const policies = usePolicies(session);
  const [viewing, setViewing] = useState<number | undefined>(undefined);
  const [document, setDocument] = useState(templateText("encrypt"));
  const create = useCall<Json>();
  const view = useLoad(async () => (viewing === undefined ? undefined : call<{ PolicyName: string; PolicyDocument: string }>(session, "cam", "GetPolicy", { PolicyId: viewing })), [session, viewing]);
  const syntax = jsonError(document);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (syntax) return;
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const r = await create.run(() => call(session, "cam", "CreatePolicy", { PolicyName: String(data.get("name")), PolicyDocument: document, Description: String(data.get("description") ?? "") }));
    if (r) policies.reload();
  };
  return (
    <>
      <h2>{t("policies")}</h2>
      <Listing
        label={t("policies")}
        load={policies}
        rowKey={(p) => p.PolicyId}
        columns={[
          ...POLICY_COLUMNS,
          {
            label: "view",
            cell: (p) => (
              <button type="button" onClick={() => setViewing(p.PolicyId)} aria-label={`${t("view")} ${p.PolicyName}`}>
                {t("view")}
              </button>
            ),
          },
        ]}
      />
      {viewing !== undefined && view.data ? (
        <section class="panel" aria-label={view.data.PolicyName}>
          <h3>{view.data.PolicyName}</h3>
          <pre class="mono">{JSON.stringify(JSON.parse(view.data.PolicyDocument), null, 2)}</pre>
        </section>
      ) : null}
      <ErrorBox error={view.error} />
      <h3>{t("createPolicy")}</h3>
      <form class="form" onSubmit={submit}>
        <Field id="policy-template" label={t("policyPreset")}>
          <select id="policy-template" onChange={(e) => setDocument(templateText((e.target as HTMLSelectElement).value))}>
            {Object.entries(POLICY_TEMPLATES).map(([name, tpl]) => (
              <option key={name} value={name}>
                {t(tpl.label)}
              </option>
            ))}
          </select>
        </Field>
        <Field id="policy-name" label={t("policyName")}>
          <input id="policy-name" name="name" required maxLength={64} />
        </Field>
        <Field id="policy-description" label={t("description")}>
          <input id="policy-description" name="description" maxLength={300} />
        </Field>
        <JsonField id="policy-document" label={t("policyDocument")} rows={10} value={document} onInput={setDocument} refusal={create.error} />
        <button type="submit" class="primary" disabled={create.busy || Boolean(syntax)}>
          {t("createPolicy")}
        </button>
      </form>
      {create.result ? <p role="status" class="ok">{t("done")}</p> : null}
    </>
  );
}

function Roles({ session }: { session: Session }) {
  const create = useCall<Json>();
  const find = useCall<{ RoleInfo: Json }>();
  const [trust, setTrust] = useState(JSON.stringify({ version: "2.0", statement: [{ effect: "allow", action: "name/sts:AssumeRole", principal: { qcs: ["qcs::cam::uin/ACCOUNT:root"] } }] }, null, 2));
  const syntax = jsonError(trust);
  const submit = async (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    await create.run(() =>
      call(session, "cam", "CreateRole", { RoleName: String(data.get("name")), PolicyDocument: trust, Description: String(data.get("description") ?? ""), SessionDuration: Number(data.get("duration") ?? 3600) }),
    );
  };
  const lookUp = async (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    await find.run(() => call(session, "cam", "GetRole", { RoleName: String(data.get("name")) }));
  };
  return (
    <>
      <h2>{t("roles")}</h2>
      <form class="form inline" onSubmit={lookUp}>
        <Field id="find-role" label={t("roleName")}>
          <input id="find-role" name="name" required maxLength={64} />
        </Field>
        <button type="submit" disabled={find.busy}>
          {t("findRole")}
        </button>
      </form>
      <ErrorBox error={find.error} />
      {find.result ? (
        <dl class="meta">
          {Object.entries(find.result.RoleInfo).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd class={k === "PolicyDocument" ? "mono" : undefined}>{String(v)}</dd>
            </div>
          ))}
        </dl>
      ) : null}
      <h3>{t("createRole")}</h3>
      <form class="form" onSubmit={submit}>
        <Field id="role-name" label={t("roleName")}>
          <input id="role-name" name="name" required maxLength={64} />
        </Field>
        <Field id="role-description" label={t("description")}>
          <input id="role-description" name="description" maxLength={300} />
        </Field>
        <Field id="role-duration" label={t("sessionDuration")}>
          <input id="role-duration" name="duration" type="number" min={900} max={43200} value="3600" />
        </Field>
        <JsonField id="role-trust" label={t("trustPolicy")} rows={8} value={trust} onInput={setTrust} refusal={create.error} />
        <button type="submit" class="primary" disabled={create.busy || Boolean(syntax)}>
          {t("createRole")}
        </button>
      </form>
      {create.result ? <p role="status" class="ok">{t("done")}</p> : null}
    </>
  );
}

function Simulator({ session }: { session: Session }) {
  const sim = useCall<{ Allowed: boolean; Reason: string; Statement: { PolicyName: string; Index: number } | null; Explanation: string }>();
  const users = useUsers(session);
  const submit = async (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    await sim.run(() => call(session, "cam", "SimulatePrincipalPolicy", { UserName: String(data.get("user")), Action: String(data.get("action")), Resource: String(data.get("resource")) }));
  };
  return (
    <>
      <h2>{t("simulator")}</h2>
      <form class="form" onSubmit={submit}>
        <Field id="sim-user" label={t("user")}>
          <select id="sim-user" name="user" required>
            {(users.data ?? []).map((u) => (
              <option key={u.Uin} value={u.Name}>
                {u.Name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="sim-action" label={t("simAction")}>
          <input id="sim-action" name="action" required value="kms:Encrypt" maxLength={128} />
        </Field>
        <Field id="sim-resource" label={t("simResource")}>
          <input id="sim-resource" name="resource" required value="*" maxLength={1024} />
        </Field>
        <button type="submit" class="primary" disabled={sim.busy}>
          {t("simulate")}
        </button>
      </form>
      <ErrorBox error={sim.error} />
      {sim.result ? (
        <div role="status" class={sim.result.Allowed ? "ok" : "error"}>
          <p>
            <strong>{sim.result.Allowed ? t("allowed") : t("denied")}</strong> · {t("reason")}: {sim.result.Reason}
            {sim.result.Statement ? ` · ${sim.result.Statement.PolicyName} #${sim.result.Statement.Index}` : ""}
          </p>
          <pre class="mono">{sim.result.Explanation}</pre>
        </div>
      ) : null}
    </>
  );
}
