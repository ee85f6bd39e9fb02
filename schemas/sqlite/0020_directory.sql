-- The directory (annuaire) of the trust space: the mailboxes of the ANS
-- extract "Extraction_Correspondance_MSSante" (issue 21).
-- Keep in step with the other backend's 0020_directory.sql.

-- Every import loads a new generation beside the one in force, then switches
-- `directory_state.generation` and deletes the old rows in one transaction, so
-- readers see the old extract or the new one, never a mix.
CREATE TABLE directory_entries (
    generation   BIGINT NOT NULL,
    address      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    rpps         TEXT,
    civility     TEXT,
    last_name    TEXT,
    first_name   TEXT,
    profession   TEXT,
    specialty    TEXT,
    organization TEXT,
    city         TEXT,
    -- Lower-case text searched by `GET /api/pro/v1/directory?q=`.
    search       TEXT NOT NULL,
    PRIMARY KEY (generation, address)
);

CREATE TABLE directory_state (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL,
    entries     BIGINT NOT NULL,
    imported_at BIGINT NOT NULL
);
INSERT INTO directory_state (id, generation, entries, imported_at) VALUES (1, 0, 0, 0);
