"""Helpers for the Redis tests of the pgbouncer_redis_sentinel scenario: addresses, clients, playbook runs.

Clients run on the controller with redis-py and talk to the containers' own addresses (Docker bridge
addresses are reachable from the machine), so no password ever reaches a command line in the lab.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import redis
import testinfra
import testinfra.utils.ansible_runner
from playbook_run import PlaybookRun, ansible_playbook

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]
SCENARIO = PROJECT / "molecule" / "pgbouncer_redis_sentinel"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("redis")
SENTINEL_PORT = 26379
REDIS_PORT = 6379
MASTER_NAME = "tgstack"


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@functools.cache
def variables() -> dict:
    return host(HOSTS[0]).ansible.get_variables()


@functools.cache
def address(name: str) -> str:
    """The container's own IPv4 address on the lab network."""
    return host(name).check_output("hostname -I").split()[0]


def name_of(ip: str) -> str:
    return next(name for name in HOSTS if address(name) == ip)


def data_client(name: str, user: str | None = None, password: str | None = None) -> redis.Redis:
    return redis.Redis(
        host=address(name),
        port=REDIS_PORT,
        username=user,
        password=password,
        socket_timeout=3,
        socket_connect_timeout=3,
        decode_responses=True,
    )


def admin(name: str, password: str | None = None) -> redis.Redis:
    return data_client(name, None, password or variables()["redis_password"])


def sentinel_client(name: str, password: str | None = None) -> redis.Redis:
    return redis.Redis(
        host=address(name),
        port=SENTINEL_PORT,
        password=password or variables()["redis_sentinel_password"],
        socket_timeout=3,
        socket_connect_timeout=3,
        decode_responses=True,
    )


def master_seen_by(name: str) -> str | None:
    """The master's address as the Sentinel on NAME reports it, None when it does not answer."""
    try:
        answer = sentinel_client(name).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
    except redis.RedisError:
        return None
    return f"{answer[0]}:{answer[1]}" if answer else None


def current_master() -> str:
    """Inventory name of the master all Sentinels agree on (fails when they disagree)."""
    seen = {master_seen_by(name) for name in HOSTS}
    assert len(seen) == 1 and None not in seen, f"the Sentinels disagree or do not answer: {seen}"
    return name_of(seen.pop().split(":")[0])


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    """Call CHECK until it returns something truthy; fail after TIMEOUT seconds. Returns (value, seconds)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        try:
            last = check()
        except redis.RedisError as error:
            last = error
        else:
            if last:
                return last, time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def converge() -> PlaybookRun:
    return ansible_playbook(SCENARIO / "converge.yml")


def apply_redis_roles(extra_vars: dict | None = None) -> PlaybookRun:
    """The redis and redis_sentinel roles alone (apply.yml), with EXTRA_VARS on top of the inventory's."""
    return ansible_playbook(HERE / "apply.yml", "-e", json.dumps(extra_vars or {}))


def health(tmp_path: Path, wait: bool = False, timeout: int = 30, extra: dict | None = None) -> dict:
    """Run tgstack.hybrid.redis_sentinel_health through a playbook; return its result (also when it failed).
    EXTRA overrides inventory variables (the passwords, after a rotation)."""
    out = tmp_path / f"health-{time.monotonic_ns()}.json"
    run = ansible_playbook(
        HERE / "health.yml",
        "-e",
        json.dumps({**(extra or {}), "health_out": str(out), "health_wait": wait, "health_timeout": timeout}),
        timeout=timeout + 300,
    )
    assert out.exists(), f"the health playbook wrote no result:\n{run.output[-3000:]}"
    return json.loads(out.read_text())
