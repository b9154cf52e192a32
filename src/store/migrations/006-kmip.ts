// KMIP: keys gain a class (CMK, never exportable; KMIP, the objects created or registered through
// KMIP, whose material may leave through KMIP Get) and the KMIP object's own metadata as JSON
// (object type, KMIP state, names, attributes; never material). kmip_clients maps a client
// certificate (by the SHA-256 of its DER) to the principal its KMIP requests act as.

export const kmip = {
  version: 6,
  name: "006-kmip",
  sql: `
ALTER TABLE keys ADD COLUMN key_class TEXT NOT NULL DEFAULT 'CMK' CHECK (key_class IN ('CMK', 'KMIP'));
ALTER TABLE keys ADD COLUMN kmip TEXT;

CREATE TABLE kmip_clients (
  fingerprint  TEXT    PRIMARY KEY NOT NULL,
  account_uin  TEXT    NOT NULL,
  principal_id TEXT    NOT NULL REFERENCES principals (principal_id),
  subject      TEXT    NOT NULL,
  create_time  INTEGER NOT NULL
);
CREATE INDEX kmip_clients_by_account ON kmip_clients (account_uin, create_time);
CREATE INDEX kmip_clients_by_principal ON kmip_clients (principal_id);
`,
} as const;
