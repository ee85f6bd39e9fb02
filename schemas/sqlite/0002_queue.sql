-- Outbound queue (SQLite). Keep in step with ../postgres/0002_queue.sql.
-- One row per remote recipient of a message; the content is the message's blob.

CREATE TABLE queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       BIGINT NOT NULL REFERENCES messages (id),
    recipient        TEXT NOT NULL,
    domain           TEXT NOT NULL,
    orcpt            TEXT,
    notify           BIGINT NOT NULL DEFAULT 0,
    -- pending, sent, failed
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    delay_notified   BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    remote_mta       TEXT,
    -- Which node works on the row, and until when (several nodes on one PostgreSQL).
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    -- Set just before DATA: after a crash, a row with it set may have been delivered.
    attempt_started  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (message_id, recipient)
);
CREATE INDEX queue_due ON queue (status, next_attempt);
