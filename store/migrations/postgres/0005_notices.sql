-- Notice link tokens (issue #4): only the SHA-256 of a token is stored. A token opens one
-- message for one user, until it expires or is revoked.
CREATE TABLE notice_tokens (
    token_hash  TEXT PRIMARY KEY,
    message_id  BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX notice_tokens_message ON notice_tokens (message_id);
