-- Storage limitation (issue #15 §3, Art. 5(1)(e) GDPR). A message whose bytes were purged
-- keeps its row, verdict and audit entries; purged_at says when its content went.
-- retention.audit_days may cut the audit log at its start: audit_base keeps the sequence
-- number and hash of the last entry removed, so that the rest still verifies from there.
ALTER TABLE messages ADD COLUMN purged_at BIGINT;
CREATE INDEX messages_unpurged ON messages (received_at) WHERE purged_at IS NULL;

CREATE TABLE audit_base (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
