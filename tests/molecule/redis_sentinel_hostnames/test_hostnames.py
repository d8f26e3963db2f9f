"""Sentinel and replication by host name: names in every answer, a failover, a converge afterwards.

The container names resolve only inside the lab network, so every client runs inside a host: a small
redis-py script that reads the password from the role's root-only state file (no password on any
command line) and prints the reply as JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import testinfra
import testinfra.utils.ansible_runner
from playbook_run import ansible_playbook

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("redis")
SCENARIO = Path(__file__).resolve().parents[3] / "molecule" / "redis_sentinel_hostnames"
MASTER_NAME = "tgstack"
PROMOTION_LIMIT = 15.0

# argv: state file, port, command...; prints the reply (or the error) as JSON
CLIENT = """
import json, sys, redis
state = json.load(open(sys.argv[1]))
conn = redis.Redis(host="127.0.0.1", port=int(sys.argv[2]), password=state["password"],
                   socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
try:
    print(json.dumps({"reply": conn.execute_command(*sys.argv[3:])}))
except redis.RedisError as error:
    print(json.dumps({"error": str(error)}))
"""


def host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def ask(name: str, port: int, *command: str):
    state = "/etc/redis/tgstack-sentinel.json" if port == 26379 else "/etc/redis/tgstack-redis.json"
    args = " ".join(shlex.quote(part) for part in (state, str(port), *command))
    answer = json.loads(host(name).check_output(f"python3 -c {shlex.quote(CLIENT)} {args}"))
    return answer.get("reply", answer.get("error"))


def sentinel(name: str, *command: str):
    return ask(name, 26379, *command)


def info(name: str) -> dict[str, str]:
    text = ask(name, 6379, "INFO", "replication")
    if isinstance(text, dict):
        return {str(key): str(value) for key, value in text.items()}
    return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)


def masters_seen() -> dict[str, str | None]:
    seen = {}
    for name in HOSTS:
        reply = sentinel(name, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        seen[name] = reply[0] if isinstance(reply, list) and reply else None
    return seen


def agreed_master() -> str:
    seen = set(masters_seen().values())
    assert len(seen) == 1 and None not in seen, f"the Sentinels disagree: {seen}"
    return seen.pop()


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = check()
        if last:
            return last, time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def test_sentinels_resolve_and_announce_host_names():
    for name in HOSTS:
        for setting in ("resolve-hostnames", "announce-hostnames"):
            reply = sentinel(name, "SENTINEL", "CONFIG", "GET", setting)
            values = dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else reply
            assert values[setting] == "yes", (name, reply)


def test_the_master_is_named_and_the_replicas_follow_it_by_name():
    master = agreed_master()
    assert master in HOSTS, f"the Sentinels report {master}, not an inventory name"
    for name in HOSTS:
        replication = info(name)
        if name == master:
            assert replication["role"] == "master"
            assert replication["connected_slaves"] == "2", replication
        else:
            assert replication["role"] == "slave" and replication["master_host"] == master, replication
            assert replication["master_link_status"] == "up", replication
    for name in HOSTS:
        replicas = sentinel(name, "SENTINEL", "REPLICAS", MASTER_NAME)
        addresses = sorted(dict(zip(entry[::2], entry[1::2], strict=True))["ip"] for entry in replicas)
        assert addresses == sorted(set(HOSTS) - {master}), f"the Sentinel on {name} knows the replicas as {addresses}"


def test_failover_by_name_and_converge_afterwards():
    old = agreed_master()
    stopped = time.monotonic()
    host(old).check_output("systemctl stop redis-server")
    try:

        def moved():
            seen = set(masters_seen().values())
            return seen.pop() if len(seen) == 1 and None not in seen and old not in seen else None

        new = wait_for("every Sentinel names a new master", moved, timeout=60, interval=0.2)[0]
        promotion = time.monotonic() - stopped
        print(f"\nfailover by name: {old} -> {new}; every Sentinel named it {promotion:.2f} s after the stop")
        assert promotion <= PROMOTION_LIMIT
        assert new in HOSTS
        assert info(new)["role"] == "master"
    finally:
        host(old).check_output("systemctl start redis-server")

    def rejoined():
        replication = info(old)
        return (
            replication.get("role") == "slave"
            and replication.get("master_host") == new
            and (replication.get("master_link_status") == "up")
        )

    wait_for(f"{old} rejoins as a replica of {new} by name", rejoined, timeout=60)

    run = ansible_playbook(SCENARIO / "converge.yml")
    assert run.rc == 0, run.output[-4000:]
    for name in HOSTS:
        assert run.recap(name)["changed"] == 0, f"{name} changed after the failover:\n{run.output[-4000:]}"
    assert agreed_master() == new, "the converge moved the master back"
