-- IMAP mailboxes (issue #5). A mailbox entry refers to the accepted message it shows; what
-- it serves is decided when it is read (the notice for a sensitive message, never the
-- original). Entries a client APPENDed carry their own content.
CREATE TABLE mailboxes (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    special_use    TEXT,
    subscribed     BOOLEAN NOT NULL DEFAULT TRUE,
    uid_validity   BIGINT NOT NULL,
    uid_next       BIGINT NOT NULL DEFAULT 1,
    highest_modseq BIGINT NOT NULL DEFAULT 1,
    UNIQUE (user_id, name)
);

CREATE TABLE mailbox_entries (
    mailbox_id    BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid           BIGINT NOT NULL,
    message_id    BIGINT REFERENCES messages (id) ON DELETE CASCADE,
    content       BYTEA,
    flags         TEXT    NOT NULL DEFAULT '',
    modseq        BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid),
    CHECK ((message_id IS NULL) <> (content IS NULL))
);
CREATE INDEX mailbox_entries_message ON mailbox_entries (message_id);

-- Per-device app passwords for IMAP: only the argon2id hash is kept.
CREATE TABLE app_passwords (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    last_ip       TEXT,
    revoked_at    BIGINT
);
CREATE INDEX app_passwords_user ON app_passwords (user_id);

-- Every processed message already accepted lands in its recipients' INBOX.
INSERT INTO mailboxes (user_id, name, uid_validity)
    SELECT id, 'INBOX', CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) FROM users;
-- RFC822.SIZE is the size of what is served: the notice, where there is one.
INSERT INTO mailbox_entries (mailbox_id, uid, message_id, modseq, internal_date, size)
    SELECT mb.id,
           ROW_NUMBER() OVER (PARTITION BY r.user_id ORDER BY r.message_id),
           r.message_id, 1, m.received_at,
           CASE WHEN r.notice_size > 0 THEN r.notice_size ELSE m.size END
    FROM (SELECT message_id, user_id, MAX(COALESCE(LENGTH(mailbox_notice), 0)) AS notice_size
          FROM message_recipients GROUP BY message_id, user_id) r
    JOIN messages m ON m.id = r.message_id AND m.state = 'processed'
    JOIN mailboxes mb ON mb.user_id = r.user_id AND mb.name = 'INBOX';
UPDATE mailboxes SET uid_next = 1 + COALESCE(
    (SELECT MAX(uid) FROM mailbox_entries e WHERE e.mailbox_id = mailboxes.id), 0);
