"""tgstack.hybrid.rabbitmq_users against a real RabbitMQ 4 (Debian's package) on a lab host."""

from __future__ import annotations

import threading

import pytest
from conftest import RABBITMQ_HOST as HOST
from labhost import run, run_module

MODULE = "tgstack.hybrid.rabbitmq_users"
GATEWAY_PASSWORD = "gw-Secret pw 1"
MONITOR_PASSWORD = "mon-Secret-2"


def ctl(*args: str, check: bool = True) -> str:
    done = run(["docker", "exec", HOST, "rabbitmqctl", "--quiet", *args])
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout


def authenticates(user: str, password: str) -> bool:
    # a test-only check: the password is an argument here, visible to ps in the lab host
    return run(["docker", "exec", HOST, "rabbitmqctl", "authenticate_user", user, password]).returncode == 0


def users_arg(gateway_password: str = GATEWAY_PASSWORD) -> dict:
    return {
        "users": [
            {
                "name": "tgstack_gateway",
                "password": gateway_password,
                "permissions": [{"vhost": "tgstack", "configure": "^$", "write": "^tgstack\\.messages$", "read": "^$"}],
            },
            {"name": "tgstack_monitoring", "password": MONITOR_PASSWORD, "tags": ["monitoring"]},
            {"name": "guest", "state": "absent"},
        ]
    }


def test_users_created_guest_removed_then_nothing_to_do(broker):
    checked = run_module(broker, MODULE, users_arg(), check=True, diff=True, become_user=None)
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert "add_user tgstack_gateway" in checked["commands"] and "delete_user guest" in checked["commands"]
    assert "guest" in ctl("list_users"), "check mode changed the broker"

    result = run_module(broker, MODULE, users_arg(), become_user=None)
    assert result["changed"] is True and not result.get("failed"), result
    listed = ctl("list_users")
    assert "guest" not in listed and "tgstack_gateway" in listed
    assert "monitoring" in next(line for line in listed.splitlines() if line.startswith("tgstack_monitoring"))
    assert authenticates("tgstack_gateway", GATEWAY_PASSWORD)
    permissions = ctl("list_permissions", "-p", "tgstack")
    assert "tgstack_gateway\t^$\t^tgstack\\.messages$\t^$" in permissions, permissions
    assert all(GATEWAY_PASSWORD not in command for command in result["commands"])

    again = run_module(broker, MODULE, users_arg(), become_user=None)
    assert again["changed"] is False and again["commands"] == [], again


def test_password_change_is_detected_from_the_hash_and_never_on_a_command_line(broker):
    run_module(broker, MODULE, users_arg(), become_user=None)
    new_password = "rotated Gateway pw 3"
    # record every command line on the host while the module runs (bounded: stops with the module)
    seen: list[str] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(run(["docker", "exec", HOST, "ps", "-eww", "-o", "args"]).stdout)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_module(broker, MODULE, users_arg(new_password), become_user=None)
    finally:
        done.set()
        watcher.join(timeout=30)
    assert result["changed"] is True and result["commands"] == ["change_password tgstack_gateway"], result
    assert authenticates("tgstack_gateway", new_password) and not authenticates("tgstack_gateway", GATEWAY_PASSWORD)
    assert len(seen) >= 3, "the process list was not sampled during the run"
    assert not [listing for listing in seen if new_password in listing], "the password appeared in ps"
    assert run_module(broker, MODULE, users_arg(new_password), become_user=None)["changed"] is False


def test_permissions_on_a_missing_vhost_fail_clearly_and_change_nothing(broker):
    before = ctl("list_users")
    wanted = {"users": [{"name": "newcomer", "password": "x-pw", "permissions": [{"vhost": "nope", "read": ".*"}]}]}
    result = run_module(broker, MODULE, wanted, become_user=None)
    assert result.get("failed") is True
    assert "virtual host nope, which does not exist" in result["msg"], result["msg"]
    assert ctl("list_users") == before


@pytest.mark.parametrize(
    ("users", "words"),
    [
        ([{"name": "a"}], "a has no password"),
        ([{"name": "a", "password": "x"}, {"name": "a", "password": "y"}], "a listed more than once"),
        ([{"name": "a", "password": "two\nlines"}], "has a line break"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(broker, users, words):
    result = run_module(broker, MODULE, {"users": users}, become_user=None)
    assert result.get("failed") is True and words in result["msg"], result
