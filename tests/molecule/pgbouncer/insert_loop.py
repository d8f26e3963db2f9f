"""A counted insert loop through PgBouncer while PostgreSQL restarts (run inside the lab host).

Inserts one numbered row per transaction for DURATION seconds and restarts PostgreSQL after
RESTART_AT seconds. A row counts as acknowledged only when its INSERT returned; a failed attempt is
retried as a new row after a short pause (reconnecting when PgBouncer closed the connection).
Prints a JSON summary: the acknowledged numbers, the errors seen, and how long the client went
without an acknowledged insert (PgBouncer queues clients while the server is away, so the outage shows
up as a wait, or as errors followed by retries).
Bounded in time; the password comes from PGPASSWORD.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg


def restart_postgresql(unit: str, marks: dict) -> None:
    marks["restart_started"] = time.monotonic()
    subprocess.run(["systemctl", "restart", unit], check=True, timeout=60)
    marks["restart_done"] = time.monotonic()


def main(dsn: str, unit: str, duration: float, restart_at: float) -> dict:
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS pgbouncer_probe (seq integer PRIMARY KEY, at timestamptz)")
        setup.execute("TRUNCATE pgbouncer_probe")

    marks: dict[str, float] = {}
    restarter = threading.Timer(restart_at, restart_postgresql, (unit, marks))
    start = time.monotonic()
    restarter.start()
    acknowledged: list[int] = []
    last_ack = start
    longest_gap = 0.0
    gap_end = start
    errors: list[str] = []
    first_failure = recovered = None
    conn = None
    seq = 0
    while time.monotonic() - start < duration:
        seq += 1
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
            conn.execute("INSERT INTO pgbouncer_probe (seq, at) VALUES (%s, now())", (seq,))
        except psycopg.Error as error:
            if first_failure is None:
                first_failure = time.monotonic()
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if message not in errors:
                errors.append(message)
            if conn is not None and conn.broken:
                conn.close()
            time.sleep(0.05)
            continue
        acknowledged.append(seq)
        now = time.monotonic()
        if now - last_ack > longest_gap:
            longest_gap, gap_end = now - last_ack, now
        last_ack = now
        if first_failure is not None and recovered is None:
            recovered = time.monotonic()
        time.sleep(0.01)
    restarter.join()
    if conn is not None:
        conn.close()

    def since(mark: float | None, origin: float | None) -> float | None:
        return None if mark is None or origin is None else round(mark - origin, 3)

    return {
        "attempts": seq,
        "acknowledged": acknowledged,
        "errors": errors,
        "restart_seconds": since(marks.get("restart_done"), marks.get("restart_started")),
        # the longest time the client went without an acknowledged insert (waiting in PgBouncer's
        # queue or retrying after an error), and when that gap ended relative to the restart command
        "longest_gap_seconds": round(longest_gap, 3),
        "longest_gap_ended_after_restart_started": since(gap_end, marks.get("restart_started")),
        "unserved_seconds": since(recovered, first_failure),
        "served_after_restart_seconds": since(recovered, marks.get("restart_done")),
        "failed": first_failure is not None,
        "recovered": recovered is not None,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
