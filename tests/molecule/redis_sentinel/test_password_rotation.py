"""Passwords rotated by a converge: new ones work at once, old ones are refused, nothing is cut off.

Rotates the default password, the Sentinels' own password, the application user's password and the
Sentinel user's password (with its old one listed in redis_acl_previous_passwords for the run, as an
operator does), checks the group, and rotates everything back. Runs before the failover tests.
"""

from __future__ import annotations

import json

import redis
from redislab import HOSTS, admin, apply_redis_roles, data_client, health, sentinel_client, variables, wait_for

ROTATED = {
    "redis_password": "rotated-Admin-pw",
    "redis_sentinel_password": "rotated-Sentinel-pw",
    "redis_acl_app_password": "rotated-App-pw",
    "redis_acl_sentinel_password": "rotated-Sentinel-user-pw",
}


def original() -> dict[str, str]:
    return {name: variables()[name] for name in ROTATED}


def sentinel_user() -> str:
    return variables().get("redis_acl_sentinel_user", "tgstack_sentinel")


def app_user() -> str:
    return variables().get("redis_acl_app_user", "tgstack_app")


def refused(connection: redis.Redis) -> bool:
    try:
        connection.ping()
    except redis.AuthenticationError:
        return True
    return False


def assert_passwords(current: dict[str, str], old: dict[str, str]) -> None:
    for name in HOSTS:
        assert admin(name, current["redis_password"]).ping()
        assert refused(admin(name, old["redis_password"])), f"{name} still takes the old default password"
        assert sentinel_client(name, current["redis_sentinel_password"]).ping()
        old_sentinel = sentinel_client(name, old["redis_sentinel_password"])
        assert refused(old_sentinel), f"the Sentinel on {name} still takes the old password"
        assert data_client(name, app_user(), current["redis_acl_app_password"]).ping()
        assert refused(data_client(name, app_user(), old["redis_acl_app_password"]))
        replication = admin(name, current["redis_password"]).info("replication")
        assert replication["role"] == "master" or replication["master_link_status"] == "up", replication


def rotate(to: dict[str, str], keep_valid: dict[str, str], tmp_path) -> None:
    """Converge with the passwords TO, the Sentinel user's password KEEP_VALID accepted during the run."""
    previous = {sentinel_user(): [keep_valid["redis_acl_sentinel_password"]]}
    run = apply_redis_roles({**to, "redis_acl_previous_passwords": previous})
    assert run.rc == 0, run.output[-4000:]
    assert all(run.recap(name)["changed"] > 0 for name in HOSTS)
    again = apply_redis_roles({**to, "redis_acl_previous_passwords": previous})
    assert again.rc == 0, again.output[-4000:]
    for name in HOSTS:
        assert again.recap(name)["changed"] == 0, f"{name} changed on the second run:\n{again.output[-4000:]}"
    # the old Sentinel-user password is dropped by a run without it
    final = apply_redis_roles(dict(to))
    assert final.rc == 0, final.output[-4000:]
    for name in HOSTS:
        assert refused(data_client(name, sentinel_user(), keep_valid["redis_acl_sentinel_password"]))
        assert data_client(name, sentinel_user(), to["redis_acl_sentinel_password"]).ping()
    result = health(tmp_path, wait=True, timeout=60, extra=to)
    assert result["healthy"] is True, result.get("msg")


def test_rotation_and_back(tmp_path):
    before = original()
    try:
        rotate(ROTATED, before, tmp_path)
        assert_passwords(ROTATED, before)
    finally:
        rotate(before, ROTATED, tmp_path)
    assert_passwords(before, ROTATED)
    wait_for("every Sentinel answers with the original password", lambda: all(
        sentinel_client(name).ping() for name in HOSTS), timeout=10)  # fmt: skip


def test_a_wrong_sentinel_password_is_named_by_the_health_module(tmp_path):
    result = health(tmp_path, extra={"redis_sentinel_password": "not-the-password"})
    assert result["healthy"] is False and result["failed"] is True
    assert "refused the login as default" in result["msg"], result["msg"]
    assert "not-the-password" not in json.dumps(result)
