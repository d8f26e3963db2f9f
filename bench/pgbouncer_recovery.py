"""PgBouncer recovery time on the lab: PostgreSQL restarts behind PgBouncer under a counted insert loop.

Each round runs the molecule test's insert loop (tests/molecule/pgbouncer/insert_loop.py) on the lab
host that runs PgBouncer: one numbered row per transaction through PgBouncer (psycopg 3, transaction
pooling) for 20 s, with `systemctl restart postgresql@17-main` after 4 s. Figures per round: the longest
time the client went without an acknowledged insert (the restart as the client sees it), how long the
restart command itself took, the acknowledged inserts and how many of them are missing from the table
afterwards (must be 0).

    source lab/bootstrap && lab/up && python3 bench/pgbouncer_recovery.py [--rounds 3]

Installs python3-psycopg on the lab host when missing (Debian's package). Bounded: each loop stops
after 20 s (90 s hard limit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from _lab import PROJECT, docker_exec, group, host_vars, require_lab, run

LOOP = PROJECT / "tests" / "molecule" / "pgbouncer" / "insert_loop.py"
REMOTE_LOOP = "/var/tmp/tgstack-insert-loop.py"
UNIT = "postgresql@17-main"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--restart-at", type=float, default=4)
    args = parser.parse_args()
    host = group("pgbouncer")[0]
    require_lab([host])
    variables = host_vars(host)
    database = variables["pgbouncer_databases"][0]["name"]
    app = variables["timescaledb_roles"][0]
    port = variables.get("pgbouncer_port", 6432)
    installed = subprocess.run(
        ["docker", "exec", host, "dpkg-query", "-W", "-f", "${Status}", "python3-psycopg"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    if "ok installed" not in installed:
        print(f"installing python3-psycopg on {host}", flush=True)
        docker_exec(host, "apt-get", "install", "-y", "-q", "python3-psycopg", timeout=300)
    run(["docker", "cp", str(LOOP), f"{host}:{REMOTE_LOOP}"])
    dsn = f"host=127.0.0.1 port={port} dbname={database} user={app['name']}"
    gaps = []
    for number in range(1, args.rounds + 1):
        output = docker_exec(
            host, "timeout", "90", "python3", REMOTE_LOOP, dsn, UNIT, str(args.seconds), str(args.restart_at),
            secrets={"PGPASSWORD": app["password"]}, timeout=120,
        )  # fmt: skip
        summary = json.loads(output)
        acknowledged = set(summary.pop("acknowledged"))
        stored = docker_exec(
            host, "runuser", "-u", "postgres", "--", "psql", "-X", "-d", database, "-Atc",
            "SELECT seq FROM pgbouncer_probe",
        )  # fmt: skip
        lost = acknowledged - {int(seq) for seq in stored.split()}
        gaps.append(summary["longest_gap_seconds"])
        print(
            f"round {number}: longest time without an acknowledged insert {summary['longest_gap_seconds']:.2f} s "
            f"(the restart command took {summary['restart_seconds']:.2f} s); "
            f"{len(acknowledged)} inserts acknowledged, {len(lost)} missing; "
            f"errors seen: {summary['errors'] or 'none'}",
            flush=True,
        )
        if lost:
            raise SystemExit(f"bench: {len(lost)} acknowledged rows are missing")
    docker_exec(
        host, "runuser", "-u", "postgres", "--", "psql", "-X", "-d", database, "-c", "DROP TABLE pgbouncer_probe"
    )
    print(
        f"PgBouncer recovery, median of {args.rounds}: {statistics.median(gaps):.2f} s without an acknowledged insert"
    )


if __name__ == "__main__":
    main()
