"""Failover driven by the test, then a converge that must leave the new topology alone.

Runs last (file order): it moves the master. Every wait is bounded; the group is healthy again at the end.
"""

from __future__ import annotations

import time
import uuid

import redis
import redis.sentinel
from redislab import (
    HOSTS,
    MASTER_NAME,
    REDIS_PORT,
    SENTINEL_PORT,
    address,
    admin,
    converge,
    current_master,
    health,
    host,
    master_seen_by,
    variables,
    wait_for,
)

PROMOTION_LIMIT = 15.0


def sentinel_app_client() -> redis.sentinel.Sentinel:
    v = variables()
    return redis.sentinel.Sentinel(
        [(address(name), SENTINEL_PORT) for name in HOSTS],
        sentinel_kwargs={"password": v["redis_sentinel_password"], "socket_timeout": 2},
        username=v.get("redis_acl_app_user", "tgstack_app"),
        password=v["redis_acl_app_password"],
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )


def write_through_sentinel(key: str, value: str) -> bool:
    return bool(sentinel_app_client().master_for(MASTER_NAME).set(key, value, ex=600))


def test_failover_and_converge_afterwards(tmp_path):
    old_master = current_master()
    old_address = f"{address(old_master)}:{REDIS_PORT}"
    master = sentinel_app_client().master_for(MASTER_NAME)
    assert master.set("tgstack:test:before", "1", ex=600)
    assert master.wait(2, 5000) == 2, "the write did not reach both replicas"

    # measured from the stop command (which includes its own run time): the conservative figure
    stopped = time.monotonic()
    host(old_master).check_output("systemctl stop redis-server")
    try:

        def all_sentinels_moved():
            seen = {name: master_seen_by(name) for name in HOSTS}
            return (
                seen
                if None not in seen.values() and old_address not in seen.values() and len(set(seen.values())) == 1
                else None
            )

        seen = wait_for("every Sentinel reports a new master", all_sentinels_moved, timeout=60, interval=0.2)[0]
        promotion = time.monotonic() - stopped
        new_address = next(iter(seen.values()))
        print(
            f"\nfailover: {old_address} -> {new_address}; every Sentinel reported it {promotion:.2f} s after the stop"
        )
        assert promotion <= PROMOTION_LIMIT, f"promotion took {promotion:.1f} s (limit {PROMOTION_LIMIT} s)"

        new_master = current_master()
        assert admin(new_master).info("replication")["role"] == "master"
        key = f"tgstack:test:after:{uuid.uuid4()}"
        wait_for(
            "redis-py's Sentinel client writes to the new master", lambda: write_through_sentinel(key, "2"), timeout=15
        )
        assert admin(new_master).get("tgstack:test:before") == "1", "an acknowledged write was lost"
    finally:
        host(old_master).check_output("systemctl start redis-server")

    def rejoined():
        info = admin(old_master).info("replication")
        return (
            info["role"] == "slave"
            and info["master_link_status"] == "up"
            and info["master_host"] == address(new_master)
        )

    rejoin = wait_for(f"{old_master} rejoins as a replica of {new_master}", rejoined, timeout=60)[1]
    print(f"old master {old_master} linked as a replica {rejoin:.2f} s after its restart")
    wait_for(f"{key} reaches {old_master}", lambda: admin(old_master).get(key) == "2", timeout=10)

    result = health(tmp_path, wait=True, timeout=60)
    assert result["healthy"] is True, f"unhealthy after the failover: {result.get('msg')}"

    run = converge()
    assert run.rc == 0, run.output[-4000:]
    for name in HOSTS:
        assert run.recap(name)["changed"] == 0, f"{name} changed after the failover:\n{run.output[-4000:]}"
    assert current_master() == new_master, "the converge moved the master back"
    assert admin(old_master).info("replication")["role"] == "slave"


def test_health_is_unhealthy_with_one_sentinel_and_healthy_after(tmp_path):
    assert health(tmp_path)["healthy"] is True
    others = HOSTS[1:]
    for name in others:
        host(name).check_output("systemctl stop redis-sentinel")
    try:
        # the remaining Sentinel counts the others as down only after down-after-milliseconds
        def quorum_missing():
            result = health(tmp_path)
            return result if "CKQUORUM failed" in result.get("msg", "") else None

        result = wait_for("the health module reports the missing quorum", quorum_missing, timeout=60, interval=1)[0]
        assert result["healthy"] is False and result["failed"] is True
        message = result["msg"]
        print(f"\nhealth with one Sentinel up: {message}")
        for name in others:
            assert f"sentinel {address(name)}:{SENTINEL_PORT} is unreachable" in message
    finally:
        for name in others:
            host(name).check_output("systemctl start redis-sentinel")
    result = health(tmp_path, wait=True, timeout=60)
    assert result["healthy"] is True, result.get("msg")
