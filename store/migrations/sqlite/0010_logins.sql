-- Issue #12 §1 and §5: login history and failed-login counters shared by web and IMAP
-- (and by every node using this database).

-- Failed logins per key: 'ip:ADDRESS' or 'account:LOGIN'. A row is written when an
-- attempt is admitted (counted before its password is checked, so parallel attempts see
-- each other) and lowered again when the attempt succeeds.
CREATE TABLE login_failures (
    key      TEXT PRIMARY KEY,
    count    INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_at);

-- Successful logins, web and IMAP. Repeated logins of one device from one address within
-- an hour share a row (mail programs log in every few minutes); bounded per user.
CREATE TABLE logins (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    via          TEXT NOT NULL,
    device       TEXT,
    ip           TEXT NOT NULL,
    first_at     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    new_address  BOOLEAN NOT NULL
);
CREATE INDEX logins_user ON logins (user_id, last_at);
