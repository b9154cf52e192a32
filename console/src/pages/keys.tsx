// The keys list: search by alias, filters by state and usage, paged (ListKeyDetail).

import { useState } from "preact/hooks";
import { KEY_STATES, KEY_USAGES } from "../../../src/keys/key.js";
import { call, type Session } from "../api.js";
import { Field, Listing, Pager, Time, useLoad, type Column } from "../components.js";
import { t } from "../i18n.js";

export const PAGE_SIZE = 20;

export interface KeyMetadata {
  KeyId: string;
  Alias: string;
  Description: string;
  CreateTime: number;
  KeyState: string;
  KeyUsage: string;
  KeySpec: string;
  ProtectionLevel: string;
  KeyRotationEnabled: boolean;
  Origin: string;
  KeyClass: string;
  CreatorUinString: string;
  NextRotateTime: number;
  LastRotateTime: number;
  RotateDays: number;
  DeletionDate: number;
  ValidTo: number;
}

const KEY_COLUMNS: readonly Column<KeyMetadata>[] = [
  { label: "alias", cell: (k) => <a href={`#/keys/${encodeURIComponent(k.KeyId)}`}>{k.Alias || k.KeyId}</a> },
  { label: "keyId", cell: (k) => k.KeyId, class: "mono" },
  { label: "usage", cell: (k) => k.KeyUsage },
  { label: "spec", cell: (k) => k.KeySpec },
  { label: "state", cell: (k) => <span class={`state state-${k.KeyState}`}>{k.KeyState}</span> },
  { label: "protection", cell: (k) => k.ProtectionLevel },
  { label: "rotation", cell: (k) => (k.KeyRotationEnabled ? t("on") : t("off")) },
  { label: "created", cell: (k) => <Time seconds={k.CreateTime} /> },
];

interface Filters {
  search: string;
  state: number;
  usage: string;
}

export function KeysPage({ session }: { session: Session }) {
  const [filters, setFilters] = useState<Filters>({ search: "", state: 0, usage: "ALL" });
  const [page, setPage] = useState(1);
  const list = useLoad(
    () =>
      call<{ TotalCount: number; KeyMetadatas: KeyMetadata[] }>(session, "kms", "ListKeyDetail", {
        Offset: (page - 1) * PAGE_SIZE,
        Limit: PAGE_SIZE,
        KeyState: filters.state,
        KeyUsage: filters.usage,
        ...(filters.search ? { SearchKeyAlias: filters.search } : {}),
      }),
    [session, filters, page],
  );
  const apply = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    setFilters({ search: String(data.get("search") ?? ""), state: Number(data.get("state") ?? 0), usage: String(data.get("usage") ?? "ALL") });
    setPage(1);
  };
  const total = list.data?.TotalCount ?? 0;
  return (
    <section aria-labelledby="keys-title">
      <div class="title-row">
        <h1 id="keys-title">{t("navKeys")}</h1>
        <a class="button primary" href="#/create">
          {t("createKey")}
        </a>
      </div>
      <form class="filters" onSubmit={apply} role="search">
        <Field id="search" label={t("search")}>
          <input id="search" name="search" type="search" maxLength={128} />
        </Field>
        <Field id="state" label={t("filterState")}>
          <select id="state" name="state">
            <option value="0">{t("all")}</option>
            {KEY_STATES.map((s, i) => (
              <option key={s} value={String(i + 1)}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        <Field id="usage" label={t("filterUsage")}>
          <select id="usage" name="usage">
            <option value="ALL">{t("all")}</option>
            {KEY_USAGES.map((u) => (
              <option key={u} value={u}>
                {u}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit">{t("apply")}</button>
      </form>
      <Listing label={t("navKeys")} load={{ ...list, data: list.data?.KeyMetadatas }} columns={KEY_COLUMNS} rowKey={(k) => k.KeyId} />
      {total > 0 ? <Pager page={page} pages={Math.max(1, Math.ceil(total / PAGE_SIZE))} total={total} onPage={setPage} /> : null}
    </section>
  );
}
