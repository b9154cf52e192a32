// The same change as SQLite's 006-kmip: the key class, the KMIP object's metadata (JSON text),
// and the client certificates mapped to principals.

export const kmip = {
  version: 6,
  name: "006-kmip",
  sql: `
ALTER TABLE keys ADD COLUMN key_class TEXT NOT NULL DEFAULT 'CMK'
  CONSTRAINT keys_key_class_check CHECK (key_class IN ('CMK', 'KMIP'));
ALTER TABLE keys ADD COLUMN kmip TEXT;

CREATE TABLE kmip_clients (
  fingerprint  TEXT   NOT NULL CONSTRAINT kmip_clients_pkey PRIMARY KEY,
  account_uin  TEXT   NOT NULL,
  principal_id TEXT   NOT NULL CONSTRAINT kmip_clients_principal_id_fkey REFERENCES principals (principal_id),
  subject      TEXT   NOT NULL,
  create_time  BIGINT NOT NULL
);
CREATE INDEX kmip_clients_by_account ON kmip_clients (account_uin, create_time);
CREATE INDEX kmip_clients_by_principal ON kmip_clients (principal_id);
`,
} as const;
