-- The mailbox copy of a sensitive message (issue #4): the notice a recipient's mailbox
-- serves instead of the original. NULL: the message is clean, the original is served.
ALTER TABLE message_recipients ADD COLUMN mailbox_notice BYTEA;
