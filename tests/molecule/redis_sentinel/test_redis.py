"""Replication and the ACL users, as a client of the data nodes sees them."""

from __future__ import annotations

import uuid

import pytest
import redis
from redislab import HOSTS, SENTINEL_PORT, address, admin, current_master, data_client, variables, wait_for


def app_client(name: str) -> redis.Redis:
    v = variables()
    return data_client(name, v.get("redis_acl_app_user", "tgstack_app"), v["redis_acl_app_password"])


def test_one_master_and_linked_replicas():
    master = current_master()
    replicas = [name for name in HOSTS if name != master]
    info = admin(master).info("replication")
    assert info["role"] == "master"
    assert info["connected_slaves"] == len(replicas), info
    for name in replicas:
        replica = admin(name).info("replication")
        assert replica["role"] == "slave"
        assert replica["master_link_status"] == "up", replica


def test_a_write_on_the_master_reaches_every_replica():
    master = current_master()
    key, value = f"tgstack:test:{uuid.uuid4()}", "replicated"
    assert app_client(master).set(key, value, ex=300)
    for name in HOSTS:
        if name != master:
            wait_for(f"{key} on {name}", lambda name=name: app_client(name).get(key) == value, timeout=10)


def test_replicas_refuse_writes():
    replica = next(name for name in HOSTS if name != current_master())
    with pytest.raises(redis.ReadOnlyError):
        app_client(replica).set("tgstack:test:readonly", "x")


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "requirepass"),
        ("KEYS", "*"),
        ("ACL", "LIST"),
    ],
)
def test_the_app_user_is_refused_dangerous_commands(command):
    with pytest.raises(redis.exceptions.NoPermissionError, match="has no permissions to run"):
        app_client(current_master()).execute_command(*command)


def test_the_replication_and_sentinel_users_cannot_read_data():
    v = variables()
    master = current_master()
    for user, password in (
        (v.get("redis_acl_replication_user", "tgstack_replication"), v["redis_acl_replication_password"]),
        (v.get("redis_acl_sentinel_user", "tgstack_sentinel"), v["redis_acl_sentinel_password"]),
    ):
        client = data_client(master, user, password)
        assert client.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("tgstack:anything")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()


def test_a_wrong_password_gets_a_clear_error():
    v = variables()
    master = current_master()
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        data_client(master, v.get("redis_acl_app_user", "tgstack_app"), "not-the-password").ping()
    with pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        data_client(master, None, "not-the-password").ping()


def test_no_password_no_service():
    with pytest.raises(redis.AuthenticationError, match=r"(?i)authenticat"):
        data_client(current_master()).get("tgstack:anything")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=address(HOSTS[0]), port=SENTINEL_PORT, socket_timeout=3).execute_command("SENTINEL", "MASTERS")


def test_settings_are_live():
    info = admin(current_master()).config_get("maxmemory", "maxmemory-policy", "appendonly", "protected-mode")
    assert info == {
        "maxmemory": str(64 * 1024 * 1024),
        "maxmemory-policy": "volatile-lru",
        "appendonly": "yes",
        "protected-mode": "yes",
    }
