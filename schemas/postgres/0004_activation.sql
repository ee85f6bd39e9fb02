-- Activation codes of patient spaces (PostgreSQL). Keep in step with ../sqlite/0004_activation.sql.

-- One pending code per account, stored as an Argon2id hash; removed when the
-- patient chooses a password.
CREATE TABLE activation_codes (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts (id),
    code_hash   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
