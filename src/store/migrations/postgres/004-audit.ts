// The audit log, as SQLite's 003-audit: the records of the hash chain, the one-row chain head
// (appenders lock it, and only it, for the length of an append) and the signed checkpoints.

export const audit = {
  version: 4,
  name: "004-audit",
  sql: `
CREATE TABLE audit_records (
  seq            BIGINT  NOT NULL CONSTRAINT audit_records_pkey PRIMARY KEY,
  time           BIGINT  NOT NULL,
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
  read_only      BOOLEAN NOT NULL,
  result         TEXT    NOT NULL,
  latency_ms     BIGINT  NOT NULL,
  params_digest  TEXT    NOT NULL,
  -- a JSON array of strings
  flags          TEXT    NOT NULL,
  prev_hash      TEXT    NOT NULL,
  hash           TEXT    NOT NULL
);
CREATE INDEX audit_records_by_time ON audit_records (time, seq);
CREATE INDEX audit_records_by_principal ON audit_records (principal_name, seq);
CREATE INDEX audit_records_by_access_key ON audit_records (access_key_id, seq);
CREATE INDEX audit_records_by_action ON audit_records (action, seq);
-- One account's records (every LookUpEvents query is restricted to the caller's account).
CREATE INDEX audit_records_by_account ON audit_records (account_uin, seq);

CREATE TABLE audit_head (
  id   INTEGER NOT NULL CONSTRAINT audit_head_pkey PRIMARY KEY CONSTRAINT audit_head_one_row CHECK (id = 1),
  seq  BIGINT  NOT NULL,
  hash TEXT    NOT NULL
);

CREATE TABLE audit_checkpoints (
  seq              BIGINT NOT NULL,
  pruned_through   BIGINT NOT NULL,
  time             BIGINT NOT NULL,
  head_hash        TEXT   NOT NULL,
  pruned_head_hash TEXT   NOT NULL,
  signature        TEXT   NOT NULL,
  CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (seq, pruned_through)
);
`,
} as const;
