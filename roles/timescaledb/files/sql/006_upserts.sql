-- 006_upserts.sql: the gateway's write functions. Each does its work in one statement per call.
--
--   tgstack.upsert_messages(p_messages jsonb)
--       -> (inserted integer, updated integer, unchanged integer, duplicates integer)
--   tgstack.apply_message_edits(p_edits jsonb) -> (updated integer, unchanged integer, missing integer)
--   tgstack.mark_messages_deleted(p_chat_id bigint, p_message_ids bigint[],
--                                 p_deleted_at timestamptz DEFAULT now(), p_since timestamptz DEFAULT NULL)
--       -> (marked integer, already_deleted integer, not_found integer, ambiguous integer)
--   tgstack.set_chat_watermark(p_chat_id bigint, p_last_message_id bigint,
--                              p_last_message_at timestamptz DEFAULT NULL) -> bigint
--   tgstack.upsert_chats(p_chats jsonb)     -> (inserted integer, updated integer, unchanged integer)
--   tgstack.upsert_senders(p_senders jsonb) -> (inserted integer, updated integer, unchanged integer)
--   trigger messages_record_edit on tgstack.messages: writes tgstack.message_edits
--
-- Batches are jsonb arrays of objects whose keys are the column names (unknown keys are ignored), one
-- parameter per call: with asyncpg, json.dumps(batch) as a text parameter cast to jsonb. That keeps
-- one round trip and one statement per batch, and works through PgBouncer in transaction mode.
-- All functions are SECURITY INVOKER (the gateway's own rights) with a pinned search_path; tgstack
-- objects are schema-qualified. CREATE OR REPLACE: safe to run again.

-- Edit history. A row trigger because TimescaleDB does not support transition tables (statement
-- triggers with REFERENCING) on hypertables; it fires only on updates that change edited_at, i.e.
-- on edits, never on inserts, so ingest does not pay for it.
CREATE OR REPLACE FUNCTION tgstack.messages_record_edit()
RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO tgstack.message_edits (chat_id, message_id, created_at, edited_at, old_text, new_text)
    VALUES (NEW.chat_id, NEW.message_id, NEW.created_at, coalesce(NEW.edited_at, now()), OLD.text, NEW.text)
    ON CONFLICT (chat_id, message_id, edited_at) DO NOTHING;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS messages_record_edit ON tgstack.messages;
CREATE TRIGGER messages_record_edit
    AFTER UPDATE OF edited_at ON tgstack.messages
    FOR EACH ROW
    WHEN (NEW.edited_at IS DISTINCT FROM OLD.edited_at)
    EXECUTE FUNCTION tgstack.messages_record_edit();

-- Idempotent batch insert. Keys: chat_id, message_id, created_at (required: Telegram's message date),
-- sender_id, text, reply_to_message_id, thread_id, forward_from_id, forward_from_name,
-- forward_message_id, forward_date, media_type, media_file_id, media_size, media_mime, media_width,
-- media_height, media_duration, media_meta, edited_at, raw, received_at (default now()).
--
-- * Duplicate keys inside the batch are collapsed first (DISTINCT ON the key, keeping the newest
--   edit): INSERT ... ON CONFLICT DO UPDATE refuses to touch one row twice in a statement ("command
--   cannot affect row a second time"). Collapsed rows are counted in `duplicates`.
-- * A replayed message hits the primary key (Telegram never changes a message's date) and changes
--   nothing: the DO UPDATE only fires for a newer edit (edited_at later than the stored one), which
--   replaces the content, sets edited_at, counts edit_count up (the trigger keeps the old text). An
--   older version arriving later (e.g. an original replayed after its edit) never overwrites a newer
--   one. Otherwise the first write wins: received_at stays the first receipt.
-- * inserted vs updated: updated_at is NULL on a freshly inserted row and set by every update.
-- * Chats and senders not seen before get a minimal row (filled in later by upsert_chats/_senders).
-- * Rows are written in key order, so concurrent batches take row locks in the same order.
CREATE OR REPLACE FUNCTION tgstack.upsert_messages(
    p_messages jsonb,
    OUT inserted integer, OUT updated integer, OUT unchanged integer, OUT duplicates integer)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
WITH input AS (
    SELECT r.*
    FROM jsonb_to_recordset(p_messages) AS r (
        chat_id bigint, message_id bigint, created_at timestamptz, sender_id bigint, text text,
        reply_to_message_id bigint, thread_id bigint, forward_from_id bigint, forward_from_name text,
        forward_message_id bigint, forward_date timestamptz, media_type text, media_file_id text,
        media_size bigint, media_mime text, media_width integer, media_height integer,
        media_duration double precision, media_meta jsonb, edited_at timestamptz, raw jsonb,
        received_at timestamptz)
), batch AS (
    SELECT DISTINCT ON (i.chat_id, i.message_id, i.created_at) i.*
    FROM input i
    ORDER BY i.chat_id, i.message_id, i.created_at, i.edited_at DESC NULLS LAST, i.received_at NULLS LAST
), new_chats AS (
    INSERT INTO tgstack.chats (id)
    SELECT DISTINCT b.chat_id FROM batch b
    ON CONFLICT (id) DO NOTHING
), new_senders AS (
    INSERT INTO tgstack.senders (id)
    SELECT DISTINCT b.sender_id FROM batch b WHERE b.sender_id IS NOT NULL
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
       ((SELECT count(*) FROM input) - (SELECT count(*) FROM batch))::integer
FROM written w
$$;

-- Edits known only by (chat_id, message_id): keys chat_id, message_id, text, edited_at (required),
-- created_at (optional), raw (optional). An edit that carries the whole message (Telethon's
-- MessageEdited event has message.date) can go through upsert_messages instead.
-- The row is found by its key: created_at when given (one chunk), otherwise by (chat_id, message_id)
-- alone, which the primary key index answers by its leading columns but in every chunk (the time
-- column is not known, so no chunk can be excluded). Edits of messages not stored yet are counted
-- as `missing`: the gateway should fetch those messages and upsert them.
CREATE OR REPLACE FUNCTION tgstack.apply_message_edits(
    p_edits jsonb,
    OUT updated integer, OUT unchanged integer, OUT missing integer)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM jsonb_to_recordset(p_edits) AS r (chat_id bigint, message_id bigint, edited_at timestamptz)
               WHERE r.chat_id IS NULL OR r.message_id IS NULL OR r.edited_at IS NULL) THEN
        RAISE EXCEPTION 'apply_message_edits: every edit needs chat_id, message_id and edited_at';
    END IF;

    WITH e AS (
        SELECT DISTINCT ON (r.chat_id, r.message_id) r.*
        FROM jsonb_to_recordset(p_edits) AS r (chat_id bigint, message_id bigint, created_at timestamptz,
                                               text text, edited_at timestamptz, raw jsonb)
        ORDER BY r.chat_id, r.message_id, r.edited_at DESC
    ), target AS (
        SELECT e.*, k.created_at AS key_created_at
        FROM e
        LEFT JOIN LATERAL (
            SELECT m.created_at FROM tgstack.messages m
            WHERE m.chat_id = e.chat_id AND m.message_id = e.message_id
              AND (e.created_at IS NULL OR m.created_at = e.created_at)
        ) k ON true
    ), done AS (
        UPDATE tgstack.messages m
        SET text = t.text,
            raw = coalesce(t.raw, m.raw),
            edited_at = t.edited_at,
            edit_count = m.edit_count + 1,
            updated_at = now()
        FROM target t
        WHERE m.chat_id = t.chat_id AND m.message_id = t.message_id AND m.created_at = t.key_created_at
          AND (m.edited_at IS NULL OR t.edited_at > m.edited_at)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM done),
           count(*) FILTER (WHERE t.key_created_at IS NOT NULL) - (SELECT count(*) FROM done),
           count(*) FILTER (WHERE t.key_created_at IS NULL)
    INTO updated, unchanged, missing
    FROM target t;
END
$$;

-- Deletions: the rows stay, deleted_at is set once (a replayed deletion changes nothing), and every
-- event is logged in tgstack.message_deletions.
-- * With p_chat_id (channels and supergroups always have it): the listed message ids of that chat.
-- * Without (Telegram omits the chat of deletions in private chats and basic groups): those chats
--   share one message id sequence per account, so a message id identifies one message among the
--   non-channel chats (chat_id > -1000000000000) of the account; this assumes one Telegram account
--   per database. A message id matching several rows (several accounts) is reported as `ambiguous`
--   and not marked. Found through the partial index messages_nonchannel_message_id_idx (keep its
--   predicate identical to the one below); p_since limits the search to recent chunks.
-- `not_found`: not stored (yet); the log keeps the event with matched = 0.
CREATE OR REPLACE FUNCTION tgstack.mark_messages_deleted(
    p_chat_id bigint,
    p_message_ids bigint[],
    p_deleted_at timestamptz DEFAULT now(),
    p_since timestamptz DEFAULT NULL,
    OUT marked integer, OUT already_deleted integer, OUT not_found integer, OUT ambiguous integer)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
WITH ids AS (
    SELECT DISTINCT u.message_id FROM unnest(p_message_ids) AS u (message_id) WHERE u.message_id IS NOT NULL
), candidates AS (
    SELECT i.message_id, m.chat_id, m.created_at, m.deleted_at
    FROM ids i JOIN tgstack.messages m ON m.message_id = i.message_id
    WHERE p_chat_id IS NULL
      AND m.chat_id > -1000000000000
      AND m.created_at >= coalesce(p_since, '-infinity'::timestamptz)
    UNION ALL
    SELECT i.message_id, m.chat_id, m.created_at, m.deleted_at
    FROM ids i JOIN tgstack.messages m ON m.chat_id = p_chat_id AND m.message_id = i.message_id
    WHERE p_chat_id IS NOT NULL
      AND m.created_at >= coalesce(p_since, '-infinity'::timestamptz)
), per_id AS (
    SELECT c.message_id, count(*) AS matches, count(*) FILTER (WHERE c.deleted_at IS NOT NULL) AS deleted
    FROM candidates c GROUP BY c.message_id
), done AS (
    UPDATE tgstack.messages m
    SET deleted_at = coalesce(p_deleted_at, now()), updated_at = now()
    FROM candidates c JOIN per_id p ON p.message_id = c.message_id
    WHERE (p_chat_id IS NOT NULL OR p.matches = 1)
      AND m.chat_id = c.chat_id AND m.message_id = c.message_id AND m.created_at = c.created_at
      AND m.deleted_at IS NULL
    RETURNING m.message_id
), logged AS (
    INSERT INTO tgstack.message_deletions (chat_id, message_id, deleted_at, matched)
    SELECT p_chat_id, i.message_id, coalesce(p_deleted_at, now()),
           (SELECT count(*) FROM done d WHERE d.message_id = i.message_id)
    FROM ids i
)
SELECT (SELECT count(*) FROM done)::integer,
       (SELECT coalesce(sum(p.deleted), 0) FROM per_id p WHERE p_chat_id IS NOT NULL OR p.matches = 1)::integer,
       (SELECT count(*) FROM ids i WHERE NOT EXISTS (SELECT 1 FROM per_id p WHERE p.message_id = i.message_id))::integer,
       (SELECT count(*) FROM per_id p WHERE p_chat_id IS NULL AND p.matches > 1)::integer
$$;

-- The backfill watermark only moves forward; returns the chat's watermark after the call.
-- Not advanced by upsert_messages on purpose: live updates arrive while older messages may still be
-- missing (after an outage), and backfill must resume below that gap. The gateway sets it once a
-- chat is stored without gaps up to p_last_message_id.
CREATE OR REPLACE FUNCTION tgstack.set_chat_watermark(
    p_chat_id bigint,
    p_last_message_id bigint,
    p_last_message_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    INSERT INTO tgstack.chat_watermarks AS w (chat_id, last_message_id, last_message_at)
    VALUES (p_chat_id, p_last_message_id, p_last_message_at)
    ON CONFLICT (chat_id) DO UPDATE SET
        last_message_id = EXCLUDED.last_message_id,
        last_message_at = coalesce(EXCLUDED.last_message_at, w.last_message_at),
        updated_at = now()
    WHERE EXCLUDED.last_message_id > w.last_message_id;

    SELECT w.last_message_id FROM tgstack.chat_watermarks w WHERE w.chat_id = p_chat_id;
$$;

-- Chats: keys id (required), chat_type, title, username, metadata. NULL or a missing key keeps the
-- stored value; metadata is merged (new keys win). Duplicates in the batch: the last one wins.
-- inserted vs updated through xmax = 0 (a fresh tuple), which holds for ON CONFLICT on plain tables.
CREATE OR REPLACE FUNCTION tgstack.upsert_chats(
    p_chats jsonb,
    OUT inserted integer, OUT updated integer, OUT unchanged integer)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog
AS $$
WITH input AS (
    SELECT r.*, row_number() OVER () AS n
    FROM jsonb_to_recordset(p_chats) AS r (id bigint, chat_type text, title text, username text, metadata jsonb)
), batch AS (
    SELECT DISTINCT ON (i.id) i.* FROM input i ORDER BY i.id, i.n DESC
), written AS (
    INSERT INTO tgstack.chats AS c (id, chat_type, title, username, metadata)
    SELECT b.id, coalesce(b.chat_type, 'unknown'), b.title, b.username, coalesce(b.metadata, '{}'::jsonb)
    FROM batch b ORDER BY b.id
    ON CONFLICT (id) DO UPDATE SET
        chat_type = CASE WHEN EXCLUDED.chat_type = 'unknown' THEN c.chat_type ELSE EXCLUDED.chat_type END,
        title = coalesce(EXCLUDED.title, c.title),
        username = coalesce(EXCLUDED.username, c.username),
        metadata = c.metadata || EXCLUDED.metadata,
        updated_at = now()
    WHERE (CASE WHEN EXCLUDED.chat_type = 'unknown' THEN c.chat_type ELSE EXCLUDED.chat_type END,
           coalesce(EXCLUDED.title, c.title), coalesce(EXCLUDED.username, c.username),
           c.metadata || EXCLUDED.metadata)
          IS DISTINCT FROM (c.chat_type, c.title, c.username, c.metadata)
    RETURNING (c.xmax = 0) AS was_inserted
)
SELECT (count(*) FILTER (WHERE w.was_inserted))::integer,
       (count(*) FILTER (WHERE NOT w.was_inserted))::integer,
       ((SELECT count(*) FROM batch) - count(*))::integer
FROM written w
$$;

-- Senders: keys id (required), sender_type, username, display_name, metadata; same rules as chats.
CREATE OR REPLACE FUNCTION tgstack.upsert_senders(
    p_senders jsonb,
    OUT inserted integer, OUT updated integer, OUT unchanged integer)
LANGUAGE sql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog
AS $$
WITH input AS (
    SELECT r.*, row_number() OVER () AS n
    FROM jsonb_to_recordset(p_senders) AS r (id bigint, sender_type text, username text, display_name text,
                                              metadata jsonb)
), batch AS (
    SELECT DISTINCT ON (i.id) i.* FROM input i ORDER BY i.id, i.n DESC
), written AS (
    INSERT INTO tgstack.senders AS s (id, sender_type, username, display_name, metadata)
    SELECT b.id, coalesce(b.sender_type, 'unknown'), b.username, b.display_name, coalesce(b.metadata, '{}'::jsonb)
    FROM batch b ORDER BY b.id
    ON CONFLICT (id) DO UPDATE SET
        sender_type = CASE WHEN EXCLUDED.sender_type = 'unknown' THEN s.sender_type ELSE EXCLUDED.sender_type END,
        username = coalesce(EXCLUDED.username, s.username),
        display_name = coalesce(EXCLUDED.display_name, s.display_name),
        metadata = s.metadata || EXCLUDED.metadata,
        updated_at = now()
    WHERE (CASE WHEN EXCLUDED.sender_type = 'unknown' THEN s.sender_type ELSE EXCLUDED.sender_type END,
           coalesce(EXCLUDED.username, s.username), coalesce(EXCLUDED.display_name, s.display_name),
           s.metadata || EXCLUDED.metadata)
          IS DISTINCT FROM (s.sender_type, s.username, s.display_name, s.metadata)
    RETURNING (s.xmax = 0) AS was_inserted
)
SELECT (count(*) FILTER (WHERE w.was_inserted))::integer,
       (count(*) FILTER (WHERE NOT w.was_inserted))::integer,
       ((SELECT count(*) FROM batch) - count(*))::integer
FROM written w
$$;
