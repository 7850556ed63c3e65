-- The script library (SPEC M2): admin-defined categories, and scripts with a unique name
-- (compared without regard to case), published to the library or kept private by their owner,
-- each with its executable file and an optional input file (at most 1 MiB each, checked by the
-- server before they are stored).
CREATE TABLE script_categories (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE
);

CREATE TABLE scripts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    category_id TEXT NOT NULL REFERENCES script_categories(id),
    description TEXT NOT NULL DEFAULT '',
    published   INTEGER NOT NULL DEFAULT 0,
    owner       TEXT NOT NULL REFERENCES users(id),
    file_name   TEXT NOT NULL,
    content     BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    input_name  TEXT,
    input       BLOB,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX scripts_owner ON scripts(owner);
