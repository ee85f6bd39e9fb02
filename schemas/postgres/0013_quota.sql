-- Storage quota per account (RFC 9208 resources STORAGE and MESSAGE): the
-- usage counters kept in the transactions that file or remove folder entries
-- (delivery, COPY, MOVE, EXPUNGE, DELETE), and the operator's limits set with
-- `mes user quota`. Every folder entry counts, copies included (as Dovecot
-- counts them). Same in ../sqlite and ../postgres.
CREATE TABLE quotas (
    account_id      BIGINT PRIMARY KEY REFERENCES accounts (id),
    -- Octets of every entry of the account's folders (messages.size).
    storage_used    BIGINT NOT NULL DEFAULT 0,
    -- Entries in the account's folders.
    messages_used   BIGINT NOT NULL DEFAULT 0,
    -- KiB; NULL: the configured default ([quota] storage); -1: no limit.
    storage_limit   BIGINT,
    -- Messages; NULL: the configured default ([quota] messages); -1: no limit.
    messages_limit  BIGINT
);

-- Usage of the mail already stored.
INSERT INTO quotas (account_id, storage_used, messages_used)
SELECT a.id,
       COALESCE((SELECT SUM(m.size) FROM mailboxes f
                 JOIN mailbox_messages mm ON mm.mailbox_id = f.id
                 JOIN messages m ON m.id = mm.message_id
                 WHERE f.account_id = a.id), 0),
       (SELECT COUNT(*) FROM mailboxes f
        JOIN mailbox_messages mm ON mm.mailbox_id = f.id
        WHERE f.account_id = a.id)
FROM accounts a;
