"""SQL scripts that are hard to split, each with the statements psql sends for it.

Used by the splitter's property test (tests/unit/plugins/modules/test_sql_scripts_split.py, pure) and
by tests/integration/test_sql_scripts_splitter.py, which runs the same scripts through psql and reads
the server's statement log. Every statement is valid on PostgreSQL 17 in an empty database (functions
and tables are created with OR REPLACE / IF NOT EXISTS), so the server logs all of them.

A script is statements joined by separators (whitespace and -- comments, which psql does not send);
the statements themselves carry the traps: semicolons and quotes in every kind of literal, identifier
and comment, columns and aliases named begin, case and end, CASE expressions, dollar quotes with tags,
SQL-standard function bodies (BEGIN ATOMIC ... END) and PL/pgSQL bodies.
"""

from __future__ import annotations

import random

STRINGS = [
    "'a;b'",
    "'it''s; fine'",
    "'begin; end'",
    "'C:\\'",
    "E'it\\'s; fine'",
    "e'\\\\;'",
    "U&'d\\0061t;'",
    "N'x;y'",
    "B'101'",
    "X'1F'",
    "$$;$$",
    "$$ it's; $$",
    "$t$ $$ ; $$ $t$",
    "$_x1$ begin; end $_x1$",
    "'--not a comment;'",
    "'/* not a comment; */'",
    "'\"quoted;\"'",
]
IDENTIFIERS = ['"x;y"', '"a""b;"', "begin", "case", "end", "a$b$", '"begin"', "_under", "ünï"]
INLINE_COMMENTS = ["/* ; */", "/* a /* nested; */ it's; */", "-- it's; a comment\n", "--;\n"]
SEPARATORS = ["\n", " ", "\n\n", "\t", "\n-- between; 'statements'\n", "\n-- begin;\n"]


def expression(rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(STRINGS)
    if choice == 1:
        return f"CASE WHEN {rng.randrange(9)} > 4 THEN {rng.choice(STRINGS)} END"
    if choice == 2:
        return f"(SELECT {rng.choice(STRINGS)})"
    if choice == 3:
        return f"{rng.randrange(100)} {rng.choice(INLINE_COMMENTS)} + 1"
    if choice == 4:
        return f"length({rng.choice(STRINGS)}::text)"
    return f"{rng.randrange(1000)}.{rng.randrange(10)}e1"


def statement(rng: random.Random, number: int) -> str:
    """One statement, ending with its semicolon."""
    choice = rng.randrange(9)
    if choice <= 2:
        columns = ", ".join(f"{expression(rng)} AS {rng.choice(IDENTIFIERS)}" for _column in range(rng.randint(1, 3)))
        return f"SELECT {columns};"
    if choice == 3:
        last = rng.choice([", note text", " -- x;\n, note text", ", n int"])
        return f'CREATE TABLE IF NOT EXISTS t_{number} (id int, begin int, "end;" text, "case" text{last});'
    if choice == 4:
        return (
            f"CREATE OR REPLACE FUNCTION f_{number}(x int) RETURNS int LANGUAGE sql\n"
            f"BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n"
            f"  SELECT x + {rng.randrange(9)} {rng.choice(INLINE_COMMENTS)};\nEND;"
        )
    if choice == 5:
        replace = rng.choice(["OR REPLACE ", ""])
        return (
            f"CREATE {replace}PROCEDURE p_{number}_{rng.randrange(10**9)}() LANGUAGE sql\n"
            "BEGIN ATOMIC\n  SELECT 1; SELECT CASE WHEN true THEN 2 END;\nEND;"
        )
    if choice == 6:
        tag = rng.choice(["$$", "$fn$", "$body_1$"])
        return (
            f"CREATE OR REPLACE FUNCTION g_{number}() RETURNS int LANGUAGE plpgsql AS {tag}\n"
            f"BEGIN\n  RETURN 1; -- end;\nEND;\n{tag};"
        )
    if choice == 7:
        return f"DO $do$ BEGIN PERFORM {rng.choice(STRINGS)}; END $do$;"
    return f'SELECT v.begin, v.end FROM (VALUES (1, {rng.choice(STRINGS)})) AS v(begin, "end");'


def generated(seed: int) -> tuple[str, list[str]]:
    """(script, the statements psql sends for it, leading comments and whitespace left out)."""
    rng = random.Random(seed)
    statements = [statement(rng, number) for number in range(rng.randint(1, 8))]
    script = ""
    for index, text in enumerate(statements):
        script += rng.choice(SEPARATORS) if index or rng.random() < 0.5 else ""
        script += text
    trailing = rng.choice(["", "\n", "\n-- the end;\n"])
    if rng.random() < 0.3:  # the last statement without its semicolon: it runs to the end of the file
        script = script[:-1] + trailing
        statements[-1] = (statements[-1][:-1] + trailing).rstrip()
    else:
        script += trailing
    return script, statements


# Scripts found by hand (the issue that asked for this corpus names the first two)
HAND_WRITTEN: list[tuple[str, list[str]]] = [
    (
        "CREATE TABLE periods (id int, begin date);\nCOMMIT;\nCREATE TABLE more (id int);\n",
        ["CREATE TABLE periods (id int, begin date);", "COMMIT;", "CREATE TABLE more (id int);"],
    ),
    (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_begin ON periods (begin);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_id ON periods (id);\n",
        [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_begin ON periods (begin);",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS periods_id ON periods (id);",
        ],
    ),
    (
        "SELECT CASE WHEN true THEN 1 END AS begin;\nSELECT 2;",
        ["SELECT CASE WHEN true THEN 1 END AS begin;", "SELECT 2;"],
    ),
    (
        "CREATE OR REPLACE FUNCTION h(begin int) RETURNS int LANGUAGE sql RETURN $1 + 1;\nSELECT h(1);",
        ["CREATE OR REPLACE FUNCTION h(begin int) RETURNS int LANGUAGE sql RETURN $1 + 1;", "SELECT h(1);"],
    ),
]
