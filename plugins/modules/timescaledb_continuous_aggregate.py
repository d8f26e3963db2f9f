#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_continuous_aggregate
short_description: A TimescaleDB continuous aggregate, or a plain materialized view on the Apache edition
version_added: 0.1.0
description:
  - Creates a continuous aggregate (C(CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous))) in the
    database O(login_db) on the community edition (C(timescaledb.license) = V(timescale)).
  - Continuous aggregates are a TSL feature. On the Apache edition (Debian's build) the module fails early
    naming the edition, unless O(fallback=materialized_view) asks for a plain materialized view with a
    unique index on O(unique_columns) instead, which C(REFRESH MATERIALIZED VIEW CONCURRENTLY) needs.
  - The module does not schedule refreshes. Use M(tgstack.hybrid.timescaledb_policy) with
    O(tgstack.hybrid.timescaledb_policy#module:type=refresh) -
    a native refresh policy on the community edition, a pg_cron job running
    C(REFRESH MATERIALIZED VIEW CONCURRENTLY) with its O(tgstack.hybrid.timescaledb_policy#module:fallback=pg_cron).
  - A changed query is detected by comparing the existing view's normalised definition (C(pg_get_viewdef))
    with that of the requested query, created as a temporary view in a rolled-back savepoint. A different
    definition (or a view of the other kind) fails, naming the view and showing both definitions, unless
    O(recreate=true) drops and recreates it.
extends_documentation_fragment: [tgstack.hybrid.postgres]
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  name:
    description:
      - The view, optionally schema-qualified.
    type: str
    required: true
  query:
    description:
      - The view's SELECT (for a continuous aggregate a C(time_bucket) aggregate over a hypertable). Required with
        O(state=present).
    type: str
  state:
    description:
      - Whether the view should exist. V(absent) drops it (without CASCADE).
    type: str
    default: present
    choices: [present, absent]
  fallback:
    description:
      - What to do on the Apache edition, which lacks continuous aggregates. V(none) fails early with a message
        naming the edition. V(materialized_view) creates a plain materialized view with a unique index instead.
      - Only used where the edition lacks the feature; the community edition always gets a continuous aggregate.
    type: str
    default: none
    choices: [none, materialized_view]
  unique_columns:
    description:
      - With the V(materialized_view) fallback, the view columns that identify a row (usually the time bucket and
        the grouping columns). A unique index on them (named C(<view>_tgstack_key)) is created unless one exists.
        Required for the fallback.
    type: list
    elements: str
  recreate:
    description:
      - Drop and recreate the view when its definition or kind differs from the requested one. The view's data is
        rebuilt; on a continuous aggregate its policies are dropped with it (run
        M(tgstack.hybrid.timescaledb_policy) after this module).
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads the current state and returns the statements it would run in RV(queries), changing nothing.
    support: full
  diff_mode:
    description: Returns the state before and after (predicted in check mode).
    support: full
notes:
  - A continuous aggregate is created WITH DATA outside a transaction (TimescaleDB refuses it inside one), so a
    recreate of a continuous aggregate is not atomic. The materialized view fallback runs in one transaction.
"""

EXAMPLES = r"""
- name: Hourly message counts (community edition; plain materialized view on Debian's build)
  tgstack.hybrid.timescaledb_continuous_aggregate:
    login_db: tgstack
    name: public.messages_hourly
    query: >-
      SELECT time_bucket('1 hour', created_at) AS bucket, chat_id, count(*) AS messages
      FROM messages GROUP BY bucket, chat_id
    fallback: materialized_view
    unique_columns: [bucket, chat_id]

- name: Refresh it every 5 minutes (native policy, or pg_cron on the Apache edition)
  tgstack.hybrid.timescaledb_policy:
    login_db: tgstack
    type: refresh
    relation: public.messages_hourly
    start_offset: 3 hours
    end_offset: 1 hour
    schedule_interval: 5 minutes
    fallback: pg_cron
"""

RETURN = r"""
view:
  description: The view after the run (in check mode the predicted state).
  returned: always
  type: dict
  contains:
    name:
      description: The view, schema-qualified.
      type: str
    exists:
      description: Whether the view exists.
      type: bool
    kind:
      description: V(continuous_aggregate) or V(materialized_view) (null when absent).
      type: str
    definition:
      description: The normalised definition (C(pg_get_viewdef)).
      type: str
    unique_indexes:
      description: Unique indexes on plain columns of a materialized view (name and columns).
      type: list
      elements: dict
queries:
  description: The statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
notes:
  description: What changed (created, recreated because the definition changed, dropped).
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import postgres_common_argument_spec
from ansible_collections.tgstack.hybrid.plugins.module_utils.reconcile import (
    Plan,
    Statement,
    execute_in_transaction,
    reconcile,
)
from ansible_collections.tgstack.hybrid.plugins.module_utils.timescaledb import (
    COMMUNITY_LICENSE,
    DriftError,
    InvalidInput,
    edition_refusal,
    find_relation,
    read_edition,
)

_SHOWN_CHARS = 400


def _normalised(definition: str | None) -> str | None:
    return " ".join(definition.split()) if definition is not None else None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _brief(definition: str | None) -> str:
    text = _normalised(definition) or ""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


class ContinuousAggregateBackend:
    """Reconciles one continuous aggregate (or its materialized-view stand-in) with the requested query."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.doing = f"reconciling continuous aggregate {params['name']}"
        self.query = (params["query"] or "").strip().rstrip(";").strip()
        self._facts: dict[str, t.Any] = {}

    # -- read ---------------------------------------------------------------------------------------
    def read(self, cursor) -> dict[str, t.Any]:
        edition = read_edition(cursor)
        present = self.params["state"] == "present"
        facts: dict[str, t.Any] = {"edition": edition}
        self._facts = facts
        if edition["license"] == COMMUNITY_LICENSE:
            facts["kind"] = "continuous_aggregate"
        elif self.params["fallback"] == "materialized_view":
            facts["kind"] = "materialized_view"
        else:
            facts["kind"] = None
            if present:
                raise edition_refusal(
                    "a continuous aggregate", edition["license"],
                    "set fallback: materialized_view (with unique_columns) for a plain materialized view refreshed "
                    "by timescaledb_policy type: refresh with fallback: pg_cron",
                )  # fmt: skip
        relation = facts["relation"] = find_relation(cursor, self.params["name"])
        state: dict[str, t.Any] = {
            "name": relation.display if relation else self.params["name"],
            "exists": relation is not None,
            "kind": None,
            "definition": None,
            "unique_indexes": [],
        }
        if relation is not None:
            self._read_existing(cursor, relation, state)
        if present:
            self._probe_query(cursor)
        return state

    def _read_existing(self, cursor, relation, state: dict[str, t.Any]) -> None:
        cursor.execute(
            "SELECT view_definition FROM timescaledb_information.continuous_aggregates"
            " WHERE view_schema = %s AND view_name = %s",
            (relation.schema, relation.name),
        )
        row = cursor.fetchone()
        if row is not None:
            state.update(kind="continuous_aggregate", definition=_normalised(row[0]))
            return
        if relation.kind != "m":
            state["kind"] = {"r": "table", "v": "view", "p": "table"}.get(relation.kind, f"relkind {relation.kind}")
            return
        cursor.execute("SELECT pg_get_viewdef(%s::oid)", (relation.oid,))
        state.update(kind="materialized_view", definition=_normalised(cursor.fetchone()[0]))
        cursor.execute(
            "SELECT i.relname, array_agg(a.attname::text ORDER BY k.ord) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
            " WHERE x.indrelid = %s AND x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL"
            " GROUP BY i.relname ORDER BY i.relname",
            (relation.oid,),
        )
        state["unique_indexes"] = [{"name": name, "columns": list(columns)} for name, columns in cursor.fetchall()]

    def _probe_query(self, cursor) -> None:
        """The requested query's normalised definition and columns, from a temporary view that is rolled back."""
        cursor.execute("SAVEPOINT tgstack_probe")
        try:
            cursor.execute(f"CREATE TEMPORARY VIEW tgstack_probe AS {self.query}")
            cursor.execute(
                "SELECT pg_get_viewdef('pg_temp.tgstack_probe'::regclass),"
                " array(SELECT attname::text FROM pg_attribute WHERE attrelid = 'pg_temp.tgstack_probe'::regclass"
                "       AND attnum > 0 ORDER BY attnum)"
            )
            definition, columns = cursor.fetchone()
        finally:
            cursor.execute("ROLLBACK TO SAVEPOINT tgstack_probe")
        self._facts["definition"] = _normalised(definition)
        self._facts["columns"] = list(columns)

    # -- plan ---------------------------------------------------------------------------------------
    def plan(self, current: dict[str, t.Any]) -> Plan:
        plan = Plan()
        facts = self._facts
        relation = facts["relation"]
        if current["exists"] and current["kind"] not in ("continuous_aggregate", "materialized_view"):
            raise InvalidInput(
                f"{current['name']} exists as a {current['kind']}, not a materialized view or continuous aggregate: "
                "rename or drop it"
            )
        if self.params["state"] == "absent":
            if current["exists"]:
                plan.statements.append(Statement(f"DROP MATERIALIZED VIEW {relation.quoted}"))
                plan.notes.append(f"{current['kind']} {current['name']} dropped")
            return plan
        kind = facts["kind"]
        if kind == "materialized_view":
            self._check_unique_columns()
        if not current["exists"]:
            plan.statements += self._create_statements(self._target_name())
            plan.notes.append(f"{kind} {self._display_name()} created")
            return plan
        differs = current["kind"] != kind or current["definition"] != facts["definition"]
        if differs:
            if not self.params["recreate"]:
                raise DriftError(
                    f"{current['name']} exists as a {current['kind']} defined as: {_brief(current['definition'])} "
                    f"-- but a {kind} defined as: {_brief(facts['definition'])} was requested. Set recreate: true "
                    "to drop and recreate it (its data is rebuilt), or change query to match"
                )
            plan.statements.append(Statement(f"DROP MATERIALIZED VIEW {relation.quoted}"))
            plan.statements += self._create_statements(relation.quoted)
            reason = "kind" if current["kind"] != kind else "definition"
            plan.notes.append(f"{current['name']} recreated as a {kind}: its {reason} changed (recreate: true)")
            if current["kind"] == "continuous_aggregate":
                plan.warnings.append(
                    f"{current['name']} was recreated: its continuous aggregate policies were dropped with it"
                )
            return plan
        if kind == "materialized_view" and not self._matching_index(current):
            index_name = self._index_name(relation.name)
            if any(index["name"] == index_name for index in current["unique_indexes"]):
                schema_index = f"{_quote(relation.schema)}.{_quote(index_name)}"
                plan.statements.append(Statement(f"DROP INDEX {schema_index}"))
            plan.statements.append(self._index_statement(relation.quoted, relation.name))
            plan.notes.append(
                f"unique index on {', '.join(self.params['unique_columns'])} of {current['name']} created"
            )
        return plan

    def _check_unique_columns(self) -> None:
        columns = self.params["unique_columns"]
        if not columns:
            raise InvalidInput(
                "unique_columns is required with fallback: materialized_view: REFRESH MATERIALIZED VIEW "
                "CONCURRENTLY needs a unique index; list the columns that identify a row (the time bucket and "
                f"the grouping columns) out of the query's columns {', '.join(self._facts['columns'])}"
            )
        unknown = [column for column in columns if column not in self._facts["columns"]]
        if unknown:
            raise InvalidInput(
                f"unique_columns {', '.join(unknown)} are not columns of the query "
                f"(its columns: {', '.join(self._facts['columns'])})"
            )

    def _matching_index(self, current: dict[str, t.Any]) -> bool:
        wanted = sorted(self.params["unique_columns"])
        return any(sorted(index["columns"]) == wanted for index in current["unique_indexes"])

    def _display_name(self) -> str:
        return self.params["name"]

    def _target_name(self) -> str:
        parts = self.params["name"].split(".")
        if len(parts) > 2 or not all(parts):
            raise InvalidInput(f"name '{self.params['name']}' is not of the form view or schema.view")
        return ".".join(_quote(part) for part in parts)

    @staticmethod
    def _index_name(view_name: str) -> str:
        suffix = "_tgstack_key"
        return view_name.encode()[: 63 - len(suffix)].decode(errors="ignore") + suffix

    def _index_statement(self, quoted_view: str, view_name: str) -> Statement:
        columns = ", ".join(_quote(column) for column in self.params["unique_columns"])
        return Statement(f"CREATE UNIQUE INDEX {_quote(self._index_name(view_name))} ON {quoted_view} ({columns})")

    def _create_statements(self, quoted_view: str) -> list[Statement]:
        if self._facts["kind"] == "continuous_aggregate":
            return [
                Statement(
                    f"CREATE MATERIALIZED VIEW {quoted_view} WITH (timescaledb.continuous) AS {self.query} WITH DATA"
                )
            ]
        view_name = self.params["name"].split(".")[-1]
        return [
            Statement(f"CREATE MATERIALIZED VIEW {quoted_view} AS {self.query} WITH DATA"),
            self._index_statement(quoted_view, view_name),
        ]

    # -- apply / predict / result -------------------------------------------------------------------
    def apply(self, connection, plan: Plan) -> None:
        if self._facts["kind"] != "continuous_aggregate":
            execute_in_transaction(connection, plan.statements)
            return
        # TimescaleDB refuses CREATE MATERIALIZED VIEW ... WITH DATA for a continuous aggregate in a transaction
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for statement in plan.statements:
                    cursor.execute(statement.sql, statement.params)
        finally:
            connection.autocommit = False

    def predict(self, current: dict[str, t.Any], plan: Plan) -> dict[str, t.Any]:
        if self.params["state"] == "absent":
            return dict(current, exists=False, kind=None, definition=None, unique_indexes=[])
        kind = self._facts["kind"]
        after = dict(current, exists=True, kind=kind, definition=self._facts["definition"])
        if kind == "materialized_view":
            indexes = [] if current["definition"] != self._facts["definition"] else list(current["unique_indexes"])
            if not any(sorted(index["columns"]) == sorted(self.params["unique_columns"]) for index in indexes):
                view_name = self.params["name"].split(".")[-1]
                name = self._index_name(view_name)
                indexes = [index for index in indexes if index["name"] != name]
                indexes.append({"name": name, "columns": list(self.params["unique_columns"])})
            after["unique_indexes"] = indexes
        else:
            after["unique_indexes"] = []
        return after

    def result(self, state: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"view": state}


def main() -> None:
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        query=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        fallback=dict(type="str", default="none", choices=["none", "materialized_view"]),
        unique_columns=dict(type="list", elements="str"),
        recreate=dict(type="bool", default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("query",))],
    )
    reconcile(module, ContinuousAggregateBackend(module.params))


if __name__ == "__main__":
    main()
