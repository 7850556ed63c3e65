-- Issue 18: sign-in tokens signed out one by one (the console's Sign out), by the SHA-256 of
-- the token, kept until the token would have expired anyway.
CREATE TABLE signed_out_tokens (
    id         BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
