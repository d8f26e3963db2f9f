"""No password in the process list, in unit files or in world-readable files; rewritten files stay private."""

from __future__ import annotations

import pytest
from redislab import HOSTS, host, variables

SECRET_VARS = (
    "redis_password",
    "redis_acl_app_password",
    "redis_acl_replication_password",
    "redis_acl_sentinel_password",
    "redis_sentinel_password",
)
PLACES = "/etc /var/lib/redis /var/log/redis /usr/local /run /lib/systemd"


def secrets() -> list[str]:
    return [variables()[name] for name in SECRET_VARS]


@pytest.mark.parametrize("name", HOSTS)
def test_no_password_in_the_process_list(name):
    processes = host(name).check_output("ps -eww -o args")
    assert "redis-server" in processes and "redis-sentinel" in processes
    for secret in secrets():
        assert secret not in processes


@pytest.mark.parametrize("name", HOSTS)
def test_files_holding_passwords_are_private(name):
    lab = host(name)
    for secret in secrets():
        found = lab.run(f"timeout 60 grep -rlsF -D skip -- {secret!r} {PLACES}").stdout.split()
        for path in found:
            mode = lab.file(path).mode
            assert mode & 0o007 == 0, f"{path} holds a password and is readable by others (mode {mode:o})"
            assert not path.startswith(("/etc/systemd", "/lib/systemd")), f"{path}: a unit file holds a password"


@pytest.mark.parametrize("name", HOSTS)
def test_the_units_keep_rewritten_files_private(name):
    lab = host(name)
    for unit in ("redis-server", "redis-sentinel"):
        assert lab.check_output(f"systemctl show -p UMask --value {unit}") == "0007"
        assert lab.service(unit).is_running
    for path in ("/etc/redis/redis.conf", "/etc/redis/sentinel.conf", "/etc/redis/users.acl"):
        assert lab.file(path).mode & 0o007 == 0, path
