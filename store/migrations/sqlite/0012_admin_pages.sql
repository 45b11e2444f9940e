-- The admin and data-protection pages of the web UI (issue #12 §2, §3).

-- A disabled user cannot log in (web, IMAP, CLI); NULL = enabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- The audit trail is filtered by event type, date range and user in SQL, newest first.
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- Each subject of an entry ("user:anna", "exemption:12"), so "everything about anna" is an
-- index lookup instead of a scan of every entry's JSON. Derived from audit_log.subjects (which
-- the hash chain protects); written in the same transaction as the entry.
CREATE TABLE audit_subjects (
    subject TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (subject, seq)
);
INSERT OR IGNORE INTO audit_subjects (subject, seq)
    SELECT j.value, a.seq FROM audit_log a, json_each(a.subjects) j
    WHERE json_valid(a.subjects) AND json_type(a.subjects) = 'array' AND j.type = 'text';

-- The register counts forwards and notices per exemption.
CREATE INDEX outbound_jobs_exemption ON outbound_jobs (exemption_id, kind);
