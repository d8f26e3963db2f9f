"""The statements sql_scripts runs are the ones psql runs, as the server's statement log shows.

The corpus (sql_corpus.py: scripts written by hand and generated from many seeds) goes through psql
and through the module, each into a database of its own, with log_statement = all for both sessions.
For every script, the statements psql sent (read back from the server log) must be exactly the ones the
module reports it ran, and the module's statements must appear in the log as it sent them, in order.
psql sends a /* comment */ before a statement as part of it; the module leaves comments between
statements out, so both sides are compared without leading comments and whitespace.
"""

from __future__ import annotations

import re

import pytest
import sql_corpus
from labhost import psql, run
from test_sql_scripts import assert_ok, put_scripts, sql_scripts

SEEDS = range(60)
LOGGING = "-c log_statement=all"
RECORD = re.compile(r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] (?:\S+@(?P<db>\S+) )?(?P<level>[A-Z]+):  (?P<text>.*)$", re.S)


def server_log(host: str) -> str:
    """Path of the server log file on HOST."""
    current = psql(host, "SELECT pg_current_logfile()")
    if current:
        directory = psql(host, "SHOW data_directory")
        return current if current.startswith("/") else f"{directory}/{current}"
    return "/var/log/postgresql/postgresql-17-main.log"


def log_size(host: str, path: str) -> int:
    return int(run(["docker", "exec", host, "stat", "-c", "%s", path]).stdout.strip())


def statements_logged(host: str, path: str, since: int, db: str) -> list[str]:
    """The statements the server logged for database DB after byte SINCE of its log, in order."""
    text = run(["docker", "exec", host, "tail", "-c", f"+{since + 1}", path]).stdout
    records: list[str] = []
    for line in text.split("\n"):
        if line.startswith("\t") and records:  # the server indents the later lines of a message with a tab
            records[-1] += "\n" + line[1:]
        elif line:
            records.append(line)
    logged = []
    for record in records:
        match = RECORD.match(record)
        if match and match.group("db") == db and match.group("text").startswith("statement: "):
            logged.append(match.group("text")[len("statement: ") :])
    return logged


def without_leading_comments(sql: str) -> str:
    """SQL without the whitespace, -- comments and (nested) /* */ comments it starts with."""
    index = 0
    while index < len(sql):
        if sql[index].isspace():
            index += 1
        elif sql.startswith("--", index):
            newline = sql.find("\n", index)
            index = len(sql) if newline < 0 else newline + 1
        elif sql.startswith("/*", index):
            depth = 0
            while index < len(sql):
                if sql.startswith("/*", index):
                    depth, index = depth + 1, index + 2
                elif sql.startswith("*/", index):
                    depth, index = depth - 1, index + 2
                    if depth == 0:
                        break
                else:
                    index += 1
        else:
            break
    return sql[index:].rstrip()


def corpus() -> list[tuple[str, str, list[str]]]:
    """(name, script, statements) for every script of the corpus: the generated ones first."""
    scripts = [(f"seed-{seed}", *sql_corpus.generated(seed)) for seed in SEEDS]
    scripts += [(f"hand-{number}", script, expected) for number, (script, expected) in
                enumerate(sql_corpus.HAND_WRITTEN)]  # fmt: skip
    return scripts


def psql_statements(host: str, db: str, scripts: list[tuple[str, str, list[str]]]) -> dict[str, list[str]]:
    """What psql sends for each script (from the server log), a marker query before each."""
    files = {f"{name}.sql": script for name, script, _expected in scripts}
    directory = put_scripts(host, "psql-corpus", files)
    log = server_log(host)
    since = log_size(host, log)
    loop = " ".join(
        f"psql -X -q -d {db} -c \"SELECT 'corpus-marker {name}'\" -f {directory}/{name}.sql >/dev/null 2>&1;"
        for name, _script, _expected in scripts
    )
    done = run(["docker", "exec", "-e", f"PGOPTIONS={LOGGING}", host, "runuser", "-u", "postgres", "--",
                "sh", "-c", loop], timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    by_script: dict[str, list[str]] = {}
    current = None
    for statement in statements_logged(host, log, since, db):
        marker = re.fullmatch(r"SELECT 'corpus-marker (\S+)'", statement)
        if marker:
            current = marker.group(1)
            by_script[current] = []
        elif current is not None:
            normalized = without_leading_comments(statement)
            if normalized:  # a comment alone at the end of a file is sent on its own
                by_script[current].append(normalized)
    return by_script


@pytest.fixture(scope="module")
def through_psql(tsdb_host):
    db = "t_splitter_psql"
    psql(tsdb_host, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(tsdb_host, f"CREATE DATABASE {db}")
    return psql_statements(tsdb_host, db, corpus())


@pytest.mark.parametrize(("name", "script", "expected"), corpus(), ids=[entry[0] for entry in corpus()])
def test_psql_sends_the_statements_the_corpus_expects(through_psql, name, script, expected):
    assert through_psql[name] == expected, script


def test_the_module_runs_what_psql_runs_and_the_server_logs_it(tsdb_host, fresh_database, through_psql):
    generated = [entry for entry in corpus() if entry[0].startswith("seed-")]
    files = {f"{number + 1}_{name}.sql": script for number, (name, script, _expected) in enumerate(generated)}
    path = put_scripts(tsdb_host, "module-corpus", files)
    log = server_log(tsdb_host)
    since = log_size(tsdb_host, log)
    result = sql_scripts(tsdb_host, fresh_database, path, environment={"PGOPTIONS": LOGGING})
    assert_ok(result)
    assert result["applied"] == list(files)
    logged = iter(statements_logged(tsdb_host, log, since, fresh_database))
    for query, (name, _script, _expected) in zip(result["queries"], generated, strict=True):
        assert query["statements"] == through_psql[name], name
        for statement in query["statements"]:  # sent verbatim, in this order (ledger writes in between)
            assert any(entry == statement for entry in logged), f"{name}: not in the server log: {statement}"
