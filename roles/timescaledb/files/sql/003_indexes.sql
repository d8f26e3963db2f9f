-- tgstack: no-transaction
-- 003_indexes.sql: the indexes behind the gateway's and the dashboards' queries.
--
-- The first line above makes tgstack.hybrid.sql_scripts run this file statement by statement in
-- autocommit, because neither CREATE INDEX CONCURRENTLY nor timescaledb.transaction_per_chunk may run
-- inside a transaction block. So every statement here must be safe on its own and on a re-run.
--
-- Hypertable (tgstack.messages): TimescaleDB refuses CREATE INDEX CONCURRENTLY on hypertables
-- ("hypertables do not support concurrent index creation"). Instead
-- WITH (timescaledb.transaction_per_chunk) builds the index chunk by chunk, one transaction each, so a
-- live table is locked one chunk at a time instead of as a whole. On a fresh database there are no
-- chunks and it is just a CREATE INDEX. Caveat: if it is interrupted, the hypertable's index stays
-- marked invalid; IF NOT EXISTS would then skip it, so drop it and run this file again.
-- (create_hypertable already made the default index messages_created_at_idx on (created_at DESC).)
--
-- Plain tables: CREATE INDEX CONCURRENTLY IF NOT EXISTS (no write lock). Same caveat: a failed
-- concurrent build leaves an INVALID index that IF NOT EXISTS skips; tgstack.index_usage (007) shows
-- validity.

-- A chat's messages newest first: recent_messages(), chat history pages, per-chat counts for a range.
CREATE INDEX IF NOT EXISTS messages_chat_created_idx
    ON tgstack.messages (chat_id, created_at DESC)
    WITH (timescaledb.transaction_per_chunk);

-- A sender's messages newest first (most messages have a sender; channel posts may not).
CREATE INDEX IF NOT EXISTS messages_sender_created_idx
    ON tgstack.messages (sender_id, created_at DESC)
    WITH (timescaledb.transaction_per_chunk)
    WHERE sender_id IS NOT NULL;

-- Threads and forum topics of a chat.
CREATE INDEX IF NOT EXISTS messages_chat_thread_idx
    ON tgstack.messages (chat_id, thread_id, created_at DESC)
    WITH (timescaledb.transaction_per_chunk)
    WHERE thread_id IS NOT NULL;

-- Deletions without a chat id (private chats and basic groups; their message ids are unique within
-- the account): found by message id among non-channel chats. The predicate must stay identical to the
-- one in tgstack.mark_messages_deleted (006) for the planner to use this partial index.
CREATE INDEX IF NOT EXISTS messages_nonchannel_message_id_idx
    ON tgstack.messages (message_id)
    WITH (timescaledb.transaction_per_chunk)
    WHERE chat_id > -1000000000000;

-- Text search: trigram GIN (pg_trgm, 001) serves ILIKE '%word%' in any language; see search_messages().
-- The operator class is qualified because 001 creates pg_trgm in public. fastupdate (the default)
-- keeps ingest cheap: new entries go to the pending list and are merged by (auto)vacuum.
CREATE INDEX IF NOT EXISTS messages_text_trgm_idx
    ON tgstack.messages USING gin (text public.gin_trgm_ops)
    WITH (timescaledb.transaction_per_chunk);

-- Plain tables.
CREATE INDEX CONCURRENTLY IF NOT EXISTS chats_username_idx
    ON tgstack.chats (lower(username)) WHERE username IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS senders_username_idx
    ON tgstack.senders (lower(username)) WHERE username IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS message_deletions_message_idx
    ON tgstack.message_deletions (message_id, chat_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS message_edits_edited_idx
    ON tgstack.message_edits (edited_at DESC);
