"""tgstack.hybrid.sql_scripts against a real PostgreSQL 17 + TimescaleDB server in a lab container.

Every behaviour follows the 4 steps: check mode reports the change and changes nothing -> apply ->
verify in the catalog and the ledger -> apply again reports no change. Scripts are put on the host under
/var/tmp (not /tmp: systemd mounts a tmpfs there) and the module runs as postgres over the Unix socket.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from labhost import psql, run, run_module

MODULE = "tgstack.hybrid.sql_scripts"
SCRIPTS_ROOT = "/var/tmp/tgstack-sql-scripts"
LEDGER = "tgstack_meta.sql_scripts"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def put_scripts(host: str, directory: str, files: dict[str, str]) -> str:
    """Replace directory SCRIPTS_ROOT/DIRECTORY on HOST with FILES (name -> content); return its path."""
    target = f"{SCRIPTS_ROOT}/{directory}"
    with tempfile.TemporaryDirectory() as local:
        for name, content in files.items():
            (Path(local) / name).write_text(content)
        for command in (
            ["docker", "exec", host, "rm", "-rf", target],
            ["docker", "exec", host, "mkdir", "-p", target],
            ["docker", "cp", f"{local}/.", f"{host}:{target}"],
            ["docker", "exec", host, "chown", "-R", "postgres:postgres", SCRIPTS_ROOT],
        ):
            done = run(command)
            assert done.returncode == 0, f"{command}: {done.stderr}"
    return target


def sql_scripts(
    host: str, db: str, path: str, *, check: bool = False, diff: bool = False, environment=None, **args: Any
) -> dict:
    return run_module(
        host, MODULE, {"path": path, "login_db": db, **args}, check=check, diff=diff, environment=environment
    )


def ledger_exists(host: str, db: str, table: str = LEDGER) -> bool:
    return psql(host, f"SELECT to_regclass('{table}') IS NOT NULL", db) == "t"


def ledger_rows(host: str, db: str, table: str = LEDGER) -> dict[str, dict[str, str]]:
    """name -> {checksum, how, runs, applied_by, previous_checksum} as psql prints them."""
    if not ledger_exists(host, db, table):
        return {}
    out = psql(host, f"SELECT name, checksum, how, runs, applied_by, coalesce(previous_checksum, '') FROM {table}", db)
    rows = {}
    for line in out.splitlines():
        name, checksum, how, runs, applied_by, previous = line.split("|")
        rows[name] = dict(checksum=checksum, how=how, runs=runs, applied_by=applied_by, previous_checksum=previous)
    return rows


def relation_exists(host: str, db: str, name: str) -> bool:
    return psql(host, f"SELECT to_regclass('{name}') IS NOT NULL", db) == "t"


def catalog_snapshot(host: str, db: str) -> str:
    """Schemas and relations of DB outside the system schemas: what check mode must leave untouched."""
    return psql(
        host,
        "SELECT string_agg(n.nspname || '.' || coalesce(c.relname, ''), ',' ORDER BY 1) "
        "FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
        "WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' "
        "AND n.nspname NOT LIKE '\\_timescaledb%' AND n.nspname NOT LIKE 'timescaledb\\_%'",
        db,
    )


def assert_ok(result: dict) -> None:
    assert not result.get("failed"), result.get("msg", result)


THREE_SCRIPTS = {
    "001_schema.sql": "CREATE SCHEMA app;\n",
    "002_messages.sql": (
        "-- the messages hypertable\n"
        "CREATE TABLE app.messages (\n"
        "    chat_id bigint NOT NULL,\n"
        "    created_at timestamptz NOT NULL,\n"
        "    body text DEFAULT 'it''s; not a statement end'\n"
        ");\n"
        "SELECT create_hypertable('app.messages', by_range('created_at'));\n"
    ),
    "003_function.sql": (
        "CREATE FUNCTION app.greeting() RETURNS text LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n"
        "    RETURN 'hello; world';\n"
        "END;\n"
        "$body$;\n"
    ),
}


def test_applies_scripts_in_order_once_and_records_them(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "basic", THREE_SCRIPTS)
    names = sorted(THREE_SCRIPTS)
    before = catalog_snapshot(tsdb_host, fresh_database)

    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, diff=True)
    assert_ok(checked)
    assert checked["changed"] is True
    assert checked["would_apply"] == names
    assert checked["applied"] == []
    assert "RETURN 'hello; world';" in checked["diff"]["prepared"]
    assert [entry["script"] for entry in checked["queries"]] == names
    assert catalog_snapshot(tsdb_host, fresh_database) == before
    assert not ledger_exists(tsdb_host, fresh_database)

    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert applied["changed"] is True
    assert applied["applied"] == names
    assert applied["ran_without_transaction"] == []
    assert [row["name"] for row in applied["ledger"]] == names
    assert applied["ledger"][0]["applied_at"][:2] == "20"  # ISO timestamps

    assert psql(tsdb_host, "SELECT app.greeting()", fresh_database) == "hello; world"
    assert psql(tsdb_host, "SELECT hypertable_name FROM timescaledb_information.hypertables", fresh_database) == (
        "messages"
    )
    rows = ledger_rows(tsdb_host, fresh_database)
    assert set(rows) == set(names)
    for name, content in THREE_SCRIPTS.items():
        assert rows[name] == dict(
            checksum=sha256(content), how="transaction", runs="1", applied_by="postgres", previous_checksum=""
        )

    again = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(again)
    assert again["changed"] is False
    assert again["applied"] == [] and again["would_apply"] == [] and again["pending"] == []


def test_check_mode_on_a_database_without_ledger_creates_nothing(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "check", THREE_SCRIPTS)
    before = catalog_snapshot(tsdb_host, fresh_database)
    for options in ({}, {"baseline": True}, {"target": "002_messages"}):
        checked = sql_scripts(tsdb_host, fresh_database, path, check=True, **options)
        assert_ok(checked)
        assert checked["changed"] is True, options
        assert checked["ledger"] == []
    assert catalog_snapshot(tsdb_host, fresh_database) == before
    assert not ledger_exists(tsdb_host, fresh_database)
    assert psql(tsdb_host, "SELECT count(*) FROM pg_namespace WHERE nspname = 'tgstack_meta'", fresh_database) == "0"


def test_target_and_enabled_enable_scripts_one_at_a_time(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "one-at-a-time", THREE_SCRIPTS)

    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, target="001_schema")
    assert_ok(checked)
    assert checked["changed"] is True
    assert checked["would_apply"] == ["001_schema.sql"]
    assert checked["pending"] == ["002_messages.sql", "003_function.sql"]
    assert not ledger_exists(tsdb_host, fresh_database)

    first = sql_scripts(tsdb_host, fresh_database, path, target="001_schema")
    assert_ok(first)
    assert first["applied"] == ["001_schema.sql"]
    assert first["pending"] == ["002_messages.sql", "003_function.sql"]
    assert psql(tsdb_host, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'", fresh_database) == "1"
    assert not relation_exists(tsdb_host, fresh_database, "app.messages")
    assert set(ledger_rows(tsdb_host, fresh_database)) == {"001_schema.sql"}
    assert sql_scripts(tsdb_host, fresh_database, path, target="001_schema")["changed"] is False

    second = sql_scripts(tsdb_host, fresh_database, path, target="002_messages.sql", applied_by="deploy-42")
    assert_ok(second)
    assert second["applied"] == ["002_messages.sql"]
    assert relation_exists(tsdb_host, fresh_database, "app.messages")
    assert ledger_rows(tsdb_host, fresh_database)["002_messages.sql"]["applied_by"] == "deploy-42"
    assert sql_scripts(tsdb_host, fresh_database, path, target="002_messages.sql")["changed"] is False

    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, enabled=["003_function"])
    assert checked["would_apply"] == ["003_function.sql"] and checked["changed"] is True
    assert psql(tsdb_host, "SELECT count(*) FROM pg_proc WHERE proname = 'greeting'", fresh_database) == "0"
    third = sql_scripts(tsdb_host, fresh_database, path, enabled=["003_function"])
    assert_ok(third)
    assert third["applied"] == ["003_function.sql"]
    assert psql(tsdb_host, "SELECT app.greeting()", fresh_database) == "hello; world"
    assert sql_scripts(tsdb_host, fresh_database, path, enabled=["003_function"])["changed"] is False
    assert sql_scripts(tsdb_host, fresh_database, path)["changed"] is False


def test_unknown_script_names_fail_before_anything_runs(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "unknown-names", THREE_SCRIPTS)
    for options, named in (
        ({"target": "004_missing"}, "004_missing.sql"),
        ({"enabled": ["001_schema", "009_nope.sql"]}, "009_nope.sql"),
        ({"repeatable": ["003_functon"]}, "003_functon.sql"),
    ):
        for check in (True, False):
            result = sql_scripts(tsdb_host, fresh_database, path, check=check, **options)
            assert result["failed"] is True, options
            assert result["msg"].startswith("checking the script names: "), result["msg"]
            assert named in result["msg"]
            assert "001_schema.sql, 002_messages.sql, 003_function.sql" in result["msg"]
    both = sql_scripts(tsdb_host, fresh_database, path, target="001_schema", enabled=["002_messages"])
    assert both["failed"] is True and "mutually exclusive" in both["msg"]
    assert not ledger_exists(tsdb_host, fresh_database)
    assert psql(tsdb_host, "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'", fresh_database) == "0"


MIDDLE_FAILS = {
    "001_table.sql": "CREATE TABLE t1 (id int);\n",
    "002_rows.sql": "INSERT INTO t1 VALUES (1);\nCREATE TABLE t2 (id int);\n",
    "003_broken.sql": (
        "CREATE TABLE t3 (id int);\n"  # line 1
        "INSERT INTO t1 VALUES (99);\n"  # line 2
        "\n"
        "/* the next statement reads a table\n"
        "   that does not exist; */\n"
        "SELECT *\n"  # line 6
        "  FROM no_such_table;\n"  # line 7: the server's error position
        "CREATE TABLE t3b (id int);\n"
    ),
    "004_after.sql": "CREATE TABLE t4 (id int);\n",
}


def test_failing_script_leaves_database_and_ledger_as_after_the_previous_one(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "middle-fails", MIDDLE_FAILS)
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True)
    assert_ok(checked)  # check mode does not run the scripts, so it cannot see the error
    assert checked["would_apply"] == sorted(MIDDLE_FAILS)
    assert not relation_exists(tsdb_host, fresh_database, "t1")

    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    msg = failed["msg"]
    assert msg.startswith("applying 003_broken.sql: line 7: "), msg
    assert 'relation "no_such_table" does not exist' in msg
    assert "SELECT * FROM no_such_table;" in msg
    assert "rolled back" in msg
    assert failed["failed_script"] == "003_broken.sql"
    assert failed["failed_line"] == 7
    assert failed["failed_statement"] == "SELECT * FROM no_such_table;"
    assert failed["applied"] == ["001_table.sql", "002_rows.sql"]
    assert failed["changed"] is True
    assert [row["name"] for row in failed["ledger"]] == ["001_table.sql", "002_rows.sql"]

    # exactly as after 002: its objects, none of 003's (not even its statements before the failing one)
    assert set(ledger_rows(tsdb_host, fresh_database)) == {"001_table.sql", "002_rows.sql"}
    assert relation_exists(tsdb_host, fresh_database, "t2")
    assert psql(tsdb_host, "SELECT string_agg(id::text, ',') FROM t1", fresh_database) == "1"
    for name in ("t3", "t3b", "t4"):
        assert not relation_exists(tsdb_host, fresh_database, name)

    # the same failure again: nothing more is applied, nothing changes
    failed_again = sql_scripts(tsdb_host, fresh_database, path)
    assert failed_again["failed"] is True and failed_again["changed"] is False
    assert failed_again["failed_line"] == 7

    fixed = dict(MIDDLE_FAILS, **{"003_broken.sql": MIDDLE_FAILS["003_broken.sql"].replace("no_such_table", "t1")})
    put_scripts(tsdb_host, "middle-fails", fixed)
    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert applied["applied"] == ["003_broken.sql", "004_after.sql"]
    assert relation_exists(tsdb_host, fresh_database, "t4")
    assert sql_scripts(tsdb_host, fresh_database, path)["changed"] is False


def test_syntax_error_names_the_line_of_the_statement(tsdb_host, fresh_database):
    path = put_scripts(
        tsdb_host,
        "syntax-error",
        {"001_typo.sql": "CREATE TABLE ok1 (id int);\n\nCREATE TABLE ok2 (\n    id int,\n    name txet,\n);\n"},
    )
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    assert failed["failed_line"] == 6  # the trailing comma's ")" is where the server points
    assert failed["failed_statement"].startswith("CREATE TABLE ok2 (")
    assert "syntax error" in failed["msg"]
    assert not relation_exists(tsdb_host, fresh_database, "ok1")
    assert not ledger_exists(tsdb_host, fresh_database)  # the ledger is created with the first recorded script


def test_script_that_controls_transactions_is_refused_before_anything_runs(tsdb_host, fresh_database):
    path = put_scripts(
        tsdb_host,
        "tx-control",
        {
            "001_fine.sql": "CREATE TABLE fine (id int);\n",
            "002_commits.sql": "BEGIN;\nCREATE TABLE early (id int);\nCOMMIT;\n",
        },
    )
    for check in (True, False):
        failed = sql_scripts(tsdb_host, fresh_database, path, check=check)
        assert failed["failed"] is True
        assert "002_commits.sql line 1 controls the transaction itself" in failed["msg"]
        assert failed["changed"] is False
    assert not relation_exists(tsdb_host, fresh_database, "fine")
    assert not ledger_exists(tsdb_host, fresh_database)


def test_unsplittable_script_is_refused_before_anything_runs(tsdb_host, fresh_database):
    path = put_scripts(
        tsdb_host,
        "unsplittable",
        {
            "001_fine.sql": "CREATE TABLE fine (id int);\n",
            "002_open.sql": "SELECT 1;\nDO $body$ BEGIN PERFORM 1; END $bdy$;\n",
        },
    )
    for check in (True, False):
        failed = sql_scripts(tsdb_host, fresh_database, path, check=check)
        assert failed["failed"] is True
        assert failed["msg"] == (
            "splitting the scripts to run: 002_open.sql: unterminated dollar-quoted string $body$ starting at line 2"
        )
    assert not relation_exists(tsdb_host, fresh_database, "fine")
    assert not ledger_exists(tsdb_host, fresh_database)


CONCURRENT = {
    "001_log.sql": "CREATE TABLE runs_log (script text, at timestamptz DEFAULT clock_timestamp());\n"
    "INSERT INTO runs_log (script) VALUES ('001');\n",
    "002_slow.sql": "SELECT pg_sleep(2);\nINSERT INTO runs_log (script) VALUES ('002');\n",
    "003_last.sql": "INSERT INTO runs_log (script) VALUES ('003');\n",
}


def test_two_concurrent_runs_apply_each_script_exactly_once(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "concurrent", CONCURRENT)
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True)
    assert checked["changed"] is True and checked["would_apply"] == sorted(CONCURRENT)
    assert not relation_exists(tsdb_host, fresh_database, "runs_log")

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(sql_scripts, tsdb_host, fresh_database, path) for _run in range(2)]
        results = [future.result() for future in runs]
    for result in results:
        assert_ok(result)
    assert sorted(result["changed"] for result in results) == [False, True]
    winner = next(result for result in results if result["changed"])
    assert winner["applied"] == sorted(CONCURRENT)
    loser = next(result for result in results if not result["changed"])
    assert loser["applied"] == [] and [row["name"] for row in loser["ledger"]] == sorted(CONCURRENT)

    counts = psql(tsdb_host, "SELECT string_agg(script || ':' || n, ',' ORDER BY script) FROM "
                  "(SELECT script, count(*) AS n FROM runs_log GROUP BY script) s", fresh_database)  # fmt: skip
    assert counts == "001:1,002:1,003:1"
    assert {row["runs"] for row in ledger_rows(tsdb_host, fresh_database).values()} == {"1"}
    assert sql_scripts(tsdb_host, fresh_database, path)["changed"] is False


def test_lock_timeout_names_the_holder(tsdb_host, fresh_database):
    path = put_scripts(tsdb_host, "lock-timeout", {"001_a.sql": "CREATE TABLE locked_out (id int);\n"})
    key = sql_scripts(tsdb_host, fresh_database, path, check=True)["lock_key"]
    holder = subprocess.Popen(
        ["docker", "exec", tsdb_host, "runuser", "-u", "postgres", "--", "psql", "-X", "-d", fresh_database,
         "-c", f"SELECT pg_advisory_lock({key}), pg_backend_pid(), pg_sleep(60)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        pid = ""
        for _attempt in range(50):
            pid = psql(tsdb_host, f"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                       f"AND objid::bigint = {key & 0xFFFFFFFF}", fresh_database)  # fmt: skip
            if pid:
                break
            time.sleep(0.2)
        assert pid, "the holder did not get the lock"
        started = time.monotonic()
        failed = sql_scripts(tsdb_host, fresh_database, path, lock_timeout=2)
        assert failed["failed"] is True
        assert failed["msg"].startswith("waiting for the advisory lock of tgstack_meta.sql_scripts: ")
        assert f"pid {pid} " in failed["msg"], failed["msg"]
        assert time.monotonic() - started < 30
        assert not relation_exists(tsdb_host, fresh_database, "locked_out")
        assert not ledger_exists(tsdb_host, fresh_database)
    finally:
        psql(tsdb_host, f"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
             f"AND objid::bigint = {key & 0xFFFFFFFF}", fresh_database, check=False)  # fmt: skip
        holder.wait(timeout=30)
    assert_ok(sql_scripts(tsdb_host, fresh_database, path, lock_timeout=2))


def test_edited_applied_script_fails_naming_both_checksums(tsdb_host, fresh_database):
    original = {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int);\n"}
    path = put_scripts(tsdb_host, "edited", original)
    assert_ok(sql_scripts(tsdb_host, fresh_database, path))
    edited = dict(original, **{"002_b.sql": "CREATE TABLE b (id bigint);\n", "003_c.sql": "CREATE TABLE c ();\n"})
    put_scripts(tsdb_host, "edited", edited)
    for check in (True, False):
        failed = sql_scripts(tsdb_host, fresh_database, path, check=check)
        assert failed["failed"] is True
        msg = failed["msg"]
        assert msg.startswith("comparing the scripts with the ledger: applied scripts changed since they ran: ")
        assert "002_b.sql" in msg
        assert sha256(original["002_b.sql"]) in msg and sha256(edited["002_b.sql"]) in msg
        assert failed["changed"] is False
    # nothing ran: not even the new script after it
    assert not relation_exists(tsdb_host, fresh_database, "c")
    assert ledger_rows(tsdb_host, fresh_database)["002_b.sql"]["checksum"] == sha256(original["002_b.sql"])
    put_scripts(tsdb_host, "edited", original)
    assert sql_scripts(tsdb_host, fresh_database, path)["changed"] is False


def test_repeatable_script_reruns_when_its_content_changes(tsdb_host, fresh_database):
    view_v1 = "CREATE OR REPLACE VIEW version AS SELECT 1 AS version;\n"
    view_v2 = "CREATE OR REPLACE VIEW version AS SELECT 2 AS version;\n"
    path = put_scripts(
        tsdb_host, "repeatable", {"001_table.sql": "CREATE TABLE a (id int);\n", "090_view.sql": view_v1}
    )
    assert_ok(sql_scripts(tsdb_host, fresh_database, path, repeatable=["090_view"]))
    assert sql_scripts(tsdb_host, fresh_database, path, repeatable=["090_view"])["changed"] is False

    put_scripts(tsdb_host, "repeatable", {"001_table.sql": "CREATE TABLE a (id int);\n", "090_view.sql": view_v2})
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, diff=True, repeatable=["090_view"])
    assert_ok(checked)
    assert checked["changed"] is True and checked["would_apply"] == ["090_view.sql"]
    assert "re-run in a transaction" in checked["diff"]["prepared"]
    assert psql(tsdb_host, "SELECT version FROM version", fresh_database) == "1"

    rerun = sql_scripts(tsdb_host, fresh_database, path, repeatable=["090_view"])
    assert_ok(rerun)
    assert rerun["changed"] is True and rerun["applied"] == ["090_view.sql"]
    assert psql(tsdb_host, "SELECT version FROM version", fresh_database) == "2"
    row = ledger_rows(tsdb_host, fresh_database)["090_view.sql"]
    assert row == dict(checksum=sha256(view_v2), how="transaction", runs="2", applied_by="postgres",
                       previous_checksum=sha256(view_v1))  # fmt: skip
    assert sql_scripts(tsdb_host, fresh_database, path, repeatable=["090_view"])["changed"] is False


def test_baseline_adopts_an_existing_database(tsdb_host, fresh_database):
    ledger = "ops.migrations"
    files = {
        "001_table.sql": "CREATE TABLE adopted (id int);\nINSERT INTO adopted VALUES (1);\n",
        "002_index.sql": "CREATE INDEX adopted_id ON adopted (id);\n",
        "003_new.sql": "CREATE TABLE added_later (id int);\n",
    }
    path = put_scripts(tsdb_host, "baseline", files)
    psql(tsdb_host, "CREATE TABLE adopted (id int); CREATE INDEX adopted_id ON adopted (id);", fresh_database)

    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, baseline=True, target="002_index",
                          ledger_table=ledger)  # fmt: skip
    assert_ok(checked)
    assert checked["changed"] is True
    assert checked["recorded"] == ["001_table.sql", "002_index.sql"] and checked["would_apply"] == []
    assert checked["pending"] == ["003_new.sql"]
    assert not ledger_exists(tsdb_host, fresh_database, ledger)

    adopted = sql_scripts(tsdb_host, fresh_database, path, baseline=True, target="002_index", ledger_table=ledger)
    assert_ok(adopted)
    assert adopted["recorded"] == ["001_table.sql", "002_index.sql"] and adopted["applied"] == []
    rows = ledger_rows(tsdb_host, fresh_database, ledger)
    assert {name: (row["how"], row["runs"]) for name, row in rows.items()} == {
        "001_table.sql": ("baseline", "0"),
        "002_index.sql": ("baseline", "0"),
    }
    assert psql(tsdb_host, "SELECT count(*) FROM adopted", fresh_database) == "0"  # 001 did not run
    assert not relation_exists(tsdb_host, fresh_database, "tgstack_meta.sql_scripts")
    again = sql_scripts(tsdb_host, fresh_database, path, baseline=True, target="002_index", ledger_table=ledger)
    assert again["changed"] is False

    rest = sql_scripts(tsdb_host, fresh_database, path, ledger_table=ledger)
    assert_ok(rest)
    assert rest["applied"] == ["003_new.sql"]
    assert relation_exists(tsdb_host, fresh_database, "added_later")
    assert sql_scripts(tsdb_host, fresh_database, path, ledger_table=ledger)["changed"] is False


def test_guarded_repair_takes_the_new_checksum_without_rerunning(tsdb_host, fresh_database):
    original = "CREATE TABLE counted (id int);\nINSERT INTO counted VALUES (1);\n"
    fixed = "-- counted: one row per run of this script\n" + original
    path = put_scripts(tsdb_host, "repair", {"001_counted.sql": original})
    assert_ok(sql_scripts(tsdb_host, fresh_database, path))
    put_scripts(tsdb_host, "repair", {"001_counted.sql": fixed})

    wrong = [{"name": "001_counted", "from_checksum": sha256(fixed)}]
    for check in (True, False):
        refused = sql_scripts(tsdb_host, fresh_database, path, check=check, repair=wrong)
        assert refused["failed"] is True
        assert "repair of 001_counted.sql refused" in refused["msg"]
        assert sha256(original) in refused["msg"]
    assert ledger_rows(tsdb_host, fresh_database)["001_counted.sql"]["checksum"] == sha256(original)

    right = [{"name": "001_counted.sql", "from_checksum": sha256(original).upper()}]
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, repair=right)
    assert_ok(checked)
    assert checked["changed"] is True and checked["recorded"] == ["001_counted.sql"]
    assert checked["would_apply"] == []
    assert ledger_rows(tsdb_host, fresh_database)["001_counted.sql"]["checksum"] == sha256(original)

    repaired = sql_scripts(tsdb_host, fresh_database, path, repair=right)
    assert_ok(repaired)
    assert repaired["changed"] is True and repaired["recorded"] == ["001_counted.sql"] and repaired["applied"] == []
    assert ledger_rows(tsdb_host, fresh_database)["001_counted.sql"] == dict(
        checksum=sha256(fixed), how="repair", runs="1", applied_by="postgres", previous_checksum=sha256(original)
    )
    assert psql(tsdb_host, "SELECT count(*) FROM counted", fresh_database) == "1"  # not re-run

    # the entry left in the playbook is now a no-op, and so is a run without it
    assert sql_scripts(tsdb_host, fresh_database, path, repair=right)["changed"] is False
    assert sql_scripts(tsdb_host, fresh_database, path)["changed"] is False


def test_no_transaction_script_creates_an_index_concurrently(tsdb_host, fresh_database):
    files = {
        "001_table.sql": "CREATE TABLE events (id int, kind text);\n"
        "INSERT INTO events SELECT g, 'k' || g % 7 FROM generate_series(1, 1000) g;\n",
        "002_index.sql": "-- tgstack: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_kind ON events (kind);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_id ON events (id);\n",
    }
    path = put_scripts(tsdb_host, "no-transaction", files)
    checked = sql_scripts(tsdb_host, fresh_database, path, check=True, diff=True)
    assert_ok(checked)
    assert checked["would_apply"] == sorted(files)
    assert "002_index.sql: run without a transaction" in checked["diff"]["prepared"]
    assert checked["queries"][1]["how"] == "no-transaction"
    assert len(checked["queries"][1]["statements"]) == 2
    assert not relation_exists(tsdb_host, fresh_database, "events")

    applied = sql_scripts(tsdb_host, fresh_database, path)
    assert_ok(applied)
    assert applied["applied"] == sorted(files)
    assert applied["ran_without_transaction"] == ["002_index.sql"]
    valid = psql(tsdb_host, "SELECT string_agg(c.relname || ':' || i.indisvalid, ',' ORDER BY c.relname) "
                 "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                 "WHERE i.indrelid = 'events'::regclass", fresh_database)  # fmt: skip
    assert valid == "events_id:true,events_kind:true"
    assert ledger_rows(tsdb_host, fresh_database)["002_index.sql"]["how"] == "no-transaction"
    again = sql_scripts(tsdb_host, fresh_database, path)
    assert again["changed"] is False and again["ran_without_transaction"] == []


def test_concurrent_index_without_the_marker_fails_with_a_hint(tsdb_host, fresh_database):
    path = put_scripts(
        tsdb_host,
        "no-marker",
        {"001_index.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"},
    )
    failed = sql_scripts(tsdb_host, fresh_database, path)
    assert failed["failed"] is True
    assert "cannot run inside a transaction block" in failed["msg"]
    assert "-- tgstack: no-transaction" in failed["msg"]
    assert failed["failed_line"] == 2
    assert not relation_exists(tsdb_host, fresh_database, "t")


def test_ledger_rows_without_a_file_are_reported_not_an_error(tsdb_host, fresh_database):
    files = {"001_a.sql": "CREATE TABLE a (id int);\n", "002_b.sql": "CREATE TABLE b (id int);\n"}
    path = put_scripts(tsdb_host, "unknown-in-ledger", files)
    assert_ok(sql_scripts(tsdb_host, fresh_database, path))
    put_scripts(tsdb_host, "unknown-in-ledger", {"001_a.sql": files["001_a.sql"]})
    for check in (True, False):
        result = sql_scripts(tsdb_host, fresh_database, path, check=check)
        assert_ok(result)
        assert result["changed"] is False
        assert result["unknown_in_ledger"] == ["002_b.sql"]
        assert any("002_b.sql" in warning for warning in result.get("warnings", []))


@pytest.mark.parametrize("value", ["no_schema", "a.b.c"])
def test_bad_ledger_table_is_refused(tsdb_host, fresh_database, value):
    path = put_scripts(tsdb_host, "bad-ledger", {"001_a.sql": "CREATE TABLE a (id int);\n"})
    failed = sql_scripts(tsdb_host, fresh_database, path, ledger_table=value)
    assert failed["failed"] is True and value in failed["msg"]
    assert not relation_exists(tsdb_host, fresh_database, "a")
