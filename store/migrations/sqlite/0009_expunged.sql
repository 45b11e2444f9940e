-- Which UIDs were expunged at which mod-sequence (issue #5, QRESYNC): a reconnecting client
-- learns what vanished since its last sync without downloading the UID list again.
CREATE TABLE mailbox_expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
