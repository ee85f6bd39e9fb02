-- MES initial schema (SQLite). Keep in step with ../postgres/0001_initial.sql.
-- Times are Unix seconds (BIGINT) so both backends share one row format.

CREATE TABLE domains (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('professional', 'patient')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    address        TEXT NOT NULL UNIQUE,
    domain         TEXT NOT NULL REFERENCES domains (name),
    kind           TEXT NOT NULL CHECK (kind IN ('professional', 'organisation', 'application', 'patient')),
    display_name   TEXT NOT NULL DEFAULT '',
    profession     TEXT,
    rpps           TEXT,
    ins            TEXT,
    password_hash  TEXT,
    cert_subject   TEXT,
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX accounts_cert_subject ON accounts (cert_subject);

-- IMAP mailboxes: UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ live with the mailbox.
CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    name           TEXT NOT NULL,
    special_use    TEXT,
    subscribed     BIGINT NOT NULL DEFAULT 1,
    uidvalidity    BIGINT NOT NULL,
    uidnext        BIGINT NOT NULL DEFAULT 1,
    highestmodseq  BIGINT NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

-- Message content, stored once per distinct content (SHA-256).
CREATE TABLE blobs (
    hash  TEXT PRIMARY KEY,
    size  BIGINT NOT NULL,
    data  BLOB NOT NULL
);

-- One accepted message (one SMTP transaction, one APPEND...).
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_hash    TEXT NOT NULL REFERENCES blobs (hash),
    size         BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    mail_from    TEXT NOT NULL,
    header_message_id TEXT,
    dsn_envid    TEXT,
    dsn_ret      TEXT,
    origin       TEXT NOT NULL,
    -- IMAP ENVELOPE and BODYSTRUCTURE, computed once at delivery (JSON of imap-types values).
    envelope     TEXT,
    bodystructure TEXT
);
CREATE INDEX messages_header_message_id ON messages (header_message_id);

-- Envelope recipients with their RFC 3461 parameters.
CREATE TABLE message_recipients (
    message_id  BIGINT NOT NULL REFERENCES messages (id),
    recipient   TEXT NOT NULL,
    orcpt       TEXT,
    notify      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, recipient)
);

-- A message as seen in one mailbox.
CREATE TABLE mailbox_messages (
    mailbox_id     BIGINT NOT NULL REFERENCES mailboxes (id),
    uid            BIGINT NOT NULL,
    message_id     BIGINT NOT NULL REFERENCES messages (id),
    flags          TEXT NOT NULL DEFAULT '',
    -- RFC 3501 \Recent: set on arrival, claimed by the first session that selects the folder.
    recent         BIGINT NOT NULL DEFAULT 1,
    modseq         BIGINT NOT NULL,
    internal_date  BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_messages_message ON mailbox_messages (message_id);
CREATE INDEX mailbox_messages_modseq ON mailbox_messages (mailbox_id, modseq);

-- The published whitelist, as last imported.
CREATE TABLE whitelist (
    domain               TEXT PRIMARY KEY,
    operator_dns         TEXT NOT NULL,
    description          TEXT,
    responsable_contact  TEXT,
    support_contact      TEXT,
    updated_at           TEXT,
    imported_at          BIGINT NOT NULL
);

-- Append-only, hash-chained audit trail. audit_head serialises appends.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target);

CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, hash) VALUES (1, '0000000000000000000000000000000000000000000000000000000000000000');
