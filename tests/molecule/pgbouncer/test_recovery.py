"""PostgreSQL restarts behind PgBouncer: a retrying client is served again quickly and loses no row."""

from __future__ import annotations

import json
import os
import shlex

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(
    "pgbouncer"
)
RECOVERY_BOUND_SECONDS = 10


def test_restart_behind_pgbouncer_serves_retrying_client_within_bound_and_keeps_acknowledged_rows(host, bouncer):
    script = bouncer.put_script("insert_loop.py")
    pid_before = bouncer.sql("SELECT pg_postmaster_start_time()")
    dsn = f"host=127.0.0.1 port={bouncer.port} dbname={bouncer.database} user={bouncer.app['name']}"
    unit = "postgresql@17-main"
    # 20 s of inserts, PostgreSQL restarted after 4 s; the loop stops by itself
    run = host.run(
        f"PGPASSWORD={shlex.quote(bouncer.app['password'])} timeout 90 python3 {script} {shlex.quote(dsn)} {unit} 20 4"
    )
    assert run.rc == 0, run.stderr
    summary = json.loads(run.stdout)
    acknowledged = summary.pop("acknowledged")
    print(
        f"\nPostgreSQL restart behind PgBouncer: client served again after {summary['longest_gap_seconds']} s "
        f"(longest gap between acknowledged inserts; restart command took {summary['restart_seconds']} s); "
        f"{len(acknowledged)} acknowledged inserts, none lost; details {summary}"
    )

    assert bouncer.sql("SELECT pg_postmaster_start_time()") != pid_before, "PostgreSQL was not restarted"
    assert summary["recovered"] or not summary["failed"], f"the client was never served again: {summary}"
    # the longest stretch without an acknowledged insert is the restart as the client saw it
    assert 0 < summary["longest_gap_ended_after_restart_started"] < RECOVERY_BOUND_SECONDS + 5, summary
    assert summary["longest_gap_seconds"] < RECOVERY_BOUND_SECONDS, summary
    if summary["failed"]:
        assert summary["unserved_seconds"] < RECOVERY_BOUND_SECONDS, summary
    stored = set(map(int, bouncer.sql("SELECT seq FROM pgbouncer_probe", bouncer.database).split()))
    lost = sorted(set(acknowledged) - stored)
    assert not lost, f"{len(lost)} acknowledged rows are missing, first {lost[:10]}"
    # rows were written before and after the restart
    assert acknowledged and max(acknowledged) > summary["attempts"] * 0.8
