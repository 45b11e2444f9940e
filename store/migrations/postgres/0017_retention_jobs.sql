-- Storage limitation (issue #15 §3): a message is purged only when no job of it is still
-- queued, which the retention run asks for every candidate; this index answers it without
-- reading the whole queue.
CREATE INDEX outbound_jobs_message ON outbound_jobs (message_id);
