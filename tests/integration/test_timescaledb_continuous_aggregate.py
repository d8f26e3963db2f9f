"""tgstack.hybrid.timescaledb_continuous_aggregate: continuous aggregates (community edition) and the
materialized-view fallback refreshed by pg_cron (Apache edition)."""

from __future__ import annotations

import pytest
from labhost import psql, run_module
from test_timescaledb_policy import COMMUNITY_MISSING, _cron_job, _now, _wait_for_succeeded_run

MODULE = "tgstack.hybrid.timescaledb_continuous_aggregate"
QUERY = (
    "SELECT time_bucket('1 hour', ts) AS bucket, device, count(*) AS n, avg(value) AS mean"
    " FROM metrics GROUP BY bucket, device"
)
CHANGED_QUERY = (
    "SELECT time_bucket('1 hour', ts) AS bucket, device, count(*) AS n, max(value) AS peak"
    " FROM metrics GROUP BY bucket, device"
)


@pytest.fixture
def metrics(tsdb_host, fresh_database):
    """A hypertable with a day of rows for two devices."""
    db = fresh_database
    psql(tsdb_host, "CREATE TABLE metrics (ts timestamptz NOT NULL, device int NOT NULL, value float8)", db)
    psql(tsdb_host, "SELECT create_hypertable('metrics', by_range('ts', INTERVAL '1 day'))", db)
    psql(
        tsdb_host,
        "INSERT INTO metrics SELECT t, d, random() FROM generate_series(1, 2) AS d,"
        " generate_series(now() - INTERVAL '1 day', now(), INTERVAL '1 minute') AS t",
        db,
    )
    return db


@pytest.fixture
def apache_metrics(tsdb_host, metrics):
    if psql(tsdb_host, "SHOW timescaledb.license", metrics) != "apache":
        pytest.skip("the materialized view fallback is only used on the Apache edition")
    return metrics


@pytest.fixture
def community_metrics(tsdb_host, metrics):
    if psql(tsdb_host, "SHOW timescaledb.license", metrics) != "timescale":
        pytest.skip(COMMUNITY_MISSING)
    return metrics


def _relkind(host: str, db: str, name: str = "metrics_hourly") -> str:
    return psql(host, f"SELECT relkind FROM pg_class WHERE relname = '{name}'", db)


def _has_column(host: str, db: str, column: str) -> bool:
    return (
        psql(
            host,
            f"SELECT count(*) FROM pg_attribute WHERE attrelid = 'metrics_hourly'::regclass AND attname = '{column}'",
            db,
        )
        == "1"
    )


def _fallback_args(db: str, query: str = QUERY) -> dict:
    return {
        "login_db": db,
        "name": "metrics_hourly",
        "query": query,
        "fallback": "materialized_view",
        "unique_columns": ["bucket", "device"],
    }


# --- Apache edition ----------------------------------------------------------------------------------


def test_without_fallback_fails_early_naming_the_edition(tsdb_host, apache_metrics):
    db = apache_metrics
    failed = run_module(tsdb_host, MODULE, {"login_db": db, "name": "metrics_hourly", "query": QUERY})
    assert failed.get("failed") is True
    assert failed["msg"].startswith("reconciling continuous aggregate metrics_hourly: ")
    assert "'apache' edition" in failed["msg"] and "fallback: materialized_view" in failed["msg"]
    assert _relkind(tsdb_host, db) == ""


def test_materialized_view_fallback_four_steps(tsdb_host, apache_metrics):
    db = apache_metrics
    args = _fallback_args(db)

    checked = run_module(tsdb_host, MODULE, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert [query.split(" AS ")[0] for query in checked["queries"]] == [
        'CREATE MATERIALIZED VIEW "metrics_hourly"',
        'CREATE UNIQUE INDEX "metrics_hourly_tgstack_key" ON "metrics_hourly" ("bucket", "device")',
    ]
    assert checked["diff"]["before"]["exists"] is False and checked["diff"]["after"]["kind"] == "materialized_view"
    assert _relkind(tsdb_host, db) == ""

    applied = run_module(tsdb_host, MODULE, args)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["changed"] is True
    assert applied["view"]["kind"] == "materialized_view"
    assert applied["view"]["unique_indexes"] == [
        {"name": "metrics_hourly_tgstack_key", "columns": ["bucket", "device"]}
    ]

    assert _relkind(tsdb_host, db) == "m"
    assert psql(tsdb_host, "SELECT sum(n) = (SELECT count(*) FROM metrics) FROM metrics_hourly", db) == "t"
    unique = "SELECT indisunique FROM pg_index WHERE indexrelid = 'metrics_hourly_tgstack_key'::regclass"
    assert psql(tsdb_host, unique, db) == "t"

    again = run_module(tsdb_host, MODULE, args)
    assert again["changed"] is False and again["queries"] == []
    # the same query written differently is the same definition
    reformatted = run_module(tsdb_host, MODULE, args | {"query": "  " + QUERY.replace(" FROM", "\n   FROM") + " ;"})
    assert reformatted["changed"] is False, reformatted.get("msg")

    removed = run_module(tsdb_host, MODULE, {"login_db": db, "name": "metrics_hourly", "state": "absent"})
    assert removed["changed"] is True and _relkind(tsdb_host, db) == ""
    assert (
        run_module(tsdb_host, MODULE, {"login_db": db, "name": "metrics_hourly", "state": "absent"})["changed"] is False
    )


def test_unique_columns_are_required_and_checked(tsdb_host, apache_metrics):
    db = apache_metrics
    missing = run_module(tsdb_host, MODULE, _fallback_args(db) | {"unique_columns": None})
    assert missing.get("failed") is True
    assert "unique_columns is required" in missing["msg"] and "bucket, device, n, mean" in missing["msg"]
    unknown = run_module(tsdb_host, MODULE, _fallback_args(db) | {"unique_columns": ["bucket", "chat"]})
    assert unknown.get("failed") is True and "chat" in unknown["msg"]
    broken = run_module(tsdb_host, MODULE, _fallback_args(db, "SELECT nope FROM metrics"))
    assert broken.get("failed") is True and 'column "nope" does not exist' in broken["msg"]
    assert _relkind(tsdb_host, db) == ""


def test_changed_definition_needs_recreate(tsdb_host, apache_metrics):
    db = apache_metrics
    assert run_module(tsdb_host, MODULE, _fallback_args(db))["changed"] is True
    changed = _fallback_args(db, CHANGED_QUERY)

    refused = run_module(tsdb_host, MODULE, changed)
    assert refused.get("failed") is True
    message = refused["msg"]
    assert "metrics_hourly" in message and "recreate: true" in message
    assert "avg(value) AS mean" in message and "max(value) AS peak" in message
    assert _has_column(tsdb_host, db, "mean")

    checked = run_module(tsdb_host, MODULE, changed | {"recreate": True}, check=True)
    assert checked["changed"] is True and checked["queries"][0] == 'DROP MATERIALIZED VIEW "public"."metrics_hourly"'
    assert _has_column(tsdb_host, db, "mean")

    recreated = run_module(tsdb_host, MODULE, changed | {"recreate": True})
    assert recreated["changed"] is True
    assert any("definition changed" in note for note in recreated["notes"])
    assert _has_column(tsdb_host, db, "peak")
    unique = "SELECT count(*) FROM pg_index WHERE indrelid = 'metrics_hourly'::regclass AND indisunique"
    assert psql(tsdb_host, unique, db) == "1"
    assert run_module(tsdb_host, MODULE, changed | {"recreate": True})["changed"] is False


def test_fallback_end_to_end_with_pg_cron_refresh(tsdb_host, apache_metrics):
    """The Apache-edition stand-in for a continuous aggregate and its refresh policy, run by pg_cron."""
    db = apache_metrics
    assert run_module(tsdb_host, MODULE, _fallback_args(db))["changed"] is True
    policy = {
        "login_db": db,
        "type": "refresh",
        "relation": "metrics_hourly",
        "schedule_interval": "1 seconds",
        "fallback": "pg_cron",
    }
    try:
        scheduled = run_module(tsdb_host, "tgstack.hybrid.timescaledb_policy", policy)
        assert scheduled["changed"] is True, scheduled.get("msg")
        jobid = _cron_job(tsdb_host, f"tgstack:refresh:{db}:public.metrics_hourly").split("|")[0]
        psql(tsdb_host, "INSERT INTO metrics SELECT now(), 3, 1 FROM generate_series(1, 5)", db)
        assert psql(tsdb_host, "SELECT count(*) FROM metrics_hourly WHERE device = 3", db) == "0"
        _wait_for_succeeded_run(tsdb_host, jobid, _now(tsdb_host))
        assert psql(tsdb_host, "SELECT sum(n) FROM metrics_hourly WHERE device = 3", db) == "5"
        removed = run_module(tsdb_host, "tgstack.hybrid.timescaledb_policy", policy | {"state": "absent"})
        assert removed["changed"] is True
    finally:
        psql(tsdb_host, f"SELECT cron.unschedule(jobid) FROM cron.job WHERE database = '{db}'")


# --- community edition -------------------------------------------------------------------------------


def test_continuous_aggregate_four_steps(tsdb_host, community_metrics):
    db = community_metrics
    args = {"login_db": db, "name": "metrics_hourly", "query": QUERY}

    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True and "timescaledb.continuous" in checked["queries"][0]
    assert _relkind(tsdb_host, db) == ""

    applied = run_module(tsdb_host, MODULE, args)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["changed"] is True and applied["view"]["kind"] == "continuous_aggregate"
    assert (
        psql(tsdb_host, "SELECT view_name FROM timescaledb_information.continuous_aggregates", db) == "metrics_hourly"
    )
    assert psql(tsdb_host, "SELECT sum(n) = (SELECT count(*) FROM metrics) FROM metrics_hourly", db) == "t"

    assert run_module(tsdb_host, MODULE, args)["changed"] is False

    refused = run_module(tsdb_host, MODULE, args | {"query": CHANGED_QUERY})
    assert refused.get("failed") is True and "recreate: true" in refused["msg"]
    recreated = run_module(tsdb_host, MODULE, args | {"query": CHANGED_QUERY, "recreate": True})
    assert recreated["changed"] is True, recreated.get("msg")
    definition = "SELECT view_definition LIKE '%max(%' FROM timescaledb_information.continuous_aggregates"
    assert psql(tsdb_host, definition, db) == "t"
    assert run_module(tsdb_host, MODULE, args | {"query": CHANGED_QUERY})["changed"] is False
