-- Catalogue of referenced health services and their OAuth 2.1 grants (issue 22).
-- Keep in step with the other backend's 0019_services.sql.

-- One referenced service (an OAuth client). scopes and redirect_uris are
-- space separated; a confidential client has secret_hash (Argon2 PHC) or
-- jwks (private_key_jwt), a public one neither.
CREATE TABLE services (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    publisher         TEXT NOT NULL,
    category          TEXT NOT NULL,
    description       TEXT NOT NULL,
    logo_type         TEXT,
    logo              BLOB,
    home_url          TEXT NOT NULL,
    redirect_uris     TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('referenced', 'suspended')),
    referenced_at     BIGINT NOT NULL,
    client_type       TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash       TEXT,
    jwks              TEXT
);

-- What a patient approved for a service (space-separated scopes).
CREATE TABLE service_grants (
    patient_id   BIGINT NOT NULL REFERENCES accounts (id),
    service_id   TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    last_access  BIGINT,
    PRIMARY KEY (patient_id, service_id)
);

-- Authorization codes (SHA-256 of the code), single use.
CREATE TABLE oauth_codes (
    code_hash     TEXT PRIMARY KEY,
    service_id    TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    patient_id    BIGINT NOT NULL REFERENCES accounts (id),
    scopes        TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    challenge     TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

-- Access and refresh tokens (SHA-256 of the token). A refresh token is used
-- once (rotation); the family is every token issued from one code, revoked
-- whole when a used refresh token comes back.
CREATE TABLE oauth_tokens (
    token_hash   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family       TEXT NOT NULL,
    service_id   TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    patient_id   BIGINT NOT NULL REFERENCES accounts (id),
    scopes       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used         BIGINT NOT NULL DEFAULT 0,
    revoked      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (patient_id, service_id);

-- JWT ids of private_key_jwt client assertions seen (replay), until expiry.
CREATE TABLE oauth_jti (
    jti         TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

-- When each patient last got the connected-services notice.
CREATE TABLE service_notices (
    patient_id  BIGINT PRIMARY KEY REFERENCES accounts (id),
    sent_at     BIGINT NOT NULL
);

-- NOTIF_SYNCHRONIZED_SERVICE: the periodic connected-services notice.
ALTER TABLE patient_settings ADD COLUMN notify_services BIGINT NOT NULL DEFAULT 1;
