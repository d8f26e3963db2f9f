"""No-op run time of tgstack.hybrid.sql_scripts with 100 applied scripts: on the host and through Ansible.

Setup: a database `bench_sql_scripts` on a TimescaleDB lab host, 100 tiny scripts in
/var/tmp/tgstack-bench-sql-scripts, applied once with the module. Then, median of --rounds runs each
(after one warm-up run), the no-op run (nothing pending: connect, advisory lock, ledger read, 100 file
checksums, JSON result) timed as described in bench/_module_timing.py: (a) the module's own run on the
host (AnsiballZ explode + execute), (b) the task through ansible-playbook; ansible.builtin.ping the
same ways as the floor.

Run from the repository root with the lab bootstrapped:

    source lab/bootstrap && python3 bench/sql_scripts_noop.py [HOST] [--rounds 7] [--scripts 100]

HOST is a lab host with PostgreSQL + TimescaleDB (e.g. tgstack-it-tsdb from the integration fixtures);
without it the benchmark starts, converges and finally removes its own host tgstack-bench-modules.

Target: (a) under 300 ms.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _module_timing import docker_exec, lab_host, measure_and_report
from labhost import psql, run_module

DATABASE = "bench_sql_scripts"
SCRIPTS_DIR = "/var/tmp/tgstack-bench-sql-scripts"
MODULE = "tgstack.hybrid.sql_scripts"


def prepare(host: str, count: int) -> dict[str, Any]:
    psql(host, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(host, f"CREATE DATABASE {DATABASE}")
    lines = [
        f"printf 'CREATE TABLE bench_{n:03d} (id int);\\n' > {SCRIPTS_DIR}/{n:03d}_bench.sql" for n in range(count)
    ]
    docker_exec(host, "bash", "-c", f"rm -rf {SCRIPTS_DIR} && mkdir -p {SCRIPTS_DIR} && " + " && ".join(lines)
                + f" && chown -R postgres:postgres {SCRIPTS_DIR}")  # fmt: skip
    args = {"path": SCRIPTS_DIR, "login_db": DATABASE}
    applied = run_module(host, MODULE, args)
    if applied.get("failed") or len(applied["applied"]) != count:
        sys.exit(f"applying the {count} scripts failed: {applied.get('msg', applied)}")
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?", help="lab host with PostgreSQL + TimescaleDB (default: start one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scripts", type=int, default=100)
    args = parser.parse_args()

    with lab_host(args.host) as host:
        module_args = prepare(host, args.scripts)
        try:
            title = f"sql_scripts no-op, {args.scripts} applied scripts"
            measure_and_report(host, MODULE, module_args, args.rounds, title)
        finally:
            psql(host, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", check=False)
            docker_exec(host, "rm", "-rf", SCRIPTS_DIR)


if __name__ == "__main__":
    main()
