-- Sealed checkpoints of the audit trail's head: HMAC-SHA-256 with a key kept
-- outside the database (audit/seal.rs), so that entries up to a checkpoint
-- cannot be rewritten, even by someone who can write the database.
CREATE TABLE audit_checkpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    entry_id    BIGINT NOT NULL,
    entry_hash  TEXT NOT NULL,
    mac         TEXT NOT NULL
);
