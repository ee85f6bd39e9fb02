-- Who may read a patient's record (PostgreSQL). Keep in step with ../sqlite/0007_access.sql.

-- The patient's professionals: authorised (e.g. médecin traitant) or blocked.
CREATE TABLE patient_professionals (
    patient_id    BIGINT NOT NULL REFERENCES accounts (id),
    professional  TEXT NOT NULL,
    -- authorised, blocked
    status        TEXT NOT NULL CHECK (status IN ('authorised', 'blocked')),
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (patient_id, professional)
);

-- Care teams of establishments, and the patients each team cares for.
CREATE TABLE care_team_members (
    establishment  TEXT NOT NULL,
    professional   TEXT NOT NULL,
    PRIMARY KEY (establishment, professional)
);
CREATE TABLE care_team_patients (
    establishment  TEXT NOT NULL,
    patient_id     BIGINT NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (establishment, patient_id)
);

-- The patient's emergency consents: 1 = allowed, 0 = refused.
CREATE TABLE patient_consents (
    patient_id   BIGINT PRIMARY KEY REFERENCES accounts (id),
    -- ETREAT: a SAMU / Centre 15 regulating physician may read
    regulator    BIGINT NOT NULL DEFAULT 1,
    -- BTG: any professional may break the glass, with a reason
    break_glass  BIGINT NOT NULL DEFAULT 1,
    -- MASKED: documents hidden from professionals are shown in an emergency
    masked       BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);

-- SAMU / Centre 15 regulating physicians.
ALTER TABLE accounts ADD COLUMN emergency_regulator BIGINT NOT NULL DEFAULT 0;

-- The establishment a professional acts for (shown in the patient's access history).
ALTER TABLE accounts ADD COLUMN establishment TEXT;

-- The professionals' second factor (TOTP secret, base32), for API tokens.
ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
-- The last time step accepted: a code is never accepted twice.
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;

-- The audit trail is append-only for the application.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
