-- The entries still \Recent of a folder, found without reading its other rows:
-- IMAP claims them (`Store::claim_recent`) at SELECT and whenever a session
-- notices new messages, under the write lock. Without this index each claim
-- read every row of the folder (1.2 ms on 10,000 messages, most of the
-- writers' time under ten IMAP clients).
-- Keep in step with the other backend's 0022_recent_index.sql.
CREATE INDEX mailbox_messages_recent ON mailbox_messages (mailbox_id) WHERE recent = 1;
