-- Forwarding exemptions and the outbound queue (issue #4).

CREATE TABLE exemptions (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    target           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    days             INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('requested', 'confirmed', 'active', 'expired', 'revoked', 'denied')),
    requested_by     TEXT NOT NULL,
    requested_at     INTEGER NOT NULL,
    -- The confirmation code is stored only as a hash; it expires and allows few tries.
    code_hash        TEXT NOT NULL,
    code_expires_at  INTEGER NOT NULL,
    code_attempts    INTEGER NOT NULL DEFAULT 0,
    confirmed_at     INTEGER,
    approved_by      TEXT,
    approved_at      INTEGER,
    dpo_approved_by  TEXT,
    dpo_approved_at  INTEGER,
    valid_from       INTEGER,
    valid_until      INTEGER,
    reminded_at      INTEGER,
    ended_at         INTEGER,
    ended_by         TEXT,
    end_reason       TEXT
);
CREATE INDEX exemptions_user ON exemptions (user_id, state);
CREATE INDEX exemptions_state ON exemptions (state);

-- Messages waiting to leave: confirmations, forwards, notices, reminders.
CREATE TABLE outbound_jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    exemption_id    INTEGER REFERENCES exemptions (id),
    message_id      INTEGER REFERENCES messages (id),
    mail_from       TEXT NOT NULL,
    rcpt_to         TEXT NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed', 'dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE INDEX outbound_jobs_due ON outbound_jobs (state, next_attempt_at);
