#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: sql_scripts
short_description: Apply an ordered set of SQL scripts once each, with a ledger
version_added: 0.1.0
description:
  - Applies the C(.sql) files of a directory on the managed host, once each, in the order of the number their
    names start with (C(1_base.sql), C(2_add_col.sql), C(10_uses_col.sql) run in that order, as do
    C(001_extension.sql), C(002_schema.sql)), and records every script in a ledger table in the database with its
    SHA-256 checksum, when and by whom it was applied, how long it took and how it ran.
  - A directory whose order is ambiguous is refused before connecting, naming the files - two names with the
    same number (C(001_a.sql) and C(1_b.sql)), or names with and without a number prefix side by side. When no
    name has a number prefix, the scripts run in lexical order of their names. Check mode reports the same order
    in RV(would_apply).
  - Each script runs in its own transaction together with its ledger row, so a failing script leaves the
    database and the ledger exactly as they were after the previous script. The error names the file, the
    failing statement and its line number, and the server's message.
  - "A script whose first line is the marker comment C(-- tgstack: no-transaction) runs outside a transaction
    (for C(CREATE INDEX CONCURRENTLY) and other statements that refuse to run in a transaction block). It is split
    into statements which run one by one in autocommit mode; its ledger row is written after its last statement."
  - Scripts are split into statements the way C(psql) splits them, following its lexer. A semicolon ends a
    statement unless it is inside a string (C('') without backslash escapes, C(E'') with them, C(B''), C(X''),
    C(N''), C(U&'')), a quoted identifier (C(""), C(U&"")), a dollar quote (C($$) or C($tag$)), a C(--) or nested
    C(/* */) comment, parentheses, or a routine body. A C(BEGIN) opens a body only in a statement that starts with
    C(CREATE [OR REPLACE] FUNCTION) or C(PROCEDURE), outside parentheses (C(BEGIN ATOMIC ... END); a C(CASE) inside
    such a body also ends with C(END)); a column named C(begin) or a C(CASE) anywhere else opens nothing. Comments
    and blank lines between statements are not sent. psql meta-commands (C(\connect), C(\copy), variables) are
    not supported.
  - A file that cannot be read fails the task before connecting, naming it. A script to run that has no statement
    (empty, or only comments) is refused, naming it, unless O(allow_empty) is set.
  - Transactional scripts must not control transactions themselves (C(BEGIN), C(COMMIT), C(ROLLBACK),
    C(END)); such a script is refused before anything runs. C(SAVEPOINT) and C(ROLLBACK TO) are fine.
  - Every script starts from the session's defaults (the module runs C(RESET ALL), C(RESET SESSION AUTHORIZATION)
    and C(RESET ROLE) before each script), so a C(SET search_path), C(SET ROLE) or C(SET SESSION AUTHORIZATION) in
    one script does not leak into the next. The same reset comes before each ledger write, so the ledger row is
    always written by the connecting role; every error names the script it concerns.
  - Concurrent runs against the same database are serialised with a PostgreSQL session advisory lock whose key
    is derived from O(ledger_table); a second run waits for the first (up to O(lock_timeout) seconds), then
    re-reads the ledger, so each script is applied exactly once. It waits by trying C(pg_try_advisory_lock) again
    and again (50 ms, doubling up to 1 s between tries) outside any transaction, as migration tools do, never
    blocked inside C(pg_advisory_lock()). A blocked waiter holds a transaction open, the lock holder's
    C(CREATE INDEX CONCURRENTLY) waits for it, and PostgreSQL would end one of them with "deadlock detected".
  - After a C(no-transaction) script, an index that is not valid - new since the script started, or named by one
    of its C(CREATE INDEX) statements (an C(IF NOT EXISTS) skips an C(INVALID) index left by an earlier failure) -
    fails the task, naming the index and the C(DROP INDEX CONCURRENTLY) that clears it; the script is not
    recorded. Indexes another session is building at that moment are not counted.
  - An applied script whose content changed fails the task with both checksums, unless it is listed in
    O(repeatable) (it then runs again and the ledger takes the new checksum) or repaired with O(repair).
  - Why not M(community.postgresql.postgresql_script)? It runs a file every time, reports changed on every
    run and keeps no history of what ran, so it cannot enable scripts once each or notice an edited script.
author:
  - tgstack.hybrid maintainers (@tgstack)
extends_documentation_fragment:
  - tgstack.hybrid.postgres
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Reads the ledger (if it exists) and reports what would run; creates nothing, not even the ledger table.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - The diff (C(prepared)) holds the SQL of the scripts that would run or ran.
options:
  path:
    description:
      - Directory on the managed host holding the C(.sql) files. Other files and subdirectories are ignored.
    type: path
    required: true
  ledger_table:
    description:
      - The ledger table, as C(schema.table). The schema and the table are created when the first script is
        recorded (never in check mode).
      - The advisory lock key is derived from this name, so runs with the same ledger serialise.
    type: str
    default: tgstack_meta.sql_scripts
  applied_by:
    description:
      - Recorded in the ledger's C(applied_by) column. Defaults to the connecting role (C(current_user)).
    type: str
  target:
    description:
      - Apply the scripts up to and including this one (file name, with or without C(.sql)); later ones stay
        pending.
      - A name that is not a file in O(path) fails the task before anything runs.
      - Mutually exclusive with O(enabled).
    type: str
  enabled:
    description:
      - Apply exactly these scripts (file names, with or without C(.sql)), still in the order of the directory;
        the others stay pending. An empty list applies nothing.
      - A name that is not a file in O(path) fails the task before anything runs.
      - Mutually exclusive with O(target). Without O(target) and O(enabled) all scripts are applied.
    type: list
    elements: str
  repeatable:
    description:
      - Scripts (file names, with or without C(.sql)) that run again whenever their content changes. The ledger
        row then takes the new checksum, keeps the old one in C(previous_checksum) and counts the runs.
      - Write them so that they can run again (C(CREATE OR REPLACE), C(IF NOT EXISTS)).
    type: list
    elements: str
    default: []
  repair:
    description:
      - Accept the current content of already applied scripts without running them again (for example after a
        comment or whitespace was fixed in a script). The ledger row takes the current checksum and is marked
        C(repair); C(previous_checksum) keeps the old one.
      - Guarded so that it cannot happen by accident, for instance by a repair entry left in a playbook, the
        entry must name the checksum recorded now (O(repair[].from_checksum), shown in the error about the
        changed script). Any other checksum is refused and nothing runs. Once repaired, the entry is a no-op.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The script's file name, with or without C(.sql).
        type: str
        required: true
      from_checksum:
        description:
          - The SHA-256 (hex) recorded in the ledger for the script now.
        type: str
        required: true
  baseline:
    description:
      - Adopt an existing database whose schema already has the effect of the scripts. The scripts that would
        run (all, up to O(target) or those in O(enabled)) are recorded in the ledger as C(baseline) without
        running. Scripts already in the ledger are left as they are.
    type: bool
    default: false
  allow_empty:
    description:
      - Record scripts that have no statement (empty, or only comments) as applied instead of refusing them.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run holding the advisory lock (not used in check mode). V(0) means do not
        wait. On timeout the task fails naming the process that holds the lock.
    type: int
    default: 300
notes:
  - Ledger columns are C(name), C(checksum) (SHA-256 hex of the file's bytes), C(applied_at), C(applied_by),
    C(duration_ms), C(how) (V(transaction), V(no-transaction), V(baseline), V(repair)), C(runs) (how often the
    module ran the script), C(first_applied_at) and C(previous_checksum).
  - Statements of a C(no-transaction) script that ran before a failing one stay applied (there is no
    transaction to roll back) and the script gets no ledger row; the task then reports C(changed) and lists them
    in RV(partially_applied). Write such scripts so they can run again (C(IF NOT EXISTS)).
  - Ledger rows whose file no longer exists are reported in RV(unknown_in_ledger), not treated as an error.
seealso:
  - module: community.postgresql.postgresql_script
"""

EXAMPLES = r"""
- name: Apply the schema scripts of the tgstack database
  tgstack.hybrid.sql_scripts:
    path: /usr/local/share/tgstack/sql
    login_db: tgstack
  become: true
  become_user: postgres

- name: Enable the scripts one at a time, up to the continuous aggregates
  tgstack.hybrid.sql_scripts:
    path: /usr/local/share/tgstack/sql
    login_db: tgstack
    target: 004_aggregates

- name: Enable an explicit list; the views are re-created whenever 090_views.sql changes
  tgstack.hybrid.sql_scripts:
    path: /usr/local/share/tgstack/sql
    login_db: tgstack
    enabled: [001_extension, 002_schema, 090_views]
    repeatable: [090_views]

- name: Adopt a database created by hand, recording the scripts as applied without running them
  tgstack.hybrid.sql_scripts:
    path: /usr/local/share/tgstack/sql
    login_db: tgstack
    baseline: true

- name: Accept a comment fix in an applied script (from_checksum is the recorded checksum from the error)
  tgstack.hybrid.sql_scripts:
    path: /usr/local/share/tgstack/sql
    login_db: tgstack
    repair:
      - name: 002_schema.sql
        from_checksum: 9f2c5e0b0f1a4f6c2b7f0b8f8a8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5
"""

RETURN = r"""
applied:
  description: Scripts run (or re-run) by this task, in order. Empty in check mode.
  returned: always
  type: list
  elements: str
  sample: [001_extension.sql, 002_schema.sql]
would_apply:
  description: Scripts this task runs (or, in check mode, would run), in order.
  returned: always
  type: list
  elements: str
  sample: [001_extension.sql, 002_schema.sql]
recorded:
  description: Scripts recorded (or, in check mode, to be recorded) without running, by O(baseline) or O(repair).
  returned: always
  type: list
  elements: str
  sample: [003_indexes.sql]
pending:
  description: Scripts not in the ledger (or repeatable ones whose content changed) that are not enabled by
    O(target) or O(enabled).
  returned: always
  type: list
  elements: str
  sample: [005_retention.sql]
ran_without_transaction:
  description: "Scripts of RV(applied) that ran outside a transaction (marker C(-- tgstack: no-transaction))."
  returned: always
  type: list
  elements: str
  sample: [003_indexes.sql]
unknown_in_ledger:
  description: Ledger rows whose script is no longer a file in O(path).
  returned: always
  type: list
  elements: str
  sample: [000_old.sql]
ledger:
  description: The ledger after the run (in check mode, as it is now), ordered by name; timestamps in ISO 8601.
  returned: always
  type: list
  elements: dict
  sample:
    - name: 001_extension.sql
      checksum: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
      applied_at: "2026-01-12T10:04:11.123456+00:00"
      applied_by: postgres
      duration_ms: 12
      how: transaction
      runs: 1
      first_applied_at: "2026-01-12T10:04:11.123456+00:00"
      previous_checksum: null
queries:
  description: Per script that ran (or would run), the statements sent to the server; baseline and repair
    entries have no statements. Ledger writes are not listed (see RV(ledger)).
  returned: always
  type: list
  elements: dict
  contains:
    script:
      description: The script's file name.
      type: str
    how:
      description: V(transaction), V(no-transaction), V(baseline) or V(repair).
      type: str
    statements:
      description: The statements, in order.
      type: list
      elements: str
lock_key:
  description: The advisory lock key (C(pg_advisory_lock) bigint) derived from O(ledger_table).
  returned: always
  type: int
  sample: 4215794214432617061
partially_applied:
  description: On failure of a C(no-transaction) script, the statements of it that ran and stay applied (it has
    no ledger row).
  returned: failure after some statements of a no-transaction script ran
  type: dict
  contains:
    script:
      description: The script's file name.
      type: str
    statements_that_ran:
      description: The statements that ran, in order (the failing one is RV(failed_statement)).
      type: list
      elements: str
failed_script:
  description: On failure, the script that failed.
  returned: failure while applying a script
  type: str
failed_statement:
  description: On failure, the start (200 characters) of the statement that failed.
  returned: failure while applying a script
  type: str
failed_line:
  description: On failure, the line in the script where the error is (the statement's line, or the line of the
    error position the server reported).
  returned: failure while applying a script
  type: int
"""

import contextlib
import dataclasses
import datetime
import hashlib
import os
import re
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import (
    TgstackPostgresError,
    connect,
    postgres_common_argument_spec,
    quote_ident,
)
from ansible_collections.tgstack.hybrid.plugins.module_utils.reconcile import database_error_text

try:
    import psycopg2
    import psycopg2.errors
except ImportError:  # pragma: no cover - reported by connect()
    psycopg2 = None

NO_TRANSACTION_MARKER = re.compile(r"^\s*--\s*tgstack:\s*no-transaction\s*$", re.IGNORECASE)
STATEMENT_EXCERPT = 200
LEDGER_COLUMNS = (
    "name",
    "checksum",
    "applied_at",
    "applied_by",
    "duration_ms",
    "how",
    "runs",
    "first_applied_at",
    "previous_checksum",
)
_CHECKSUM = re.compile(r"^[0-9a-f]{64}$")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_TRANSACTION_CONTROL = {"begin", "start", "commit", "end", "rollback", "abort"}
# before each script and before each ledger write: the session as the connecting role left it
RESET_SESSION = "RESET ALL; RESET SESSION AUTHORIZATION; RESET ROLE"
INVALID_INDEXES = """
    SELECT i.indexrelid, format('%I.%I', n.nspname, c.relname)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT i.indisvalid
       AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid IS NOT NULL)"""
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)'
_CREATE_INDEX = re.compile(
    rf"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?!ON\b)(?P<index>{_NAME})\s+"
    rf"ON\s+(?:ONLY\s+)?(?P<table>{_NAME}(?:\s*\.\s*{_NAME})?)",
    re.IGNORECASE,
)


def _identifier_name(text: str) -> str:
    """The catalog name of an identifier as written: "Quoted" as is, unquoted folded to lower case."""
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


class SqlScriptsError(TgstackPostgresError):
    """A refusal or failure reported as "<what it was doing>: <cause>"."""


class ScriptSyntaxError(SqlScriptsError):
    """A script the splitter cannot split (an unterminated string, identifier or comment)."""


@dataclasses.dataclass(frozen=True)
class SqlStatement:
    """One statement of a script: its text and where it starts in the file."""

    sql: str
    line: int
    offset: int

    def line_of(self, position: int | None) -> int:
        """The file line of 1-based character POSITION inside the statement (its first line without one)."""
        if not position or position < 1:
            return self.line
        return self.line + self.sql.count("\n", 0, position - 1)

    def excerpt(self) -> str:
        text = " ".join(self.sql.split())
        return text if len(text) <= STATEMENT_EXCERPT else text[: STATEMENT_EXCERPT - 3] + "..."


def _is_identifier_char(char: str) -> bool:
    return char.isalnum() or char in "_$" or ord(char) >= 0x80


def _line_at(script: str, offset: int) -> int:
    return script.count("\n", 0, offset) + 1


def _skip_quoted(script: str, start: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the literal or identifier opened by QUOTE at START (a doubled QUOTE is an escape)."""
    index = start + 1
    length = len(script)
    while index < length:
        char = script[index]
        if backslash_escapes and char == "\\":
            index += 2
            continue
        if char == quote:
            if index + 1 < length and script[index + 1] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    what = "string" if quote == "'" else "quoted identifier"
    raise ScriptSyntaxError(f"unterminated {what} starting at line {_line_at(script, start)}")


def _skip_block_comment(script: str, start: int) -> int:
    """Index just past the (possibly nested) /* */ comment at START."""
    depth = 0
    index = start
    length = len(script)
    while index < length:
        if script.startswith("/*", index):
            depth += 1
            index += 2
        elif script.startswith("*/", index):
            depth -= 1
            index += 2
            if depth == 0:
                return index
        else:
            index += 1
    raise ScriptSyntaxError(f"unterminated /* comment starting at line {_line_at(script, start)}")


def _is_identifier_start(char: str) -> bool:
    return char.isalpha() or char == "_" or ord(char) >= 0x80


def _string_prefix(script: str, index: int, end: int) -> str | None:
    """The kind of literal when the word SCRIPT[INDEX:END] is a prefix glued to a quote (E'', B'', U&"", ...)."""
    word = script[index:end].lower()
    following = script[end : end + 1]
    if word in ("e", "b", "x", "n") and following == "'":
        return word
    if word == "u" and script[end : end + 2] in ("&'", '&"'):
        return "u&"
    return None


def split_statements(script: str) -> list[SqlStatement]:
    """Split SCRIPT into statements at top-level semicolons, the way psql's lexer (psqlscan.l) does.

    Semicolons inside strings ('', E'' with backslash escapes, B'', X'', N'', U&''), quoted identifiers
    ("", U&""), dollar quotes, -- and nested /* */ comments and parentheses do not end a statement. A
    BEGIN opens a body only in a statement that starts with CREATE [OR REPLACE] FUNCTION|PROCEDURE,
    outside parentheses (a SQL-standard body, BEGIN ATOMIC ... END; a CASE inside it also ends with
    END): psql's rule, so a column named begin or a CASE elsewhere never swallows the next statement.
    Comments before a statement are not part of it; a trailing part without a semicolon is the last
    statement.
    """
    statements: list[SqlStatement] = []
    length = len(script)
    index = 0
    start: int | None = None
    paren_depth = 0
    begin_depth = 0
    leading: list[str] = []  # the statement's first words while they can still spell CREATE [OR REPLACE] FUNCTION
    words = 0

    def finish(end: int) -> None:
        nonlocal start, paren_depth, begin_depth, words
        if start is not None:
            text = script[start:end].rstrip()
            statements.append(SqlStatement(sql=text, line=_line_at(script, start), offset=start))
        start = None
        paren_depth = begin_depth = words = 0
        leading.clear()

    def defines_routine() -> bool:
        return leading[:2] in (["create", "function"], ["create", "procedure"]) or leading[:4] in (
            ["create", "or", "replace", "function"],
            ["create", "or", "replace", "procedure"],
        )

    while index < length:
        char = script[index]
        if char.isspace():
            index += 1
            continue
        if script.startswith("--", index):
            newline = script.find("\n", index)
            index = length if newline < 0 else newline + 1
            continue
        if script.startswith("/*", index):
            index = _skip_block_comment(script, index)
            continue
        if start is None:
            start = index
        if char == "'":
            index = _skip_quoted(script, index, "'", backslash_escapes=False)
        elif char == '"':
            index = _skip_quoted(script, index, '"', backslash_escapes=False)
        elif char == "$":
            tag = _DOLLAR_TAG.match(script, index)
            if tag is None:  # a parameter ($1) or a lone dollar sign
                index += 1
                continue
            closing = script.find(tag.group(0), tag.end())
            if closing < 0:
                raise ScriptSyntaxError(
                    f"unterminated dollar-quoted string {tag.group(0)} starting at line {_line_at(script, index)}"
                )
            index = closing + len(tag.group(0))
        elif _is_identifier_start(char):
            end = index + 1
            while end < length and _is_identifier_char(script[end]):
                end += 1
            prefix = _string_prefix(script, index, end)
            if prefix is not None:  # a literal, not a word (psql's lexer does not count it either)
                quote_at = end + 1 if prefix == "u&" else end
                index = _skip_quoted(script, quote_at, script[quote_at], backslash_escapes=prefix == "e")
                continue
            word = script[index:end].lower()
            if words < 4:
                leading.append(word if word in ("create", "or", "replace", "function", "procedure") else "")
            words += 1
            if paren_depth == 0 and defines_routine():
                if word == "begin" or (word == "case" and begin_depth > 0):
                    begin_depth += 1
                elif word == "end" and begin_depth > 0:
                    begin_depth -= 1
            index = end
        elif char.isdigit() or (char == "." and script[index + 1 : index + 2].isdigit()):
            end = index + 1  # a number, and whatever letters are glued to it (psql's integer_junk)
            while end < length and (_is_identifier_char(script[end]) or script[end] == "."):
                end += 1
            index = end
        elif char == "(":
            paren_depth += 1
            index += 1
        elif char == ")":
            paren_depth = max(paren_depth - 1, 0)
            index += 1
        elif char == ";" and paren_depth == 0 and begin_depth == 0:
            finish(index + 1)
            index += 1
        else:
            index += 1
    finish(length)
    return statements


def transaction_control(statement: SqlStatement) -> bool:
    """Whether STATEMENT begins, commits or rolls back a transaction (ROLLBACK TO a savepoint does not)."""
    words = re.findall(r"[A-Za-z_]+", statement.sql[:64])
    if not words or words[0].lower() not in _TRANSACTION_CONTROL:
        return False
    first = words[0].lower()
    second = words[1].lower() if len(words) > 1 else ""
    if first == "start":
        return second == "transaction"
    if first in ("rollback", "abort"):
        return second != "to"
    if first == "begin":
        return second != "atomic"
    return True


def script_name(name: str) -> str:
    """A script name as the file name (``002_schema`` and ``002_schema.sql`` are the same script)."""
    return name if name.endswith(".sql") else name + ".sql"


@dataclasses.dataclass
class Script:
    """A .sql file of the scripts directory."""

    name: str
    path: str
    content: bytes
    checksum: str
    _statements: list[SqlStatement] | None = dataclasses.field(default=None, repr=False)

    @property
    def text(self) -> str:
        try:
            text = self.content.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SqlScriptsError(f"{self.path} is not UTF-8: {error}") from None
        return text[1:] if text.startswith("\ufeff") else text

    @property
    def no_transaction(self) -> bool:
        first_line = self.text.split("\n", 1)[0]
        return bool(NO_TRANSACTION_MARKER.match(first_line))

    def statements(self) -> list[SqlStatement]:
        """The script's statements (split once)."""
        if self._statements is None:
            try:
                self._statements = split_statements(self.text)
            except ScriptSyntaxError as error:
                raise ScriptSyntaxError(f"{self.name}: {error}") from None
        return self._statements


_NUMBER_PREFIX = re.compile(r"^([0-9]+)")


def order_scripts(names: list[str]) -> list[str]:
    """NAMES in the order they run: by their number prefix (1_a, 2_b, 10_c), or by name when none has one.

    Raises SqlScriptsError, naming the files, when the order is ambiguous: two names with the same number
    (001_a.sql and 1_b.sql), or names with and without a number prefix in one directory.
    """
    numbered: dict[int, list[str]] = {}
    unnumbered = []
    for name in names:
        match = _NUMBER_PREFIX.match(name)
        if match:
            numbered.setdefault(int(match.group(1)), []).append(name)
        else:
            unnumbered.append(name)
    if not numbered:
        return sorted(names)
    if unnumbered:
        example = min(numbered.items())[1][0]
        raise SqlScriptsError(
            f"{', '.join(sorted(unnumbered))} {'has' if len(unnumbered) == 1 else 'have'} no number prefix while "
            f"other scripts do ({example}), so the order is ambiguous: give every script a number prefix "
            "(the scripts run in the order of their numbers)"
        )
    clashes = [sorted(group) for _number, group in sorted(numbered.items()) if len(group) > 1]
    if clashes:
        listed = "; ".join(" and ".join(group) for group in clashes)
        raise SqlScriptsError(
            f"scripts with the same number have no defined order: {listed}; give each script its own number"
        )
    return [group[0] for _number, group in sorted(numbered.items())]


def list_scripts(directory: str) -> dict[str, str]:
    """The .sql files of DIRECTORY: name -> path."""
    if not os.path.isdir(directory):
        raise SqlScriptsError(f"{directory} is not a directory")
    try:
        return {entry.name: entry.path for entry in os.scandir(directory)
                if entry.name.endswith(".sql") and entry.is_file()}  # fmt: skip
    except OSError as error:
        raise SqlScriptsError(f"cannot list {directory}: {error.strerror}") from None


def read_scripts(files: dict[str, str], order: list[str]) -> list[Script]:
    """The scripts FILES (name -> path) in ORDER, with their content and SHA-256."""
    scripts = []
    for name in order:
        try:
            with open(files[name], "rb") as handle:
                content = handle.read()
        except OSError as error:
            raise SqlScriptsError(
                f"cannot read {name}: {error.strerror} (the module runs as {_user()}; make the file readable "
                "by that user, or run the task as its owner)"
            ) from None
        scripts.append(Script(name, files[name], content, hashlib.sha256(content).hexdigest()))
    return scripts


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def lock_key(ledger_table: str) -> int:
    """The advisory lock key (a signed bigint) for runs sharing LEDGER_TABLE."""
    digest = hashlib.sha256(f"tgstack.hybrid.sql_scripts:{ledger_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclasses.dataclass
class Action:
    """What a run does with one script: apply, rerun, baseline or repair."""

    script: Script
    kind: str  # apply | rerun | baseline | repair
    recorded_checksum: str | None = None

    @property
    def runs_script(self) -> bool:
        return self.kind in ("apply", "rerun")

    @property
    def how(self) -> str:
        if self.runs_script:
            return "no-transaction" if self.script.no_transaction else "transaction"
        return self.kind


@dataclasses.dataclass
class Plan:
    actions: list[Action]
    pending: list[str]
    unknown_in_ledger: list[str]


@dataclasses.dataclass
class Selection:
    """The validated user choices, names normalised to file names."""

    names: list[str]  # scripts enabled this run, in lexical order
    repeatable: set[str]
    repair: dict[str, str]  # name -> from_checksum
    baseline: bool


def select(scripts: list[Script], params: t.Mapping[str, t.Any]) -> Selection:
    """Check target/enabled/repeatable/repair against the files; raise before anything runs."""
    names = [script.name for script in scripts]
    known = set(names)

    def resolve(option: str, values: t.Iterable[str]) -> list[str]:
        resolved = [script_name(value) for value in values]
        missing = [name for name in resolved if name not in known]
        if missing:
            available = ", ".join(names) or "none"
            raise SqlScriptsError(
                f"{option} names {', '.join(missing)}, which is not a script in {params['path']} "
                f"(scripts there: {available})"
            )
        return resolved

    if params.get("target"):
        target = resolve("target", [params["target"]])[0]
        selected = names[: names.index(target) + 1]
    elif params.get("enabled") is not None:
        wanted = set(resolve("enabled", params["enabled"]))
        selected = [name for name in names if name in wanted]
    else:
        selected = list(names)
    repeatable = set(resolve("repeatable", params.get("repeatable") or []))
    repair: dict[str, str] = {}
    for entry in params.get("repair") or []:
        name = resolve("repair", [entry["name"]])[0]
        checksum = entry["from_checksum"].strip().lower()
        if not _CHECKSUM.match(checksum):
            raise SqlScriptsError(f"repair {name}: from_checksum must be a SHA-256 in hex (64 characters)")
        if name in repeatable:
            raise SqlScriptsError(f"{name} is both repeatable and in repair: a repeatable script just runs again")
        repair[name] = checksum
    return Selection(selected, repeatable, repair, bool(params.get("baseline")))


def plan_run(scripts: list[Script], ledger: dict[str, dict[str, t.Any]], selection: Selection) -> Plan:
    """Decide what to do with every script; the same decision in check mode and in a real run.

    Raises SqlScriptsError when an applied script changed and is neither repeatable nor correctly repaired.
    """
    enabled = set(selection.names)
    actions: list[Action] = []
    pending: list[str] = []
    changed_scripts: list[str] = []
    for script in scripts:
        row = ledger.get(script.name)
        if row is None:
            if script.name not in enabled:
                pending.append(script.name)
            else:
                actions.append(Action(script, "baseline" if selection.baseline else "apply"))
            continue
        recorded = row["checksum"]
        if recorded == script.checksum:
            continue
        if script.name in selection.repeatable:
            if script.name not in enabled:
                pending.append(script.name)
            else:
                actions.append(Action(script, "baseline" if selection.baseline else "rerun", recorded))
        elif script.name in selection.repair:
            wanted = selection.repair[script.name]
            if wanted != recorded:
                raise SqlScriptsError(
                    f"repair of {script.name} refused: from_checksum {wanted} is not the recorded checksum "
                    f"{recorded} (current content {script.checksum})"
                )
            actions.append(Action(script, "repair", recorded))
        else:
            changed_scripts.append(f"{script.name} (recorded sha256 {recorded}, current sha256 {script.checksum})")
    if changed_scripts:
        raise SqlScriptsError(
            "applied scripts changed since they ran: " + "; ".join(changed_scripts) + ". Restore them, list "
            "them in repeatable, or accept the new content with repair: [{name, from_checksum: <recorded>}]"
        )
    files = {script.name for script in scripts}
    unknown = sorted(name for name in ledger if name not in files)
    return Plan(actions, pending, unknown)


class ScriptFailed(SqlScriptsError):
    """A statement of a script failed; carries where, for the task result."""

    def __init__(self, message: str, script: str, statement: SqlStatement, line: int):
        super().__init__(message)
        self.script = script
        self.statement = statement
        self.line = line


class Runner:
    """Reads the ledger and applies a plan over one connection, holding the advisory lock."""

    def __init__(self, connection, ledger_table: str, applied_by: str | None):
        self.connection = connection
        self.ledger_table = ledger_table
        self.table = quote_ident(ledger_table)
        self.schema = quote_ident(ledger_table.split(".")[0])
        self.applied_by = applied_by
        self.ledger_exists = False
        self.applied: list[str] = []
        self.recorded: list[str] = []
        self.without_transaction: list[str] = []
        self.queries: list[dict[str, t.Any]] = []
        # the no-transaction script running now and its statements that ran (they stay applied if it fails)
        self.running: str | None = None
        self.ran: list[SqlStatement] = []

    # --- lock ---------------------------------------------------------------------------------------
    def lock(self, key: int, timeout: int) -> None:
        """Take the session advisory lock KEY, waiting up to TIMEOUT seconds.

        Waits by polling pg_try_advisory_lock in autocommit mode, sleeping between tries outside any
        transaction: a run blocked inside pg_advisory_lock() holds a transaction open, and the lock
        holder's CREATE INDEX CONCURRENTLY waits for every open transaction, so PostgreSQL would end
        one of the two with "deadlock detected" (and leave the index INVALID)."""
        self.connection.autocommit = True
        deadline = time.monotonic() + timeout
        pause = 0.05
        with self.connection.cursor() as cursor:
            cursor.execute("SET application_name = 'tgstack.hybrid.sql_scripts'")
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cursor.fetchone()[0]:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(pause, left))
                pause = min(pause * 2, 1.0)
            holder = self._lock_holder(cursor, key)
        raise SqlScriptsError(f"another run holds the advisory lock {key} after {timeout} s: {holder}")

    @staticmethod
    def _lock_holder(cursor, key: int) -> str:
        cursor.execute(
            """SELECT l.pid, a.usename, a.application_name, a.client_addr, a.backend_start, a.state
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1""",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
        row = cursor.fetchone()
        if row is None:
            return "its holder released it meanwhile; run again"
        pid, user, application, address, started, state = row
        where = f"from {address}" if address else "over the local socket"
        since = started.isoformat() if started else "?"
        return f"pid {pid} (role {user}, application {application!r}, {where}, connected since {since}, {state})"

    # --- ledger -------------------------------------------------------------------------------------
    def read_ledger(self) -> dict[str, dict[str, t.Any]]:
        """The ledger rows by name (empty when the table does not exist); also learns current_user."""
        self.connection.autocommit = False
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_user, to_regclass(%s) IS NOT NULL", (self.table,))
            current_user, self.ledger_exists = cursor.fetchone()
            if self.applied_by is None:
                self.applied_by = current_user
            rows: dict[str, dict[str, t.Any]] = {}
            if self.ledger_exists:
                cursor.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM {self.table} ORDER BY name")
                for values in cursor.fetchall():
                    row = {column: values[index] for index, column in enumerate(LEDGER_COLUMNS)}
                    rows[row["name"]] = row
        self.connection.rollback()
        return rows

    def _create_ledger(self, cursor) -> None:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        cursor.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.table} (
                    name text PRIMARY KEY,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL,
                    applied_by text NOT NULL,
                    duration_ms integer NOT NULL,
                    how text NOT NULL CHECK (how IN ('transaction', 'no-transaction', 'baseline', 'repair')),
                    runs integer NOT NULL,
                    first_applied_at timestamptz NOT NULL,
                    previous_checksum text)"""
        )
        cursor.execute(
            f"COMMENT ON TABLE {self.table} IS "
            "'SQL scripts applied by the Ansible module tgstack.hybrid.sql_scripts (one row per script)'"
        )

    def _record(self, cursor, action: Action, duration_ms: int, applied_at: t.Any = None) -> None:
        """Write ACTION's ledger row as the connecting role, whatever the script did to the session."""
        try:
            cursor.execute(RESET_SESSION)
            self._write_row(cursor, action, duration_ms, applied_at)
        except psycopg2.Error as error:
            raise SqlScriptsError(
                f"{action.script.name}: recording it in the ledger {self.ledger_table} failed: "
                f"{database_error_text(error)}"
            ) from None

    def _write_row(self, cursor, action: Action, duration_ms: int, applied_at: t.Any) -> None:
        if not self.ledger_exists:
            self._create_ledger(cursor)
        values = dict(
            name=action.script.name,
            checksum=action.script.checksum,
            applied_at=applied_at,
            applied_by=self.applied_by,
            duration_ms=duration_ms,
            how=action.how,
            runs=1 if action.runs_script else 0,
            recorded=action.recorded_checksum,
        )
        if action.kind in ("apply", "baseline") and action.recorded_checksum is None:
            cursor.execute(
                f"""INSERT INTO {self.table} (name, checksum, applied_at, applied_by, duration_ms, how, runs,
                                              first_applied_at)
                    VALUES (%(name)s, %(checksum)s, coalesce(%(applied_at)s, now()), %(applied_by)s,
                            %(duration_ms)s, %(how)s, %(runs)s, coalesce(%(applied_at)s, now()))""",
                values,
            )
            return
        cursor.execute(
            f"""UPDATE {self.table}
                   SET checksum = %(checksum)s, previous_checksum = checksum,
                       applied_at = coalesce(%(applied_at)s, now()), applied_by = %(applied_by)s,
                       duration_ms = %(duration_ms)s, how = %(how)s, runs = runs + %(runs)s
                 WHERE name = %(name)s AND checksum = %(recorded)s""",
            values,
        )
        if cursor.rowcount != 1:  # cannot happen under the lock; refuse rather than record blindly
            raise SqlScriptsError(f"{action.script.name}: its ledger row changed while this run held the lock")

    # --- indexes a no-transaction script left invalid ------------------------------------------------
    @staticmethod
    def _invalid_indexes(cursor) -> set[int]:
        """Invalid indexes that no CREATE INDEX is building right now."""
        cursor.execute(INVALID_INDEXES)
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def _invalid_after(cursor, statements: list[SqlStatement], before: set[int]) -> list[str]:
        """Indexes invalid after a no-transaction script: new ones, and those its CREATE INDEX statements name
        (an IF NOT EXISTS skips an INVALID index left by an earlier run)."""
        cursor.execute(INVALID_INDEXES)
        invalid = {oid: name for oid, name in cursor.fetchall() if oid not in before}
        for statement in statements:
            created = _CREATE_INDEX.match(statement.sql)
            if not created:
                continue
            cursor.execute(
                """SELECT i.indexrelid, format('%%I.%%I', n.nspname, c.relname)
                     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE i.indrelid = to_regclass(%s) AND c.relname = %s AND NOT i.indisvalid""",
                (created.group("table"), _identifier_name(created.group("index"))),
            )
            invalid.update(dict(cursor.fetchall()))
        return sorted(invalid.values())

    # --- apply --------------------------------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if not action.runs_script:
                self._in_transaction(action, [])
                self.recorded.append(action.script.name)
            elif action.script.no_transaction:
                self._without_transaction(action, action.script.statements())
                self.applied.append(action.script.name)
                self.without_transaction.append(action.script.name)
            else:
                self._in_transaction(action, action.script.statements())
                self.applied.append(action.script.name)

    def _in_transaction(self, action: Action, statements: list[SqlStatement]) -> None:
        self.connection.autocommit = False
        cursor = self.connection.cursor()
        try:
            cursor.execute(RESET_SESSION)
            started = time.monotonic()
            for statement in statements:
                self._execute(cursor, action, statement)
            duration_ms = round((time.monotonic() - started) * 1000)
            self._record(cursor, action, duration_ms)
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()
        self.ledger_exists = True

    def _without_transaction(self, action: Action, statements: list[SqlStatement]) -> None:
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(RESET_SESSION + "; SELECT clock_timestamp()")
            applied_at = cursor.fetchone()[0]
            invalid_before = self._invalid_indexes(cursor)
            self.running, self.ran = action.script.name, []
            started = time.monotonic()
            for statement in statements:
                self._execute(cursor, action, statement)
                self.ran.append(statement)
            duration_ms = round((time.monotonic() - started) * 1000)
            invalid = self._invalid_after(cursor, statements, invalid_before)
            if invalid:
                raise SqlScriptsError(
                    f"{action.script.name}: after the script, {' and '.join(invalid)} "
                    f"{'is' if len(invalid) == 1 else 'are'} INVALID (a CREATE INDEX CONCURRENTLY or REINDEX "
                    "CONCURRENTLY that did not finish: a deadlock, a cancel, a uniqueness violation); the script is "
                    "not recorded. Drop "
                    + ("it" if len(invalid) == 1 else "them")
                    + f" (DROP INDEX CONCURRENTLY {', '.join(invalid)}) and run again"
                )
        self.connection.autocommit = False
        with self.connection.cursor() as cursor:
            try:
                self._record(cursor, action, duration_ms, applied_at)
                self.connection.commit()
            except BaseException:
                self.connection.rollback()
                raise
        self.running, self.ran = None, []
        self.ledger_exists = True

    def _execute(self, cursor, action: Action, statement: SqlStatement) -> None:
        try:
            cursor.execute(statement.sql)
        except psycopg2.Error as error:
            position = getattr(getattr(error, "diag", None), "statement_position", None)
            line = statement.line_of(int(position) if position else None)
            cause = database_error_text(error)
            if isinstance(error, psycopg2.errors.ActiveSqlTransaction):
                cause += "; hint: mark the script with a first line '-- tgstack: no-transaction'"
            if action.script.no_transaction:
                aftermath = (
                    "the script ran without a transaction: its statements before this one stay applied and it "
                    "has no ledger row; make it safe to run again and re-run"
                )
            else:
                aftermath = "rolled back: the database and the ledger are as before this script"
            raise ScriptFailed(
                f"line {line}: {cause} (statement: {statement.excerpt()}); {aftermath}",
                action.script.name,
                statement,
                line,
            ) from None


def ledger_for_result(rows: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Ledger rows as plain dicts ordered by name, timestamps in ISO 8601."""
    result = []
    for name in sorted(rows):
        row = dict(rows[name])
        for column in ("applied_at", "first_applied_at"):
            if isinstance(row[column], datetime.datetime):
                row[column] = row[column].isoformat()
        result.append(row)
    return result


def describe(action: Action) -> dict[str, t.Any]:
    statements = [statement.sql for statement in action.script.statements()] if action.runs_script else []
    return dict(script=action.script.name, how=action.how, statements=statements)


def prepared_diff(actions: list[Action]) -> str:
    parts = []
    for action in actions:
        if action.runs_script:
            verb = "re-run" if action.kind == "rerun" else "run"
            where = "without a transaction" if action.script.no_transaction else "in a transaction"
            body = action.script.text.rstrip("\n")
            parts.append(f"-- {action.script.name}: {verb} {where} (sha256 {action.script.checksum})\n{body}\n")
        else:
            parts.append(f"-- {action.script.name}: record as {action.kind} without running "
                         f"(sha256 {action.script.checksum})\n")  # fmt: skip
    return "\n".join(parts)


def validate_ledger_table(name: str) -> None:
    quote_ident(name)
    if "." not in name:
        raise SqlScriptsError(f"ledger_table '{name}' must be schema-qualified (schema.table)")


def main() -> None:
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        ledger_table=dict(type="str", default="tgstack_meta.sql_scripts"),
        applied_by=dict(type="str"),
        target=dict(type="str"),
        enabled=dict(type="list", elements="str"),
        repeatable=dict(type="list", elements="str", default=[]),
        repair=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                from_checksum=dict(type="str", required=True),
            ),
        ),
        baseline=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=300),
        allow_empty=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("target", "enabled")],
        supports_check_mode=True,
    )
    params = module.params
    key = lock_key(params["ledger_table"])
    result: dict[str, t.Any] = dict(
        changed=False,
        applied=[],
        would_apply=[],
        recorded=[],
        pending=[],
        ran_without_transaction=[],
        unknown_in_ledger=[],
        ledger=[],
        queries=[],
        lock_key=key,
    )
    doing = "checking the options"
    unknown_in_ledger: list[str] = []
    connection = None
    runner: Runner | None = None
    try:
        if params["lock_timeout"] < 0:
            raise SqlScriptsError(f"lock_timeout is {params['lock_timeout']}: it must be 0 or more seconds")
        validate_ledger_table(params["ledger_table"])
        doing = f"listing the scripts in {params['path']}"
        files = list_scripts(params["path"])
        doing = f"ordering the scripts in {params['path']}"
        order = order_scripts(list(files))
        doing = f"reading the scripts in {params['path']}"
        scripts = read_scripts(files, order)
        doing = "checking the script names"
        selection = select(scripts, params)

        doing = "connecting"
        connection = connect(params)
        runner = Runner(connection, params["ledger_table"], params["applied_by"])
        if not module.check_mode:
            doing = f"waiting for the advisory lock of {params['ledger_table']}"
            runner.lock(key, params["lock_timeout"])
        doing = f"reading the ledger {params['ledger_table']}"
        ledger = runner.read_ledger()
        doing = "comparing the scripts with the ledger"
        plan = plan_run(scripts, ledger, selection)
        doing = "splitting the scripts to run"
        result["queries"] = [describe(action) for action in plan.actions]
        for action in plan.actions:
            if not action.runs_script:
                continue
            if not action.script.statements() and not params["allow_empty"]:
                raise SqlScriptsError(
                    f"{action.script.name} has no statement (it is empty or holds only comments): put its SQL in "
                    "it or delete it; to record it as applied anyway, set allow_empty: true"
                )
            if not action.script.no_transaction:
                controlling = [s for s in action.script.statements() if transaction_control(s)]
                if controlling:
                    statement = controlling[0]
                    raise SqlScriptsError(
                        f"{action.script.name} line {statement.line} controls the transaction itself "
                        f"({statement.excerpt()}): remove it (each script runs in its own transaction) or mark "
                        "the script with a first line '-- tgstack: no-transaction'"
                    )
        result.update(
            would_apply=[action.script.name for action in plan.actions if action.runs_script],
            pending=plan.pending,
            unknown_in_ledger=plan.unknown_in_ledger,
            changed=bool(plan.actions),
        )
        unknown_in_ledger = plan.unknown_in_ledger
        if module.check_mode:
            result["recorded"] = [action.script.name for action in plan.actions if not action.runs_script]
        else:
            doing = "applying the scripts"
            runner.apply(plan.actions)
            ledger = runner.read_ledger()
            result.update(
                applied=runner.applied,
                recorded=runner.recorded,
                ran_without_transaction=runner.without_transaction,
            )
        result["ledger"] = ledger_for_result(ledger)
        if module._diff:
            result["diff"] = dict(prepared=prepared_diff(plan.actions))
    except ScriptFailed as error:
        result.update(_progress(runner), failed_script=error.script, failed_statement=error.statement.excerpt(),
                      failed_line=error.line)  # fmt: skip
        _close(connection)
        module.fail_json(msg=f"applying {error.script}: {error}", **result)
    except TgstackPostgresError as error:
        result.update(_progress(runner))
        _close(connection)
        module.fail_json(msg=f"{doing}: {error}", **result)
    except Exception as error:
        if psycopg2 is None or not isinstance(error, psycopg2.Error):
            raise
        result.update(_progress(runner))
        _close(connection)
        module.fail_json(msg=f"{doing}: {database_error_text(error)}", **result)
    _close(connection)
    if unknown_in_ledger:
        module.warn(f"ledger rows without a script file in {params['path']}: {', '.join(unknown_in_ledger)}")
    module.exit_json(**result)


def _progress(runner: Runner | None) -> dict[str, t.Any]:
    """What a failed run did before it failed (scripts committed before the failure stay applied)."""
    if runner is None:
        return {}
    progress: dict[str, t.Any] = dict(
        changed=bool(runner.applied or runner.recorded or runner.ran),
        applied=runner.applied,
        recorded=runner.recorded,
        ran_without_transaction=runner.without_transaction,
    )
    if runner.running and runner.ran:  # a no-transaction script changed the database and has no ledger row
        progress["partially_applied"] = dict(
            script=runner.running, statements_that_ran=[statement.sql for statement in runner.ran]
        )
    if not runner.connection.closed:
        # the ledger as it is now is only a courtesy in an error report
        with contextlib.suppress(psycopg2.Error):
            progress["ledger"] = ledger_for_result(runner.read_ledger())
    return progress


def _close(connection) -> None:
    if connection is not None and not connection.closed:
        connection.close()


if __name__ == "__main__":
    main()
