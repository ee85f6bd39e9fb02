-- The patient's document index, newest first, a page at a time
-- (GET /api/v1/documents?before=ID&limit=N).
CREATE INDEX documents_newest ON documents (patient_id, id);

-- A document that came in an XDM package of a message is not stored a second
-- time: `blob_hash` is then the message's blob, and these say where in it the
-- document is (the attachment's index among the message's attachments, the
-- zip entry's path). It is read back through the same checks as on delivery.
ALTER TABLE documents ADD COLUMN source_part BIGINT;
ALTER TABLE documents ADD COLUMN source_entry TEXT;
