// Audit: the account's events (CloudAudit LookUpEvents) with its filters, a page at a time, each
// record's details, and the chain's verification status (VerifyAuditChain).

import { useEffect, useRef, useState } from "preact/hooks";
import { call, type Session } from "../api.js";
import { DataTable, Empty, ErrorBox, Field, Loading, Time, useCall, useLoad, type Column } from "../components.js";
import { t } from "../i18n.js";

interface AuditEvent {
  EventId: string;
  EventTime: string;
  Username: string;
  EventName: string;
  EventSource: string;
  ErrorCode: number;
  SourceIPAddress: string;
  Resources: { ResourceName: string };
  CloudAuditEvent: string;
}

interface Page {
  Events: AuditEvent[];
  ListOver: boolean;
  NextToken?: string;
}

interface Search {
  start: number;
  end: number;
  attributes: { AttributeKey: string; AttributeValue: string }[];
  result: "" | "success" | "failed";
}

const DAY = 86_400;

/** A datetime-local value (the browser's zone) for unix seconds, and back. */
function localInput(seconds: number): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value: string, fallback: number): number {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : fallback;
}

function eventDetails(e: AuditEvent): Record<string, unknown> {
  try {
    return JSON.parse(e.CloudAuditEvent) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const EVENT_COLUMNS: readonly Column<AuditEvent>[] = [
  { label: "time", cell: (e) => <Time seconds={Number(e.EventTime)} /> },
  { label: "user", cell: (e) => e.Username || "—" },
  { label: "eventName", cell: (e) => `${e.EventSource.replace(/\.tencentcloudapi\.com$/, "")}:${e.EventName}` },
  { label: "resource", cell: (e) => e.Resources.ResourceName || "—", class: "mono" },
  { label: "result", cell: (e) => String(eventDetails(e).result ?? (e.ErrorCode === 0 ? "Success" : "failed")) },
  { label: "source", cell: (e) => e.SourceIPAddress, class: "mono" },
];

function initialSearch(): Search {
  const now = Math.floor(Date.now() / 1000);
  return { start: now - DAY, end: now + 60, attributes: [], result: "" };
}

export function AuditPage({ session }: { session: Session }) {
  const [search, setSearch] = useState<Search>(initialSearch);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [selected, setSelected] = useState<AuditEvent | undefined>(undefined);
  const more = useCall<Page>();
  const fetchPage = (s: Search, token?: string) =>
    call<Page>(session, "cloudaudit", "LookUpEvents", {
      StartTime: s.start,
      EndTime: s.end,
      MaxResults: 50,
      ...(s.attributes.length > 0 ? { LookupAttributes: s.attributes } : {}),
      ...(token ? { NextToken: token } : {}),
    });
  const first = useLoad(async () => {
    const page = await fetchPage(search);
    setEvents(page.Events);
    setNext(page.ListOver ? undefined : page.NextToken);
    setSelected(undefined);
    return page;
  }, [session, search]);
  const loadMore = async () => {
    const page = await more.run(() => fetchPage(search, next));
    if (!page) return;
    setEvents((old) => [...old, ...page.Events]);
    setNext(page.ListOver ? undefined : page.NextToken);
  };
  const apply = (e: Event) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    const text = (name: string) => String(data.get(name) ?? "").trim();
    const attributes = (
      [
        ["Username", text("user")],
        ["EventName", text("action")],
        ["ResourceName", text("key")],
        ["Flag", text("flag")],
      ] as const
    )
      .filter(([, v]) => v !== "")
      .map(([AttributeKey, AttributeValue]) => ({ AttributeKey, AttributeValue }));
    setSearch({ start: fromLocalInput(text("from"), search.start), end: fromLocalInput(text("to"), search.end), attributes, result: text("result") as Search["result"] });
  };
  const shown = events.filter((e) => search.result === "" || (search.result === "success") === (e.ErrorCode === 0));
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">{t("auditTitle")}</h1>
      <ChainStatus session={session} />
      <form class="filters" onSubmit={apply} role="search">
        <Field id="audit-from" label={t("from")}>
          <input id="audit-from" name="from" type="datetime-local" value={localInput(search.start)} />
        </Field>
        <Field id="audit-to" label={t("to")}>
          <input id="audit-to" name="to" type="datetime-local" value={localInput(search.end)} />
        </Field>
        <Field id="audit-user" label={t("user")}>
          <input id="audit-user" name="user" maxLength={256} />
        </Field>
        <Field id="audit-action" label={t("eventName")}>
          <input id="audit-action" name="action" maxLength={256} />
        </Field>
        <Field id="audit-key" label={t("resource")}>
          <input id="audit-key" name="key" maxLength={256} />
        </Field>
        <Field id="audit-result" label={t("result")}>
          <select id="audit-result" name="result">
            <option value="">{t("resultAny")}</option>
            <option value="success">{t("resultSuccess")}</option>
            <option value="failed">{t("resultFailed")}</option>
          </select>
        </Field>
        <Field id="audit-flag" label={t("flag")}>
          <input id="audit-flag" name="flag" maxLength={256} />
        </Field>
        <button type="submit">{t("apply")}</button>
      </form>
      <ErrorBox error={first.error} />
      {first.loading ? <Loading /> : null}
      {!first.loading && !first.error && shown.length === 0 ? <Empty /> : null}
      {shown.length > 0 ? (
        <DataTable
          label={t("auditTitle")}
          rows={shown}
          rowKey={(e) => e.EventId}
          columns={[
            ...EVENT_COLUMNS,
            {
              label: "details",
              cell: (e) => (
                <button type="button" onClick={() => setSelected(e)} aria-label={`${t("details")} #${e.EventId}`}>
                  #{e.EventId}
                </button>
              ),
            },
          ]}
        />
      ) : null}
      {next ? (
        <button type="button" onClick={loadMore} disabled={more.busy}>
          {t("more")}
        </button>
      ) : null}
      <ErrorBox error={more.error} />
      {selected ? <EventDetails event={selected} onClose={() => setSelected(undefined)} /> : null}
    </section>
  );
}

/** One record in full; focus moves to it when it opens, so a keyboard user lands there. */
function EventDetails({ event, onClose }: { event: AuditEvent; onClose: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [event.EventId]);
  return (
    <section class="panel" aria-labelledby="event-title">
      <h2 id="event-title" ref={heading} tabIndex={-1}>
        {t("event")} #{event.EventId}
      </h2>
      <pre class="mono">{JSON.stringify(eventDetails(event), null, 2)}</pre>
      <button type="button" onClick={onClose}>
        {t("close")}
      </button>
    </section>
  );
}

interface ChainReport {
  Verified: boolean;
  Records: number;
  Checkpoints: number;
  Failure: { Seq: number; Reason: string; Detail: string } | null;
  CheckedAt: number;
  PublicKey: string;
}

/** The chain's state, checked when asked: the check reads the whole log, which takes a while on a long one. */
function ChainStatus({ session }: { session: Session }) {
  const status = useCall<ChainReport>();
  const r = status.result;
  return (
    <section class="panel" aria-labelledby="chain-title">
      <h2 id="chain-title">{t("chainStatus")}</h2>
      {status.busy ? <Loading /> : null}
      <ErrorBox error={status.error} />
      {r ? (
        <div role="status" class={r.Verified ? "ok" : "error"} data-testid="chain-status">
          <p>
            {r.Verified
              ? t("chainVerified", { records: r.Records, checkpoints: r.Checkpoints })
              : t("chainBroken", { reason: r.Failure?.Reason ?? "", seq: r.Failure?.Seq ?? 0, detail: r.Failure?.Detail ?? "" })}{" "}
            (<Time seconds={r.CheckedAt} />)
          </p>
          <p class="muted">{t("chainPublicKey", { key: r.PublicKey })}</p>
        </div>
      ) : null}
      <button type="button" onClick={() => void status.run(() => call<ChainReport>(session, "cloudaudit", "VerifyAuditChain"))} disabled={status.busy}>
        {t("chainCheck")}
      </button>
    </section>
  );
}
