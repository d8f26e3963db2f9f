-- 008_staged_upserts.sql: batches of messages written through a staging table that COPY fills.
--
--   tgstack.stage_messages() -> regclass
--       the session's staging table pg_temp.tgstack_staged_messages, created on first use, emptied
--   tgstack.upsert_staged_messages()
--       -> (inserted integer, updated integer, unchanged integer, duplicates integer)
--   tgstack.upsert_messages(p_messages jsonb)   (006's signature, now through the staging table)
--
-- Why: upsert_messages(jsonb) spent about 40 % of its time parsing its jsonb parameter into records
-- (docs/benchmarks.md, the gateway). The gateway now sends a batch as COPY text into a staging table,
-- which PostgreSQL reads column by column without building a jsonb document first:
--
--     BEGIN;
--     SELECT tgstack.stage_messages();
--     COPY pg_temp.tgstack_staged_messages (chat_id, message_id, created_at, ...) FROM STDIN;
--     SELECT * FROM tgstack.upsert_staged_messages();
--     COMMIT;
--
-- The staging table is a temporary table with ON COMMIT DELETE ROWS that stays for the session: no
-- catalog rows are written per batch (a table created and dropped per transaction would add and delete
-- some thirty catalog rows each time), and through PgBouncer in transaction mode a server connection
-- keeps it for whichever client runs the next batch there; stage_messages() creates it where it is
-- missing (a new server connection, DISCARD ALL) and empties it. The caller needs the TEMPORARY right on
-- the database (PUBLIC has it by default).
--
-- The rules of 006's upsert_messages hold unchanged, and now live here only: upsert_messages(jsonb)
-- stages its records and calls upsert_staged_messages(), so both ways of writing behave the same (the
-- integration tests run the upsert tests through both).
-- plpgsql, not sql: a sql function's body is checked against the catalog when it is created, and the
-- staging table exists only in the sessions that stage. CREATE OR REPLACE: safe to run again.

CREATE OR REPLACE FUNCTION tgstack.stage_messages()
RETURNS regclass
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog
AS $$
BEGIN
    IF to_regclass('pg_temp.tgstack_staged_messages') IS NULL THEN
        CREATE TEMPORARY TABLE tgstack_staged_messages (
            chat_id bigint, message_id bigint, created_at timestamptz, sender_id bigint, text text,
            reply_to_message_id bigint, thread_id bigint, forward_from_id bigint, forward_from_name text,
            forward_message_id bigint, forward_date timestamptz, media_type text, media_file_id text,
            media_size bigint, media_mime text, media_width integer, media_height integer,
            media_duration double precision, media_meta jsonb, edited_at timestamptz, raw jsonb,
            received_at timestamptz)
        ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp.tgstack_staged_messages;  -- a second batch in the same transaction
    END IF;
    RETURN 'pg_temp.tgstack_staged_messages'::regclass;
END
$$;

-- Idempotent batch insert of the staged rows (the rules are those of 006, restated):
-- * created_at is required: a staged row without chat_id, message_id or created_at raises an error and
--   nothing of the batch is written.
-- * Duplicate keys inside the batch are collapsed first (DISTINCT ON the key, keeping the newest
--   edit): INSERT ... ON CONFLICT DO UPDATE refuses to touch one row twice in a statement. Collapsed
--   rows are counted in `duplicates`.
-- * A replayed message hits the primary key and changes nothing: the DO UPDATE only fires for a newer
--   edit (edited_at later than the stored one), which replaces the content, sets edited_at, counts
--   edit_count up (the trigger messages_record_edit keeps the old text). An older version arriving
--   later never overwrites a newer one. Otherwise the first write wins: received_at stays the first
--   receipt.
-- * inserted vs updated: updated_at is NULL on a freshly inserted row and set by every update.
-- * Chats and senders not seen before get a minimal row (filled in later by upsert_chats/_senders).
-- * Rows are written in key order, so concurrent batches take row locks in the same order.
CREATE OR REPLACE FUNCTION tgstack.upsert_staged_messages(
    OUT inserted integer, OUT updated integer, OUT unchanged integer, OUT duplicates integer)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF to_regclass('pg_temp.tgstack_staged_messages') IS NULL THEN
        RAISE EXCEPTION 'upsert_staged_messages: nothing staged in this session'
            USING HINT = 'call tgstack.stage_messages() and fill pg_temp.tgstack_staged_messages first';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_temp.tgstack_staged_messages s
               WHERE s.chat_id IS NULL OR s.message_id IS NULL OR s.created_at IS NULL) THEN
        RAISE EXCEPTION 'upsert_messages: every message needs chat_id, message_id and created_at'
            USING HINT = 'created_at is Telegram''s message date; it is part of the key';
    END IF;

    WITH batch AS (
        SELECT DISTINCT ON (s.chat_id, s.message_id, s.created_at) s.*
        FROM pg_temp.tgstack_staged_messages s
        ORDER BY s.chat_id, s.message_id, s.created_at, s.edited_at DESC NULLS LAST, s.received_at NULLS LAST
    ), new_chats AS (
        INSERT INTO tgstack.chats (id)
        SELECT DISTINCT b.chat_id FROM batch b
        ON CONFLICT (id) DO NOTHING
    ), new_senders AS (
        INSERT INTO tgstack.senders (id)
        SELECT DISTINCT b.sender_id FROM batch b
        WHERE b.sender_id IS NOT NULL
        ON CONFLICT (id) DO NOTHING
    ), written AS (
        INSERT INTO tgstack.messages AS m (
            chat_id, message_id, created_at, sender_id, text, reply_to_message_id, thread_id,
            forward_from_id, forward_from_name, forward_message_id, forward_date, media_type,
            media_file_id, media_size, media_mime, media_width, media_height, media_duration, media_meta,
            edited_at, raw, received_at)
        SELECT b.chat_id, b.message_id, b.created_at, b.sender_id, b.text, b.reply_to_message_id,
               b.thread_id, b.forward_from_id, b.forward_from_name, b.forward_message_id, b.forward_date,
               b.media_type, b.media_file_id, b.media_size, b.media_mime, b.media_width, b.media_height,
               b.media_duration, b.media_meta, b.edited_at, b.raw, coalesce(b.received_at, now())
        FROM batch b
        ORDER BY b.chat_id, b.message_id, b.created_at
        ON CONFLICT (chat_id, message_id, created_at) DO UPDATE SET
            text = EXCLUDED.text,
            media_type = EXCLUDED.media_type,
            media_file_id = EXCLUDED.media_file_id,
            media_size = EXCLUDED.media_size,
            media_mime = EXCLUDED.media_mime,
            media_width = EXCLUDED.media_width,
            media_height = EXCLUDED.media_height,
            media_duration = EXCLUDED.media_duration,
            media_meta = EXCLUDED.media_meta,
            raw = coalesce(EXCLUDED.raw, m.raw),
            edited_at = EXCLUDED.edited_at,
            edit_count = m.edit_count + 1,
            updated_at = now()
        WHERE EXCLUDED.edited_at IS NOT NULL
          AND (m.edited_at IS NULL OR EXCLUDED.edited_at > m.edited_at)
        RETURNING (m.updated_at IS NULL) AS was_inserted
    )
    SELECT (count(*) FILTER (WHERE w.was_inserted))::integer,
           (count(*) FILTER (WHERE NOT w.was_inserted))::integer,
           ((SELECT count(*) FROM batch) - count(*))::integer,
           ((SELECT count(*) FROM pg_temp.tgstack_staged_messages) - (SELECT count(*) FROM batch))::integer
    INTO inserted, updated, unchanged, duplicates
    FROM written w;
END
$$;

-- 006's jsonb entry point, kept for callers that build JSON (psql, scripts, older gateways): the same
-- keys as before (unknown keys are ignored), staged and written by upsert_staged_messages().
CREATE OR REPLACE FUNCTION tgstack.upsert_messages(
    p_messages jsonb,
    OUT inserted integer, OUT updated integer, OUT unchanged integer, OUT duplicates integer)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM tgstack.stage_messages();
    -- the staging table's row type names the keys and their types: one column list, in stage_messages()
    INSERT INTO pg_temp.tgstack_staged_messages
    SELECT * FROM jsonb_populate_recordset(NULL::pg_temp.tgstack_staged_messages, p_messages);
    SELECT s.inserted, s.updated, s.unchanged, s.duplicates
    INTO inserted, updated, unchanged, duplicates
    FROM tgstack.upsert_staged_messages() s;
    DELETE FROM pg_temp.tgstack_staged_messages;  -- the caller may stage a batch of its own next
END
$$;
