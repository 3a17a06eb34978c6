-- Password-reset links: only the SHA-256 of each token is kept (the token itself
-- is in the mail alone), with its user, and when it was made, lapses and was used
-- (Unix seconds). A table of our own: never Laravel's password_reset_tokens.
CREATE TABLE stripe_sync_password_resets (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NULL
);
CREATE INDEX stripe_sync_password_resets_created_at ON stripe_sync_password_resets (created_at);
