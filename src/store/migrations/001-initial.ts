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
  current_version INTEGER NOT NULL,
  -- rotation and imported material (see KeyRecord); material_digest is a keyed digest, never material
  rotation_enabled INTEGER NOT NULL DEFAULT 0 CHECK (rotation_enabled IN (0, 1)),
  rotate_days      INTEGER NOT NULL DEFAULT 0,
  last_rotate_time INTEGER NOT NULL DEFAULT 0,
  next_rotate_time INTEGER NOT NULL DEFAULT 0,
  valid_to         INTEGER NOT NULL DEFAULT 0,
  material_digest  BLOB
);
CREATE INDEX keys_by_create_time ON keys (create_time, seq);
-- The scheduler's three kinds of due work, each found through its own index.
CREATE INDEX keys_rotation_due ON keys (next_rotate_time) WHERE rotation_enabled = 1;
CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE state = 'PendingDelete';
CREATE INDEX keys_expiry_due ON keys (valid_to) WHERE valid_to > 0;

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

CREATE TABLE import_tokens (
  token_id            TEXT    PRIMARY KEY NOT NULL,
  key_id              TEXT    NOT NULL REFERENCES keys (key_id),
  wrapping_key_spec   TEXT    NOT NULL,
  wrapping_algorithm  TEXT    NOT NULL,
  wrapped_private_key BLOB    NOT NULL,
  expires_at          INTEGER NOT NULL,
  used                INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
);
CREATE INDEX import_tokens_by_key ON import_tokens (key_id);

CREATE TABLE access_keys (
  secret_id      TEXT    PRIMARY KEY NOT NULL,
  wrapped_secret BLOB    NOT NULL,
  uin            TEXT    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('Active', 'Inactive')),
  create_time    INTEGER NOT NULL
);
`,
} as const;
