-- Login throttling (identity/throttle.rs) in the database: shared by every
-- node, kept across restarts. One row per key (an IP address, or an account
-- from one IP address), the key stored as its SHA-256 (no address in clear);
-- rows whose failures are older than the lockout are deleted.
CREATE TABLE login_throttle (
    key_hash      TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    last_at       BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_throttle_last ON login_throttle (last_at);

-- Break-glass accesses opened by a professional (access/check.rs): each lets
-- them read that patient's record until expires_at; the rows of the last
-- hour are the per-professional rate limit.
CREATE TABLE break_glass (
    actor_id    BIGINT NOT NULL REFERENCES accounts (id),
    patient_id  BIGINT NOT NULL REFERENCES accounts (id),
    reason      TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX break_glass_actor ON break_glass (actor_id, opened_at);
CREATE INDEX break_glass_open ON break_glass (actor_id, patient_id, expires_at);

-- Emergency-access notices are grouped: at most one per patient per window.
ALTER TABLE patient_settings ADD COLUMN last_emergency_notice_at BIGINT NOT NULL DEFAULT 0;
