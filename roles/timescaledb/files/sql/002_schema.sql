-- 002_schema.sql: the tables of the message store.
--
--   tgstack.chats            one row per Telegram chat/group/channel (id = Telegram's chat id)
--   tgstack.senders          users, bots and channels that post messages
--   tgstack.messages         every message: a hypertable on created_at, 1-day chunks
--   tgstack.message_edits    history of edits (previous and new text), filled by a trigger (006)
--   tgstack.message_deletions log of every deletion event, matched or not (006)
--   tgstack.chat_watermarks  per chat, the last message id stored without gaps: where backfill resumes
--
-- Ids are Telethon's "marked" peer ids: users > 0, basic groups < 0, channels and supergroups
-- <= -1000000000000 (-100 prefix). No foreign keys from messages: they would cost a lookup per row at
-- ingest and force an order on the gateway; upsert_messages registers unknown chats and senders itself.
-- Safe to run again: IF NOT EXISTS everywhere, create_hypertable(if_not_exists => true).

CREATE TABLE IF NOT EXISTS tgstack.chats (
    id         bigint PRIMARY KEY,                       -- Telegram chat id (marked)
    chat_type  text NOT NULL DEFAULT 'unknown'
               CHECK (chat_type IN ('private', 'group', 'supergroup', 'channel', 'unknown')),
    title      text,
    username   text,
    metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,       -- anything else (participants count, flags, ...)
    first_seen timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tgstack.chats IS 'Telegram chats, groups and channels; id is the marked Telegram chat id';

CREATE TABLE IF NOT EXISTS tgstack.senders (
    id           bigint PRIMARY KEY,                     -- Telegram peer id of the user or channel
    sender_type  text NOT NULL DEFAULT 'unknown'
                 CHECK (sender_type IN ('user', 'bot', 'channel', 'chat', 'unknown')),
    username     text,
    display_name text,                                   -- first + last name, or the channel title
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tgstack.senders IS 'Users, bots and channels that post messages';

-- The primary key must contain the partitioning column: TimescaleDB enforces unique indexes per chunk,
-- so a unique key without created_at could not be checked across chunks and is refused. The key
-- (chat_id, message_id, created_at) still makes (chat_id, message_id) unique in practice because
-- Telegram never changes a message's date: an edit, a replay or a backfill of the same message carries
-- the same created_at and so hits the same key (and the same chunk). Looking a message up by
-- (chat_id, message_id) alone works through the same index (its leading columns) but has to probe the
-- index of every chunk; pass created_at whenever it is known.
CREATE TABLE IF NOT EXISTS tgstack.messages (
    chat_id              bigint      NOT NULL,
    message_id           bigint      NOT NULL,
    created_at           timestamptz NOT NULL,           -- Telegram's message date (never changes)
    sender_id            bigint,
    text                 text,
    -- replies, threads (forum topics, comment threads) and forwards
    reply_to_message_id  bigint,
    thread_id            bigint,                         -- top message id of the thread/topic
    forward_from_id      bigint,                         -- original sender (user or channel), if known
    forward_from_name    text,                           -- original sender's name when hidden
    forward_message_id   bigint,                         -- message id in the original channel
    forward_date         timestamptz,
    -- media: the searchable columns; everything else about the media in media_meta
    media_type           text,                           -- photo, video, document, voice, sticker, ...
    media_file_id        text,
    media_size           bigint,                         -- bytes
    media_mime           text,
    media_width          integer,
    media_height         integer,
    media_duration       double precision,               -- seconds
    media_meta           jsonb,
    -- lifecycle
    edited_at            timestamptz,                    -- Telegram's edit_date of the stored version
    edit_count           integer     NOT NULL DEFAULT 0, -- edits applied here (history: message_edits)
    deleted_at           timestamptz,                    -- when the deletion was seen; the row stays
    raw                  jsonb,                          -- the message as the gateway received it
    received_at          timestamptz NOT NULL DEFAULT now(), -- when the gateway got it (first time)
    stored_at            timestamptz NOT NULL DEFAULT now(), -- when this row was inserted
    updated_at           timestamptz,                    -- last edit/deletion applied to the row
    CONSTRAINT messages_pkey PRIMARY KEY (chat_id, message_id, created_at)
);
COMMENT ON TABLE tgstack.messages IS
    'Every Telegram message; hypertable on created_at (1-day chunks); key (chat_id, message_id, created_at)';

-- by_range() is the 2.13+ dimension builder; it exists on both editions. if_not_exists only prints a
-- notice when the table already is a hypertable and never changes its time column or chunk interval:
-- the tests (and the monitoring view tgstack.hypertable_dimensions) check those.
SELECT public.create_hypertable('tgstack.messages', public.by_range('created_at', INTERVAL '1 day'),
                                if_not_exists => true);

CREATE TABLE IF NOT EXISTS tgstack.message_edits (
    chat_id     bigint      NOT NULL,
    message_id  bigint      NOT NULL,
    created_at  timestamptz NOT NULL,                    -- the message's date (its key in messages)
    edited_at   timestamptz NOT NULL,                    -- Telegram's edit_date of the new version
    old_text    text,
    new_text    text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_edits_pkey PRIMARY KEY (chat_id, message_id, edited_at)
);
COMMENT ON TABLE tgstack.message_edits IS 'Edit history: one row per applied edit, with the text before and after';

CREATE TABLE IF NOT EXISTS tgstack.message_deletions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id     bigint,                                  -- NULL: private chat or basic group (Telegram omits it)
    message_id  bigint      NOT NULL,
    deleted_at  timestamptz NOT NULL,
    matched     integer     NOT NULL DEFAULT 0,          -- rows marked deleted by this event
    recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tgstack.message_deletions IS
    'Every deletion event seen, also those that matched no stored message (not yet stored, ambiguous)';

CREATE TABLE IF NOT EXISTS tgstack.chat_watermarks (
    chat_id         bigint PRIMARY KEY,
    last_message_id bigint NOT NULL,                     -- all messages up to this id are stored
    last_message_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tgstack.chat_watermarks IS
    'Per chat, the last message id stored without gaps: backfill resumes with iter_messages(min_id => it)';
