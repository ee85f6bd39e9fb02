-- The proven author of what arrives (identity/author.rs).

-- A thread's correspondent as the patient sees it: who wrote for them
-- ("via DPI Hôpital A") and whether they belong to another operator (their
-- name then comes from the message, vouched for by that operator only).
ALTER TABLE threads ADD COLUMN correspondent_via TEXT;
ALTER TABLE threads ADD COLUMN correspondent_other_operator BIGINT NOT NULL DEFAULT 0;

-- Who deposited a document (the proven author's address) and the
-- establishment it acted for: only they may replace it (RPLC).
ALTER TABLE documents ADD COLUMN deposited_by TEXT;
ALTER TABLE documents ADD COLUMN deposited_establishment TEXT;
UPDATE documents SET deposited_by = (SELECT m.mail_from FROM messages m WHERE m.id = documents.message_id)
    WHERE message_id IS NOT NULL;
