# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""rabbitmq_users' pure logic: RabbitMQ's salted password hashes and the plan of rabbitmqctl calls."""

from __future__ import annotations

import base64
import hashlib

import pytest
from ansible_collections.tgstack.hybrid.plugins.module_utils.rabbitmq import TgstackRabbitmqError, password_matches
from ansible_collections.tgstack.hybrid.plugins.modules.rabbitmq_users import check_input, current_users, plan

# exported by RabbitMQ 4.0.5 (rabbitmqctl export_definitions) for the default user guest/guest
GUEST = {
    "name": "guest",
    "hashing_algorithm": "rabbit_password_hashing_sha256",
    "password_hash": "p1Nsoh+PuJl8hZXkr37hBrFWivYoHlkjURg7UaNF90taz86z",
    "tags": ["administrator"],
}


def stored(password: str, algorithm: str = "sha256", salt: bytes = b"\x01\x02\x03\x04") -> dict:
    digest = getattr(hashlib, algorithm)(salt + password.encode()).digest()
    return {
        "name": "u",
        "hashing_algorithm": f"rabbit_password_hashing_{algorithm}",
        "password_hash": base64.b64encode(salt + digest).decode(),
    }


def user(name="app", password="pw", tags=(), permissions=(), state="present") -> dict:
    return {"name": name, "password": password, "tags": list(tags), "permissions": list(permissions), "state": state}


def perm(vhost="/", configure="", write="", read="") -> dict:
    return {"vhost": vhost, "configure": configure, "write": write, "read": read}


def test_a_hash_exported_by_the_broker_is_verified():
    assert password_matches(GUEST, "guest")
    assert not password_matches(GUEST, "Guest")


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "md5"])
def test_every_hashing_module_and_unicode(algorithm):
    assert password_matches(stored("pässwörd ✓", algorithm), "pässwörd ✓")
    assert not password_matches(stored("pässwörd ✓", algorithm), "passwort")


@pytest.mark.parametrize("broken", ["", "not base64 !", base64.b64encode(b"abc").decode()])
def test_missing_or_broken_hashes_never_match(broken):
    assert not password_matches({"password_hash": broken}, "")


def test_plan_for_a_new_broker():
    definitions = {"users": [GUEST], "permissions": [{"user": "guest", "vhost": "/", **perm(read=".*")}]}
    calls = plan(
        [user(tags=["monitoring"], permissions=[perm("/", write="^x$")]), user("guest", state="absent")],
        current_users(definitions),
        {"/"},
        exclusive=True,
    )
    assert calls == [
        (["add_user", "app"], "pw"),
        (["set_user_tags", "app", "monitoring"], None),
        (["set_permissions", "-p", "/", "app", "", "^x$", ""], None),
        (["delete_user", "guest"], None),
    ]


def test_nothing_to_do_when_everything_matches():
    definitions = {
        "users": [{**stored("pw"), "name": "app", "tags": ["monitoring"]}],
        "permissions": [{"user": "app", **perm("/", read=".*")}],
    }
    wanted = [user(tags=["monitoring"], permissions=[perm("/", read=".*")])]
    assert plan(wanted, current_users(definitions), {"/"}, exclusive=True) == []


def test_changed_password_tags_and_foreign_permissions():
    definitions = {
        "users": [{**stored("old"), "name": "app", "tags": "monitoring,management"}],
        "permissions": [{"user": "app", **perm("/", read=".*")}, {"user": "app", **perm("other", read=".*")}],
    }
    wanted = [user(password="new", permissions=[perm("/", read=".*")])]
    calls = plan(wanted, current_users(definitions), {"/", "other"}, exclusive=True)
    assert calls == [
        (["change_password", "app"], "new"),
        (["set_user_tags", "app"], None),
        (["clear_permissions", "-p", "other", "app"], None),
    ]
    assert (["clear_permissions", "-p", "other", "app"], None) not in plan(
        wanted, current_users(definitions), {"/", "other"}, exclusive=False
    )


def test_permissions_on_a_missing_vhost_are_refused_by_name():
    with pytest.raises(TgstackRabbitmqError, match="virtual host tgstack, which does not exist"):
        plan([user(permissions=[perm("tgstack")])], {}, {"/"}, exclusive=True)


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([user(password=None)], "app has no password"),
        ([user(), user()], "app listed more than once"),
        ([user(password="a\nb")], "has a line break"),
    ],
)
def test_bad_input(users, message):
    with pytest.raises(TgstackRabbitmqError, match=message):
        check_input(users)
