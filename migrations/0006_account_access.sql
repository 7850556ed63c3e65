-- Disabling an account and revoking its tokens (issue 15). A disabled account cannot sign in
-- and none of its tokens work; every token names the generation it was signed in, and a token
-- of an older generation than the account's is refused, so bumping it signs the account out
-- everywhere.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
