-- Issue 18: short invitation links (/j/<code>) that stand for a long signed invitation until
-- it expires. The code is random (50 bits), so it cannot be guessed; the link it stands for is
-- checked again when it is used.
CREATE TABLE short_links (
    code       TEXT PRIMARY KEY,
    link       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX short_links_expiry ON short_links (expires_at);
