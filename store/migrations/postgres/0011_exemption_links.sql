-- The confirmation link of an exemption (issue #12): the confirmation mail carries a one-time
-- URL whose random token leads the requesting user, logged in, to the page that takes the
-- code. Only the token's SHA-256 is stored; it is valid as long as the code
-- (code_expires_at) and only while the request waits for confirmation.
ALTER TABLE exemptions ADD COLUMN link_hash TEXT;
CREATE UNIQUE INDEX exemptions_link ON exemptions (link_hash);
