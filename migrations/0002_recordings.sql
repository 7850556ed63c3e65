-- Network recordings and uploaded ARF files (SPEC R2, R4). One row per recording; the files
-- themselves live in [recording] dir.
--
-- session_id is not a foreign key: it is NULL for uploads, and the recorder must never fail
-- because the sessions projection is behind its journal.
CREATE TABLE recordings (
    id          TEXT PRIMARY KEY,
    session_id  TEXT,
    owner       TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    duration_ms BIGINT,
    arf_path    TEXT NOT NULL,
    arf_bytes   BIGINT NOT NULL DEFAULT 0,
    mp4_path    TEXT,
    mp4_bytes   BIGINT,
    status      TEXT NOT NULL CHECK (status IN ('recording', 'processing', 'ready', 'failed')),
    error       TEXT,
    disabled    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recordings_by_owner ON recordings (owner, created_at);
CREATE INDEX recordings_by_session ON recordings (session_id);
CREATE INDEX recordings_by_status ON recordings (status);
