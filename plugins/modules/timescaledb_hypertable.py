#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_hypertable
short_description: Make a table a TimescaleDB hypertable and keep its dimensions as declared
version_added: 0.1.0
description:
  - Converts an existing table into a hypertable with the C(by_range) API (C(create_hypertable(table,
    by_range(time_column, chunk_time_interval)))), optionally adding a hash dimension with
    C(add_dimension(table, by_hash(partitioning_column, number_partitions))).
  - On an existing hypertable it compares the time column, the hash dimension and the chunk interval.
    A different chunk interval is applied with C(set_chunk_time_interval) and a different number of hash
    partitions with C(set_number_partitions); both affect only chunks created afterwards, which the module
    says in a warning and in RV(notes).
  - A different time column, or a hash dimension that differs from (or is missing from, or is extra to) the
    declared one, cannot be changed on a hypertable; the module fails and says what exists, what was asked
    and what to do, instead of passing silently as C(create_hypertable(..., if_not_exists => true)) does.
  - Works on both editions (hypertables are part of TimescaleDB's Apache-licensed core).
  - The table must exist; the database is O(login_db).
extends_documentation_fragment: [tgstack.hybrid.postgres]
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  table:
    description:
      - The table, optionally schema-qualified (V(public.messages)); resolved like SQL resolves it.
    type: str
    required: true
  time_column:
    description:
      - The column the hypertable is partitioned on by range (a timestamp, date or integer column).
    type: str
    required: true
  chunk_time_interval:
    description:
      - Range of each chunk on O(time_column). Interval text (V(1 day), V(6 hours)) for timestamp and date
        columns, an integer (in the column's units) for integer columns.
      - When omitted, a new hypertable gets TimescaleDB's default (7 days) and an existing one is not compared.
    type: str
  partitioning_column:
    description:
      - Column of an additional hash dimension (C(by_hash)). Needs O(number_partitions).
    type: str
  number_partitions:
    description:
      - Number of hash partitions of O(partitioning_column).
    type: int
  migrate_data:
    description:
      - Move the rows of a non-empty table into chunks while converting it (locks the table while it copies).
      - Without it, converting a table that holds rows fails.
    type: bool
    default: false
  create_default_indexes:
    description:
      - Let C(create_hypertable) create its default index on the time column (and on the hash column).
    type: bool
    default: true
attributes:
  check_mode:
    description: Reads the current state and returns the statements it would run in RV(queries), changing nothing.
    support: full
  diff_mode:
    description: Returns the state before and after (predicted in check mode).
    support: full
notes:
  - Chunk interval and partition count changes only apply to new chunks; existing chunks keep their ranges.
"""

EXAMPLES = r"""
- name: Messages partitioned by day on created_at, 4 hash partitions by chat
  tgstack.hybrid.timescaledb_hypertable:
    login_db: tgstack
    table: public.messages
    time_column: created_at
    chunk_time_interval: 1 day
    partitioning_column: chat_id
    number_partitions: 4

- name: Convert a table that already holds rows
  tgstack.hybrid.timescaledb_hypertable:
    login_db: tgstack
    table: events
    time_column: ts
    chunk_time_interval: 6 hours
    migrate_data: true

- name: An integer time column (chunks of 100000 units)
  tgstack.hybrid.timescaledb_hypertable:
    login_db: tgstack
    table: counters
    time_column: tick
    chunk_time_interval: "100000"
"""

RETURN = r"""
hypertable:
  description: The table's state after the run (in check mode the predicted state).
  returned: always
  type: dict
  contains:
    table:
      description: The table, schema-qualified.
      type: str
      sample: public.messages
    is_hypertable:
      description: Whether the table is a hypertable.
      type: bool
    time_column:
      description: The range dimension's column (null for a plain table).
      type: str
      sample: created_at
    chunk_time_interval:
      description: The range dimension's chunk interval, as interval text or an integer.
      type: raw
      sample: 1 day
    dimensions:
      description: All dimensions in order; C(type) is V(time) (with C(interval)) or V(hash) (with C(partitions)).
      type: list
      elements: dict
      sample: [{column: created_at, type: time, interval: 1 day}, {column: chat_id, type: hash, partitions: 4}]
    num_chunks:
      description: Number of chunks (null when not known in check mode).
      type: int
queries:
  description: The statements run (or, in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ["SELECT create_hypertable('\"public\".\"messages\"'::regclass, by_range('created_at', '1 day'::interval))"]
notes:
  description: What changed that the user should know about (changes affecting new chunks only).
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import postgres_common_argument_spec
from ansible_collections.tgstack.hybrid.plugins.module_utils.reconcile import Plan, Statement, reconcile
from ansible_collections.tgstack.hybrid.plugins.module_utils.timescaledb import (
    INTEGER_TYPES,
    DriftError,
    InvalidInput,
    find_relation,
    interval_seconds,
    is_integer_text,
    normalised_interval,
    read_edition,
)

_TIME_TYPES = frozenset({"timestamp with time zone", "timestamp without time zone", "date"})


class HypertableBackend:
    """Reconciles one table with its declared hypertable layout."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.doing = f"reconciling hypertable {params['table']}"
        self._relation = None
        self._column_type: str | None = None
        self._has_rows = False
        self._desired_interval: str | int | None = None
        self._interval_matches = True
        self._database = ""

    # -- read ---------------------------------------------------------------------------------------
    def read(self, cursor) -> dict[str, t.Any]:
        self._database = read_edition(cursor)["database"]
        self._has_rows, self._interval_matches = False, True
        self._relation = relation = find_relation(cursor, self.params["table"])
        if relation is None:
            return {"table": self.params["table"], "exists": False, "is_hypertable": False}
        if relation.kind not in ("r", "p"):
            raise InvalidInput(f"{relation.display} is not a table (relkind {relation.kind})")
        cursor.execute(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute"
            " WHERE attrelid = %s AND attname = %s AND attnum > 0 AND NOT attisdropped",
            (relation.oid, self.params["time_column"]),
        )
        row = cursor.fetchone()
        self._column_type = row[0] if row else None
        self._read_desired_interval(cursor)
        cursor.execute(
            "SELECT num_chunks FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = %s AND hypertable_name = %s",
            (relation.schema, relation.name),
        )
        row = cursor.fetchone()
        state: dict[str, t.Any] = {"table": relation.display, "exists": True, "is_hypertable": row is not None}
        if row is None:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {relation.quoted})")
            self._has_rows = bool(cursor.fetchone()[0])
            state |= {"time_column": None, "chunk_time_interval": None, "dimensions": [], "num_chunks": 0}
            return state
        cursor.execute(
            "SELECT column_name, dimension_type, time_interval::text, integer_interval, num_partitions,"
            " CASE WHEN %s::text IS NULL OR dimension_type <> 'Time' THEN NULL"
            "      WHEN integer_interval IS NOT NULL THEN integer_interval = %s::bigint"
            "      ELSE time_interval = %s::interval END"
            " FROM timescaledb_information.dimensions"
            " WHERE hypertable_schema = %s AND hypertable_name = %s ORDER BY dimension_number",
            (
                None if self._desired_interval is None else str(self._desired_interval),
                self._desired_interval if isinstance(self._desired_interval, int) else None,
                None if isinstance(self._desired_interval, int) else self._desired_interval,
                relation.schema,
                relation.name,
            ),
        )
        dimensions = []
        time_column = chunk_interval = None
        for column, kind, time_interval, integer_interval, partitions, matches in cursor.fetchall():
            if kind == "Time":
                interval = time_interval if time_interval is not None else integer_interval
                dimensions.append({"column": column, "type": "time", "interval": interval})
                if time_column is None:
                    time_column, chunk_interval = column, interval
                    self._interval_matches = matches is not False
            else:
                dimensions.append({"column": column, "type": "hash", "partitions": partitions})
        state |= {
            "time_column": time_column,
            "chunk_time_interval": chunk_interval,
            "dimensions": dimensions,
            "num_chunks": row[0],
        }
        return state

    def _read_desired_interval(self, cursor) -> None:
        """The requested chunk interval, checked against the time column's type."""
        value = self.params["chunk_time_interval"]
        column_type = self._column_type
        if value is None or column_type is None:
            self._desired_interval = None
            return
        if column_type in INTEGER_TYPES:
            if not is_integer_text(value):
                raise InvalidInput(
                    f"time_column {self.params['time_column']} is {column_type}: chunk_time_interval must be an "
                    f"integer in the column's units, not '{value}'"
                )
            self._desired_interval = int(value)
            return
        if is_integer_text(value):
            raise InvalidInput(
                f"time_column {self.params['time_column']} is {column_type}: chunk_time_interval must be interval "
                f"text such as '1 day', not the integer {value.strip()}"
            )
        if interval_seconds(cursor, value, "chunk_time_interval") <= 0:
            raise InvalidInput(f"chunk_time_interval '{value}' must be positive")
        self._desired_interval = normalised_interval(cursor, value)

    # -- plan ---------------------------------------------------------------------------------------
    def plan(self, current: dict[str, t.Any]) -> Plan:
        params = self.params
        relation = self._relation
        if relation is None:
            raise InvalidInput(
                f"table {params['table']} does not exist in database {self._database}: create the table first"
            )
        if self._column_type is None:
            raise InvalidInput(f"table {relation.display} has no column {params['time_column']} (time_column)")
        if self._column_type not in _TIME_TYPES | INTEGER_TYPES:
            raise InvalidInput(
                f"time_column {params['time_column']} is {self._column_type}: a hypertable's range column must be "
                "a timestamp, timestamptz, date or integer column"
            )
        if not current["is_hypertable"]:
            return self._plan_create()
        return self._plan_existing(current)

    def _interval_sql(self) -> tuple[str, list[t.Any]]:
        if self._desired_interval is None:
            return "", []
        if isinstance(self._desired_interval, int):
            return ", %s::bigint", [self._desired_interval]
        return ", %s::interval", [self._desired_interval]

    def _plan_create(self) -> Plan:
        params = self.params
        relation = self._relation
        plan = Plan()
        if self._has_rows and not params["migrate_data"]:
            raise InvalidInput(
                f"table {relation.display} holds rows: converting it to a hypertable must move them into chunks; "
                "set migrate_data: true (the table is locked while the rows are copied)"
            )
        interval_sql, interval_params = self._interval_sql()
        plan.statements.append(
            Statement(
                f"SELECT create_hypertable(%s::regclass, by_range(%s{interval_sql}),"
                " create_default_indexes => %s, migrate_data => %s)",
                [relation.quoted, params["time_column"], *interval_params, params["create_default_indexes"],
                 params["migrate_data"]],
                why="create the hypertable",
            )
        )  # fmt: skip
        if params["partitioning_column"]:
            plan.statements.append(self._add_hash_dimension())
        if self._has_rows:
            plan.notes.append(f"{relation.display}: existing rows moved into chunks (migrate_data)")
        return plan

    def _add_hash_dimension(self) -> Statement:
        return Statement(
            "SELECT add_dimension(%s::regclass, by_hash(%s, %s))",
            [self._relation.quoted, self.params["partitioning_column"], self.params["number_partitions"]],
            why="add the hash dimension",
        )

    def _plan_existing(self, current: dict[str, t.Any]) -> Plan:
        params = self.params
        relation = self._relation
        plan = Plan()
        if current["time_column"] != params["time_column"]:
            raise DriftError(
                f"{relation.display} is already a hypertable partitioned by time on column "
                f"'{current['time_column']}', but time_column '{params['time_column']}' was asked: TimescaleDB "
                "cannot change a hypertable's time column. Either set time_column to "
                f"'{current['time_column']}', or create a new hypertable partitioned on "
                f"'{params['time_column']}' and copy the rows into it"
            )
        existing_hash = [dim for dim in current["dimensions"] if dim["type"] == "hash"]
        wanted = params["partitioning_column"]
        existing_text = ", ".join(f"{dim['column']} ({dim['partitions']} partitions)" for dim in existing_hash)
        if not wanted and existing_hash:
            raise DriftError(
                f"{relation.display} has a hash dimension on {existing_text} that the task does not declare: "
                "dimensions cannot be removed from a hypertable; declare it (partitioning_column, "
                "number_partitions) or recreate the table"
            )
        if wanted and (len(existing_hash) != 1 or existing_hash[0]["column"] != wanted):
            found = f"a hash dimension on {existing_text}" if existing_hash else "no hash dimension"
            raise DriftError(
                f"{relation.display} has {found}, but partitioning_column '{wanted}' was asked: hash dimensions "
                "cannot be changed on an existing hypertable; declare what exists, or create a new hypertable "
                "with the wanted dimensions and copy the rows into it"
            )
        if wanted and existing_hash[0]["partitions"] != params["number_partitions"]:
            plan.statements.append(
                Statement(
                    "SELECT set_number_partitions(%s::regclass, %s, %s)",
                    [relation.quoted, params["number_partitions"], wanted],
                    why="change the number of hash partitions",
                )
            )
            plan.notes.append(
                f"{relation.display}: hash partitions of {wanted} changed from {existing_hash[0]['partitions']} "
                f"to {params['number_partitions']}; this affects new chunks only, existing chunks keep theirs"
            )
        if not self._interval_matches:
            interval_sql, interval_params = self._interval_sql()
            plan.statements.append(
                Statement(
                    f"SELECT set_chunk_time_interval(%s::regclass{interval_sql})",
                    [relation.quoted, *interval_params],
                    why="change the chunk interval",
                )
            )
            message = (
                f"{relation.display}: chunk_time_interval changed from {current['chunk_time_interval']} to "
                f"{self._desired_interval}; this affects new chunks only, existing chunks keep their ranges"
            )
            plan.notes.append(message)
            plan.warnings.append(message)
        return plan

    # -- predict / result ---------------------------------------------------------------------------
    def predict(self, current: dict[str, t.Any], plan: Plan) -> dict[str, t.Any]:
        params = self.params
        if current["is_hypertable"]:
            after = dict(current)
            dimensions = [dict(dim) for dim in current["dimensions"]]
        else:
            after = dict(current, is_hypertable=True, time_column=params["time_column"])
            after["num_chunks"] = None if self._has_rows else 0
            dimensions = [{"column": params["time_column"], "type": "time", "interval": None}]
            if params["partitioning_column"]:
                dimensions.append({"column": params["partitioning_column"], "type": "hash", "partitions": None})
        for dim in dimensions:
            if dim["type"] == "time" and dim["column"] == params["time_column"]:
                if self._desired_interval is not None or dim["interval"] is None:
                    dim["interval"] = self._desired_interval
                after["chunk_time_interval"] = dim["interval"]
            elif dim["type"] == "hash":
                dim["partitions"] = params["number_partitions"]
        after["dimensions"] = dimensions
        return after

    def result(self, state: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"hypertable": state}


def main() -> None:
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        table=dict(type="str", required=True),
        time_column=dict(type="str", required=True),
        chunk_time_interval=dict(type="str"),
        partitioning_column=dict(type="str"),
        number_partitions=dict(type="int"),
        migrate_data=dict(type="bool", default=False),
        create_default_indexes=dict(type="bool", default=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_together=[("partitioning_column", "number_partitions")],
    )
    number_partitions = module.params["number_partitions"]
    if number_partitions is not None and number_partitions < 1:
        module.fail_json(msg=f"reconciling hypertable {module.params['table']}: number_partitions must be at least 1")
    reconcile(module, HypertableBackend(module.params))


if __name__ == "__main__":
    main()
