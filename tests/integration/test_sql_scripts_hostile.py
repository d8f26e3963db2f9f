"""tgstack.hybrid.sql_scripts with the script sets and runs a new user brings (issue 14).

Natural order and ambiguous names, four runs at once while an index is built concurrently under a
writer, the word begin in a script, unreadable and empty files, session state a script leaves behind,
a no-transaction script that fails half-way, and messages that say what was being done. The module runs
as postgres over the Unix socket of the shared TimescaleDB lab host, as in test_sql_scripts.py.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import time

import pytest
from labhost import psql, run
from test_sql_scripts import assert_ok, ledger_exists, ledger_rows, put_scripts, relation_exists, sql_scripts

# ---------------------------------------------------------------------------
# 1. order
# ---------------------------------------------------------------------------

NATURAL = {
    "1_base.sql": "CREATE TABLE base (id int);\n",
    "2_add_col.sql": "ALTER TABLE base ADD COLUMN note text;\n",
    "10_uses_col.sql": "CREATE INDEX base_note ON base (note);\n",
}


def test_scripts_run_in_the_order_of_their_numbers_not_of_their_names(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "natural", NATURAL)
    order = ["1_base.sql", "2_add_col.sql", "10_uses_col.sql"]
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True)
    assert_ok(checked)
    assert checked["would_apply"] == order
    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert applied["applied"] == order
    assert relation_exists(tsdb_host, fresh_database, "base_note")
    assert sql_scripts(tsdb_host, fresh_database, path, target="2_add_col")["changed"] is False


@pytest.mark.parametrize(
    ("files", "named"),
    [
        ({"001_a.sql": "SELECT 1;\n", "1_b.sql": "SELECT 1;\n"}, "001_a.sql and 1_b.sql"),
        ({"1_base.sql": "SELECT 1;\n", "views.sql": "SELECT 1;\n"}, "views.sql has no number prefix"),
    ],
)
def test_an_ambiguous_order_is_refused_before_connecting(tsdb_host, fresh_database, files, named):
    path = put_scripts(tsdb_host, "ambiguous", files)
    # a port nothing listens on: the refusal must come before any connection is tried
    for check in (True, False):
        failed = sql_scripts(tsdb_host, fresh_database, path, check=check, login_port=1)
        assert failed["failed"] is True
        assert failed["msg"].startswith(f"ordering the scripts in {path}: "), failed["msg"]
        assert named in failed["msg"], failed["msg"]
    assert not ledger_exists(tsdb_host, fresh_database)


# ---------------------------------------------------------------------------
# 2. concurrent runs and CREATE INDEX CONCURRENTLY
# ---------------------------------------------------------------------------

RACE = {
    "1_log.sql": "CREATE TABLE IF NOT EXISTS runs_log (script text);\nINSERT INTO runs_log VALUES ('1');\n",
    "2_index.sql": (
        "-- tgstack: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_v ON periods (v);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_begin ON periods (begin);\n"
        "INSERT INTO runs_log VALUES ('2');\n"
    ),
    "10_after.sql": "INSERT INTO runs_log VALUES ('10');\n",
}
WRITER_TRANSACTIONS = 4  # each holds its transaction open for 1.5 s: an open writer for about 6 s


def start_writer(host: str, db: str) -> subprocess.Popen:
    """A writer into periods that keeps a transaction open (1.5 s each, one after the other)."""
    one = "BEGIN; INSERT INTO periods (begin, v) VALUES (current_date, 7); SELECT pg_sleep(1.5); COMMIT;\n"
    writer = subprocess.Popen(
        ["docker", "exec", "-i", "-e", "PGAPPNAME=it-writer", host, "runuser", "-u", "postgres", "--",
         "psql", "-X", "-q", "-d", db],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    writer.stdin.write(one * WRITER_TRANSACTIONS)
    writer.stdin.close()
    deadline = time.monotonic() + 30
    while psql(host, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'it-writer' "
               "AND xact_start IS NOT NULL", db) != "1":  # fmt: skip
        assert writer.poll() is None, writer.stderr.read()
        assert time.monotonic() < deadline, "the writer never opened its transaction"
        time.sleep(0.1)
    return writer


def test_four_runs_at_once_while_an_index_is_built_concurrently_under_a_writer(tsdb_host, fresh_database):
    """Ten rounds of four parallel runs against a table with rows and an open writer transaction."""
    psql(tsdb_host, "CREATE TABLE periods (id bigserial PRIMARY KEY, begin date, v int); "
         "INSERT INTO periods (begin, v) SELECT current_date - i % 400, i % 1000 "
         "FROM generate_series(1, 20000) AS i", fresh_database)  # fmt: skip
    path = put_scripts(tsdb_host, "race", RACE)
    for round_number in range(10):
        psql(tsdb_host, "DROP SCHEMA IF EXISTS tgstack_meta CASCADE; DROP TABLE IF EXISTS runs_log; "
             "DROP INDEX IF EXISTS periods_v, periods_begin", fresh_database)  # fmt: skip
        writer = start_writer(tsdb_host, fresh_database)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                runs = [pool.submit(sql_scripts, tsdb_host, fresh_database, path, lock_timeout=99) for _run in range(4)]
                results = [future.result() for future in runs]
        finally:
            writer.wait(timeout=60)
        where = f"round {round_number}"
        for result in results:
            assert "deadlock" not in str(result.get("msg", "")), f"{where}: {result['msg']}"
            assert_ok(result)
        applied = sorted(name for result in results for name in result["applied"])
        assert applied == sorted(RACE), f"{where}: {applied}"
        assert {row["runs"] for row in ledger_rows(tsdb_host, fresh_database).values()} == {"1"}, where
        assert set(ledger_rows(tsdb_host, fresh_database)) == set(RACE), where
        logged = psql(tsdb_host, "SELECT string_agg(script, ',' ORDER BY script) FROM runs_log", fresh_database)
        assert logged == "1,10,2", f"{where}: {logged}"
        invalid = psql(tsdb_host, "SELECT count(*) FROM pg_index WHERE NOT indisvalid", fresh_database)
        assert invalid == "0", f"{where}: {invalid} invalid indexes"
        assert relation_exists(tsdb_host, fresh_database, "periods_v"), where
        assert relation_exists(tsdb_host, fresh_database, "periods_begin"), where


UNIQUE = {
    "1_table.sql": "CREATE TABLE codes (code int);\nINSERT INTO codes VALUES (1), (1), (2);\n",
    "2_unique.sql": (
        "-- tgstack: no-transaction\n"
        "CREATE TABLE IF NOT EXISTS codes_seen (code int);\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS codes_code ON codes (code);\n"
    ),
}


def test_an_index_left_invalid_fails_the_run_names_the_index_and_is_not_recorded(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "invalid-index", UNIQUE)
    first = sql_scripts(tsdb_host, fresh_database, path)
    # the duplicate codes fail the build and leave codes_code INVALID; the table before it stays (item 6)
    assert first["failed"] is True and first["failed_script"] == "2_unique.sql"
    assert first["changed"] is True
    assert first["partially_applied"] == {
        "script": "2_unique.sql",
        "statements_that_ran": ["CREATE TABLE IF NOT EXISTS codes_seen (code int);"],
    }
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in first["failed_statement"]
    assert psql(tsdb_host, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'codes_code'::regclass",
                fresh_database) == "f"  # fmt: skip

    # the next run: IF NOT EXISTS skips the INVALID index; the run must not call that applied
    again = sql_scripts(tsdb_host, fresh_database, path)
    assert again["failed"] is True and again["changed"] is True
    assert "public.codes_code" in again["msg"] and "INVALID" in again["msg"], again["msg"]
    assert "DROP INDEX CONCURRENTLY public.codes_code" in again["msg"], again["msg"]
    assert "2_unique.sql" in again["msg"]
    assert set(ledger_rows(tsdb_host, fresh_database)) == {"1_table.sql"}

    psql(tsdb_host, "DROP INDEX CONCURRENTLY public.codes_code", fresh_database)
    psql(tsdb_host, "DELETE FROM codes WHERE ctid NOT IN (SELECT min(ctid) FROM codes GROUP BY code)", fresh_database)
    fixed = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(fixed)
    assert fixed["applied"] == ["2_unique.sql"]
    assert set(ledger_rows(tsdb_host, fresh_database)) == set(UNIQUE)


def test_a_no_transaction_script_failing_half_way_reports_what_it_changed(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "half-way", {"1_half.sql": (
        "-- tgstack: no-transaction\nCREATE TABLE half_a (id int);\nCREATE TABLE half_b (id int);\nSELECT 1 / 0;\n"
    )})  # fmt: skip
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True and failed["changed"] is True
    assert failed["partially_applied"]["statements_that_ran"] == [
        "CREATE TABLE half_a (id int);",
        "CREATE TABLE half_b (id int);",
    ]
    assert failed["failed_statement"] == "SELECT 1 / 0;"
    assert relation_exists(tsdb_host, fresh_database, "half_b")
    assert not ledger_rows(tsdb_host, fresh_database)


# ---------------------------------------------------------------------------
# 3. the word begin
# ---------------------------------------------------------------------------


def test_a_commit_after_a_column_named_begin_is_refused_before_anything_runs(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "begin-column", {
        "1_periods.sql": "CREATE TABLE periods (id int, begin date);\nCOMMIT;\nCREATE TABLE more (id int);\n",
    })  # fmt: skip
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    assert "1_periods.sql line 2 controls the transaction itself (COMMIT;)" in failed["msg"], failed["msg"]
    assert failed["changed"] is False
    assert not relation_exists(tsdb_host, fresh_database, "periods")
    assert not ledger_exists(tsdb_host, fresh_database)


def test_two_concurrent_index_builds_on_a_table_with_a_begin_column(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "begin-indexes", {
        "1_periods.sql": "CREATE TABLE periods (id int, begin date);\n",
        "2_indexes.sql": (
            "-- tgstack: no-transaction\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_begin ON periods (begin);\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_id ON periods (id);\n"
        ),
    })  # fmt: skip
    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert len(applied["queries"][1]["statements"]) == 2
    assert relation_exists(tsdb_host, fresh_database, "periods_begin")
    assert relation_exists(tsdb_host, fresh_database, "periods_id")


# ---------------------------------------------------------------------------
# 4. files
# ---------------------------------------------------------------------------


def test_an_unreadable_file_is_named_before_anything_runs(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "unreadable", {"1_a.sql": "CREATE TABLE a (id int);\n", "2_b.sql": "SELECT 1;\n"})
    done = run(["docker", "exec", tsdb_host, "sh", "-c", f"chown root:root {path}/2_b.sql && chmod 600 {path}/2_b.sql"])
    assert done.returncode == 0, done.stderr
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    assert failed["msg"].startswith(f"reading the scripts in {path}: cannot read 2_b.sql: Permission denied")
    assert "the module runs as postgres" in failed["msg"], failed["msg"]
    assert not relation_exists(tsdb_host, fresh_database, "a")


@pytest.mark.parametrize("content", ["", "\n\n", "-- nothing yet;\n/* later */\n"])
def test_an_empty_or_comment_only_script_is_refused_unless_allowed(tsdb_host, fresh_database, content):
    path = put_scripts(tsdb_host, "empty", {"1_a.sql": "CREATE TABLE a (id int);\n", "2_empty.sql": content})
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True and failed["changed"] is False
    assert "2_empty.sql has no statement (it is empty or holds only comments)" in failed["msg"], failed["msg"]
    assert "allow_empty" in failed["msg"]
    assert not relation_exists(tsdb_host, fresh_database, "a")
    allowed = sql_scripts(tsdb_host, fresh_database, path, allow_empty=True)
    assert_ok(allowed)
    assert allowed["applied"] == ["1_a.sql", "2_empty.sql"]
    assert set(ledger_rows(tsdb_host, fresh_database)) == {"1_a.sql", "2_empty.sql"}


# ---------------------------------------------------------------------------
# 5. session state
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["", "-- tgstack: no-transaction\n"])
def test_session_authorization_set_by_a_script_does_not_write_the_ledger(tsdb_host, fresh_database, marker):
    psql(tsdb_host, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'it_plain') THEN "
         "CREATE ROLE it_plain; END IF; END $$")  # fmt: skip
    path = put_scripts(tsdb_host, "authorization", {
        "1_as_plain.sql": f"{marker}CREATE TABLE owned_by_postgres (id int);\nSET SESSION AUTHORIZATION it_plain;\n"
                          "SELECT current_user;\n",
        "2_next.sql": "CREATE TABLE next_one (id int);\n",
    })  # fmt: skip
    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert {row["applied_by"] for row in ledger_rows(tsdb_host, fresh_database).values()} == {"postgres"}
    owners = psql(tsdb_host, "SELECT string_agg(relname || ':' || pg_get_userbyid(relowner), ',' ORDER BY relname) "
                  "FROM pg_class WHERE relname IN ('sql_scripts', 'next_one')", fresh_database)  # fmt: skip
    assert owners == "next_one:postgres,sql_scripts:postgres", owners


def test_a_failing_ledger_write_names_the_script(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "ledger-fails", {"1_a.sql": "CREATE TABLE a (id int);\n"})
    assert_ok(sql_scripts(tsdb_host, fresh_database, path))
    psql(tsdb_host, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
         "$$ BEGIN RAISE EXCEPTION 'ledger is read-only today'; END $$; "
         "CREATE TRIGGER refuse BEFORE INSERT ON tgstack_meta.sql_scripts FOR EACH ROW EXECUTE FUNCTION refuse()",
         fresh_database)  # fmt: skip
    put_scripts(tsdb_host, "ledger-fails", {"1_a.sql": "CREATE TABLE a (id int);\n", "2_b.sql": "CREATE TABLE b ();\n"})
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    assert "2_b.sql: recording it in the ledger tgstack_meta.sql_scripts failed" in failed["msg"], failed["msg"]
    assert "ledger is read-only today" in failed["msg"]
    assert not relation_exists(tsdb_host, fresh_database, "b")  # rolled back with its ledger row


# ---------------------------------------------------------------------------
# 7. messages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        ({"lock_timeout": -1}, "checking the options: lock_timeout is -1: it must be 0 or more seconds"),
        ({"ledger_table": "no_schema"}, "checking the options: "),
        ({"path": "/nonexistent/scripts"}, "listing the scripts in /nonexistent/scripts: "),
    ],
)
def test_messages_say_what_was_being_done(tsdb_host, fresh_database, args, starts):
    path = put_scripts(tsdb_host, "messages", {"1_a.sql": "SELECT 1;\n"})
    failed = sql_scripts(tsdb_host, fresh_database, args.pop("path", path), **args)
    assert failed["failed"] is True
    assert failed["msg"].startswith(starts), failed["msg"]
