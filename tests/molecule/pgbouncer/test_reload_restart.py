"""A pool setting is applied with a reload (no client cut); a port change restarts; a rerun is quiet.

The test changes the scenario's host and converges it back afterwards (the last run must again
report no change), so later tests and the destroy step see the scenario as it was.
"""

from __future__ import annotations

import os

import testinfra
import testinfra.utils.ansible_runner
from bouncer import Bouncer, run_role

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("pgbouncer")


def test_reload_for_pool_settings_restart_for_port_and_nothing_when_unchanged():
    name = HOSTS[0]
    bouncer = Bouncer(testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}"))
    pid = bouncer.main_pid()
    pool_size = int(bouncer.vars["pgbouncer_default_pool_size"])

    run = run_role(name, {"pgbouncer_default_pool_size": pool_size + 3})
    assert run.rc == 0, run.output[-3000:]
    assert "RUNNING HANDLER [tgstack.hybrid.pgbouncer : Reload pgbouncer]" in run.output
    assert bouncer.show_config()["default_pool_size"] == str(pool_size + 3)
    assert bouncer.main_pid() == pid, "a reloadable setting restarted PgBouncer"

    new_port = bouncer.port + 1
    run = run_role(name, {"pgbouncer_port": new_port})
    assert run.rc == 0, run.output[-3000:]
    assert bouncer.main_pid() != pid, "a port change did not restart PgBouncer"
    assert bouncer.host.socket(f"tcp://127.0.0.1:{new_port}").is_listening
    assert not bouncer.host.socket(f"tcp://127.0.0.1:{bouncer.port}").is_listening

    run = run_role(name)  # back to the scenario's own variables: a restart again (the port)
    assert run.rc == 0, run.output[-3000:]
    restored = bouncer.main_pid()
    run = run_role(name)
    assert run.rc == 0 and run.recap(name)["changed"] == 0, run.output[-3000:]
    assert bouncer.main_pid() == restored, "a run that changed nothing restarted PgBouncer"
    served = bouncer.login(bouncer.app["name"], bouncer.app["password"])
    assert served.rc == 0, served.stderr
