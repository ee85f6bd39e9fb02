-- Withdrawn documents and the MSSanté headers of what arrives (issue 18).
-- Keep in step with the other backend's 0015_dossier_withdrawal.sql.

-- A document withdrawn by its author (ANS action D) keeps its row, with
-- status 'deleted', for the audit trail and the archive: when and by whom.
ALTER TABLE documents ADD COLUMN withdrawn_at BIGINT;
ALTER TABLE documents ADD COLUMN withdrawn_by TEXT;

-- With each indexing outcome: X-MSS-CODECDA and X-MSS-INS as the message
-- carried them, and remarks (what was tolerated to read the packages, where
-- the headers disagree with them), '; ' separated.
ALTER TABLE indexing_outcomes ADD COLUMN header_codecda TEXT;
ALTER TABLE indexing_outcomes ADD COLUMN header_ins TEXT;
ALTER TABLE indexing_outcomes ADD COLUMN remarks TEXT NOT NULL DEFAULT '';
