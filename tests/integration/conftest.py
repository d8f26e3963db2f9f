"""Integration tests: the collection as users get it, and the README's lab command, on real lab hosts."""

from __future__ import annotations

import os
import subprocess
import typing as t

import pytest
from labhost import PROJECT, converge_timescaledb, psql, run, start_lab_container

# The TimescaleDB host the module and schema tests share: the timescaledb role with pg_cron (the
# Apache edition's scheduler for the policy fallback). Each test module works in its own database.
# The RabbitMQ host the rabbitmq_users and rabbitmq_topology tests share (Debian's rabbitmq-server).
RABBITMQ_HOST = os.environ.get("TGSTACK_IT_RABBITMQ_HOST", "tgstack-it-rabbitmq")
TSDB_HOST = os.environ.get("TGSTACK_IT_TSDB_HOST", "tgstack-it-tsdb")
TSDB_VARS = {
    "timescaledb_tune_memory_mb": 1024,
    "timescaledb_pg_cron_enabled": True,
    # the schema scripts have tests of their own (test_message_schema.py), in databases of their own
    "timescaledb_schema_enabled": False,
    "timescaledb_roles": [{"name": "tgstack_app", "password": "it-app-password"}],
    "timescaledb_databases": [{"name": "tgstack", "owner": "tgstack_app"}],
}


@pytest.fixture(scope="session")
def tsdb_host():
    """A lab host with PostgreSQL 17 + TimescaleDB (+ pg_cron) from the timescaledb role; removed at the end."""
    # TGSTACK_IT_KEEP=1 (for development loops): reuse a running host and leave it running afterwards
    keep = os.environ.get("TGSTACK_IT_KEEP") == "1"
    running = run(["docker", "inspect", "-f", "{{.State.Running}}", TSDB_HOST]).stdout.strip() == "true"
    if not (keep and running):
        start_lab_container(TSDB_HOST)
    converged = converge_timescaledb(TSDB_HOST, TSDB_VARS)
    assert converged.returncode == 0, converged.stdout[-4000:] + converged.stderr[-2000:]
    yield TSDB_HOST
    if not keep:
        run(["docker", "rm", "-f", TSDB_HOST])


@pytest.fixture
def fresh_database(tsdb_host, request):
    """An empty database (with the timescaledb extension) on the shared host, named after the test."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:50]
    psql(tsdb_host, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(tsdb_host, f"CREATE DATABASE {name}")
    psql(tsdb_host, "CREATE EXTENSION IF NOT EXISTS timescaledb", db=name)
    return name


@pytest.fixture
def lab_container(request):
    """A fresh, never-configured lab host; removed afterwards."""
    name = f"tgstack-it-{request.node.name}".replace("[", "-").replace("]", "")[:60]
    start_lab_container(name)
    yield name
    run(["docker", "rm", "-f", name])


@pytest.fixture(scope="session")
def broker():
    """A lab host with Debian's rabbitmq-server and a vhost "tgstack"; removed at the end."""
    start_lab_container(RABBITMQ_HOST)
    installed = run(["docker", "exec", RABBITMQ_HOST, "bash", "-c",
                     "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server"],
                    timeout=600)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    added = run(["docker", "exec", RABBITMQ_HOST, "rabbitmqctl", "--quiet", "add_vhost", "tgstack"])
    assert added.returncode == 0, added.stderr
    yield RABBITMQ_HOST
    run(["docker", "rm", "-f", RABBITMQ_HOST])


def lab_exists() -> bool:
    return bool(run(["docker", "ps", "-aq", "--filter", "label=tgstack-lab=1"]).stdout.strip())


@pytest.fixture(scope="session")
def lab() -> t.Iterator[subprocess.CompletedProcess]:
    """The README's first command, run once for the tests that need the lab: lab/up's result.

    The lab is removed at the end unless it existed before the run (a developer's own lab is left alone).
    """
    existed = lab_exists()
    try:
        yield run([str(PROJECT / "lab" / "up")], cwd=PROJECT, timeout=1800)
    finally:
        if not existed:
            run([str(PROJECT / "lab" / "down")], cwd=PROJECT)
