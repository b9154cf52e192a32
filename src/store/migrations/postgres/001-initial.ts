// The first PostgreSQL schema: the same tables, columns and constraints as SQLite's 001-initial,
// in PostgreSQL types. Constraint names are spelled out because PostgresStore maps unique
// violations to StoreConflictError by constraint name.

export const initial = {
  version: 1,
  name: "001-initial",
  sql: `
CREATE TABLE meta (
  name  TEXT NOT NULL CONSTRAINT meta_pkey PRIMARY KEY,
  value TEXT NOT NULL
);

-- seq breaks ties between keys created in the same second (create_time is in seconds); an
-- identity never hands out a value twice, even after the newest row is deleted.
CREATE TABLE keys (
  seq             BIGINT  GENERATED ALWAYS AS IDENTITY CONSTRAINT keys_seq_key UNIQUE,
  key_id          TEXT    NOT NULL CONSTRAINT keys_pkey PRIMARY KEY,
  alias           TEXT    NOT NULL CONSTRAINT keys_alias_key UNIQUE,
  description     TEXT    NOT NULL,
  key_usage       TEXT    NOT NULL,
  key_spec        TEXT    NOT NULL,
  origin          TEXT    NOT NULL,
  state           TEXT    NOT NULL,
  creator_uin     TEXT    NOT NULL,
  owner           TEXT    NOT NULL,
  create_time     BIGINT  NOT NULL,
  deletion_date   BIGINT  NOT NULL,
  current_version INTEGER NOT NULL,
  -- rotation and imported material (see KeyRecord); material_digest is a keyed digest, never material
  rotation_enabled BOOLEAN NOT NULL DEFAULT false,
  rotate_days      INTEGER NOT NULL DEFAULT 0,
  last_rotate_time BIGINT  NOT NULL DEFAULT 0,
  next_rotate_time BIGINT  NOT NULL DEFAULT 0,
  valid_to         BIGINT  NOT NULL DEFAULT 0,
  material_digest  BYTEA
);
CREATE INDEX keys_by_create_time ON keys (create_time, seq);
-- The scheduler's three kinds of due work, each found through its own index.
CREATE INDEX keys_rotation_due ON keys (next_rotate_time) WHERE rotation_enabled;
CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE state = 'PendingDelete';
CREATE INDEX keys_expiry_due ON keys (valid_to) WHERE valid_to > 0;

CREATE TABLE key_versions (
  key_id           TEXT    NOT NULL CONSTRAINT key_versions_key_id_fkey REFERENCES keys (key_id),
  version          INTEGER NOT NULL,
  wrapped_material BYTEA   NOT NULL,
  public_key       BYTEA,
  create_time      BIGINT  NOT NULL,
  CONSTRAINT key_versions_pkey PRIMARY KEY (key_id, version)
);

CREATE TABLE key_tags (
  key_id    TEXT NOT NULL CONSTRAINT key_tags_key_id_fkey REFERENCES keys (key_id),
  tag_key   TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  CONSTRAINT key_tags_pkey PRIMARY KEY (key_id, tag_key)
);
CREATE INDEX key_tags_by_tag ON key_tags (tag_key, tag_value);

CREATE TABLE import_tokens (
  token_id            TEXT    NOT NULL CONSTRAINT import_tokens_pkey PRIMARY KEY,
  key_id              TEXT    NOT NULL CONSTRAINT import_tokens_key_id_fkey REFERENCES keys (key_id),
  wrapping_key_spec   TEXT    NOT NULL,
  wrapping_algorithm  TEXT    NOT NULL,
  wrapped_private_key BYTEA   NOT NULL,
  expires_at          BIGINT  NOT NULL,
  used                BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX import_tokens_by_key ON import_tokens (key_id);

CREATE TABLE access_keys (
  secret_id      TEXT   NOT NULL CONSTRAINT access_keys_pkey PRIMARY KEY,
  wrapped_secret BYTEA  NOT NULL,
  uin            TEXT   NOT NULL,
  status         TEXT   NOT NULL CONSTRAINT access_keys_status_check CHECK (status IN ('Active', 'Inactive')),
  create_time    BIGINT NOT NULL
);
`,
} as const;
