-- Forwarding exemptions and the outbound queue (issue #4).

CREATE TABLE exemptions (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id),
    target           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    days             BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('requested', 'confirmed', 'active', 'expired', 'revoked', 'denied')),
    requested_by     TEXT NOT NULL,
    requested_at     BIGINT NOT NULL,
    -- The confirmation code is stored only as a hash; it expires and allows few tries.
    code_hash        TEXT NOT NULL,
    code_expires_at  BIGINT NOT NULL,
    code_attempts    BIGINT NOT NULL DEFAULT 0,
    confirmed_at     BIGINT,
    approved_by      TEXT,
    approved_at      BIGINT,
    dpo_approved_by  TEXT,
    dpo_approved_at  BIGINT,
    valid_from       BIGINT,
    valid_until      BIGINT,
    reminded_at      BIGINT,
    ended_at         BIGINT,
    ended_by         TEXT,
    end_reason       TEXT
);
CREATE INDEX exemptions_user ON exemptions (user_id, state);
CREATE INDEX exemptions_state ON exemptions (state);

-- Messages waiting to leave: confirmations, forwards, notices, reminders.
CREATE TABLE outbound_jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    exemption_id    BIGINT REFERENCES exemptions (id),
    message_id      BIGINT REFERENCES messages (id),
    mail_from       TEXT NOT NULL,
    rcpt_to         TEXT NOT NULL,
    body            BYTEA NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed', 'dropped')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    done_at         BIGINT
);
CREATE INDEX outbound_jobs_due ON outbound_jobs (state, next_attempt_at);
