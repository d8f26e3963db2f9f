# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one read -> plan -> apply -> report routine that tgstack.hybrid's database modules share.

A module is an argument spec plus a backend object:

- ``doing``: what the module is doing, for error messages ("reconciling hypertable public.messages").
- ``read(cursor) -> dict``: the current state, as returned in ``diff.before`` and the result.
- ``plan(current) -> Plan``: the statements that bring the current state to the desired one; raises
  ``TgstackPostgresError`` when it must refuse (drift it will not fix silently, a wrong edition).
- ``predict(current, plan) -> dict``: the state after the plan, for check mode's ``diff.after``.
- ``apply(connection, plan)`` (optional): run the plan; by default all statements in one transaction.
- ``result(state) -> dict`` (optional): extra return values.

Check mode and a real run take the same decision: only ``apply`` sits behind the check.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import (
    TgstackPostgresError,
    connect,
)

try:
    import psycopg2
except ImportError:  # pragma: no cover - reported by connect()
    psycopg2 = None


@dataclasses.dataclass
class Statement:
    """One SQL statement with its parameters, and why it runs."""

    sql: str
    params: t.Any = None
    why: str = ""

    def render(self, cursor) -> str:
        """The statement as the server receives it (parameters interpolated), for `queries`."""
        if self.params is None:
            return self.sql
        rendered = cursor.mogrify(self.sql, self.params)
        return rendered.decode() if isinstance(rendered, bytes) else rendered


@dataclasses.dataclass
class Plan:
    statements: list[Statement] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.statements)


def execute_in_transaction(connection, statements: t.Iterable[Statement]) -> None:
    """Run STATEMENTS in one transaction: all of them or, on error, none."""
    with connection.cursor() as cursor:
        try:
            for statement in statements:
                cursor.execute(statement.sql, statement.params)
        except Exception:
            connection.rollback()
            raise
    connection.commit()


def database_error_text(error: Exception) -> str:
    """The server's message (with detail and hint) of a psycopg2 error, on one line where possible."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    if not primary:
        return str(error).strip()
    parts = [primary]
    for label, value in (("detail", diag.message_detail), ("hint", diag.message_hint)):
        if value:
            parts.append(f"{label}: {value}")
    return "; ".join(parts)


def reconcile(module, backend, database: str | None = None) -> None:
    """Read, plan, apply unless in check mode, and exit the module with the result."""
    connection = None
    queries: list[str] = []
    try:
        connection = connect(module.params, database=database)
        with connection.cursor() as cursor:
            before = backend.read(cursor)
            plan = backend.plan(before)
            queries = [statement.render(cursor) for statement in plan.statements]
        connection.rollback()  # end the read transaction before applying
        if plan.changes and not module.check_mode:
            apply = getattr(backend, "apply", None)
            if apply is not None:
                apply(connection, plan)
            else:
                execute_in_transaction(connection, plan.statements)
            with connection.cursor() as cursor:
                after = backend.read(cursor)
            connection.rollback()
        else:
            after = backend.predict(before, plan) if plan.changes else before
    except TgstackPostgresError as error:
        module.fail_json(msg=f"{backend.doing}: {error}", queries=queries)
    except Exception as error:  # a database error: report it with what the module was doing
        if psycopg2 is not None and isinstance(error, psycopg2.Error):
            module.fail_json(msg=f"{backend.doing}: {database_error_text(error)}", queries=queries)
        raise
    finally:
        if connection is not None:
            connection.close()

    for warning in plan.warnings:
        module.warn(warning)
    result: dict[str, t.Any] = dict(changed=plan.changes, queries=queries, notes=plan.notes)
    result_of = getattr(backend, "result", None)
    result.update(result_of(after) if result_of is not None else {"state": after})
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)
