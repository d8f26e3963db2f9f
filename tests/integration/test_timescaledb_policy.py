"""tgstack.hybrid.timescaledb_policy: native policies (community edition) and the pg_cron fallback (Apache)."""

from __future__ import annotations

import time

import pytest
from labhost import psql, run_module

MODULE = "tgstack.hybrid.timescaledb_policy"
COMMUNITY_MISSING = "community edition not installed here: Debian ships the Apache edition"
RUN_WAIT_SECONDS = 30


def _license(host: str, db: str) -> str:
    return psql(host, "SHOW timescaledb.license", db)


@pytest.fixture
def apache_only(tsdb_host, fresh_database):
    if _license(tsdb_host, fresh_database) != "apache":
        pytest.skip("the pg_cron fallback is only used on the Apache edition; this server runs the community one")
    return fresh_database


@pytest.fixture
def community_only(tsdb_host, fresh_database):
    if _license(tsdb_host, fresh_database) != "timescale":
        pytest.skip(COMMUNITY_MISSING)
    return fresh_database


@pytest.fixture
def cron_cleanup(tsdb_host, fresh_database):
    """Unschedule every pg_cron job the test's database got, also when the test fails."""
    yield
    psql(tsdb_host, f"SELECT cron.unschedule(jobid) FROM cron.job WHERE database = '{fresh_database}'")


def _hypertable_with_days(host: str, db: str, days: int = 10) -> None:
    """A hypertable with 1-day chunks holding one row a minute for the last DAYS days."""
    psql(host, "CREATE TABLE metrics (ts timestamptz NOT NULL, device int NOT NULL, value float8)", db)
    psql(host, "SELECT create_hypertable('metrics', by_range('ts', INTERVAL '1 day'))", db)
    psql(
        host,
        "INSERT INTO metrics SELECT t, 1, random()"
        f" FROM generate_series(now() - INTERVAL '{days} days', now(), INTERVAL '1 minute') AS t",
        db,
    )


def _chunk_count(host: str, db: str, table: str = "metrics") -> int:
    return int(psql(host, f"SELECT count(*) FROM show_chunks('{table}')", db))


def _cron_job(host: str, name: str) -> str:
    return psql(host, f"SELECT jobid, schedule, command, database, active FROM cron.job WHERE jobname = '{name}'")


def _wait_for_succeeded_run(host: str, jobid: str, after: str) -> None:
    """Poll cron.job_run_details (bounded) until job JOBID has a succeeded run that started after AFTER."""
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while time.monotonic() < deadline:
        runs = psql(
            host,
            "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details"
            f" WHERE jobid = {jobid} AND start_time > '{after}' ORDER BY start_time DESC LIMIT 1",
        )
        if runs.startswith("succeeded"):
            return
        if runs.startswith("failed"):
            raise AssertionError(f"pg_cron job {jobid} failed: {runs}")
        time.sleep(1)
    raise AssertionError(f"pg_cron job {jobid} had no succeeded run within {RUN_WAIT_SECONDS} s")


def _now(host: str) -> str:
    return psql(host, "SELECT now()")


# --- Apache edition: fail early, or fall back to pg_cron --------------------------------------------


def test_without_fallback_fails_early_naming_the_edition(tsdb_host, apache_only):
    db = apache_only
    _hypertable_with_days(tsdb_host, db, days=1)
    for kind, extra in (("retention", {"drop_after": "3 days"}), ("refresh", {"relation": "metrics"})):
        failed = run_module(tsdb_host, MODULE, {"login_db": db, "type": kind, "relation": "metrics"} | extra)
        assert failed.get("failed") is True
        message = failed["msg"]
        assert message.startswith(f"reconciling {kind} policy on metrics: ")
        assert "'apache' edition" in message and "fallback: pg_cron" in message
        assert failed["queries"] == []
    assert psql(tsdb_host, f"SELECT count(*) FROM cron.job WHERE database = '{db}'") == "0"


def test_compression_has_no_fallback(tsdb_host, apache_only):
    db = apache_only
    _hypertable_with_days(tsdb_host, db, days=1)
    failed = run_module(
        tsdb_host,
        MODULE,
        {
            "login_db": db,
            "type": "compression",
            "relation": "metrics",
            "compress_after": "7 days",
            "fallback": "pg_cron",
        },
    )
    assert failed.get("failed") is True
    assert "compression" in failed["msg"] and "'apache' edition" in failed["msg"]
    assert "no Apache-edition equivalent" in failed["msg"]


def test_retention_fallback_runs_and_drops_old_chunks(tsdb_host, apache_only, cron_cleanup):
    db = apache_only
    _hypertable_with_days(tsdb_host, db, days=10)
    chunks_before = _chunk_count(tsdb_host, db)
    assert chunks_before >= 10
    job_name = f"tgstack:retention:{db}:public.metrics"
    args = {
        "login_db": db,
        "type": "retention",
        "relation": "metrics",
        "drop_after": "3 days",
        "schedule_interval": "5 seconds",
        "fallback": "pg_cron",
    }

    checked = run_module(tsdb_host, MODULE, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert "cron.schedule_in_database" in checked["queries"][0]
    assert checked["diff"]["before"]["exists"] is False
    assert checked["diff"]["after"]["schedule"] == "5 seconds"
    assert _cron_job(tsdb_host, job_name) == ""

    started = _now(tsdb_host)
    applied = run_module(tsdb_host, MODULE, args)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["changed"] is True
    policy = applied["policy"]
    assert policy["scheduler"] == "pg_cron" and policy["edition"] == "apache"
    assert policy["command"] == "SELECT drop_chunks('public.metrics', older_than => INTERVAL '3 days')"
    jobid, schedule, command, database, active = _cron_job(tsdb_host, job_name).split("|")
    assert (schedule, command, database, active) == ("5 seconds", policy["command"], db, "t")

    _wait_for_succeeded_run(tsdb_host, jobid, started)
    chunks_after = _chunk_count(tsdb_host, db)
    assert chunks_after <= 5 < chunks_before, (chunks_before, chunks_after)
    assert psql(tsdb_host, "SELECT min(ts) > now() - INTERVAL '5 days' FROM metrics", db) == "t"

    again = run_module(tsdb_host, MODULE, args)
    assert again["changed"] is False and again["queries"] == []

    # a changed policy is altered in place (same job id), never left as it was
    changed = run_module(tsdb_host, MODULE, args | {"drop_after": "2 days", "schedule_interval": "1 hour"})
    assert changed["changed"] is True
    assert "cron.alter_job" in changed["queries"][0]
    assert _cron_job(tsdb_host, job_name) == (
        f"{jobid}|0 * * * *|SELECT drop_chunks('public.metrics', older_than => INTERVAL '2 days')|{db}|t"
    )
    # a job paused by hand is activated again
    psql(tsdb_host, f"SELECT cron.alter_job({jobid}, active => false)")
    reactivated = run_module(tsdb_host, MODULE, args | {"drop_after": "2 days", "schedule_interval": "1 hour"})
    assert reactivated["changed"] is True and any("active" in note for note in reactivated["notes"])
    assert _cron_job(tsdb_host, job_name).endswith("|t")

    absent = args | {"state": "absent"}
    removed_check = run_module(tsdb_host, MODULE, absent, check=True)
    assert removed_check["changed"] is True and _cron_job(tsdb_host, job_name) != ""
    removed = run_module(tsdb_host, MODULE, absent)
    assert removed["changed"] is True and "cron.unschedule" in removed["queries"][0]
    assert _cron_job(tsdb_host, job_name) == ""
    assert run_module(tsdb_host, MODULE, absent)["changed"] is False


def test_refresh_fallback_runs_and_refreshes_the_view(tsdb_host, apache_only, cron_cleanup):
    db = apache_only
    _hypertable_with_days(tsdb_host, db, days=2)
    psql(
        tsdb_host,
        "CREATE MATERIALIZED VIEW metrics_daily AS SELECT time_bucket('1 day', ts) AS bucket, device,"
        " count(*) AS n FROM metrics GROUP BY 1, 2",
        db,
    )
    args = {
        "login_db": db,
        "type": "refresh",
        "relation": "metrics_daily",
        "schedule_interval": "5 seconds",
        "fallback": "pg_cron",
    }
    no_index = run_module(tsdb_host, MODULE, args)
    assert no_index.get("failed") is True and "unique index" in no_index["msg"]
    psql(tsdb_host, "CREATE UNIQUE INDEX ON metrics_daily (bucket, device)", db)
    job_name = f"tgstack:refresh:{db}:public.metrics_daily"

    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True and _cron_job(tsdb_host, job_name) == ""

    applied = run_module(tsdb_host, MODULE, args)
    assert not applied.get("failed"), applied.get("msg")
    assert applied["policy"]["command"] == "REFRESH MATERIALIZED VIEW CONCURRENTLY public.metrics_daily"
    jobid = _cron_job(tsdb_host, job_name).split("|")[0]

    psql(tsdb_host, "INSERT INTO metrics SELECT now(), 42, 1 FROM generate_series(1, 7)", db)
    assert psql(tsdb_host, "SELECT count(*) FROM metrics_daily WHERE device = 42", db) == "0"
    inserted = _now(tsdb_host)
    _wait_for_succeeded_run(tsdb_host, jobid, inserted)
    assert psql(tsdb_host, "SELECT sum(n) FROM metrics_daily WHERE device = 42", db) == "7"

    assert run_module(tsdb_host, MODULE, args)["changed"] is False
    assert run_module(tsdb_host, MODULE, args | {"state": "absent"})["changed"] is True
    assert _cron_job(tsdb_host, job_name) == ""


def test_schedule_interval_to_pg_cron(tsdb_host, apache_only):
    db = apache_only
    _hypertable_with_days(tsdb_host, db, days=1)
    base = {"login_db": db, "type": "retention", "relation": "metrics", "drop_after": "3 days", "fallback": "pg_cron"}
    for interval, schedule in (
        ("30 seconds", "30 seconds"),
        ("1 minute", "* * * * *"),
        ("15 minutes", "*/15 * * * *"),
        ("1 hour", "0 * * * *"),
        ("6 hours", "0 */6 * * *"),
        ("1 day", "0 0 * * *"),
    ):
        checked = run_module(tsdb_host, MODULE, base | {"schedule_interval": interval}, check=True)
        assert checked["policy"]["schedule"] == schedule, (interval, checked.get("msg"))
    odd = run_module(tsdb_host, MODULE, base | {"schedule_interval": "7 minutes"}, check=True)
    assert odd.get("failed") is True and "cron_schedule" in odd["msg"]
    raw = run_module(tsdb_host, MODULE, base | {"cron_schedule": "*/7 * * * *"}, check=True)
    assert raw["policy"]["schedule"] == "*/7 * * * *"
    assert psql(tsdb_host, f"SELECT count(*) FROM cron.job WHERE database = '{db}'") == "0"


# --- community edition: native policies ------------------------------------------------------------


def _native_job(host: str, db: str, proc: str) -> str:
    return psql(
        host,
        "SELECT job_id, schedule_interval, config - 'hypertable_id' - 'mat_hypertable_id', scheduled"
        f" FROM timescaledb_information.jobs WHERE proc_name = '{proc}'",
        db,
    )


def test_native_retention_policy_reconciled(tsdb_host, community_only):
    db = community_only
    _hypertable_with_days(tsdb_host, db, days=2)
    args = {"login_db": db, "type": "retention", "relation": "metrics", "drop_after": "30 days"}

    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True and "add_retention_policy" in checked["queries"][0]
    assert _native_job(tsdb_host, db, "policy_retention") == ""

    applied = run_module(tsdb_host, MODULE, args)
    assert applied["changed"] is True and applied["policy"]["scheduler"] == "timescaledb"
    job_id, schedule, config, scheduled = _native_job(tsdb_host, db, "policy_retention").split("|")
    assert (schedule, config, scheduled) == ("1 day", '{"drop_after": "30 days"}', "t")
    assert run_module(tsdb_host, MODULE, args)["changed"] is False

    rescheduled = run_module(tsdb_host, MODULE, args | {"schedule_interval": "1 hour"})
    assert rescheduled["changed"] is True and "alter_job" in rescheduled["queries"][0]
    assert _native_job(tsdb_host, db, "policy_retention").split("|")[:2] == [job_id, "01:00:00"]

    reconfigured = run_module(tsdb_host, MODULE, args | {"schedule_interval": "1 hour", "drop_after": "10 days"})
    assert reconfigured["changed"] is True
    assert [q.split("(")[0] for q in reconfigured["queries"]] == [
        "SELECT remove_retention_policy",
        "SELECT add_retention_policy",
    ]
    assert '"10 days"' in _native_job(tsdb_host, db, "policy_retention")

    assert run_module(tsdb_host, MODULE, args | {"state": "absent"})["changed"] is True
    assert _native_job(tsdb_host, db, "policy_retention") == ""


def test_native_compression_policy(tsdb_host, community_only):
    db = community_only
    _hypertable_with_days(tsdb_host, db, days=2)
    args = {"login_db": db, "type": "compression", "relation": "metrics", "compress_after": "7 days"}
    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True and _native_job(tsdb_host, db, "policy_compression") == ""
    applied = run_module(tsdb_host, MODULE, args)
    assert applied["changed"] is True, applied.get("msg")
    assert '"compress_after": "7 days"' in _native_job(tsdb_host, db, "policy_compression")
    assert run_module(tsdb_host, MODULE, args)["changed"] is False
    changed = run_module(tsdb_host, MODULE, args | {"compress_after": "14 days"})
    assert changed["changed"] is True and '"14 days"' in _native_job(tsdb_host, db, "policy_compression")


def test_native_refresh_policy(tsdb_host, community_only):
    db = community_only
    _hypertable_with_days(tsdb_host, db, days=2)
    psql(
        tsdb_host,
        "CREATE MATERIALIZED VIEW metrics_hourly WITH (timescaledb.continuous) AS"
        " SELECT time_bucket('1 hour', ts) AS bucket, count(*) AS n FROM metrics GROUP BY 1 WITH NO DATA",
        db,
    )
    args = {
        "login_db": db,
        "type": "refresh",
        "relation": "metrics_hourly",
        "start_offset": "3 hours",
        "end_offset": "1 hour",
        "schedule_interval": "10 minutes",
    }
    checked = run_module(tsdb_host, MODULE, args, check=True)
    assert checked["changed"] is True
    assert _native_job(tsdb_host, db, "policy_refresh_continuous_aggregate") == ""
    applied = run_module(tsdb_host, MODULE, args)
    assert applied["changed"] is True, applied.get("msg")
    job = _native_job(tsdb_host, db, "policy_refresh_continuous_aggregate")
    assert "00:10:00" in job and '"end_offset": "01:00:00"' in job
    assert run_module(tsdb_host, MODULE, args)["changed"] is False
    moved = run_module(tsdb_host, MODULE, args | {"end_offset": "30 minutes"})
    assert moved["changed"] is True
    assert '"end_offset": "00:30:00"' in _native_job(tsdb_host, db, "policy_refresh_continuous_aggregate")
