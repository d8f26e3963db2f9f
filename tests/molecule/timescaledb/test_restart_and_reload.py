"""A setting change reloads, a shared_preload_libraries change restarts, and each says so.

The test changes the scenario's host and converges it back afterwards (the last run must again
report no change), so later tests and the destroy step see the scenario as it was.
"""

from __future__ import annotations

import json
import os

import testinfra
import testinfra.utils.ansible_runner
from pgserver import Server, run_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("timescaledb")


def postmaster_pid(name: str) -> str:
    host = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
    return host.check_output("head -1 /var/lib/postgresql/17/main/postmaster.pid")


def test_reload_for_settings_restart_for_preload_and_nothing_when_unchanged(tmp_path):
    name = HOSTS[0]
    server = Server(testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}"))
    settings = dict(server.vars.get("timescaledb_settings", {}))
    preload = list(server.vars.get("timescaledb_shared_preload_libraries", ["timescaledb"]))
    before = postmaster_pid(name)

    reload_vars = tmp_path / "reload.json"
    reload_vars.write_text(json.dumps({"timescaledb_settings": {**settings, "work_mem": "7MB"}}))
    run = run_playbook(name, "--diff", extra_vars_file=reload_vars)
    assert run.rc == 0, run.output[-3000:]
    assert "RUNNING HANDLER [tgstack.hybrid.timescaledb : Reload postgresql]" in run.output
    assert server.sql("SHOW work_mem") == "7MB"
    assert postmaster_pid(name) == before, "a reloadable setting restarted the server"

    restart_vars = tmp_path / "restart.json"
    restart_vars.write_text(json.dumps({"timescaledb_shared_preload_libraries": [*preload, "pg_prewarm"]}))
    run = run_playbook(name, extra_vars_file=restart_vars)
    assert run.rc == 0, run.output[-3000:]
    assert "pg_prewarm" in server.sql("SHOW shared_preload_libraries")
    assert postmaster_pid(name) != before, "a shared_preload_libraries change did not restart the server"

    run = run_playbook(name)  # back to the scenario's own variables: a restart again (preload shrinks)
    assert run.rc == 0, run.output[-3000:]
    after_restore = postmaster_pid(name)
    run = run_playbook(name)
    assert run.rc == 0 and run.recap(name)["changed"] == 0, run.output[-3000:]
    assert postmaster_pid(name) == after_restore, "a run that changed nothing restarted the server"
