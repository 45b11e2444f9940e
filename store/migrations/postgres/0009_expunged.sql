-- Which UIDs were expunged at which mod-sequence (issue #5, QRESYNC): a reconnecting client
-- learns what vanished since its last sync without downloading the UID list again.
CREATE TABLE mailbox_expunged (
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid        BIGINT NOT NULL,
    modseq     BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
