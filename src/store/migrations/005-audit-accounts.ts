// Each account's audit records get their own numbering (account_seq: CloudAudit's EventId), so
// what an account sees says nothing of other accounts' volume; audit_account_heads keeps each
// account's last number, also across pruning. Searches walk one account's records by time
// through indexes that start with the account: the chain-wide ones they replace go.

export const auditAccounts = {
  version: 5,
  name: "005-audit-accounts",
  sql: `
ALTER TABLE audit_records ADD COLUMN account_seq INTEGER NOT NULL DEFAULT 0;
UPDATE audit_records SET account_seq = numbered.n
  FROM (SELECT seq AS s, row_number() OVER (PARTITION BY account_uin ORDER BY seq) AS n FROM audit_records) AS numbered
  WHERE audit_records.seq = numbered.s;

CREATE TABLE audit_account_heads (
  account_uin TEXT    PRIMARY KEY NOT NULL,
  seq         INTEGER NOT NULL
) WITHOUT ROWID;
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
