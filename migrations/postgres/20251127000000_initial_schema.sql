-- Portable across SQLite and PostgreSQL (run through sqlx's Any driver):
-- TEXT ids, BIGINT unix seconds, no engine-specific types or functions.

-- One row per user id, created just in time on the first authenticated request
-- or by a Clerk user.created/user.updated webhook, whichever comes first.
CREATE TABLE users (
    id           TEXT   NOT NULL PRIMARY KEY,
    email        TEXT,
    first_name   TEXT,
    last_name    TEXT,
    image_url    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    -- NULL until the user makes an authenticated request (webhook-created rows).
    last_seen_at BIGINT
);

-- Revoked session ids. Rows are only needed while tokens of the session can
-- still be valid; expires_at lets them be purged afterwards.
CREATE TABLE revoked_sessions (
    session_id TEXT   NOT NULL PRIMARY KEY,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Every replica reloads the unexpired set each second and purges by expiry.
CREATE INDEX revoked_sessions_expires_at_idx ON revoked_sessions (expires_at);

-- Svix message ids already handled, so a redelivered webhook has no effect.
CREATE TABLE webhook_events (
    svix_id     TEXT   NOT NULL PRIMARY KEY,
    event_type  TEXT   NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX webhook_events_received_at_idx ON webhook_events (received_at);
