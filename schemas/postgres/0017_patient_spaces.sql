-- Patient spaces created by opt-out from a beneficiaries file (issue 20).
-- Keep in step with the other backend's 0017_patient_spaces.sql.

-- One row per beneficiary, keyed by the SHA-256 of the INS (so an opposed
-- space keeps nothing else: every other column is cleared on opposition).
-- state: 'informed' (notice sent, opposition window running), 'open' (the
-- account and its folders exist), 'opposed' (never opened, data deleted).
-- A patient account without a row here (`mes user add`) is open.
CREATE TABLE patient_spaces (
    ins_hash             TEXT PRIMARY KEY,
    state                TEXT NOT NULL CHECK (state IN ('informed', 'open', 'opposed')),
    ins                  TEXT,
    domain               TEXT,
    birth_name           TEXT,
    first_names          TEXT,
    birth_date           TEXT,
    sex                  TEXT,
    birth_place          TEXT,
    email                TEXT,
    postal               TEXT,
    -- INS of legal representatives, space separated (minors).
    representatives      TEXT,
    -- SHA-256 of the personal opposition code sent with the notice.
    opposition_code_hash TEXT,
    informed_at          BIGINT NOT NULL,
    opens_at             BIGINT NOT NULL,
    changed_at           BIGINT NOT NULL
);
CREATE INDEX patient_spaces_due ON patient_spaces (state, opens_at);
