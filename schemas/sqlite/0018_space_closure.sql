-- Patient spaces over their life, second part (issue 20): closure, archive,
-- purge, reopening, legal representatives.
-- Keep in step with the other backend's 0018_space_closure.sql.

-- Two more states: 'closed' (closed by the patient or the operator; the
-- account is disabled and its content archived until purge_at) and
-- 'purged' (everything deleted but the key and the audit trail). A patient
-- account made by `mes user add` gets its row when it is closed. SQLite
-- cannot change a CHECK constraint: the table is rebuilt.
CREATE TABLE patient_spaces_0018 (
    ins_hash             TEXT PRIMARY KEY,
    state                TEXT NOT NULL
                         CHECK (state IN ('informed', 'open', 'opposed', 'closed', 'purged')),
    ins                  TEXT,
    domain               TEXT,
    birth_name           TEXT,
    first_names          TEXT,
    birth_date           TEXT,
    sex                  TEXT,
    birth_place          TEXT,
    email                TEXT,
    postal               TEXT,
    representatives      TEXT,
    opposition_code_hash TEXT,
    informed_at          BIGINT NOT NULL,
    opens_at             BIGINT NOT NULL,
    changed_at           BIGINT NOT NULL,
    -- When the space was closed and when its archive is purged (closed only).
    closed_at            BIGINT,
    purge_at             BIGINT
);
INSERT INTO patient_spaces_0018 (ins_hash, state, ins, domain, birth_name, first_names,
    birth_date, sex, birth_place, email, postal, representatives, opposition_code_hash,
    informed_at, opens_at, changed_at)
SELECT ins_hash, state, ins, domain, birth_name, first_names, birth_date, sex, birth_place,
    email, postal, representatives, opposition_code_hash, informed_at, opens_at, changed_at
FROM patient_spaces;
DROP TABLE patient_spaces;
ALTER TABLE patient_spaces_0018 RENAME TO patient_spaces;
CREATE INDEX patient_spaces_due ON patient_spaces (state, opens_at);
CREATE INDEX patient_spaces_purge ON patient_spaces (state, purge_at);

-- Legal representatives of a minor: the child's INS and the representative's
-- (a patient account of their own). From the provisioning file's
-- `representatives` column or `mes representative add`; removed by
-- `mes representative remove`, at the child's 18th birthday, or when
-- either space is purged.
CREATE TABLE representatives (
    child_ins   TEXT NOT NULL,
    parent_ins  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (child_ins, parent_ins)
);
CREATE INDEX representatives_parent ON representatives (parent_ins);
-- The end of representations at 18 joins the child's space by INS.
CREATE INDEX patient_spaces_ins ON patient_spaces (ins);

-- Logins by INS, representatives and closures look accounts up by it.
CREATE INDEX accounts_ins ON accounts (ins);
