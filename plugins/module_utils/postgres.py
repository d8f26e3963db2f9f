# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One PostgreSQL connection helper for every tgstack.hybrid module.

Connection options follow community.postgresql's names (login_user, login_password, login_host,
login_port, login_unix_socket, login_db) and fall back to libpq's environment variables, so a task
can rely on PGPASSWORD and friends set in `environment:`.
"""

from __future__ import annotations

import os
import typing as t

try:
    import psycopg2
    import psycopg2.extras

    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - depends on the target host
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = import_error


class TgstackPostgresError(Exception):
    """An error a module reports as "<what it was doing>: <cause>"."""


class ConnectionFailed(TgstackPostgresError):
    pass


def postgres_common_argument_spec() -> dict[str, t.Any]:
    """Connection options shared by every module (documented by the doc fragment tgstack.hybrid.postgres)."""
    return dict(
        login_user=dict(type="str", default="postgres", aliases=["login"]),
        login_password=dict(type="str", default="", no_log=True),
        login_host=dict(type="str", default=""),
        login_port=dict(type="int", default=5432),
        login_unix_socket=dict(type="str", default=""),
        login_db=dict(type="str", default=""),
        connect_timeout=dict(type="int", default=10),
        ssl_mode=dict(
            type="str",
            default="prefer",
            choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"],
        ),
    )


_ENV_FALLBACKS = {
    "login_user": "PGUSER",
    "login_password": "PGPASSWORD",
    "login_host": "PGHOST",
    "login_port": "PGPORT",
    "login_db": "PGDATABASE",
}


def connection_kwargs(params: t.Mapping[str, t.Any], database: str | None = None) -> dict[str, t.Any]:
    """libpq keyword arguments from module parameters, environment variables filling what is unset."""
    defaults = postgres_common_argument_spec()
    values: dict[str, t.Any] = {}
    for name in ("login_user", "login_password", "login_host", "login_port", "login_db"):
        value = params.get(name)
        env_name = _ENV_FALLBACKS[name]
        if (value is None or value == defaults[name]["default"]) and os.environ.get(env_name):
            value = os.environ[env_name]
        values[name] = value
    host = params.get("login_unix_socket") or values["login_host"]
    kwargs: dict[str, t.Any] = {
        "user": values["login_user"],
        "port": int(values["login_port"]),
        "dbname": database or values["login_db"] or "postgres",
        "connect_timeout": params.get("connect_timeout", 10),
        "application_name": "tgstack.hybrid",
    }
    if host:
        kwargs["host"] = host
    if values["login_password"]:
        kwargs["password"] = values["login_password"]
    if host and not host.startswith("/"):
        kwargs["sslmode"] = params.get("ssl_mode", "prefer")
    return kwargs


def connect(params: t.Mapping[str, t.Any], database: str | None = None, autocommit: bool = False):
    """Open a connection; raise ConnectionFailed with libpq's message (never the password)."""
    if not HAS_PSYCOPG2:
        raise ConnectionFailed(
            "the Python module psycopg2 is missing on the target host: install python3-psycopg2 "
            f"({PSYCOPG2_IMPORT_ERROR})"
        )
    kwargs = connection_kwargs(params, database)
    try:
        connection = psycopg2.connect(**kwargs)
    except psycopg2.Error as error:
        where = kwargs.get("host", "the default socket")
        raise ConnectionFailed(
            f"cannot connect to {kwargs['dbname']} as {kwargs['user']} on {where} port {kwargs['port']}: "
            f"{str(error).strip()}"
        ) from None
    connection.autocommit = autocommit
    return connection


def dict_cursor(connection):
    """A cursor whose rows are dicts."""
    return connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (optionally schema-qualified with a single dot)."""
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        raise TgstackPostgresError(f"'{name}' is not a table name of the form name or schema.name")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
