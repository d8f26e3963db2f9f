-- 007_monitoring.sql: views for dashboards and alerts (and the postgres exporter's custom queries).
--
--   tgstack.hypertable_dimensions  time column and chunk interval of the tgstack hypertables (drift check)
--   tgstack.table_sizes            size of every tgstack table, hypertable and aggregate
--   tgstack.chunk_sizes            one row per chunk: range and size
--   tgstack.index_usage            scans and size per index; chunk indexes credited to their hypertable index
--   tgstack.ingest_lag             overall: last stored/received message, lag, messages in the last minute
--   tgstack.ingest_lag_by_chat     the same per chat
--
-- Works on both editions: hypertable_detailed_size(), show_chunks() and the timescaledb_information
-- views are part of the Apache edition. chunks_detailed_size() exists too, but chunk_sizes asks each
-- chunk's own size (pg_*_size on the chunk table), which is one call per chunk instead of one per row
-- times all chunks.
-- pg_stat_user_indexes names the table in relname (there is no tablename column; that is pg_indexes).
-- On a hypertable the scans happen on the chunks' indexes, so index_usage maps each chunk index to the
-- hypertable index it was created from through _timescaledb_catalog.chunk_index (TimescaleDB's own
-- catalog; stable across 2.x, but internal: check it after TimescaleDB upgrades).
-- The lag views only look at the last day of messages (created_at > now() - 1 day) so that TimescaleDB
-- excludes older chunks at execution time; backfilled old messages therefore do not count there.
-- CREATE OR REPLACE VIEW: safe to run again (columns can only be appended).

CREATE OR REPLACE VIEW tgstack.hypertable_dimensions AS
SELECT d.hypertable_schema, d.hypertable_name, d.column_name, d.column_type, d.dimension_type,
       d.time_interval, d.integer_interval
FROM timescaledb_information.dimensions d
WHERE d.hypertable_schema = 'tgstack';

CREATE OR REPLACE VIEW tgstack.table_sizes AS
WITH hyper AS (
    SELECT format('%I.%I', h.hypertable_schema, h.hypertable_name) AS table_name,
           format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass AS rel,
           'hypertable'::text AS kind
    FROM timescaledb_information.hypertables h
    WHERE h.hypertable_schema = 'tgstack'
    UNION ALL
    -- continuous aggregates (community edition) keep their rows in a materialization hypertable
    SELECT format('%I.%I', a.view_schema, a.view_name),
           format('%I.%I', a.materialization_hypertable_schema, a.materialization_hypertable_name)::regclass,
           'continuous aggregate'
    FROM timescaledb_information.continuous_aggregates a
    WHERE a.view_schema = 'tgstack'
)
SELECT h.table_name, h.kind,
       (SELECT count(*) FROM public.show_chunks(h.rel)) AS chunks,
       s.table_bytes, s.index_bytes, s.toast_bytes, s.total_bytes,
       pg_size_pretty(s.total_bytes) AS total_size
FROM hyper h
CROSS JOIN LATERAL public.hypertable_detailed_size(h.rel) s
UNION ALL
SELECT format('%I.%I', n.nspname, c.relname),
       CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'table' END,
       NULL,
       pg_table_size(c.oid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_indexes_size(c.oid),
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_total_relation_size(c.oid),
       pg_size_pretty(pg_total_relation_size(c.oid))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'tgstack' AND c.relkind IN ('r', 'm')
  AND NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                  WHERE h.hypertable_schema = n.nspname AND h.hypertable_name = c.relname);

CREATE OR REPLACE VIEW tgstack.chunk_sizes AS
SELECT format('%I.%I', c.hypertable_schema, c.hypertable_name) AS hypertable,
       format('%I.%I', c.chunk_schema, c.chunk_name) AS chunk,
       c.range_start, c.range_end,
       pg_table_size(format('%I.%I', c.chunk_schema, c.chunk_name)::regclass) AS table_bytes,
       pg_indexes_size(format('%I.%I', c.chunk_schema, c.chunk_name)::regclass) AS index_bytes,
       pg_total_relation_size(format('%I.%I', c.chunk_schema, c.chunk_name)::regclass) AS total_bytes
FROM timescaledb_information.chunks c
WHERE c.hypertable_schema = 'tgstack';

CREATE OR REPLACE VIEW tgstack.index_usage AS
WITH idx AS (
    -- indexes of plain tables and materialized views, and the hypertables' own (root) indexes
    SELECT s.relname, s.indexrelname, s.indexrelid, s.idx_scan, s.idx_tup_read, s.idx_tup_fetch,
           s.last_idx_scan, false AS on_chunk
    FROM pg_stat_user_indexes s
    WHERE s.schemaname = 'tgstack'
    UNION ALL
    -- chunk indexes, credited to the hypertable index they were made from
    SELECT h.table_name, ci.hypertable_index_name, s.indexrelid, s.idx_scan, s.idx_tup_read, s.idx_tup_fetch,
           s.last_idx_scan, true
    FROM _timescaledb_catalog.chunk_index ci
    JOIN _timescaledb_catalog.chunk ch ON ch.id = ci.chunk_id
    JOIN _timescaledb_catalog.hypertable h ON h.id = ci.hypertable_id
    JOIN pg_stat_user_indexes s
      ON s.schemaname = ch.schema_name AND s.relname = ch.table_name AND s.indexrelname = ci.index_name
    WHERE h.schema_name = 'tgstack'
)
SELECT 'tgstack'::name AS schemaname,
       i.relname,
       i.indexrelname,
       count(*) FILTER (WHERE i.on_chunk) AS chunk_indexes,
       sum(i.idx_scan)::bigint AS idx_scan,
       sum(i.idx_tup_read)::bigint AS idx_tup_read,
       sum(i.idx_tup_fetch)::bigint AS idx_tup_fetch,
       max(i.last_idx_scan) AS last_idx_scan,
       sum(pg_relation_size(i.indexrelid))::bigint AS index_bytes,
       bool_and(x.indisvalid) AS valid
FROM idx i
JOIN pg_index x ON x.indexrelid = i.indexrelid
GROUP BY i.relname, i.indexrelname;

CREATE OR REPLACE VIEW tgstack.ingest_lag_by_chat AS
SELECT m.chat_id,
       c.title,
       max(m.created_at) AS last_message_at,
       max(m.received_at) AS last_received_at,
       max(m.stored_at) AS last_stored_at,
       now() - max(m.stored_at) AS since_last_stored,
       now() - max(m.received_at) AS since_last_received,
       count(*) FILTER (WHERE m.stored_at > now() - INTERVAL '1 minute') AS messages_last_minute,
       -- Telegram -> gateway, and gateway -> database (batching), for the last 5 minutes of messages
       avg(m.received_at - m.created_at) FILTER (WHERE m.created_at > now() - INTERVAL '5 minutes')
           AS receive_delay_5min,
       avg(m.stored_at - m.received_at) FILTER (WHERE m.stored_at > now() - INTERVAL '5 minutes')
           AS store_delay_5min
FROM tgstack.messages m
LEFT JOIN tgstack.chats c ON c.id = m.chat_id
WHERE m.created_at > now() - INTERVAL '1 day'
GROUP BY m.chat_id, c.title;

CREATE OR REPLACE VIEW tgstack.ingest_lag AS
SELECT max(m.created_at) AS last_message_at,
       max(m.received_at) AS last_received_at,
       max(m.stored_at) AS last_stored_at,
       now() - max(m.stored_at) AS since_last_stored,
       now() - max(m.received_at) AS since_last_received,
       count(*) FILTER (WHERE m.stored_at > now() - INTERVAL '1 minute') AS messages_last_minute,
       count(DISTINCT m.chat_id) AS active_chats_1day,
       avg(m.received_at - m.created_at) FILTER (WHERE m.created_at > now() - INTERVAL '5 minutes')
           AS receive_delay_5min,
       avg(m.stored_at - m.received_at) FILTER (WHERE m.stored_at > now() - INTERVAL '5 minutes')
           AS store_delay_5min
FROM tgstack.messages m
WHERE m.created_at > now() - INTERVAL '1 day';
