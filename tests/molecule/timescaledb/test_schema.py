"""The role applies the message schema with the script ledger; enable_sql.yml moves it forward."""

from __future__ import annotations

import os
import subprocess

import testinfra
import testinfra.utils.ansible_runner
from pgserver import PROJECT, Server

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("timescaledb")
testinfra_hosts = HOSTS
SCRIPTS = sorted(path.name for path in (PROJECT / "roles" / "timescaledb" / "files" / "sql").glob("*.sql"))


def expected_scripts(target: str) -> list[str]:
    if not target:
        return SCRIPTS
    stem = target.removesuffix(".sql")
    return [name for name in SCRIPTS if name <= f"{stem}.sql"]


def schema_database(server: Server) -> str:
    return server.vars.get("timescaledb_schema_database") or server.vars["timescaledb_databases"][0]["name"]


def ledger(server: Server) -> list[str]:
    rows = server.sql("SELECT name FROM tgstack_meta.sql_scripts ORDER BY name", schema_database(server))
    return rows.splitlines()


def test_schema_scripts_applied_once_up_to_the_target(server):
    assert ledger(server) == expected_scripts(server.vars.get("timescaledb_schema_target", ""))
    database = schema_database(server)
    dimension = server.sql(
        "SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_name = 'messages'", database
    )
    assert dimension == "created_at"


def run_enable_sql(*extra: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(PROJECT / ".ansible" / "collections"))
    return subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, str(PROJECT / "playbooks" / "enable_sql.yml"), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_enable_sql_previews_then_applies_the_next_scripts(host, server):
    target = server.vars.get("timescaledb_schema_target", "")
    if not target or expected_scripts(target) == SCRIPTS:
        return  # this scenario applies every script already: nothing left to enable
    before = ledger(server)
    following = [name for name in SCRIPTS if name not in before][:2]
    next_target = following[-1].removesuffix(".sql")

    preview = run_enable_sql("-e", f"sql_target={next_target}")
    assert preview.returncode == 0, preview.stdout[-3000:] + preview.stderr[-2000:]
    assert ", ".join(following) in preview.stdout
    assert "preview only" in preview.stdout
    assert ledger(server) == before

    applied = run_enable_sql("-e", f"sql_target={next_target}", "-e", "sql_apply=true")
    assert applied.returncode == 0, applied.stdout[-3000:] + applied.stderr[-2000:]
    assert ledger(server) == before + following

    missing = run_enable_sql()
    assert missing.returncode != 0
    assert "-e sql_target=" in missing.stdout
