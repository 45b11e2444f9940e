-- What changed in a mailbox since a mod-sequence (issue #17): an IMAP session in IDLE reads
-- only the entries newer than the HIGHESTMODSEQ it last told, instead of the whole mailbox
-- on every change; CONDSTORE's CHANGEDSINCE reads the same way.
CREATE INDEX mailbox_entries_modseq ON mailbox_entries (mailbox_id, modseq);
