-- One node classifies a message (issue #16): the pipeline claims pending messages for a
-- while before it works on them; another node skips claimed ones until the claim runs out
-- (its node died).
ALTER TABLE messages ADD COLUMN claim_owner TEXT;
ALTER TABLE messages ADD COLUMN claim_until BIGINT;
