-- The IMAP ENVELOPE of each message in its wire form (RFC 3501 §7.4.2, as the
-- server sends it after `ENVELOPE `), computed once at delivery, so that a
-- header FETCH of a large folder copies bytes instead of decoding and
-- re-encoding each envelope. Rows written before this column keep their JSON
-- `envelope`, which FETCH still reads. Same in ../postgres (BYTEA).
ALTER TABLE messages ADD COLUMN imap_envelope BLOB;
