// The keys list: search by alias, filters by state and usage, paged (ListKeyDetail).

import { useState } from "preact/hooks";
import { KEY_STATES, KEY_USAGES } from "../../../src/keys/key.js";
import { call, type Session } from "../api.js";
import { Empty, ErrorBox, Field, Loading, Pager, Time, useLoad } from "../components.js";
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
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && list.data.KeyMetadatas.length === 0 ? <Empty /> : null}
      {list.data && list.data.KeyMetadatas.length > 0 ? (
        <>
          <div class="table-wrap" tabIndex={0} role="region" aria-labelledby="keys-title">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("alias")}</th>
                  <th scope="col">{t("keyId")}</th>
                  <th scope="col">{t("usage")}</th>
                  <th scope="col">{t("spec")}</th>
                  <th scope="col">{t("state")}</th>
                  <th scope="col">{t("protection")}</th>
                  <th scope="col">{t("rotation")}</th>
                  <th scope="col">{t("created")}</th>
                </tr>
              </thead>
              <tbody>
                {list.data.KeyMetadatas.map((k) => (
                  <tr key={k.KeyId}>
                    <td>
                      <a href={`#/keys/${encodeURIComponent(k.KeyId)}`}>{k.Alias || k.KeyId}</a>
                    </td>
                    <td class="mono">{k.KeyId}</td>
                    <td>{k.KeyUsage}</td>
                    <td>{k.KeySpec}</td>
                    <td>
                      <span class={`state state-${k.KeyState}`}>{k.KeyState}</span>
                    </td>
                    <td>{k.ProtectionLevel}</td>
                    <td>{k.KeyRotationEnabled ? t("on") : t("off")}</td>
                    <td>
                      <Time seconds={k.CreateTime} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={page} pages={Math.max(1, Math.ceil(total / PAGE_SIZE))} total={total} onPage={setPage} />
        </>
      ) : null}
    </section>
  );
}
