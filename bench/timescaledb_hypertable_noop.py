"""No-op run time of tgstack.hybrid.timescaledb_hypertable on an up-to-date table: on the host and through Ansible.

Setup: a database `bench_hypertable` (timescaledb extension) on a TimescaleDB lab host with a table
bench_metrics(ts timestamptz, device int, value float8), made a hypertable once with the module (range on
ts, chunk_time_interval 1 day, hash dimension on device with 4 partitions) and filled with 30 days of
rows for 16 devices (about 120 chunks). Then, median of --rounds runs each (after one warm-up run), the
no-op run with the same arguments (reads the table, its columns, the hypertable and its dimensions, finds
nothing to do) timed as described in bench/_module_timing.py: (a) the module's own run on the host
(AnsiballZ explode + execute), (b) the task through ansible-playbook; ansible.builtin.ping the same ways
as the floor.

Run from the repository root with the lab bootstrapped:

    source lab/bootstrap && python3 bench/timescaledb_hypertable_noop.py [HOST] [--rounds 7] [--days 30]

HOST is a lab host with PostgreSQL + TimescaleDB (e.g. tgstack-it-tsdb from the integration fixtures);
without it the benchmark starts, converges and finally removes its own host tgstack-bench-modules.

Target: (a) under 300 ms.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _module_timing import lab_host, measure_and_report
from labhost import psql, run_module

DATABASE = "bench_hypertable"
MODULE = "tgstack.hybrid.timescaledb_hypertable"
ARGS = {
    "login_db": DATABASE,
    "table": "public.bench_metrics",
    "time_column": "ts",
    "chunk_time_interval": "1 day",
    "partitioning_column": "device",
    "number_partitions": 4,
}


def prepare(host: str, days: int) -> dict[str, Any]:
    psql(host, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(host, f"CREATE DATABASE {DATABASE}")
    psql(host, "CREATE EXTENSION IF NOT EXISTS timescaledb", db=DATABASE)
    psql(host, "CREATE TABLE bench_metrics (ts timestamptz NOT NULL, device int NOT NULL, value float8)", db=DATABASE)
    created = run_module(host, MODULE, ARGS)
    if created.get("failed") or not created.get("changed"):
        sys.exit(f"creating the hypertable failed: {created.get('msg', created)}")
    psql(host, "INSERT INTO bench_metrics SELECT ts, device, random() FROM generate_series("
         f"now() - interval '{days} days', now(), interval '5 minutes') AS ts, generate_series(1, 16) AS device",
         db=DATABASE)  # fmt: skip
    again = run_module(host, MODULE, ARGS)
    if again.get("failed") or again.get("changed"):
        sys.exit(f"the hypertable is not up to date after creating it: {again}")
    chunks = again["hypertable"]["num_chunks"]
    rows = psql(host, "SELECT count(*) FROM bench_metrics", db=DATABASE)
    print(f"hypertable public.bench_metrics: {rows} rows in {chunks} chunks", file=sys.stderr)
    return ARGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", nargs="?", help="lab host with PostgreSQL + TimescaleDB (default: start one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--days", type=int, default=30, help="days of rows (one chunk per day and hash partition)")
    args = parser.parse_args()

    with lab_host(args.host) as host:
        module_args = prepare(host, args.days)
        try:
            title = "timescaledb_hypertable no-op, up-to-date hypertable (range + hash dimension)"
            measure_and_report(host, MODULE, module_args, args.rounds, title)
        finally:
            psql(host, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", check=False)


if __name__ == "__main__":
    main()
