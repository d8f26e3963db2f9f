"""tgstack.hybrid.timescaledb_hypertable against PostgreSQL 17 + TimescaleDB on a lab host."""

from __future__ import annotations

import pytest
from labhost import psql, run_module

MODULE = "tgstack.hybrid.timescaledb_hypertable"


def _dimensions(host: str, db: str, table: str = "metrics") -> str:
    return psql(
        host,
        "SELECT string_agg(concat_ws(':', column_name, dimension_type, time_interval, integer_interval,"
        f" num_partitions), ' ' ORDER BY dimension_number) FROM timescaledb_information.dimensions"
        f" WHERE hypertable_name = '{table}'",
        db,
    )


@pytest.fixture
def metrics_table(tsdb_host, fresh_database):
    psql(
        tsdb_host,
        "CREATE TABLE metrics (ts timestamptz NOT NULL, device int NOT NULL, value double precision)",
        fresh_database,
    )
    return fresh_database


def test_create_with_hash_dimension_four_steps(tsdb_host, metrics_table):
    db = metrics_table
    args = {
        "login_db": db,
        "table": "metrics",
        "time_column": "ts",
        "chunk_time_interval": "1 day",
        "partitioning_column": "device",
        "number_partitions": 4,
    }

    checked = run_module(tsdb_host, MODULE, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert any("create_hypertable" in query for query in checked["queries"])
    assert any("by_hash" in query for query in checked["queries"])
    assert checked["diff"]["before"]["is_hypertable"] is False
    assert checked["diff"]["after"]["time_column"] == "ts"
    assert _dimensions(tsdb_host, db) == "", "check mode created the hypertable"

    applied = run_module(tsdb_host, MODULE, args, diff=True)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["changed"] is True
    assert applied["hypertable"]["time_column"] == "ts"
    assert applied["hypertable"]["chunk_time_interval"] == "1 day"
    assert applied["hypertable"]["dimensions"] == [
        {"column": "ts", "type": "time", "interval": "1 day"},
        {"column": "device", "type": "hash", "partitions": 4},
    ]

    assert _dimensions(tsdb_host, db) == "ts:Time:1 day device:Space:4"

    again = run_module(tsdb_host, MODULE, args)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False
    assert again["queries"] == []


def test_interval_drift_is_reconciled_for_new_chunks(tsdb_host, metrics_table):
    db = metrics_table
    psql(tsdb_host, "SELECT create_hypertable('metrics', by_range('ts', INTERVAL '1 day'))", db)
    psql(tsdb_host, "INSERT INTO metrics VALUES ('2026-01-01 12:00+00', 1, 1.0)", db)
    args = {"login_db": db, "table": "metrics", "time_column": "ts", "chunk_time_interval": "6 hours"}

    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True
    assert any("set_chunk_time_interval" in query for query in checked["queries"])
    assert _dimensions(tsdb_host, db) == "ts:Time:1 day"

    applied = run_module(tsdb_host, MODULE, args)
    assert applied["changed"] is True
    assert any("new chunks only" in note for note in applied["notes"]), applied["notes"]
    assert any("new chunks only" in warning for warning in applied.get("warnings", [])), applied.get("warnings")
    assert _dimensions(tsdb_host, db) == "ts:Time:06:00:00"
    # the existing chunk keeps its one-day range; a new chunk gets six hours
    psql(tsdb_host, "INSERT INTO metrics VALUES ('2026-02-01 12:00+00', 1, 1.0)", db)
    ranges = psql(
        tsdb_host,
        "SELECT range_end - range_start FROM timescaledb_information.chunks"
        " WHERE hypertable_name = 'metrics' ORDER BY range_start",
        db,
    )
    assert ranges.splitlines() == ["1 day", "06:00:00"]

    again = run_module(tsdb_host, MODULE, args)
    assert again["changed"] is False


def test_time_column_drift_fails_with_a_clear_message(tsdb_host, metrics_table):
    db = metrics_table
    psql(tsdb_host, "ALTER TABLE metrics ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()", db)
    psql(tsdb_host, "SELECT create_hypertable('metrics', by_range('ts'))", db)

    failed = run_module(
        tsdb_host, MODULE, {"login_db": db, "table": "metrics", "time_column": "created_at"}, check=True
    )
    assert failed.get("failed") is True
    message = failed["msg"]
    assert message.startswith("reconciling hypertable metrics: ")
    assert "'ts'" in message and "'created_at'" in message and "cannot change" in message
    assert _dimensions(tsdb_host, db).startswith("ts:Time")


def test_hash_dimension_drift_fails(tsdb_host, metrics_table):
    db = metrics_table
    psql(tsdb_host, "SELECT create_hypertable('metrics', by_range('ts'))", db)
    base = {"login_db": db, "table": "metrics", "time_column": "ts"}

    missing = run_module(tsdb_host, MODULE, base | {"partitioning_column": "device", "number_partitions": 2})
    assert missing.get("failed") is True
    assert "no hash dimension" in missing["msg"] and "'device'" in missing["msg"]

    psql(tsdb_host, "DROP TABLE metrics", db)
    psql(tsdb_host, "CREATE TABLE metrics (ts timestamptz NOT NULL, device int NOT NULL, value float8)", db)
    psql(tsdb_host, "SELECT create_hypertable('metrics', by_range('ts'))", db)
    psql(tsdb_host, "SELECT add_dimension('metrics', by_hash('device', 2))", db)
    extra = run_module(tsdb_host, MODULE, base)
    assert extra.get("failed") is True
    assert "device (2 partitions)" in extra["msg"] and "does not declare" in extra["msg"]
    assert _dimensions(tsdb_host, db) == "ts:Time:7 days device:Space:2"


def test_table_with_rows_converts_with_migrate_data(tsdb_host, metrics_table):
    db = metrics_table
    psql(
        tsdb_host,
        "INSERT INTO metrics SELECT t, (extract(epoch FROM t)::int / 60) % 5, random()"
        " FROM generate_series('2026-01-01'::timestamptz, '2026-01-10', '1 minute') AS t",
        db,
    )
    rows = psql(tsdb_host, "SELECT count(*) FROM metrics", db)
    args = {"login_db": db, "table": "metrics", "time_column": "ts", "chunk_time_interval": "1 day"}

    refused = run_module(tsdb_host, MODULE, args)
    assert refused.get("failed") is True
    assert "holds rows" in refused["msg"] and "migrate_data" in refused["msg"]
    assert _dimensions(tsdb_host, db) == "", "a refused conversion was half-applied"

    args["migrate_data"] = True
    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True and "migrate_data => true" in checked["queries"][0]
    assert _dimensions(tsdb_host, db) == ""

    applied = run_module(tsdb_host, MODULE, args)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["changed"] is True
    assert applied["hypertable"]["num_chunks"] == 10
    assert psql(tsdb_host, "SELECT count(*) FROM metrics", db) == rows
    assert psql(tsdb_host, "SELECT count(*) FROM ONLY metrics", db) == "0", "rows left in the parent table"

    again = run_module(tsdb_host, MODULE, args)
    assert again["changed"] is False


def test_integer_time_column(tsdb_host, fresh_database):
    db = fresh_database
    psql(tsdb_host, "CREATE TABLE counters (tick bigint NOT NULL, value int)", db)
    args = {"login_db": db, "table": "counters", "time_column": "tick", "chunk_time_interval": "1 day"}
    wrong = run_module(tsdb_host, MODULE, args)
    assert wrong.get("failed") is True and "must be an integer" in wrong["msg"]

    args["chunk_time_interval"] = "100000"
    applied = run_module(tsdb_host, MODULE, args)
    assert applied["changed"] is True
    assert _dimensions(tsdb_host, db, "counters") == "tick:Time:100000"
    args["chunk_time_interval"] = "50000"
    changed = run_module(tsdb_host, MODULE, args)
    assert changed["changed"] is True
    assert _dimensions(tsdb_host, db, "counters") == "tick:Time:50000"
    assert run_module(tsdb_host, MODULE, args)["changed"] is False


def test_missing_table_is_a_clear_error(tsdb_host, fresh_database):
    failed = run_module(
        tsdb_host, MODULE, {"login_db": fresh_database, "table": "nowhere", "time_column": "ts"}, check=True
    )
    assert failed.get("failed") is True
    assert failed["msg"] == (
        f"reconciling hypertable nowhere: table nowhere does not exist in database {fresh_database}: "
        "create the table first"
    )
