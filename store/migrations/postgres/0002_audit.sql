-- The tamper-evident audit log (issue #4): append-only, hash-chained.
-- seq is assigned by the store (1, 2, 3, ...) so that a deleted row leaves a visible gap;
-- audit_head holds the last seq and hash, so that deleting the newest rows is visible too.

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    subjects  TEXT   NOT NULL,
    details   TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
