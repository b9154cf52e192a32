// As SQLite's 005-audit-accounts: each account's own record numbering (account_seq), the table of
// each account's last number, and search indexes that start with the account.

export const auditAccounts = {
  version: 5,
  name: "005-audit-accounts",
  sql: `
ALTER TABLE audit_records ADD COLUMN account_seq BIGINT NOT NULL DEFAULT 0;
UPDATE audit_records SET account_seq = numbered.n
  FROM (SELECT seq AS s, row_number() OVER (PARTITION BY account_uin ORDER BY seq) AS n FROM audit_records) AS numbered
  WHERE audit_records.seq = numbered.s;
ALTER TABLE audit_records ALTER COLUMN account_seq DROP DEFAULT;

CREATE TABLE audit_account_heads (
  account_uin TEXT   NOT NULL CONSTRAINT audit_account_heads_pkey PRIMARY KEY,
  seq         BIGINT NOT NULL
);
INSERT INTO audit_account_heads (account_uin, seq) SELECT account_uin, max(account_seq) FROM audit_records GROUP BY account_uin;

DROP INDEX audit_records_by_principal;
DROP INDEX audit_records_by_access_key;
DROP INDEX audit_records_by_action;
DROP INDEX audit_records_by_account;
CREATE UNIQUE INDEX audit_records_by_account_seq ON audit_records (account_uin, account_seq);
CREATE INDEX audit_records_by_account_time ON audit_records (account_uin, time, account_seq);
CREATE INDEX audit_records_by_account_request ON audit_records (account_uin, request_id, time, account_seq);
CREATE INDEX audit_records_by_account_access_key ON audit_records (account_uin, access_key_id, time, account_seq);
CREATE INDEX audit_records_by_account_principal ON audit_records (account_uin, principal_name, time, account_seq);
CREATE INDEX audit_records_by_account_action ON audit_records (account_uin, action, time, account_seq);
`,
} as const;
