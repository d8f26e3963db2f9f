"""Bad input fails in preflight, names the variable and the fix, and leaves the host untouched."""

from __future__ import annotations

import json
import os

import pytest
import testinfra
import testinfra.utils.ansible_runner
from pgserver import run_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
CONVERGED = RUNNER.get_hosts("timescaledb")
FRESH = RUNNER.get_hosts("fresh")
CONFIG_FILES = "/etc/postgresql/17/main/conf.d/50-tgstack.conf /etc/postgresql/17/main/pg_hba.conf"

GOOD_HBA = {"type": "host", "database": "all", "user": "all", "address": "127.0.0.1/32", "method": "scram-sha-256"}
BAD_INPUTS = {
    "unknown package source": (
        {"timescaledb_package_source": "pgdg"},
        ["timescaledb_package_source", "debian, timescale"],
    ),
    "pg_hba unknown method": (
        {"timescaledb_hba_entries": [GOOD_HBA, {**GOOD_HBA, "method": "scram-sha-512"}]},
        ["timescaledb_hba_entries[1]", "unknown method", "scram-sha-256"],
    ),
    "pg_hba md5": (
        {"timescaledb_hba_entries": [{**GOOD_HBA, "method": "md5"}]},
        ["timescaledb_hba_entries[0]", "md5", "scram-sha-256"],
    ),
    "pg_hba trust": (
        {"timescaledb_hba_entries": [{**GOOD_HBA, "method": "trust"}]},
        ["timescaledb_hba_entries[0]", "timescaledb_hba_allow_trust"],
    ),
    "pg_hba address": (
        {"timescaledb_hba_entries": [{**GOOD_HBA, "address": "10.0.0.300/8"}]},
        ["timescaledb_hba_entries[0]", "10.0.0.300/8", "does not parse"],
    ),
    "memory setting": (
        {"timescaledb_tuning": {"shared_buffers": "2 gigs"}},
        ["timescaledb_tuning.shared_buffers", "2 gigs", "512MB"],
    ),
    "database owner": (
        {"timescaledb_databases": [{"name": "tgstack", "owner": "nobody"}]},
        ["timescaledb_databases", "nobody", "timescaledb_roles"],
    ),
}


def snapshot(name: str) -> str:
    """What a bad run must not change: packages, config files, the server's process."""
    host = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
    return host.check_output(
        "dpkg-query -W -f '${Package} ${Status}\\n' 'postgresql*' 2>/dev/null | grep ' installed$' | sort; "
        f"sha256sum {CONFIG_FILES} 2>/dev/null; "
        "head -1 /var/lib/postgresql/17/main/postmaster.pid 2>/dev/null; "
        "ls /etc/apt/sources.list.d/"
    )


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_in_preflight_and_changes_nothing(case, tmp_path):
    extra_vars, expected_words = BAD_INPUTS[case]
    targets = CONVERGED + FRESH
    before = {name: snapshot(name) for name in targets}
    vars_file = tmp_path / "bad.json"
    vars_file.write_text(json.dumps(extra_vars))

    run = run_playbook(",".join(targets), extra_vars_file=vars_file)

    assert run.rc != 0, run.output[-3000:]
    for word in expected_words:
        assert word in run.output, f"{word!r} missing from the error:\n{run.output[-3000:]}"
    for name in targets:
        recap = run.recap(name)
        assert recap["failed"] == 1 and recap["changed"] == 0, run.output[-3000:]
        assert snapshot(name) == before[name]
