-- Users, their addresses and accepted messages (issue #2).
-- Times are Unix epoch milliseconds (INTEGER), the same representation as on PostgreSQL.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    login         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('staff', 'admin', 'dpo')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- One row per enrolled address; stored lower-cased so lookups are case-insensitive.
CREATE TABLE addresses (
    address TEXT    PRIMARY KEY,
    domain  TEXT    NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX addresses_domain ON addresses (domain);
CREATE INDEX addresses_user ON addresses (user_id);

-- Envelope and metadata of every accepted message. The raw bytes live in message_blobs so
-- that listings and state scans never page through message content.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    mail_from   TEXT    NOT NULL,
    helo        TEXT    NOT NULL,
    peer_ip     TEXT    NOT NULL,
    tls         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    message_id  TEXT,
    state       TEXT    NOT NULL DEFAULT 'received'
);
CREATE INDEX messages_state ON messages (state);
CREATE INDEX messages_received ON messages (received_at);

CREATE TABLE message_blobs (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw        BLOB    NOT NULL
);

-- One row per (message, recipient address); the unit later stages deliver and forward.
CREATE TABLE message_recipients (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    recipient  TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    state      TEXT    NOT NULL DEFAULT 'pending',
    PRIMARY KEY (message_id, recipient)
);
CREATE INDEX message_recipients_user ON message_recipients (user_id);
