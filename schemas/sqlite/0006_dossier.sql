-- Dossier médical and profil médical (SQLite). Keep in step with ../postgres/0006_dossier.sql.

-- One version of one document of a patient's record. Content lives in blobs.
CREATE TABLE documents (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id          BIGINT NOT NULL REFERENCES accounts (id),
    -- The message that brought it (NULL when the patient added it).
    message_id          BIGINT REFERENCES messages (id),
    -- XDS uniqueId (or one made up for patient documents).
    unique_id           TEXT NOT NULL,
    -- XDS entryUUID, which RPLC associations point at.
    entry_uuid          TEXT,
    -- SYNTHESE, ORD_SOIN, ... (mapping: schemas/dossier/categories.csv)
    category            TEXT NOT NULL,
    title               TEXT NOT NULL,
    type_code           TEXT,
    class_code          TEXT,
    format_code         TEXT,
    creation_time       TEXT,
    service_start       TEXT,
    service_stop        TEXT,
    author              TEXT,
    author_institution  TEXT,
    author_role         TEXT,
    author_specialty    TEXT,
    confidentiality     TEXT,
    mime_type           TEXT NOT NULL,
    blob_hash           TEXT NOT NULL REFERENCES blobs (hash),
    size                BIGINT NOT NULL,
    version             BIGINT NOT NULL DEFAULT 1,
    -- current, or superseded by the document in replaced_by (RPLC)
    status              TEXT NOT NULL DEFAULT 'current',
    replaced_by         BIGINT,
    -- MASQUE_PS: hidden from professionals by the patient
    hidden              BIGINT NOT NULL DEFAULT 0,
    -- xdm, fhir, patient
    source              TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX documents_patient ON documents (patient_id, status, category);
CREATE INDEX documents_unique ON documents (patient_id, unique_id);

-- One entry of the profil médical, with its provenance.
CREATE TABLE profile_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id    BIGINT NOT NULL REFERENCES accounts (id),
    -- maladies, traitements, ... vaccinations
    category      TEXT NOT NULL,
    label         TEXT NOT NULL,
    code          TEXT,
    code_system   TEXT,
    value         TEXT,
    item_date     TEXT,
    -- The document it was read from; NULL when declared by the patient.
    document_id   BIGINT REFERENCES documents (id),
    author        TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX profile_items_patient ON profile_items (patient_id, category);

-- What indexing found in a delivered message, per recipient (professionals'
-- deliveries and every refusal are recorded here too).
CREATE TABLE indexing_outcomes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    BIGINT,
    recipient     TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
