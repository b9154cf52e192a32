// Access control: principals (each account's root, its sub-users and roles), access keys that
// belong to a principal, CAM policies and their attachments, and role sessions (temporary
// credentials). Every existing access key belonged to its account's root: that root is recorded.

export const identity = {
  version: 3,
  name: "003-identity",
  sql: `
CREATE TABLE principals (
  principal_id        TEXT    PRIMARY KEY NOT NULL,
  account_uin         TEXT    NOT NULL,
  kind                TEXT    NOT NULL CHECK (kind IN ('root', 'user', 'role')),
  name                TEXT    NOT NULL,
  remark              TEXT    NOT NULL DEFAULT '',
  trust_policy        TEXT,
  max_session_seconds INTEGER NOT NULL DEFAULT 0,
  create_time         INTEGER NOT NULL,
  UNIQUE (account_uin, kind, name)
);

INSERT INTO principals (principal_id, account_uin, kind, name, create_time)
  SELECT uin, uin, 'root', 'root', MIN(create_time) FROM access_keys GROUP BY uin;

ALTER TABLE access_keys ADD COLUMN principal_id TEXT NOT NULL DEFAULT '';
ALTER TABLE access_keys ADD COLUMN last_used_time INTEGER NOT NULL DEFAULT 0;
UPDATE access_keys SET principal_id = uin;
CREATE INDEX access_keys_by_principal ON access_keys (principal_id);

CREATE TABLE policies (
  policy_id   INTEGER PRIMARY KEY NOT NULL,
  account_uin TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  description TEXT    NOT NULL,
  document    TEXT    NOT NULL,
  create_time INTEGER NOT NULL,
  update_time INTEGER NOT NULL,
  UNIQUE (account_uin, name)
);

-- policy_id names a custom policy (in policies) or a preset one (defined in code, ids below 1000).
CREATE TABLE policy_attachments (
  principal_id TEXT    NOT NULL REFERENCES principals (principal_id),
  policy_id    INTEGER NOT NULL,
  account_uin  TEXT    NOT NULL,
  create_time  INTEGER NOT NULL,
  PRIMARY KEY (principal_id, policy_id)
) WITHOUT ROWID;
CREATE INDEX policy_attachments_by_policy ON policy_attachments (policy_id);

-- Temporary credentials: the secret and token are derived from a service secret, never stored.
CREATE TABLE role_sessions (
  tmp_secret_id TEXT    PRIMARY KEY NOT NULL,
  role_id       TEXT    NOT NULL REFERENCES principals (principal_id),
  account_uin   TEXT    NOT NULL,
  session_name  TEXT    NOT NULL,
  assumed_by    TEXT    NOT NULL,
  create_time   INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
);
CREATE INDEX role_sessions_by_role ON role_sessions (role_id);
CREATE INDEX role_sessions_by_expiry ON role_sessions (expires_at);

CREATE INDEX keys_by_creator ON keys (creator_uin);
`,
} as const;
