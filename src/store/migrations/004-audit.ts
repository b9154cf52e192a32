// The audit log: one row per request in a hash chain (see src/audit/record.ts), the chain head
// (one row, written with every append, so appenders serialize on it and nowhere else), and the
// signed checkpoints. Kept in its own file so that its number can change before release.
// audit_head has no row until the first append: a new store stays empty, as restore needs.

export const audit = {
  version: 4,
  name: "004-audit",
  sql: `
CREATE TABLE audit_records (
  seq            INTEGER PRIMARY KEY NOT NULL,
  time           INTEGER NOT NULL,
  request_id     TEXT    NOT NULL,
  trace_id       TEXT    NOT NULL,
  node_id        TEXT    NOT NULL,
  account_uin    TEXT    NOT NULL,
  principal_uin  TEXT    NOT NULL,
  principal_name TEXT    NOT NULL,
  access_key_id  TEXT    NOT NULL,
  source_ip      TEXT    NOT NULL,
  user_agent     TEXT    NOT NULL,
  region         TEXT    NOT NULL,
  service        TEXT    NOT NULL,
  action         TEXT    NOT NULL,
  resource_type  TEXT    NOT NULL,
  resource_name  TEXT    NOT NULL,
  read_only      INTEGER NOT NULL CHECK (read_only IN (0, 1)),
  result         TEXT    NOT NULL,
  latency_ms     INTEGER NOT NULL,
  params_digest  TEXT    NOT NULL,
  -- a JSON array of strings
  flags          TEXT    NOT NULL,
  prev_hash      TEXT    NOT NULL,
  hash           TEXT    NOT NULL
);
-- LookUpEvents-style queries: a time range, or one account, principal, access key or action.
-- A key is matched as one name of resource_name's comma-separated list, which no index serves.
CREATE INDEX audit_records_by_time ON audit_records (time, seq);
CREATE INDEX audit_records_by_principal ON audit_records (principal_name, seq);
CREATE INDEX audit_records_by_access_key ON audit_records (access_key_id, seq);
CREATE INDEX audit_records_by_action ON audit_records (action, seq);
-- One account's records (every LookUpEvents query is restricted to the caller's account).
CREATE INDEX audit_records_by_account ON audit_records (account_uin, seq);

CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT    NOT NULL
);

CREATE TABLE audit_checkpoints (
  seq              INTEGER NOT NULL,
  pruned_through   INTEGER NOT NULL,
  time             INTEGER NOT NULL,
  head_hash        TEXT    NOT NULL,
  pruned_head_hash TEXT    NOT NULL,
  signature        TEXT    NOT NULL,
  PRIMARY KEY (seq, pruned_through)
) WITHOUT ROWID;
`,
} as const;
