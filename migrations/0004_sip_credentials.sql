-- SIP digest credentials of support accounts' softphones (SPEC V5). Digest cannot use the
-- argon2 sign-in hash, so a softphone has its own password, kept only as the two HA1 hashes
-- (H(username:realm:password), MD5 and SHA-256) for the realm they were made for.
CREATE TABLE sip_credentials (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    realm      TEXT NOT NULL,
    ha1_md5    TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
