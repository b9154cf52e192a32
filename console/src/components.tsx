// Small shared pieces: times (local, UTC on hover), errors shown verbatim, loading and empty
// states, labelled fields, and the confirmation dialog every key action goes through.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.js";
import { language, t, type MessageKey } from "./i18n.js";

/** A time in the browser's zone, written as the console's language writes it; its UTC value on hover and in the datetime attribute. */
export function Time({ seconds }: { seconds: number }) {
  if (!seconds) return <span>—</span>;
  const d = new Date(seconds * 1000);
  const utc = d.toISOString().replace(".000Z", "Z");
  return (
    <time dateTime={utc} title={`UTC ${utc}`}>
      {d.toLocaleString(language())}
    </time>
  );
}

/** An API refusal: its code and message exactly as the server wrote them. */
export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  const code = error instanceof ApiError ? error.code : "Error";
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="error" role="alert">
      <strong>
        {t("refused")}: {code}
      </strong>
      <span class="error-message">{message}</span>
    </div>
  );
}

export function Loading() {
  return (
    <p class="muted" role="status">
      {t("loading")}
    </p>
  );
}

export function Empty() {
  return <p class="muted">{t("empty")}</p>;
}

/** A labelled control: the label names the field for screen readers and clicks. */
export function Field({ id, label, children }: { id: string; label: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
    </div>
  );
}

/** Runs an async call, keeping its result, error and busy state. */
export function useCall<T>(): { busy: boolean; error: unknown; result: T | undefined; run: (f: () => Promise<T>) => Promise<T | undefined>; reset: () => void } {
  const [state, setState] = useState<{ busy: boolean; error: unknown; result: T | undefined }>({ busy: false, error: undefined, result: undefined });
  return {
    ...state,
    run: async (f) => {
      setState({ busy: true, error: undefined, result: undefined });
      try {
        const result = await f();
        setState({ busy: false, error: undefined, result });
        return result;
      } catch (error) {
        setState({ busy: false, error, result: undefined });
        return undefined;
      }
    },
    reset: () => setState({ busy: false, error: undefined, result: undefined }),
  };
}

/** Loads `load` whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}

/** A modal dialog (focus moves into it, Escape cancels) asking to confirm one action. */
export function ConfirmDialog({ title, children, busy, onConfirm, onCancel }: { title: string; children?: ComponentChildren; busy: boolean; onConfirm: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm();
        }}
      >
        <h2 id="confirm-title">{title}</h2>
        {children}
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>
            {t("confirm")}
          </button>
          <button type="button" onClick={onCancel}>
            {t("cancel")}
          </button>
        </div>
      </form>
    </dialog>
  );
}

export interface Column<T> {
  /** The header's message (shown in the console's language); also the column's key. */
  label: MessageKey;
  cell: (row: T) => ComponentChildren;
  class?: string;
}

interface TableProps<T> {
  /** Names the table's frame for screen readers. */
  label: string;
  columns: readonly Column<T>[];
  rowKey: (row: T) => string | number;
}

/** Rows in a frame that scrolls sideways on a narrow screen (focusable, so the keyboard scrolls it too). */
export function DataTable<T>({ label, columns, rows, rowKey }: TableProps<T> & { rows: readonly T[] }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.label}>
                {t(c.label)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.label} class={c.class}>
                  {c.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A loaded list: its error, its loading and empty states, then its table. */
export function Listing<T>({ load, ...table }: TableProps<T> & { load: { data: readonly T[] | undefined; error: unknown; loading: boolean } }) {
  return (
    <>
      <ErrorBox error={load.error} />
      {load.loading && !load.data ? <Loading /> : null}
      {load.data?.length === 0 ? <Empty /> : null}
      {load.data && load.data.length > 0 ? <DataTable {...table} rows={load.data} /> : null}
    </>
  );
}

/** Previous / next for a list counted in pages. */
export function Pager({ page, pages, total, onPage }: { page: number; pages: number; total: number; onPage: (page: number) => void }) {
  return (
    <nav class="pager" aria-label={t("pageOf", { page, pages, total })}>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        {t("previous")}
      </button>
      <span>{t("pageOf", { page, pages, total })}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        {t("next")}
      </button>
    </nav>
  );
}
