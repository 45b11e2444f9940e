-- IMAP conformance (issue #13 §1).

-- \Recent (RFC 3501 §2.3.2): the lowest UID no session has yet seen. The first session to
-- SELECT the mailbox (or to see new mail while it is selected) claims every UID below
-- uid_next as recent for itself and moves this mark up. Existing mail is not recent.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_uid = uid_next;

-- UIDVALIDITY comes from one counter that never goes back (at least the current second), so
-- DELETE and CREATE of the same name within one second still give a new UIDVALIDITY.
CREATE TABLE uid_validity_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO uid_validity_counter (id, last)
    SELECT 1, COALESCE(MAX(uid_validity), 0) FROM mailboxes;
