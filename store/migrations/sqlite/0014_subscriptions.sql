-- Subscriptions by name (RFC 3501 §6.3.6, RFC 5258 §3.1): a subscription outlives its
-- mailbox, so LIST (SUBSCRIBED) can show a deleted one as \NonExistent. They were a flag on
-- the mailbox row, which goes.
CREATE TABLE subscriptions (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

INSERT INTO subscriptions (user_id, name)
SELECT user_id, name FROM mailboxes WHERE subscribed <> 0;

ALTER TABLE mailboxes DROP COLUMN subscribed;
