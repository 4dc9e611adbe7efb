-- The change sequence of revoked_sessions: every write of a revocation (a new row, or
-- a later expiry) takes the next value, so each replica reads only the rows newer than
-- the last one it saw instead of reloading the table. Writers serialise on an advisory
-- lock before taking a value, so values become visible in the order they were taken.

CREATE SEQUENCE revoked_sessions_seq;

-- A volatile default fills the rows already there with distinct values.
ALTER TABLE revoked_sessions
    ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('revoked_sessions_seq');

ALTER SEQUENCE revoked_sessions_seq OWNED BY revoked_sessions.seq;

-- The incremental poll: WHERE seq > $1 ORDER BY seq LIMIT n.
CREATE INDEX revoked_sessions_seq_idx ON revoked_sessions (seq);
