-- 005_functions.sql: read functions for the gateway, the API and dashboards.
--
--   tgstack.is_channel_id(bigint) -> boolean                          IMMUTABLE
--   tgstack.like_escape(text) -> text                                 IMMUTABLE
--   tgstack.recent_messages(chat_id, limit, before, include_deleted) -> SETOF tgstack.messages
--   tgstack.message_counts(from, to, bucket, chat_id) -> (bucket, chat_id, messages)
--   tgstack.chat_activity(since, limit) -> (chat_id, title, messages, senders, deleted, first/last_message_at)
--   tgstack.search_messages(pattern, chat_id, since, limit) -> SETOF tgstack.messages
--   tgstack.chat_watermark(chat_id) -> bigint
--
-- Every function pins its search_path (pg_catalog first, then public for TimescaleDB's time_bucket)
-- and names tgstack objects with their schema, so a caller's search_path can neither break nor
-- hijack them. A SET clause keeps PostgreSQL from inlining SQL functions; these run as ordinary
-- function calls, which is what the callers do anyway. Time conditions are written as plain ranges on
-- created_at (never "p IS NULL OR ...") so that TimescaleDB can exclude chunks at execution time.
-- CREATE OR REPLACE: safe to run again (a changed result type needs a DROP FUNCTION first).

-- Telethon's marked ids: channels and supergroups are -100xxxxxxxxxx, i.e. <= -1000000000000.
CREATE OR REPLACE FUNCTION tgstack.is_channel_id(p_chat_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog
AS $$ SELECT p_chat_id <= -1000000000000 $$;

-- Escapes LIKE's wildcards so user input is matched literally.
CREATE OR REPLACE FUNCTION tgstack.like_escape(p_text text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog
AS $$ SELECT replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') $$;

-- The newest messages of a chat (served by messages_chat_created_idx, newest chunk first).
-- Page backwards with p_before = the oldest created_at of the previous page.
CREATE OR REPLACE FUNCTION tgstack.recent_messages(
    p_chat_id bigint,
    p_limit integer DEFAULT 50,
    p_before timestamptz DEFAULT NULL,
    p_include_deleted boolean DEFAULT false)
RETURNS SETOF tgstack.messages
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
    SELECT m.*
    FROM tgstack.messages m
    WHERE m.chat_id = p_chat_id
      AND m.created_at < coalesce(p_before, 'infinity'::timestamptz)
      AND (p_include_deleted OR m.deleted_at IS NULL)
    ORDER BY m.created_at DESC
    LIMIT p_limit
$$;

-- Message counts per time bucket (time_bucket on created_at) in [p_from, p_to), for one chat or all.
-- For ranges the aggregates cover, tgstack.messages_per_minute / _per_hour are cheaper.
CREATE OR REPLACE FUNCTION tgstack.message_counts(
    p_from timestamptz,
    p_to timestamptz,
    p_bucket interval DEFAULT INTERVAL '1 hour',
    p_chat_id bigint DEFAULT NULL)
RETURNS TABLE (bucket timestamptz, chat_id bigint, messages bigint)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
    SELECT public.time_bucket(p_bucket, m.created_at) AS bucket, m.chat_id, count(*) AS messages
    FROM tgstack.messages m
    WHERE m.created_at >= p_from AND m.created_at < p_to
      AND (p_chat_id IS NULL OR m.chat_id = p_chat_id)
    GROUP BY 1, 2
    ORDER BY 1, 2
$$;

-- The most active chats of the last p_since.
CREATE OR REPLACE FUNCTION tgstack.chat_activity(
    p_since interval DEFAULT INTERVAL '24 hours',
    p_limit integer DEFAULT 100)
RETURNS TABLE (chat_id bigint, title text, messages bigint, senders bigint, deleted bigint,
               first_message_at timestamptz, last_message_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
    SELECT a.chat_id, c.title, a.messages, a.senders, a.deleted, a.first_message_at, a.last_message_at
    FROM (SELECT m.chat_id,
                 count(*) AS messages,
                 count(DISTINCT m.sender_id) AS senders,
                 count(*) FILTER (WHERE m.deleted_at IS NOT NULL) AS deleted,
                 min(m.created_at) AS first_message_at,
                 max(m.created_at) AS last_message_at
          FROM tgstack.messages m
          WHERE m.created_at > now() - p_since
          GROUP BY m.chat_id) a
    LEFT JOIN tgstack.chats c ON c.id = a.chat_id
    ORDER BY a.messages DESC, a.chat_id
    LIMIT p_limit
$$;

-- Messages whose text contains p_pattern (case-insensitive, literal: wildcards are escaped), newest
-- first. The trigram index (messages_text_trgm_idx) needs at least 3 characters to be selective.
CREATE OR REPLACE FUNCTION tgstack.search_messages(
    p_pattern text,
    p_chat_id bigint DEFAULT NULL,
    p_since timestamptz DEFAULT NULL,
    p_limit integer DEFAULT 50)
RETURNS SETOF tgstack.messages
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, public
AS $$
    SELECT m.*
    FROM tgstack.messages m
    WHERE m.text ILIKE '%' || tgstack.like_escape(p_pattern) || '%'
      AND m.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND (p_chat_id IS NULL OR m.chat_id = p_chat_id)
      AND m.deleted_at IS NULL
    ORDER BY m.created_at DESC
    LIMIT p_limit
$$;

-- Where the gateway's backfill of a chat resumes (iter_messages(min_id => this)); 0 when unknown.
CREATE OR REPLACE FUNCTION tgstack.chat_watermark(p_chat_id bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    SELECT coalesce((SELECT w.last_message_id FROM tgstack.chat_watermarks w WHERE w.chat_id = p_chat_id), 0)
$$;
