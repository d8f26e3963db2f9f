"""Check mode: nothing to change on a converged host, no failure on a fresh one."""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner
from pgserver import run_playbook

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])


def test_check_mode_on_converged_host_reports_no_change():
    run = run_playbook("timescaledb", "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    for host in RUNNER.get_hosts("timescaledb"):
        recap = run.recap(host)
        assert recap["changed"] == 0, run.output[-3000:]
        assert recap["failed"] == 0
    assert "timescaledb_edition=apache" in run.output


def test_check_mode_on_fresh_host_does_not_fail():
    fresh = RUNNER.get_hosts("fresh")
    if not fresh:
        return  # this scenario has no never-converged host
    run = run_playbook("fresh", "--check")
    assert run.rc == 0, run.output[-3000:]
    for host in fresh:
        assert run.recap(host)["failed"] == 0
        assert run.recap(host)["changed"] > 0  # it would install the packages
    assert "is not installed on" in run.output
