#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: timescaledb_policy
short_description: Retention, compression and continuous-aggregate refresh policies, reconciled
version_added: 0.1.0
description:
  - Manages one TimescaleDB policy on a hypertable or continuous aggregate in the database O(login_db).
  - On the community edition (C(timescaledb.license) = V(timescale)) the policy is a TimescaleDB job, read
    from C(timescaledb_information.jobs). A different schedule (or a paused job) is fixed with C(alter_job);
    a different configuration (drop_after, compress_after, offsets) removes the policy and adds it again,
    because C(add_*_policy) called again only warns and keeps the old job.
  - The module reads C(timescaledb.license) first. On the Apache edition (Debian's build) these policies do not
    exist; the module fails early naming the edition, unless O(fallback=pg_cron) asks it to schedule the
    equivalent work with pg_cron instead.
  - With the pg_cron fallback, retention runs
    C(SELECT drop_chunks('<hypertable>', older_than => INTERVAL '<drop_after>')) and refresh runs
    C(REFRESH MATERIALIZED VIEW CONCURRENTLY <view>) (a plain materialized view with a unique index, as
    M(tgstack.hybrid.timescaledb_continuous_aggregate) creates with
    O(tgstack.hybrid.timescaledb_continuous_aggregate#module:fallback=materialized_view)).
    Compression has no Apache equivalent and fails. The job is named C(tgstack:<type>:<database>:<relation>),
    created with C(cron.schedule_in_database) in O(cron_database), and reconciled the same way; a different
    command, schedule or database, or an inactive job, is updated with C(cron.alter_job).
  - The fallback is only used where the edition lacks the feature; on the community edition the native policy
    is managed even when O(fallback=pg_cron) is set.
extends_documentation_fragment: [tgstack.hybrid.postgres]
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  type:
    description:
      - The policy. V(retention) drops chunks older than O(drop_after); V(compression) compresses (moves to the
        columnstore) chunks older than O(compress_after); V(refresh) refreshes a continuous aggregate.
    type: str
    required: true
    choices: [retention, compression, refresh]
  relation:
    description:
      - The hypertable (retention, compression) or continuous aggregate / materialized view (refresh, retention
        and compression on a continuous aggregate), optionally schema-qualified.
    type: str
    required: true
  state:
    description:
      - Whether the policy should exist.
    type: str
    default: present
    choices: [present, absent]
  drop_after:
    description:
      - Retention. Chunks whose data is older than this are dropped. Interval text (V(30 days)), or an integer
        for integer time columns. Required for O(type=retention) with O(state=present).
    type: str
  compress_after:
    description:
      - Compression. Chunks older than this are compressed. Interval text, or an integer for integer time columns.
        Required for O(type=compression) with O(state=present). Compression is enabled on the hypertable
        (C(ALTER TABLE ... SET (timescaledb.compress))) when it is not yet.
    type: str
  start_offset:
    description:
      - Refresh. Start of the refreshed window relative to now (interval text or integer); omitted means from the
        beginning (NULL). The pg_cron fallback refreshes the whole view and ignores it.
    type: str
  end_offset:
    description:
      - Refresh. End of the refreshed window relative to now; omitted means up to now (NULL). Ignored by the
        pg_cron fallback.
    type: str
  schedule_interval:
    description:
      - How often the policy runs, as interval text. Defaults to V(1 day) for retention and compression and to
        V(1 hour) for refresh.
      - With the pg_cron fallback it becomes a pg_cron schedule - V(1) to V(59 seconds) stay
        V(N seconds); whole minutes dividing an hour become C(*/N * * * *); whole hours dividing a day
        C(0 */N * * *); V(1 day) C(0 0 * * *) (midnight, server time zone); V(1 week) C(0 0 * * 0).
        Other intervals fail; use O(cron_schedule) for them.
    type: str
  fallback:
    description:
      - What to do on the Apache edition, which lacks the policy. V(none) fails early with a message naming the
        edition. V(pg_cron) schedules the equivalent work with pg_cron (retention and refresh only).
    type: str
    default: none
    choices: [none, pg_cron]
  cron_database:
    description:
      - The database where the pg_cron extension lives (pg_cron's C(cron.database_name)); jobs are created there
        and run in O(login_db).
    type: str
    default: postgres
  cron_schedule:
    description:
      - With the pg_cron fallback, a pg_cron schedule (cron syntax or V(N seconds)) used instead of the one
        derived from O(schedule_interval).
    type: str
attributes:
  check_mode:
    description: Reads the current state and returns the statements it would run in RV(queries), changing nothing.
    support: full
  diff_mode:
    description: Returns the state before and after (predicted in check mode).
    support: full
notes:
  - pg_cron runs jobs through a local connection unless C(cron.use_background_workers = on); with password-only
    pg_hba rules every run fails with "connection failed". Check C(cron.job_run_details), not only C(cron.job).
  - Remove a refresh policy before dropping its view; a pg_cron job outlives the view it refreshes.
  - The pg_cron job runs as the role the module connects as.
"""

EXAMPLES = r"""
- name: Keep 30 days of messages (community edition)
  tgstack.hybrid.timescaledb_policy:
    login_db: tgstack
    type: retention
    relation: public.messages
    drop_after: 30 days

- name: Same, falling back to pg_cron on Debian's Apache-only build
  tgstack.hybrid.timescaledb_policy:
    login_db: tgstack
    type: retention
    relation: public.messages
    drop_after: 30 days
    schedule_interval: 1 hour
    fallback: pg_cron

- name: Refresh the hourly aggregate every 5 minutes
  tgstack.hybrid.timescaledb_policy:
    login_db: tgstack
    type: refresh
    relation: public.messages_hourly
    start_offset: 3 hours
    end_offset: 1 hour
    schedule_interval: 5 minutes
    fallback: pg_cron

- name: Compress chunks older than 7 days (community edition only)
  tgstack.hybrid.timescaledb_policy:
    login_db: tgstack
    type: compression
    relation: public.messages
    compress_after: 7 days
"""

RETURN = r"""
policy:
  description: The policy after the run (in check mode the predicted state).
  returned: always
  type: dict
  contains:
    type:
      description: The policy type.
      type: str
    relation:
      description: The relation, schema-qualified.
      type: str
    edition:
      description: The server's C(timescaledb.license) (V(apache) or V(timescale)).
      type: str
    scheduler:
      description: V(timescaledb) (a native policy job) or V(pg_cron) (the fallback).
      type: str
    exists:
      description: Whether the policy (job) exists.
      type: bool
    job_id:
      description: The TimescaleDB or pg_cron job id (null when absent or not yet created).
      type: int
    schedule_interval:
      description: TimescaleDB job schedule interval (native policies).
      type: str
    config:
      description: TimescaleDB job config (native policies).
      type: dict
    scheduled:
      description: Whether the TimescaleDB job is scheduled (native policies).
      type: bool
    job_name:
      description: pg_cron job name (fallback).
      type: str
      sample: "tgstack:retention:tgstack:public.messages"
    schedule:
      description: pg_cron schedule (fallback).
      type: str
      sample: 0 * * * *
    command:
      description: pg_cron command (fallback).
      type: str
    database:
      description: Database the pg_cron job runs in (fallback).
      type: str
    active:
      description: Whether the pg_cron job is active (fallback).
      type: bool
queries:
  description: The statements run (or, in check mode, that would run). pg_cron statements run in O(cron_database).
  returned: always
  type: list
  elements: str
notes:
  description: What changed (re-added policies, pg_cron jobs scheduled or altered).
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import connect, postgres_common_argument_spec
from ansible_collections.tgstack.hybrid.plugins.module_utils.reconcile import (
    Plan,
    Statement,
    execute_in_transaction,
    reconcile,
)
from ansible_collections.tgstack.hybrid.plugins.module_utils.timescaledb import (
    COMMUNITY_LICENSE,
    INTEGER_TYPES,
    InvalidInput,
    check_pg_cron,
    cron_job_name,
    edition_refusal,
    find_relation,
    interval_seconds,
    interval_to_cron,
    is_integer_text,
    normalised_interval,
    plan_cron_job,
    read_cron_job,
    read_edition,
    same_interval,
    sql_literal,
)

_PROC_NAMES = {
    "retention": "policy_retention",
    "compression": "policy_compression",
    "refresh": "policy_refresh_continuous_aggregate",
}
# the config keys each policy's job keeps, and the module option each comes from
_CONFIG_KEYS = {
    "retention": {"drop_after": "drop_after"},
    "compression": {"compress_after": "compress_after"},
    "refresh": {"start_offset": "start_offset", "end_offset": "end_offset"},
}
_DEFAULT_SCHEDULE = {"retention": "1 day", "compression": "1 day", "refresh": "1 hour"}


class PolicyBackend:
    """Reconciles one policy: a TimescaleDB job, or its pg_cron stand-in on the Apache edition."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.kind = params["type"]
        self.doing = f"reconciling {self.kind} policy on {params['relation']}"
        self.schedule_interval = params["schedule_interval"] or _DEFAULT_SCHEDULE[self.kind]
        self._cron_connection = None
        self._facts: dict[str, t.Any] = {}

    def close(self) -> None:
        if self._cron_connection is not None:
            self._cron_connection.close()
            self._cron_connection = None

    # -- read ---------------------------------------------------------------------------------------
    def read(self, cursor) -> dict[str, t.Any]:
        edition = read_edition(cursor)
        present = self.params["state"] == "present"
        relation = find_relation(cursor, self.params["relation"])
        facts: dict[str, t.Any] = {"edition": edition, "relation": relation}
        self._facts = facts
        display = relation.display if relation else self.params["relation"]
        if relation is None and "." not in display:
            display = f"public.{display}"  # the name a job for it was given while it existed
        state: dict[str, t.Any] = {
            "type": self.kind,
            "relation": display,
            "edition": edition["license"],
            "exists": False,
            "job_id": None,
        }
        if relation is None and present:
            raise InvalidInput(f"relation {self.params['relation']} does not exist in database {edition['database']}")
        if present:
            interval_seconds(cursor, self.schedule_interval, "schedule_interval")
            facts["schedule_interval"] = normalised_interval(cursor, self.schedule_interval)
        if edition["license"] == COMMUNITY_LICENSE:
            state["scheduler"] = "timescaledb"
            if relation is not None:
                self._read_native(cursor, relation, state)
            return state
        state["scheduler"] = "pg_cron"
        if self.params["fallback"] != "pg_cron":
            facts["refusal"] = edition_refusal(
                f"the {self.kind} policy", edition["license"], "set fallback: pg_cron to schedule the equivalent "
                "work with pg_cron (retention and refresh)"
            )  # fmt: skip
            if present:
                raise facts["refusal"]
            state["scheduler"] = None
            return state
        if self.kind == "compression":
            raise edition_refusal(
                "compression (the columnstore)", edition["license"],
                "drop the compression policy: pg_cron has no Apache-edition equivalent (fallback covers retention "
                "and refresh only)",
            )  # fmt: skip
        self._read_cron(cursor, relation, display, edition["database"], state)
        return state

    def _read_native(self, cursor, relation, state: dict[str, t.Any]) -> None:
        facts = self._facts
        cursor.execute(
            "SELECT materialization_hypertable_schema, materialization_hypertable_name"
            " FROM timescaledb_information.continuous_aggregates WHERE view_schema = %s AND view_name = %s",
            (relation.schema, relation.name),
        )
        materialization = cursor.fetchone()
        facts["is_cagg"] = materialization is not None
        job_schema, job_table = materialization or (relation.schema, relation.name)
        cursor.execute(
            "SELECT column_type, (SELECT compression_enabled FROM timescaledb_information.hypertables h"
            "   WHERE h.hypertable_schema = d.hypertable_schema AND h.hypertable_name = d.hypertable_name)"
            " FROM timescaledb_information.dimensions d"
            " WHERE hypertable_schema = %s AND hypertable_name = %s ORDER BY dimension_number LIMIT 1",
            (job_schema, job_table),
        )
        row = cursor.fetchone()
        facts["is_hypertable"] = row is not None
        facts["time_type"], facts["compression_enabled"] = row if row else (None, False)
        cursor.execute(
            "SELECT job_id, schedule_interval::text, config, scheduled FROM timescaledb_information.jobs"
            " WHERE proc_name = %s AND hypertable_schema = %s AND hypertable_name = %s ORDER BY job_id",
            (_PROC_NAMES[self.kind], job_schema, job_table),
        )
        jobs = cursor.fetchall()
        facts["job"] = None
        if jobs:
            job_id, schedule_interval, config, scheduled = jobs[0]
            config = {key: value for key, value in (config or {}).items() if not key.endswith("hypertable_id")}
            state.update(
                exists=True, job_id=job_id, schedule_interval=schedule_interval, config=config, scheduled=scheduled
            )
            facts["job"] = state
            facts["schedule_matches"] = same_interval(cursor, schedule_interval, facts.get("schedule_interval"))
            facts["config_matches"] = self._config_matches(cursor, config)

    def _config_matches(self, cursor, config: dict[str, t.Any]) -> bool:
        for key, option in _CONFIG_KEYS[self.kind].items():
            wanted, existing = self.params[option], config.get(key)
            if wanted is None or existing is None:
                if (wanted is None) != (existing is None):
                    return False
            elif is_integer_text(wanted) or isinstance(existing, int):
                if str(existing).strip() != str(wanted).strip():
                    return False
            elif not same_interval(cursor, str(existing), wanted):
                return False
        return True

    def _read_cron(self, cursor, relation, display: str, database: str, state: dict[str, t.Any]) -> None:
        facts = self._facts
        job_name = cron_job_name(self.kind, database, display)
        cron_database = self.params["cron_database"]
        if self._cron_connection is None:
            self._cron_connection = connect(self.params, database=cron_database)
        with self._cron_connection.cursor() as cron_cursor:
            check_pg_cron(cron_cursor, cron_database)
            job = read_cron_job(cron_cursor, job_name)
        self._cron_connection.rollback()
        state.update(job_name=job_name, exists=job is not None)
        if job is not None:
            state.update(job)
        facts["cron_job"] = job
        if self.params["state"] == "absent":
            facts["cron_desired"] = None
            return
        schedule = self.params["cron_schedule"]
        if not schedule:
            seconds = interval_seconds(cursor, self.schedule_interval, "schedule_interval")
            schedule = interval_to_cron(seconds, self.schedule_interval)
        facts["cron_desired"] = {
            "schedule": schedule,
            "command": self._cron_command(cursor, relation),
            "database": database,
        }

    def _cron_command(self, cursor, relation) -> str:
        """The SQL the pg_cron job runs, checked against the relation it works on."""
        if self.kind == "retention":
            cursor.execute(
                "SELECT d.column_type FROM timescaledb_information.dimensions d"
                " WHERE hypertable_schema = %s AND hypertable_name = %s ORDER BY dimension_number LIMIT 1",
                (relation.schema, relation.name),
            )
            row = cursor.fetchone()
            if row is None:
                raise InvalidInput(f"{relation.display} is not a hypertable: drop_chunks (retention) needs one")
            drop_after = self.params["drop_after"]
            if row[0] in INTEGER_TYPES:
                if not is_integer_text(drop_after):
                    raise InvalidInput(f"{relation.display}'s time column is {row[0]}: drop_after must be an integer")
                older_than = str(int(drop_after))
            else:
                if is_integer_text(drop_after):
                    raise InvalidInput(f"{relation.display}'s time column is {row[0]}: drop_after must be an interval")
                interval_seconds(cursor, drop_after, "drop_after")
                older_than = "INTERVAL " + sql_literal(normalised_interval(cursor, drop_after))
            return f"SELECT drop_chunks({sql_literal(relation.display)}, older_than => {older_than})"
        # refresh: a plain materialized view, refreshed without blocking readers
        if relation.kind != "m":
            raise InvalidInput(
                f"{relation.display} is not a materialized view: the pg_cron refresh fallback runs REFRESH "
                "MATERIALIZED VIEW CONCURRENTLY on one (see timescaledb_continuous_aggregate fallback: "
                "materialized_view)"
            )
        cursor.execute(
            "SELECT c.relispopulated, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique"
            "   AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL)"
            " FROM pg_class c WHERE c.oid = %s",
            (relation.oid,),
        )
        populated, has_unique_index = cursor.fetchone()
        if not has_unique_index:
            raise InvalidInput(
                f"materialized view {relation.display} has no unique index on plain columns, which REFRESH "
                "MATERIALIZED VIEW CONCURRENTLY needs: create one (timescaledb_continuous_aggregate's unique_columns)"
            )
        if not populated:
            raise InvalidInput(
                f"materialized view {relation.display} was created WITH NO DATA: run REFRESH MATERIALIZED VIEW "
                "once (not concurrently) before scheduling concurrent refreshes"
            )
        return f"REFRESH MATERIALIZED VIEW CONCURRENTLY {relation.display}"

    # -- plan ---------------------------------------------------------------------------------------
    def plan(self, current: dict[str, t.Any]) -> Plan:
        plan = Plan()
        if current["scheduler"] is None:
            plan.notes.append(f"{self._facts['refusal']}; nothing to remove")
            return plan
        if current["scheduler"] == "pg_cron":
            statements, notes = plan_cron_job(self._facts["cron_job"], self._facts["cron_desired"], current["job_name"])
            plan.statements.extend(statements)
            plan.notes.extend(notes)
            return plan
        return self._plan_native(current, plan)

    def _plan_native(self, current: dict[str, t.Any], plan: Plan) -> Plan:
        facts = self._facts
        relation = facts["relation"]
        job = facts.get("job")
        if self.params["state"] == "absent":
            if job is not None:
                plan.statements.append(self._remove_statement(relation))
                plan.notes.append(f"{self.kind} policy (job {job['job_id']}) removed from {relation.display}")
            return plan
        if self.kind == "refresh" and not facts["is_cagg"]:
            raise InvalidInput(f"{relation.display} is not a continuous aggregate: a refresh policy needs one")
        if self.kind != "refresh" and not facts["is_hypertable"]:
            raise InvalidInput(f"{relation.display} is not a hypertable or continuous aggregate")
        if job is None:
            if self.kind == "compression" and not facts["compression_enabled"]:
                plan.statements.append(self._enable_compression(relation))
                plan.notes.append(f"compression enabled on {relation.display}")
            plan.statements.append(self._add_statement(relation))
            plan.notes.append(f"{self.kind} policy added to {relation.display}")
        elif not facts["config_matches"]:
            plan.statements += [self._remove_statement(relation), self._add_statement(relation)]
            plan.notes.append(
                f"{self.kind} policy on {relation.display} re-added (job {job['job_id']} replaced): its config "
                f"{job['config']} differs from the requested one"
            )
        elif not facts["schedule_matches"] or not job["scheduled"]:
            plan.statements.append(
                Statement(
                    "SELECT alter_job(%s, schedule_interval => %s::interval, scheduled => true)",
                    [job["job_id"], facts["schedule_interval"]],
                    why="reschedule the policy job",
                )
            )
            plan.notes.append(
                f"{self.kind} policy job {job['job_id']} on {relation.display}: schedule "
                f"{job['schedule_interval']} (scheduled: {job['scheduled']}) -> {facts['schedule_interval']}"
            )
        return plan

    def _time_value(self, option: str) -> tuple[str, list[t.Any]]:
        value = self.params[option]
        if value is None:
            return "NULL", []
        if is_integer_text(value):
            time_type = self._facts.get("time_type")
            cast = time_type if time_type in INTEGER_TYPES else "bigint"
            return f"%s::{cast}", [int(value)]
        return "%s::interval", [value]

    def _add_statement(self, relation) -> Statement:
        schedule = self._facts["schedule_interval"]
        if self.kind == "retention":
            value_sql, value_params = self._time_value("drop_after")
            sql = (
                f"SELECT add_retention_policy(%s::regclass, drop_after => {value_sql},"
                " schedule_interval => %s::interval)"
            )
            params = [relation.quoted, *value_params, schedule]
        elif self.kind == "compression":
            value_sql, value_params = self._time_value("compress_after")
            sql = (
                f"SELECT add_compression_policy(%s::regclass, compress_after => {value_sql},"
                " schedule_interval => %s::interval)"
            )
            params = [relation.quoted, *value_params, schedule]
        else:
            start_sql, start_params = self._time_value("start_offset")
            end_sql, end_params = self._time_value("end_offset")
            sql = (
                f"SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => {start_sql},"
                f" end_offset => {end_sql}, schedule_interval => %s::interval)"
            )
            params = [relation.quoted, *start_params, *end_params, schedule]
        return Statement(sql, params, why=f"add the {self.kind} policy")

    def _remove_statement(self, relation) -> Statement:
        function = {
            "retention": "remove_retention_policy",
            "compression": "remove_compression_policy",
            "refresh": "remove_continuous_aggregate_policy",
        }[self.kind]
        return Statement(f"SELECT {function}(%s::regclass, if_exists => true)", [relation.quoted])

    def _enable_compression(self, relation) -> Statement:
        kind = "MATERIALIZED VIEW" if self._facts["is_cagg"] else "TABLE"
        return Statement(f"ALTER {kind} {relation.quoted} SET (timescaledb.compress)")

    # -- apply / predict / result -------------------------------------------------------------------
    def apply(self, connection, plan: Plan) -> None:
        if self._cron_connection is not None:
            execute_in_transaction(self._cron_connection, plan.statements)
        else:
            execute_in_transaction(connection, plan.statements)

    def predict(self, current: dict[str, t.Any], plan: Plan) -> dict[str, t.Any]:
        after = dict(current)
        if self.params["state"] == "absent":
            return {
                key: value for key, value in after.items() if key in ("type", "relation", "edition", "scheduler")
            } | {
                "exists": False,
                "job_id": None,
            }
        after["exists"] = True
        if current["scheduler"] == "pg_cron":
            after.update(self._facts["cron_desired"], active=True)
            return after
        after.update(scheduled=True, schedule_interval=self._facts["schedule_interval"])
        if not self._facts.get("config_matches", False):
            after["job_id"] = None  # a new job gets a new id
            after["config"] = {key: self.params[option] for key, option in _CONFIG_KEYS[self.kind].items()}
        return after

    def result(self, state: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"policy": state}


def main() -> None:
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        type=dict(type="str", required=True, choices=["retention", "compression", "refresh"]),
        relation=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        drop_after=dict(type="str"),
        compress_after=dict(type="str"),
        start_offset=dict(type="str"),
        end_offset=dict(type="str"),
        schedule_interval=dict(type="str"),
        fallback=dict(type="str", default="none", choices=["none", "pg_cron"]),
        cron_database=dict(type="str", default="postgres"),
        cron_schedule=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
    )
    backend = PolicyBackend(module.params)
    if module.params["state"] == "present":
        required = {"retention": "drop_after", "compression": "compress_after"}.get(backend.kind)
        if required and module.params[required] is None:
            module.fail_json(msg=f"{backend.doing}: {required} is required for type {backend.kind}")
        misplaced = [
            option
            for option, kinds in (
                ("drop_after", {"retention"}),
                ("compress_after", {"compression"}),
                ("start_offset", {"refresh"}),
                ("end_offset", {"refresh"}),
            )
            if module.params[option] is not None and module.params["type"] not in kinds
        ]
        if misplaced:
            module.fail_json(msg=f"{backend.doing}: {', '.join(misplaced)} does not apply to type {backend.kind}")
    try:
        reconcile(module, backend)
    finally:
        backend.close()


if __name__ == "__main__":
    main()
