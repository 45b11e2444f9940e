-- Keys every node of one installation must share (issue #16): a fingerprint of each, recorded
-- by the first node that starts; a node whose own key differs refuses to start.
CREATE TABLE shared_keys (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
