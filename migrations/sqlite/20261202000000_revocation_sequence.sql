-- The change sequence of revoked_sessions: every write of a revocation (a new row, or
-- a later expiry) takes the next value, so each process reads only the rows newer than
-- the last one it saw instead of reloading the table. SQLite serialises writers, so
-- values become visible in the order they were taken.
--
-- The counter is a row of its own rather than MAX(seq) + 1: purging the newest
-- revocation must not let the next one reuse a value a reader has already passed.
CREATE TABLE revocation_sequence (
    last_value INTEGER NOT NULL
);

INSERT INTO revocation_sequence (last_value)
    SELECT COALESCE(MAX(rowid), 0) FROM revoked_sessions;

ALTER TABLE revoked_sessions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- Rows written by earlier releases get distinct values at or below the counter.
UPDATE revoked_sessions SET seq = rowid;

-- The incremental poll: WHERE seq > $1 ORDER BY seq LIMIT n.
CREATE INDEX revoked_sessions_seq_idx ON revoked_sessions (seq);
