-- Patient threads, patient settings and API sessions (SQLite). Keep in step with ../postgres/0003_threads.sql.

-- A conversation between one patient and one correspondent (professional, organisation, application).
CREATE TABLE threads (
    id                        INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id                BIGINT NOT NULL REFERENCES accounts (id),
    correspondent             TEXT NOT NULL,
    correspondent_name        TEXT NOT NULL DEFAULT '',
    correspondent_profession  TEXT,
    subject                   TEXT NOT NULL DEFAULT '',
    -- open, ended
    status                    TEXT NOT NULL DEFAULT 'open',
    ended_by                  TEXT,
    ended_at                  BIGINT,
    created_at                BIGINT NOT NULL,
    last_message_at           BIGINT NOT NULL
);
CREATE INDEX threads_patient ON threads (patient_id, correspondent, status);

-- The messages of a thread, both ways.
CREATE TABLE thread_messages (
    thread_id          BIGINT NOT NULL REFERENCES threads (id),
    message_id         BIGINT NOT NULL REFERENCES messages (id),
    -- in: to the patient; out: from the patient
    direction          TEXT NOT NULL,
    header_message_id  TEXT,
    is_read            BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (thread_id, message_id)
);
CREATE INDEX thread_messages_header ON thread_messages (header_message_id);

CREATE TABLE patient_settings (
    account_id      BIGINT PRIMARY KEY REFERENCES accounts (id),
    notify_email    TEXT,
    notify_enabled  BIGINT NOT NULL DEFAULT 1,
    last_notice_at  BIGINT NOT NULL DEFAULT 0
);

-- Bearer tokens of the patient API, stored as SHA-256 only.
CREATE TABLE api_sessions (
    token_hash  TEXT PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);
