# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of tgstack.hybrid.sql_scripts: the statement splitter, the name checks and the run plan.

What the server does with the statements is covered by tests/integration/test_sql_scripts.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
from pathlib import Path

import pytest
from ansible_collections.tgstack.hybrid.plugins.modules.sql_scripts import (
    Script,
    ScriptSyntaxError,
    SqlScriptsError,
    SqlStatement,
    lock_key,
    order_scripts,
    plan_run,
    script_name,
    select,
    split_statements,
    transaction_control,
)


def sqls(script: str) -> list[str]:
    return [statement.sql for statement in split_statements(script)]


def _corpus():
    """tests/integration/sql_corpus.py: the scripts the integration test also runs through psql."""
    path = Path(__file__).resolve().parents[3] / "integration" / "sql_corpus.py"
    spec = importlib.util.spec_from_file_location("sql_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = _corpus()


# ---------------------------------------------------------------------------
# splitter
# ---------------------------------------------------------------------------


def test_splits_at_top_level_semicolons_and_keeps_them():
    assert sqls("SELECT 1;\nSELECT 2;\n") == ["SELECT 1;", "SELECT 2;"]


def test_last_statement_needs_no_semicolon():
    assert sqls("SELECT 1;\nSELECT 2\n\n") == ["SELECT 1;", "SELECT 2"]


def test_empty_and_comment_only_scripts_have_no_statements():
    assert sqls("") == []
    assert sqls("\n  -- nothing here;\n/* nor; here */\n") == []


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 'a;b';SELECT 2;", ["SELECT 'a;b';", "SELECT 2;"]),
        ("SELECT 'it''s; fine';SELECT 2;", ["SELECT 'it''s; fine';", "SELECT 2;"]),
        # standard_conforming_strings: a backslash is an ordinary character in '...'
        ("SELECT 'C:\\';SELECT 2;", ["SELECT 'C:\\';", "SELECT 2;"]),
        # E'' strings: backslash escapes the quote
        ("SELECT E'it\\'s; fine';SELECT 2;", ["SELECT E'it\\'s; fine';", "SELECT 2;"]),
        ("SELECT e'\\\\';SELECT 2;", ["SELECT e'\\\\';", "SELECT 2;"]),
        # an identifier ending in e is not an E prefix
        ("SELECT 'x' AS name;SELECT 'y\\';", ["SELECT 'x' AS name;", "SELECT 'y\\';"]),
        # U&'' strings escape with \XXXX, not a quote
        ("SELECT U&'d\\0061t;';SELECT 2;", ["SELECT U&'d\\0061t;';", "SELECT 2;"]),
    ],
)
def test_semicolons_inside_strings_do_not_split(script, expected):
    assert sqls(script) == expected


def test_double_quoted_identifiers():
    assert sqls('CREATE TABLE "a;""b" (id int);SELECT 1;') == ['CREATE TABLE "a;""b" (id int);', "SELECT 1;"]


@pytest.mark.parametrize(
    "body",
    [
        "$$ BEGIN RAISE NOTICE 'x;'; END; $$",
        "$fn$ BEGIN PERFORM $$;$$; END; $fn$",
        "$a$ $b$ ; $b$ ; $a$",
        "$_x1$ ; $_x1$",
    ],
)
def test_dollar_quoted_bodies(body):
    script = f"DO {body};\nSELECT 2;"
    assert sqls(script) == [f"DO {body};", "SELECT 2;"]


def test_positional_parameters_and_dollar_in_identifiers_are_not_dollar_quotes():
    assert sqls("PREPARE p AS SELECT $1;SELECT a$b$ FROM t;SELECT 3;") == [
        "PREPARE p AS SELECT $1;",
        "SELECT a$b$ FROM t;",
        "SELECT 3;",
    ]


def test_comments_with_semicolons_and_quotes():
    script = (
        "-- it's; a comment\n"
        "SELECT 1 /* a /* nested; */ it's; */ + 1; -- trailing; comment\n"
        "SELECT '--not a comment;';\n"
    )
    assert sqls(script) == ["SELECT 1 /* a /* nested; */ it's; */ + 1;", "SELECT '--not a comment;';"]


def test_parentheses_keep_a_rule_body_together():
    script = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;"
    assert len(sqls(script)) == 2


def test_begin_atomic_function_bodies_stay_whole():
    function = (
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n"
        "  SELECT x;\n"
        "END;"
    )
    assert sqls(function + "\nSELECT f(1);") == [function, "SELECT f(1);"]


def test_transaction_begin_and_case_end_split_normally():
    assert sqls("BEGIN;\nSELECT CASE WHEN true THEN 1 END;\nEND;\nSELECT 1;") == [
        "BEGIN;",
        "SELECT CASE WHEN true THEN 1 END;",
        "END;",
        "SELECT 1;",
    ]


@pytest.mark.parametrize("seed", range(400))
def test_generated_scripts_split_into_the_statements_psql_sends(seed):
    script, expected = CORPUS.generated(seed)
    assert sqls(script) == expected, script


@pytest.mark.parametrize(("script", "expected"), CORPUS.HAND_WRITTEN)
def test_hand_written_scripts_split_as_psql_splits_them(script, expected):
    assert sqls(script) == expected


@pytest.mark.parametrize(
    "script",
    [
        "CREATE TABLE periods (id int, begin date);\nCOMMIT;\n",
        "SELECT 1 AS begin;\nCOMMIT;\n",
        "SELECT CASE WHEN true THEN 1 END;\nCOMMIT;\n",
        'CREATE TABLE t (begin int, "end" int);\nEND;\n',
    ],
)
def test_a_begin_or_case_outside_a_routine_body_opens_nothing(script):
    statements = split_statements(script)
    assert len(statements) == 2
    assert transaction_control(statements[1])


def test_a_begin_after_the_parameters_of_a_sql_function_opens_a_body_as_in_psql():
    # psql's heuristic: in CREATE FUNCTION, any BEGIN outside parentheses opens a body, also "RETURN begin"
    script = "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN begin;\nSELECT f(1);\n"
    assert len(sqls(script)) == 1


def test_begin_in_parentheses_of_a_routine_definition_opens_nothing():
    script = "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN $1;\nSELECT f(1);\n"
    assert sqls(script) == ["CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN $1;", "SELECT f(1);"]


def test_procedure_bodies_and_or_replace_stay_whole():
    body = "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;"
    assert sqls(body + "\nCALL p();") == [body, "CALL p();"]


def test_statement_lines_point_at_the_first_token():
    script = "-- header\n\nCREATE TABLE a (\n  id int\n);\n/* note */ SELECT\n1;\n"
    statements = split_statements(script)
    assert [(statement.line, statement.sql) for statement in statements] == [
        (3, "CREATE TABLE a (\n  id int\n);"),
        (6, "SELECT\n1;"),
    ]
    assert script[statements[1].offset :].startswith("SELECT")


def test_error_position_maps_to_the_file_line():
    statement = SqlStatement(sql="SELECT *\n  FROM nope\n WHERE x;", line=10, offset=0)
    assert statement.line_of(None) == 10
    assert statement.line_of(1) == 10
    assert statement.line_of(statement.sql.index("nope") + 1) == 11
    assert statement.line_of(statement.sql.index("WHERE") + 1) == 12


def test_excerpt_is_one_line_and_at_most_200_characters():
    statement = SqlStatement(sql="SELECT\n    " + " + ".join(["1"] * 200) + ";", line=1, offset=0)
    excerpt = statement.excerpt()
    assert "\n" not in excerpt and len(excerpt) == 200 and excerpt.endswith("...")
    assert SqlStatement(sql="SELECT\n  1;", line=1, offset=0).excerpt() == "SELECT 1;"


@pytest.mark.parametrize(
    ("script", "what", "line"),
    [
        ("SELECT 1;\nSELECT 'open;\n", "unterminated string", 2),
        ('SELECT 1;\n\nSELECT "open;\n', "unterminated quoted identifier", 3),
        ("SELECT 1; /* open /* nested */\n", "unterminated /* comment", 1),
        ("SELECT 1;\nDO $x$ BEGIN END; $y$;\n", "unterminated dollar-quoted string $x$", 2),
        ("SELECT E'\\';\n", "unterminated string", 1),
    ],
)
def test_unterminated_tokens_are_reported_with_their_line(script, what, line):
    with pytest.raises(ScriptSyntaxError, match=re.escape(what) + f".* line {line}$"):
        split_statements(script)


@pytest.mark.parametrize(
    ("sql", "controls"),
    [
        ("BEGIN;", True),
        ("begin transaction isolation level serializable;", True),
        ("START TRANSACTION;", True),
        ("COMMIT;", True),
        ("END;", True),
        ("ROLLBACK;", True),
        ("ABORT;", True),
        ("ROLLBACK TO SAVEPOINT a;", False),
        ("rollback to a;", False),
        ("SAVEPOINT a;", False),
        ("RELEASE SAVEPOINT a;", False),
        ("SELECT 1;", False),
        ("CREATE TABLE commit_log (id int);", False),
        ("ENDPOINT;", False),
    ],
)
def test_transaction_control_statements(sql, controls):
    assert transaction_control(SqlStatement(sql=sql, line=1, offset=0)) is controls


# ---------------------------------------------------------------------------
# names, marker, lock key
# ---------------------------------------------------------------------------


def script(name: str, text: str = "SELECT 1;\n") -> Script:
    content = text.encode()
    return Script(name, f"/scripts/{name}", content, hashlib.sha256(content).hexdigest())


# ---------------------------------------------------------------------------
# order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["10_uses_col.sql", "2_add_col.sql", "1_base.sql"], ["1_base.sql", "2_add_col.sql", "10_uses_col.sql"]),
        (
            ["002_schema.sql", "001_extension.sql", "010_views.sql"],
            ["001_extension.sql", "002_schema.sql", "010_views.sql"],
        ),
        (["20260102_b.sql", "9_a.sql"], ["9_a.sql", "20260102_b.sql"]),
        (["views.sql", "base.sql"], ["base.sql", "views.sql"]),  # no prefix anywhere: by name
        (["1.sql", "02.sql"], ["1.sql", "02.sql"]),
        ([], []),
    ],
)
def test_scripts_run_in_the_order_of_their_number_prefix(names, expected):
    assert order_scripts(names) == expected


@pytest.mark.parametrize("seed", range(50))
def test_the_order_is_the_numbers_order_whatever_the_listing_order_and_padding(seed):
    rng = random.Random(seed)
    numbers = rng.sample(range(1, 5000), rng.randint(1, 30))
    names = [f"{number:0{rng.randint(1, 5)}d}_{rng.choice(['a', 'z', 'm'])}.sql" for number in numbers]
    rng.shuffle(names)
    assert [int(name.split("_")[0]) for name in order_scripts(names)] == sorted(numbers)


@pytest.mark.parametrize(
    ("names", "named"),
    [
        (["001_a.sql", "1_b.sql", "2_c.sql"], ["001_a.sql and 1_b.sql"]),
        (["1_a.sql", "1_b.sql", "3_c.sql", "03_d.sql"], ["1_a.sql and 1_b.sql", "03_d.sql and 3_c.sql"]),
        (["1_base.sql", "views.sql", "extra.sql"], ["extra.sql, views.sql have no number prefix", "1_base.sql"]),
    ],
)
def test_an_ambiguous_order_is_refused_naming_the_files(names, named):
    with pytest.raises(SqlScriptsError) as refused:
        order_scripts(names)
    for text in named:
        assert text in str(refused.value), str(refused.value)


def test_script_names_get_the_sql_suffix_once():
    assert script_name("002_schema") == "002_schema.sql"
    assert script_name("002_schema.sql") == "002_schema.sql"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-- tgstack: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n", True),
        ("--tgstack:no-transaction   \r\nSELECT 1;", True),
        ("\ufeff-- TGSTACK: No-Transaction\nSELECT 1;", True),
        ("SELECT 1;\n-- tgstack: no-transaction\n", False),
        ("-- tgstack: no-transaction please\nSELECT 1;", False),
    ],
)
def test_no_transaction_marker_on_the_first_line(text, expected):
    assert script("001_x.sql", text).no_transaction is expected


def test_non_utf8_script_is_refused():
    with pytest.raises(SqlScriptsError, match="is not UTF-8"):
        Script("001_x.sql", "/s/001_x.sql", b"SELECT '\xff';", "0" * 64).statements()


def test_lock_key_is_a_stable_signed_bigint_per_ledger():
    key = lock_key("tgstack_meta.sql_scripts")
    assert key == lock_key("tgstack_meta.sql_scripts")
    assert -(2**63) <= key < 2**63
    assert key != lock_key("ops.migrations")


# ---------------------------------------------------------------------------
# selection and plan
# ---------------------------------------------------------------------------

SCRIPTS = [script("001_a.sql", "A;"), script("002_b.sql", "B;"), script("003_c.sql", "C;")]


def params(**overrides):
    values = dict(path="/scripts", target=None, enabled=None, repeatable=[], repair=[], baseline=False)
    values.update(overrides)
    return values


def row(item: Script, checksum: str | None = None) -> dict:
    return dict(name=item.name, checksum=checksum or item.checksum)


def test_selection_all_target_and_enabled():
    assert select(SCRIPTS, params()).names == ["001_a.sql", "002_b.sql", "003_c.sql"]
    assert select(SCRIPTS, params(target="002_b")).names == ["001_a.sql", "002_b.sql"]
    assert select(SCRIPTS, params(enabled=["003_c", "001_a.sql"])).names == ["001_a.sql", "003_c.sql"]
    assert select(SCRIPTS, params(enabled=[])).names == []


@pytest.mark.parametrize(
    "overrides",
    [
        dict(target="004_d"),
        dict(enabled=["001_a", "004_d"]),
        dict(repeatable=["004_d"]),
        dict(repair=[dict(name="004_d", from_checksum="0" * 64)]),
    ],
)
def test_unknown_names_are_refused_listing_the_scripts(overrides):
    with pytest.raises(SqlScriptsError, match=r"004_d\.sql, which is not a script in /scripts .*001_a\.sql"):
        select(SCRIPTS, params(**overrides))


def test_repair_entries_are_checked():
    with pytest.raises(SqlScriptsError, match="from_checksum must be a SHA-256"):
        select(SCRIPTS, params(repair=[dict(name="001_a", from_checksum="abc")]))
    with pytest.raises(SqlScriptsError, match="both repeatable and in repair"):
        select(SCRIPTS, params(repeatable=["001_a"], repair=[dict(name="001_a", from_checksum="a" * 64)]))
    assert select(SCRIPTS, params(repair=[dict(name="001_a", from_checksum="A" * 64)])).repair == {
        "001_a.sql": "a" * 64
    }


def kinds(plan) -> list[tuple[str, str]]:
    return [(action.script.name, action.kind) for action in plan.actions]


def test_plan_applies_what_is_enabled_and_not_in_the_ledger():
    plan = plan_run(SCRIPTS, {"001_a.sql": row(SCRIPTS[0])}, select(SCRIPTS, params(target="002_b")))
    assert kinds(plan) == [("002_b.sql", "apply")]
    assert plan.pending == ["003_c.sql"]
    assert plan.unknown_in_ledger == []


def test_plan_reports_ledger_rows_without_a_file():
    ledger = {item.name: row(item) for item in SCRIPTS}
    ledger["000_gone.sql"] = dict(name="000_gone.sql", checksum="f" * 64)
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params()))
    assert plan.actions == [] and plan.unknown_in_ledger == ["000_gone.sql"]


def test_plan_refuses_changed_scripts_naming_both_checksums():
    ledger = {item.name: row(item) for item in SCRIPTS}
    ledger["002_b.sql"] = row(SCRIPTS[1], "e" * 64)
    with pytest.raises(SqlScriptsError, match=f"002_b.sql \\(recorded sha256 {'e' * 64}, current sha256 "):
        plan_run(SCRIPTS, ledger, select(SCRIPTS, params()))


def test_plan_reruns_changed_repeatable_scripts_and_baselines_them_under_baseline():
    ledger = {item.name: row(item) for item in SCRIPTS}
    ledger["003_c.sql"] = row(SCRIPTS[2], "e" * 64)
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repeatable=["003_c"])))
    assert kinds(plan) == [("003_c.sql", "rerun")]
    assert plan.actions[0].recorded_checksum == "e" * 64
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repeatable=["003_c"], baseline=True)))
    assert kinds(plan) == [("003_c.sql", "baseline")]
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repeatable=["003_c"], target="002_b")))
    assert kinds(plan) == [] and plan.pending == ["003_c.sql"]


def test_plan_baseline_records_only_scripts_not_in_the_ledger():
    plan = plan_run(SCRIPTS, {"001_a.sql": row(SCRIPTS[0])}, select(SCRIPTS, params(baseline=True)))
    assert kinds(plan) == [("002_b.sql", "baseline"), ("003_c.sql", "baseline")]
    assert [action.how for action in plan.actions] == ["baseline", "baseline"]


def test_plan_repair_needs_the_recorded_checksum():
    ledger = {item.name: row(item) for item in SCRIPTS}
    ledger["001_a.sql"] = row(SCRIPTS[0], "e" * 64)
    with pytest.raises(SqlScriptsError, match=f"repair of 001_a.sql refused: from_checksum {'d' * 64} is not"):
        plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repair=[dict(name="001_a", from_checksum="d" * 64)])))
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repair=[dict(name="001_a", from_checksum="e" * 64)])))
    assert kinds(plan) == [("001_a.sql", "repair")]
    # once repaired (the ledger has the current checksum), the same entry does nothing
    ledger["001_a.sql"] = row(SCRIPTS[0])
    plan = plan_run(SCRIPTS, ledger, select(SCRIPTS, params(repair=[dict(name="001_a", from_checksum="e" * 64)])))
    assert plan.actions == []
