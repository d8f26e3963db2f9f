-- 004_aggregates.sql: messages per chat per minute and per hour.
--
--   tgstack.messages_per_minute  (bucket, chat_id, messages, last_message_at)
--   tgstack.messages_per_hour    (bucket, chat_id, messages, last_message_at)
--   tgstack.refresh_message_aggregates(p_window interval)  refreshes both, on either edition
--
-- Buckets are on created_at, the hypertable's time dimension (the old script bucketed on received_at,
-- which a continuous aggregate refuses and which mixes gateway delays into the counts). Deleted
-- messages are counted: they were posted at that time.
--
-- The edition decides what the views are (checked with current_setting('timescaledb.license')):
-- * community/TSL edition ('timescale'): continuous aggregates, created WITH NO DATA. Creating a
--   continuous aggregate WITH DATA refreshes it, and a refresh cannot run inside a transaction block or
--   a function ("CREATE MATERIALIZED VIEW ... WITH DATA cannot be executed from a function"), so this
--   file's transaction and DO block need WITH NO DATA. materialized_only = false (real-time
--   aggregation) makes them correct even before the first refresh: the part not yet materialized is
--   aggregated from the hypertable at query time. Refresh policies are not created here: the schedule
--   belongs to the deployment (tgstack.hybrid.timescaledb_continuous_aggregate / timescaledb_policy,
--   which reconcile them through alter_job).
-- * Apache edition ('apache', Debian's build): continuous aggregates are refused, so plain
--   materialized views WITH DATA (REFRESH ... CONCURRENTLY refuses a view that was never populated)
--   with a unique index on (chat_id, bucket), which REFRESH MATERIALIZED VIEW CONCURRENTLY requires
--   and which lets readers query the view during a refresh. A refresh recomputes the whole view (cost
--   grows with the table); schedule it with pg_cron (cron.use_background_workers = on).
-- Same names and columns on both editions, so readers do not care which one they get.
-- Safe to run again: an existing view is kept (a warning if it is not of the edition's kind).

DO $do$
DECLARE
    continuous constant boolean := coalesce(current_setting('timescaledb.license', true), '') = 'timescale';
    spec record;
    is_cagg boolean;
BEGIN
    FOR spec IN SELECT * FROM (VALUES ('messages_per_minute', '1 minute'),
                                      ('messages_per_hour', '1 hour')) AS v (name, width)
    LOOP
        IF to_regclass(format('tgstack.%I', spec.name)) IS NOT NULL THEN
            SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                           WHERE view_schema = 'tgstack' AND view_name = spec.name) INTO is_cagg;
            IF is_cagg IS DISTINCT FROM continuous THEN
                RAISE WARNING 'tgstack.% exists as a %, but this TimescaleDB edition (%) wants a %: kept as it is',
                    spec.name, CASE WHEN is_cagg THEN 'continuous aggregate' ELSE 'materialized view' END,
                    current_setting('timescaledb.license', true),
                    CASE WHEN continuous THEN 'continuous aggregate' ELSE 'materialized view' END;
            END IF;
            CONTINUE;
        END IF;

        IF continuous THEN
            EXECUTE format($sql$
                CREATE MATERIALIZED VIEW tgstack.%I
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                SELECT public.time_bucket(INTERVAL %L, created_at) AS bucket,
                       chat_id,
                       count(*) AS messages,
                       max(created_at) AS last_message_at
                FROM tgstack.messages
                GROUP BY 1, 2
                WITH NO DATA $sql$, spec.name, spec.width);
            -- A continuous aggregate indexes its GROUP BY columns itself (create_group_indexes).
        ELSE
            EXECUTE format($sql$
                CREATE MATERIALIZED VIEW tgstack.%I AS
                SELECT public.time_bucket(INTERVAL %L, created_at) AS bucket,
                       chat_id,
                       count(*) AS messages,
                       max(created_at) AS last_message_at
                FROM tgstack.messages
                GROUP BY 1, 2
                WITH DATA $sql$, spec.name, spec.width);
            EXECUTE format('CREATE UNIQUE INDEX %I ON tgstack.%I (chat_id, bucket)',
                           spec.name || '_chat_bucket_key', spec.name);
        END IF;
        EXECUTE format('COMMENT ON MATERIALIZED VIEW tgstack.%I IS %L', spec.name,
                       format('Messages per chat per %s, bucketed on created_at (%s)', spec.width,
                              CASE WHEN continuous THEN 'continuous aggregate, real-time'
                                   ELSE 'materialized view: refresh_message_aggregates()' END));
    END LOOP;
END
$do$;

-- Refresh both views. p_window: only the buckets of the last p_window (continuous aggregates; NULL =
-- everything); a plain materialized view is always recomputed as a whole.
-- No SET search_path clause here, unlike the other functions: a procedure with a SET clause runs in
-- an atomic context, and refresh_continuous_aggregate() must commit in between (it also refuses to run
-- inside a transaction block: CALL it on its own, e.g. from a pg_cron job or in autocommit). Every name
-- below is schema-qualified instead (pg_catalog is always searched first).
CREATE OR REPLACE PROCEDURE tgstack.refresh_message_aggregates(p_window interval DEFAULT NULL)
LANGUAGE plpgsql
SECURITY INVOKER
AS $proc$
DECLARE
    agg text;
BEGIN
    FOREACH agg IN ARRAY ARRAY['messages_per_minute', 'messages_per_hour'] LOOP
        IF EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = 'tgstack' AND view_name = agg) THEN
            CALL public.refresh_continuous_aggregate(format('tgstack.%I', agg)::regclass,
                                                     pg_catalog.now() - p_window, NULL);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY tgstack.%I', agg);
        END IF;
    END LOOP;
END
$proc$;
