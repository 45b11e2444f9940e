-- The classifier's verdict per message (issue #4). Findings never hold matched values.
CREATE TABLE message_verdicts (
    message_id    BIGINT  PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    sensitive     BOOLEAN NOT NULL,
    categories    TEXT    NOT NULL,
    findings      TEXT    NOT NULL,
    classified_at BIGINT  NOT NULL
);
