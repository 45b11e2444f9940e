-- Indexes for the pipeline and for IMAP sessions under steady intake (issue #17). Building
-- them holds up writes to these tables for as long as that takes: seconds for a million
-- messages, once, when a node of the new version starts.
--
-- The messages still to process, in id order: the pipeline's claim reads the oldest few
-- many times a second. An index on `state` alone grew with every processed message and left
-- the planner choosing between it and a scan of the whole table.
DROP INDEX messages_state;
CREATE INDEX messages_pending ON messages (id) WHERE state IN ('received', 'classified');

-- What changed in a mailbox since a mod-sequence: an IMAP session in IDLE reads only the
-- entries newer than the HIGHESTMODSEQ it last told, instead of the whole mailbox on every
-- change (and the UIDs expunged since, from a table that keeps them all); CONDSTORE's
-- CHANGEDSINCE and QRESYNC's VANISHED read the same way.
CREATE INDEX mailbox_entries_modseq ON mailbox_entries (mailbox_id, modseq);
CREATE INDEX mailbox_expunged_modseq ON mailbox_expunged (mailbox_id, modseq);
