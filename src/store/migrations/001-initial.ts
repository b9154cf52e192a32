// The first schema: CMKs, their versions and tags, access keys, and a small name/value table.
// Alias uniqueness is enforced here, not in code, so two writers cannot both win.

export const initial = {
  version: 1,
  name: "001-initial",
  sql: `
CREATE TABLE meta (
  name  TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);

-- seq breaks ties between keys created in the same second (create_time is in seconds);
-- AUTOINCREMENT keeps it increasing even after the newest row is deleted.
CREATE TABLE keys (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id          TEXT    NOT NULL UNIQUE,
  alias           TEXT    NOT NULL UNIQUE,
  description     TEXT    NOT NULL,
  key_usage       TEXT    NOT NULL,
  key_spec        TEXT    NOT NULL,
  origin          TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  creator_uin     TEXT    NOT NULL,
  owner           TEXT    NOT NULL,
  create_time     INTEGER NOT NULL,
  deletion_date   INTEGER NOT NULL,
  current_version INTEGER NOT NULL
);
CREATE INDEX keys_by_create_time ON keys (create_time, seq);

CREATE TABLE key_versions (
  key_id           TEXT    NOT NULL REFERENCES keys (key_id),
  version          INTEGER NOT NULL,
  wrapped_material BLOB    NOT NULL,
  public_key       BLOB,
  create_time      INTEGER NOT NULL,
  PRIMARY KEY (key_id, version)
) WITHOUT ROWID;

CREATE TABLE key_tags (
  key_id    TEXT NOT NULL REFERENCES keys (key_id),
  tag_key   TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  PRIMARY KEY (key_id, tag_key)
) WITHOUT ROWID;
CREATE INDEX key_tags_by_tag ON key_tags (tag_key, tag_value);

CREATE TABLE access_keys (
  secret_id      TEXT    PRIMARY KEY NOT NULL,
  wrapped_secret BLOB    NOT NULL,
  uin            TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('Active', 'Inactive')),
  create_time    INTEGER NOT NULL
);
`,
} as const;
