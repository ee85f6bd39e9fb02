-- What IMAP SEARCH matches for SUBJECT, FROM, TO, CC and BCC, computed once
-- at delivery (`delivery::prepare::search_headers`): each field of that name
-- one line, decoded and lower-cased (address lists written Dovecot's way,
-- groups included), every line starting with a newline; '' when the message
-- has no such field. SEARCH on these keys then neither reads nor parses the
-- content. NULL for rows written before (and for values a line cannot hold):
-- those keep the content path. Same in ../sqlite and ../postgres.
ALTER TABLE messages ADD COLUMN search_subject TEXT;
ALTER TABLE messages ADD COLUMN search_from TEXT;
ALTER TABLE messages ADD COLUMN search_to TEXT;
ALTER TABLE messages ADD COLUMN search_cc TEXT;
ALTER TABLE messages ADD COLUMN search_bcc TEXT;
