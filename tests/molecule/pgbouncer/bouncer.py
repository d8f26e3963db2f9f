"""Helpers for the pgbouncer scenario's verify step: PgBouncer, the server behind it, playbook runs.

The tests read the scenario's own inventory variables, so they follow whatever it configures.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path

from playbook_run import PlaybookRun, ansible_playbook

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]
INI = "/etc/pgbouncer/pgbouncer.ini"
AUTH_FILE = "/etc/pgbouncer/userlist.txt"


def run_role(target: str, extra_vars: dict | None = None, *args: str) -> PlaybookRun:
    """Run the pgbouncer role against TARGET the way an operator would, with EXTRA_VARS on top."""
    extra = ["-e", json.dumps(extra_vars)] if extra_vars else []
    return ansible_playbook(HERE / "apply.yml", "-e", f"target={target}", *args, *extra)


class Bouncer:
    """PgBouncer on one lab host and the PostgreSQL server behind it, as the scenario set them up."""

    def __init__(self, host) -> None:
        self.host = host
        self.vars = host.ansible.get_variables()
        self.name = self.vars["inventory_hostname"]
        self.port = int(self.vars.get("pgbouncer_port", 6432))
        self.pg_port = int(self.vars.get("pgbouncer_postgresql_port", 5432))
        self.database = self.vars["pgbouncer_databases"][0]["name"]
        self.app = next(role for role in self.vars["timescaledb_roles"] if role.get("login", True))

    def sql(self, query: str, db: str = "postgres") -> str:
        """Run QUERY on PostgreSQL as the local superuser over its socket; return psql's unaligned output."""
        return self.host.check_output(
            f"cd / && runuser -u postgres -- psql -X -p {self.pg_port} -d {shlex.quote(db)} -Atc {shlex.quote(query)}"
        )

    def login(self, user: str, password: str, query: str = "SELECT current_user", db: str | None = None, **libpq: str):
        """Log in to PgBouncer over TCP with a password (from the environment, never the command line)."""
        env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", **libpq}
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        return self.host.run(
            f"{assignments} psql -X -h 127.0.0.1 -p {self.port} -U {shlex.quote(user)} "
            f"-d {shlex.quote(db or self.database)} -Atc {shlex.quote(query)}"
        )

    def console(self, command: str, header: bool = False) -> str:
        """Run an admin console command as the local pgbouncer user (Unix socket, same OS user)."""
        rows = "-P footer=off" if header else "-t"
        return self.host.check_output(
            f"cd / && runuser -u postgres -- psql -X -h /var/run/postgresql -p {self.port} -U pgbouncer "
            f"-d pgbouncer -A -F '|' {rows} -c {shlex.quote(command)}"
        )

    def show_config(self) -> dict[str, str]:
        rows = (line.split("|") for line in self.console("SHOW CONFIG").splitlines())
        return {row[0]: row[1] for row in rows if len(row) >= 2}

    def main_pid(self) -> str:
        return self.host.check_output("systemctl show -P MainPID pgbouncer")

    def put_script(self, name: str) -> str:
        """Copy a script of this directory into the host (/var/tmp: systemd hides /tmp); return its path."""
        payload = base64.b64encode((HERE / name).read_bytes()).decode()
        path = f"/var/tmp/{name}"
        self.host.check_output(f"echo {payload} | base64 -d > {path}")
        return path
