-- Mail submission (issue #14): a submitted message is one job with all its recipients
-- (`rcpt_to` holds them separated by spaces, which no accepted address contains), owned by
-- the user who sent it — for the hourly limit and for telling them when it fails. A job
-- the policy holds for an admin (`submission.sensitive = "hold"`) has `held_at` set and is
-- not leased until it is released.
ALTER TABLE outbound_jobs ADD COLUMN user_id INTEGER REFERENCES users (id);
ALTER TABLE outbound_jobs ADD COLUMN held_at INTEGER;
CREATE INDEX outbound_jobs_user ON outbound_jobs (user_id, created_at);
