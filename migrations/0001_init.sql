-- Accounts: admins, CSRs and agents. Customers have no account.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'csr', 'agent')),
    created_at    BIGINT NOT NULL
);

-- Admin settings, one JSON value per key.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE queues (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE queue_agents (
    queue_id TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, user_id)
);

-- One row per support session; a projection of its journal kept for listing and reports.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    number        TEXT NOT NULL,
    topic         TEXT NOT NULL,
    host_id       TEXT NOT NULL REFERENCES users(id),
    max_customers BIGINT NOT NULL,
    quick_phrases TEXT,
    status        TEXT NOT NULL CHECK (status IN ('active', 'waiting', 'ended')),
    created_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT,
    notes         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_host ON sessions (host_id, created_at);
CREATE INDEX sessions_by_status ON sessions (status);

-- The journal: every session event, in order. The source of truth for a session's state.
CREATE TABLE session_events (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq        BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- Who took part, when (SPEC RP2); a projection of the journal.
CREATE TABLE participants (
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    participant_id TEXT NOT NULL,
    role           TEXT NOT NULL,
    name           TEXT NOT NULL,
    email          TEXT,
    account_id     TEXT,
    joined_at      BIGINT NOT NULL,
    left_at        BIGINT,
    leave_reason   TEXT,
    PRIMARY KEY (session_id, participant_id)
);
CREATE INDEX participants_by_account ON participants (account_id);
