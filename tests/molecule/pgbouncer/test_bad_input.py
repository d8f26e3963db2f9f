"""A broken setting fails before it reaches PgBouncer, which keeps serving with its working config."""

from __future__ import annotations

import os

import pytest
import testinfra
import testinfra.utils.ansible_runner
from bouncer import AUTH_FILE, INI, Bouncer, run_role

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("pgbouncer")

BAD_INPUTS = {
    # caught by the argument spec, before any task
    "unknown pool mode": ({"pgbouncer_pool_mode": "bogus"}, ["pgbouncer_pool_mode", "session, transaction, statement"]),
    # caught by preflight
    "database pool mode": (
        {"pgbouncer_databases": [{"name": "tgstack", "host": "127.0.0.1", "dbname": "tgstack", "pool_mode": "bogus"}]},
        ["pgbouncer_databases[0]", "unknown pool_mode bogus"],
    ),
    "database without dbname": (
        {"pgbouncer_databases": [{"name": "tgstack", "host": "127.0.0.1"}]},
        ["pgbouncer_databases[0]", "dbname is missing"],
    ),
    "pool larger than client limit": (
        {"pgbouncer_max_client_conn": 4},
        ["pgbouncer_max_client_conn", "pgbouncer_default_pool_size"],
    ),
    "no prepared statements in transaction mode": (
        {"pgbouncer_max_prepared_statements": 0},
        ["pgbouncer_max_prepared_statements", "transaction"],
    ),
    "managed setting in pgbouncer_settings": (
        {"pgbouncer_settings": {"pool_mode": "session"}},
        ["pgbouncer_settings", "pgbouncer_pool_mode"],
    ),
    # passes preflight; refused by PgBouncer itself in the validation of the new file
    "unknown setting": ({"pgbouncer_settings": {"pool_mood": "transaction"}}, ["pool_mood", "PgBouncer refused"]),
    "bad value": ({"pgbouncer_settings": {"stats_period": "often"}}, ["stats_period", "PgBouncer refused"]),
}


def state(bouncer: Bouncer) -> str:
    """What a refused run must not change: the files and the running process."""
    return bouncer.host.check_output(f"sha256sum {INI} {AUTH_FILE}; systemctl show -P MainPID pgbouncer")


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_broken_setting_is_refused_and_pgbouncer_keeps_serving(case):
    extra_vars, expected_words = BAD_INPUTS[case]
    name = HOSTS[0]
    bouncer = Bouncer(testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}"))
    before = state(bouncer)

    run = run_role(name, extra_vars)

    assert run.rc != 0, run.output[-3000:]
    for word in expected_words:
        assert word in run.output, f"{word!r} missing from the error:\n{run.output[-3000:]}"
    assert run.recap(name)["failed"] == 1 and run.recap(name)["changed"] == 0, run.output[-3000:]
    assert state(bouncer) == before
    served = bouncer.login(bouncer.app["name"], bouncer.app["password"])
    assert served.rc == 0 and served.stdout.strip() == bouncer.app["name"], served.stderr
