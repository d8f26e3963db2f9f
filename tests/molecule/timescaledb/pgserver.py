"""Helpers for the timescaledb scenarios' verify step: the server, and playbook runs.

The tests read the scenario's own inventory variables, so one set of tests serves every scenario.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from playbook_run import PlaybookRun, ansible_playbook

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]
DEFAULT_PORT = 5432


def run_playbook(target: str, *args: str, extra_vars_file: Path | None = None) -> PlaybookRun:
    """Run the role against TARGET hosts of the scenario's inventory, the way an operator would."""
    extra = ["-e", f"@{extra_vars_file}"] if extra_vars_file is not None else []
    return ansible_playbook(HERE / "apply.yml", "-e", f"target={target}", *args, *extra)


class Server:
    """The PostgreSQL server on one lab host, as the scenario configured it."""

    def __init__(self, host) -> None:
        self.host = host
        self.vars = host.ansible.get_variables()
        self.port = int(self.vars.get("timescaledb_port", DEFAULT_PORT))
        listen = self.vars.get("timescaledb_listen_addresses", ["localhost"])
        if any("ansible_facts" in str(address) for address in listen):
            self.tcp_host = host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")
        else:
            self.tcp_host = "127.0.0.1"

    def sql(self, query: str, db: str = "postgres") -> str:
        """Run QUERY as the local superuser over the socket; return psql's unaligned output."""
        return self.host.check_output(
            f"cd / && runuser -u postgres -- psql -X -p {self.port} -d {shlex.quote(db)} -Atc {shlex.quote(query)}"
        )

    def tcp_login(self, user: str, password: str, db: str, **libpq: str):
        """Log in over TCP with a password, like an application would; return the command result."""
        env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", **libpq}
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        return self.host.run(
            f"{assignments} psql -X -h {self.tcp_host} -p {self.port} -U {shlex.quote(user)} "
            f"-d {shlex.quote(db)} -Atc 'SELECT current_user'"
        )

    @property
    def login_roles(self) -> list[dict]:
        return [role for role in self.vars.get("timescaledb_roles", []) if role.get("login", True)]

    def database_for(self, role: str) -> str:
        for database in self.vars.get("timescaledb_databases", []):
            if database.get("owner") == role:
                return database["name"]
        return "postgres"
