-- 001_extension.sql: extensions and the tgstack schema that holds every object of the message store.
--
-- Applied by tgstack.hybrid.sql_scripts (once, in file-name order, each file in one transaction). Safe
-- to run again: everything is IF NOT EXISTS.
--
-- * timescaledb: must be in shared_preload_libraries before CREATE EXTENSION (the role does that).
--   The scripts work on both editions: the Apache build (Debian's package: hypertables, time_bucket,
--   drop_chunks) and the community/TSL build (Timescale's repository: also continuous aggregates).
--   Only 004_aggregates.sql looks at the edition (timescaledb.license).
-- * pg_trgm: contrib, shipped with postgresql-17 on Debian and in the PGDG/Timescale packages. Trigram
--   GIN indexes make ILIKE '%word%' searches fast in any language (Telegram chats mix languages, so a
--   tsvector with one text search configuration would stem most messages wrongly). Created in public,
--   where 003_indexes.sql expects its operator class.
-- * Schema tgstack: tables, views and the gateway's functions live here, so that the gateway calls
--   tgstack.upsert_messages(...) and operators find everything with \dt tgstack.* / \df tgstack.*.

CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE SCHEMA IF NOT EXISTS tgstack;
COMMENT ON SCHEMA tgstack IS 'Telegram message store: chats, senders, messages (hypertable), aggregates, gateway functions';
