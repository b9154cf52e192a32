// The audit log's dynamic statements, shared by both stores: a listing in chain order, and the
// bounded search through one account's records (CloudAudit). Built per call from the filters
// given; each store keeps each distinct text prepared (SQLite) or named (PostgreSQL).

import type { AccountAuditPage, AccountAuditPosition, AccountAuditSearch, AuditRecordFilters, AuditRecordQuery } from "../../audit/port.js";
import { fromAuditRow, type AccountAuditRow } from "./rows.js";
import { AUDIT_COLUMNS, type Dialect, type SqlStatement } from "./statements.js";

/** A statement built for one call, with its values. */
export interface BuiltQuery {
  statement: SqlStatement;
  values: unknown[];
}

/** A search's equality filter that has an index of (account_uin, column, time, account_seq), most selective first. */
export const AUDIT_INDEXED_FILTERS = [
  ["requestId", "request_id", "audit_records_by_account_request"],
  ["accessKeyId", "access_key_id", "audit_records_by_account_access_key"],
  ["principalName", "principal_name", "audit_records_by_account_principal"],
  ["action", "action", "audit_records_by_account_action"],
] as const satisfies readonly (readonly [keyof AuditRecordFilters, string, string])[];

/**
 * The index a search walks: the account's record number for an EventId, else the first indexed
 * equality filter given, else time alone. Its column, if any, is compared with `value`.
 */
export function auditSearchIndex(filters: AuditRecordFilters): { index: string; column?: string; name?: keyof typeof AUDIT_FILTER_COLUMNS } {
  if (filters.accountSeq !== undefined) return { index: "audit_records_by_account_seq", column: "account_seq", name: "accountSeq" };
  for (const [name, column, index] of AUDIT_INDEXED_FILTERS) if (filters[name] !== undefined) return { index, column, name };
  return { index: "audit_records_by_account_time" };
}

/** The upper end of a search's walk, exclusive: the cursor or the end of the time range, whichever comes first. */
export function auditSearchUpper(search: AccountAuditSearch): AccountAuditPosition {
  const end = { time: search.toTime + 1, accountSeq: 0 };
  const after = search.after;
  return after !== undefined && (after.time < end.time || (after.time === end.time && after.accountSeq < end.accountSeq)) ? after : end;
}

/** The search filters compared for equality, with the column each compares. */
export const AUDIT_FILTER_COLUMNS = {
  accountSeq: "account_seq",
  action: "action",
  resourceType: "resource_type",
  requestId: "request_id",
  principalName: "principal_name",
  accessKeyId: "access_key_id",
  readOnly: "read_only",
} as const satisfies Readonly<Record<Exclude<keyof AuditRecordFilters, "flag" | "resourceName">, string>>;

/** Collects a statement's values and hands out their placeholders. */
class Params {
  readonly values: unknown[];
  readonly #d: Dialect;

  constructor(d: Dialect, values: unknown[] = []) {
    this.#d = d;
    this.values = values;
  }

  add(value: unknown, type: "text" | "bigint" | "boolean" = typeof value === "boolean" ? "boolean" : typeof value === "number" ? "bigint" : "text"): string {
    this.values.push(value);
    return this.#d.cast(`$${this.values.length}`, type);
  }
}

export function auditListQuery(d: Dialect, query: AuditRecordQuery): BuiltQuery {
  const p = new Params(d, [query.limit]);
  const where: string[] = [];
  if (query.fromTime !== undefined) where.push(`time >= ${p.add(query.fromTime)}`);
  if (query.toTime !== undefined) where.push(`time <= ${p.add(query.toTime)}`);
  if (query.afterSeq !== undefined) where.push(`seq ${query.order === "asc" ? ">" : "<"} ${p.add(query.afterSeq)}`);
  const text = `SELECT ${AUDIT_COLUMNS} FROM audit_records ${where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`}
    ORDER BY seq ${query.order === "asc" ? "ASC" : "DESC"} LIMIT $1`;
  return { statement: d.dynamic(text), values: p.values };
}

/**
 * The two statements of one search call: `boundary` finds the scan limit's last record, if the
 * range reaches that far (in the index alone); `rows(boundary)` returns the matches above it.
 */
export function auditSearchQueries(d: Dialect, search: AccountAuditSearch): { boundary: BuiltQuery; rows: (boundary: AccountAuditPosition | undefined) => BuiltQuery } {
  const { index, column, name } = auditSearchIndex(search.filters);
  const upper = auditSearchUpper(search);
  const from = `FROM audit_records ${d.indexHint(index)}`;
  const order = "ORDER BY time DESC, account_seq DESC";
  // The walk: the account's records of the range below `upper`, through one index (the planner
  // must not pick another, whose walk the scan limit would not bound).
  const walk = (p: Params): string[] => {
    const conditions = [`account_uin = ${p.add(search.accountUin)}`, `(time, account_seq) < (${p.add(upper.time)}, ${p.add(upper.accountSeq)})`];
    if (column !== undefined && name !== undefined) conditions.push(`${column} = ${p.add(search.filters[name])}`);
    return conditions;
  };
  const b = new Params(d);
  const boundaryWhere = [...walk(b), `time >= ${b.add(search.fromTime)}`];
  const boundary = { statement: d.dynamic(`SELECT time, account_seq ${from} WHERE ${boundaryWhere.join(" AND ")} ${order} LIMIT 1 OFFSET ${b.add(search.scanLimit - 1)}`), values: b.values };
  const rows = (last: AccountAuditPosition | undefined): BuiltQuery => {
    const p = new Params(d);
    const where = walk(p);
    // The boundary, when there is one, must be the walk's lower end in the index (not a test on
    // each row), or a search with few matches would walk on to the start of the range.
    where.push(last === undefined ? `time >= ${p.add(search.fromTime)}` : `(time, account_seq) >= (${p.add(last.time)}, ${p.add(last.accountSeq)})`);
    const filters = search.filters;
    for (const [filter, filterColumn] of Object.entries(AUDIT_FILTER_COLUMNS)) {
      const value = filters[filter as keyof typeof AUDIT_FILTER_COLUMNS];
      if (value !== undefined && filter !== name) where.push(`${filterColumn} = ${p.add(value)}`);
    }
    // One whole name of the comma-separated list.
    if (filters.resourceName !== undefined) where.push(d.contains("',' || resource_name || ','", `',' || ${p.add(filters.resourceName, "text")} || ','`));
    // The text test first: parsing each row's JSON costs four times as much, and only rows that
    // hold the flag's JSON string (as the writer wrote it) can match.
    if (filters.flag !== undefined) where.push(d.contains("flags", p.add(JSON.stringify(filters.flag), "text")), d.hasFlag(p.add(filters.flag, "text")));
    const text = `SELECT ${AUDIT_COLUMNS}, account_seq ${from} WHERE ${where.join(" AND ")} ${order} LIMIT ${p.add(search.limit + 1)}`;
    return { statement: d.dynamic(text), values: p.values };
  };
  return { boundary, rows };
}

/** The page of a search call from the rows (one more than the limit, if there are) and the boundary. */
export function auditSearchPage(search: AccountAuditSearch, rows: readonly AccountAuditRow[], boundary: AccountAuditPosition | undefined): AccountAuditPage {
  const records = rows.slice(0, search.limit).map((row) => ({ ...fromAuditRow(row), accountSeq: Number(row.account_seq) }));
  const last = records.at(-1);
  if (rows.length > search.limit && last !== undefined) return { records, next: { time: last.time, accountSeq: last.accountSeq } };
  return boundary === undefined ? { records } : { records, next: boundary };
}
