# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the TimescaleDB modules (hypertable, policy, continuous_aggregate) share.

The edition check, relation lookup, the conversion of an interval to a pg_cron schedule and the
pg_cron job reconciliation used as the Apache edition's scheduler.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.tgstack.hybrid.plugins.module_utils.postgres import TgstackPostgresError
from ansible_collections.tgstack.hybrid.plugins.module_utils.reconcile import Statement


class InvalidInput(TgstackPostgresError):
    """The task's options are inconsistent with each other or with the database."""


class EditionError(TgstackPostgresError):
    """The installed TimescaleDB edition lacks a feature the task needs."""


class DriftError(TgstackPostgresError):
    """The existing object differs in a way the module will not change silently."""


COMMUNITY_LICENSE = "timescale"
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
_INTEGER_TEXT = re.compile(r"^\s*-?\d+\s*$")


def is_integer_text(value: str | int | None) -> bool:
    """True when VALUE is an integer (an integer time column's interval) rather than interval text."""
    return isinstance(value, int) or (isinstance(value, str) and bool(_INTEGER_TEXT.match(value)))


def sql_literal(text: str) -> str:
    """TEXT as an SQL string literal (standard_conforming_strings is on in every supported version)."""
    return "'" + text.replace("'", "''") + "'"


def quote_qualified(schema: str, name: str) -> str:
    """schema.name with both parts quoted as identifiers."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


def read_edition(cursor) -> dict[str, str]:
    """The database's name, TimescaleDB version and license; fails when the extension is missing."""
    cursor.execute(
        "SELECT current_database(), (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        " current_setting('timescaledb.license', true)"
    )
    database, version, license_name = cursor.fetchone()
    if version is None:
        raise InvalidInput(
            f"the timescaledb extension is not installed in database {database}: "
            "run CREATE EXTENSION timescaledb there first (the tgstack.hybrid.timescaledb role does it)"
        )
    return {"database": database, "version": version, "license": license_name or "apache"}


def edition_refusal(feature: str, license_name: str, alternative: str) -> EditionError:
    """The error for a TSL feature on an Apache-only build, naming the edition and what to do instead."""
    return EditionError(
        f"{feature} is a TimescaleDB community (TSL) feature, but this server runs the '{license_name}' "
        f"edition (timescaledb.license = {license_name}; Debian's postgresql-*-timescaledb package is "
        f"Apache-only). Install the community edition from Timescale's repository, or {alternative}"
    )


@dataclasses.dataclass
class Relation:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind
    display: str  # schema.name, quoted only where needed (format('%I.%I'))

    @property
    def quoted(self) -> str:
        return quote_qualified(self.schema, self.name)


def find_relation(cursor, name: str) -> Relation | None:
    """The relation NAME (as SQL would resolve it, schema optional), or None when it does not exist."""
    cursor.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind, format('%%I.%%I', n.nspname, c.relname)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (name,),
    )
    row = cursor.fetchone()
    return Relation(*row) if row else None


def interval_to_cron(seconds: float, interval_text: str) -> str:
    """A pg_cron schedule that runs every SECONDS (the value of INTERVAL_TEXT), or InvalidInput.

    pg_cron 1.5+ takes '[1-59] seconds'; longer intervals become cron expressions, which only repeat
    evenly when the interval divides the next larger unit (minutes of an hour, hours of a day).
    """
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        raise InvalidInput(f"schedule_interval '{interval_text}' is not a positive whole number of seconds")
    if whole < 60:
        return f"{whole} seconds"
    if whole % 60 == 0 and whole < 3600 and 60 % (whole // 60) == 0:
        minutes = whole // 60
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if whole % 3600 == 0 and whole < 86400 and 24 % (whole // 3600) == 0:
        hours = whole // 3600
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if whole == 86400:
        return "0 0 * * *"
    if whole == 7 * 86400:
        return "0 0 * * 0"
    raise InvalidInput(
        f"schedule_interval '{interval_text}' has no even pg_cron equivalent (supported: 1-59 seconds, "
        "minutes dividing an hour, hours dividing a day, 1 day, 1 week): set cron_schedule to a pg_cron "
        "schedule instead"
    )


def interval_seconds(cursor, text: str, option: str) -> float:
    """The length of interval TEXT in seconds, as the server parses it; InvalidInput when it is not one."""
    cursor.execute("SAVEPOINT tgstack_interval")
    try:
        cursor.execute("SELECT EXTRACT(EPOCH FROM %s::interval)::float8", (text,))
    except Exception as error:
        cursor.execute("ROLLBACK TO SAVEPOINT tgstack_interval")
        raise InvalidInput(f"{option} '{text}' is not a PostgreSQL interval ({str(error).strip()})") from None
    return float(cursor.fetchone()[0])


def normalised_interval(cursor, text: str) -> str:
    """TEXT as the server prints the interval (e.g. '24:00:00' for '24 hours'); call after interval_seconds."""
    cursor.execute("SELECT %s::interval::text", (text,))
    return cursor.fetchone()[0]


def same_interval(cursor, left: str | None, right: str | None) -> bool:
    """Whether two interval texts (either may be None) are equal as PostgreSQL compares intervals."""
    if left is None or right is None:
        return left is None and right is None
    cursor.execute("SELECT %s::interval = %s::interval", (str(left), str(right)))
    return bool(cursor.fetchone()[0])


# --- pg_cron: the Apache edition's scheduler ---------------------------------------------------------


def cron_job_name(kind: str, database: str, relation: str) -> str:
    """The deterministic pg_cron job name the modules manage: tgstack:<kind>:<database>:<relation>."""
    return f"tgstack:{kind}:{database}:{relation}"


def read_cron_job(cursor, job_name: str) -> dict[str, t.Any] | None:
    """The pg_cron job JOB_NAME (of any user visible to us), or None."""
    cursor.execute(
        "SELECT jobid, schedule, command, database, username, active FROM cron.job WHERE jobname = %s ORDER BY jobid",
        (job_name,),
    )
    rows = cursor.fetchall()
    if len(rows) > 1:
        raise DriftError(
            f"there are {len(rows)} pg_cron jobs named {job_name} (ids {', '.join(str(row[0]) for row in rows)}, "
            "scheduled by different users): unschedule all but one with cron.unschedule(jobid)"
        )
    if not rows:
        return None
    jobid, schedule, command, database, username, active = rows[0]
    return dict(job_id=jobid, schedule=schedule, command=command, database=database, username=username, active=active)


def check_pg_cron(cursor, cron_database: str) -> str:
    """pg_cron's version in CRON_DATABASE (the connection's database), or InvalidInput when it is absent."""
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
    row = cursor.fetchone()
    if row is None:
        raise InvalidInput(
            f"the pg_cron extension is not installed in database {cron_database} (cron_database): "
            "preload pg_cron, set cron.database_name and CREATE EXTENSION pg_cron there "
            "(the tgstack.hybrid.timescaledb role does it with timescaledb_pg_cron_enabled: true)"
        )
    return row[0]


def plan_cron_job(
    current: dict[str, t.Any] | None, desired: dict[str, t.Any] | None, job_name: str
) -> tuple[list[Statement], list[str]]:
    """Statements (and notes) that make the pg_cron job JOB_NAME match DESIRED (None: no job).

    DESIRED has schedule, command and database; a job that differs in any of them or is inactive is
    altered in place with cron.alter_job (its id and run history stay).
    """
    if desired is None:
        if current is None:
            return [], []
        return [Statement("SELECT cron.unschedule(%s::bigint)", (current["job_id"],), why=f"unschedule {job_name}")], [
            f"pg_cron job {job_name} (id {current['job_id']}) unscheduled"
        ]
    if current is None:
        return [
            Statement(
                "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                (job_name, desired["schedule"], desired["command"], desired["database"]),
                why=f"schedule {job_name}",
            )
        ], [f"pg_cron job {job_name} scheduled ({desired['schedule']}): {desired['command']}"]
    differing = [key for key in ("schedule", "command", "database") if current[key] != desired[key]]
    if not current["active"]:
        differing.append("active")
    if not differing:
        return [], []
    return [
        Statement(
            "SELECT cron.alter_job(%s::bigint, schedule => %s, command => %s, database => %s, active => true)",
            (current["job_id"], desired["schedule"], desired["command"], desired["database"]),
            why=f"update {job_name}",
        )
    ], [f"pg_cron job {job_name} (id {current['job_id']}) updated: {', '.join(differing)}"]
