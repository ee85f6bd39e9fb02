-- QRESYNC (RFC 7162 §3.2): the UIDs expunged from each mailbox, with the MODSEQ
-- their expunge took, so that SELECT (QRESYNC …) and UID FETCH (VANISHED) can
-- report VANISHED (EARLIER). Written in the expunge's transaction; removed with
-- the mailbox. Same in ../sqlite and ../postgres.
CREATE TABLE imap_vanished (
    mailbox_id  BIGINT NOT NULL REFERENCES mailboxes (id),
    uid         BIGINT NOT NULL,
    modseq      BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX imap_vanished_modseq ON imap_vanished (mailbox_id, modseq);
