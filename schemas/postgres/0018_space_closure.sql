-- Patient spaces over their life, second part (issue 20): closure, archive,
-- purge, reopening, legal representatives.
-- Keep in step with the other backend's 0018_space_closure.sql.

-- Two more states: 'closed' (closed by the patient or the operator; the
-- account is disabled and its content archived until purge_at) and
-- 'purged' (everything deleted but the key and the audit trail). A patient
-- account made by `mes user add` gets its row when it is closed.
ALTER TABLE patient_spaces DROP CONSTRAINT patient_spaces_state_check;
ALTER TABLE patient_spaces ADD CONSTRAINT patient_spaces_state_check
    CHECK (state IN ('informed', 'open', 'opposed', 'closed', 'purged'));
-- When the space was closed and when its archive is purged (closed only).
ALTER TABLE patient_spaces ADD COLUMN closed_at BIGINT;
ALTER TABLE patient_spaces ADD COLUMN purge_at BIGINT;
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
