#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: rabbitmq_users
short_description: RabbitMQ users, their tags and vhost permissions, without a password on any command line
version_added: 0.1.0
description:
  - Brings the RabbitMQ users in O(users) to the wanted state in one run - created, password, tags,
    permissions per virtual host - and removes users marked V(absent) (for example V(guest)).
  - Reads the broker's state once (C(rabbitmqctl export_definitions)) and checks passwords against the
    stored salted hashes on the host itself, so an unchanged password is never sent again and the
    module reports a change only when something differs.
  - Passwords reach C(rabbitmqctl add_user) and C(change_password) on standard input, never as an
    argument. C(community.rabbitmq.rabbitmq_user) passes them as arguments, where C(ps) shows them to
    every user of the host while the command runs; that is why this module exists.
  - With O(exclusive_permissions=true) (the default) permissions on virtual hosts not listed for a user
    are removed, so the list is the whole truth.
  - Runs on a broker node as root (or the rabbitmq user), like C(rabbitmqctl) itself.
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  users:
    description:
      - The users to manage. Users of the broker not listed here are left alone.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description:
          - Its password (from Ansible Vault). Required for V(present); one line, no newline.
        type: str
      tags:
        description: Tags, for example V(administrator), V(monitoring), V(management).
        type: list
        elements: str
        default: []
      permissions:
        description: Permissions per virtual host (regular expressions; an empty string grants nothing).
        type: list
        elements: dict
        default: []
        suboptions:
          vhost:
            description: The virtual host; it must exist.
            type: str
            required: true
          configure:
            description: Resources the user may declare and delete.
            type: str
            default: ''
          write:
            description: Resources the user may publish to (exchanges) or bind.
            type: str
            default: ''
          read:
            description: Resources the user may consume from or bind from.
            type: str
            default: ''
      state:
        description: Whether the user exists.
        type: str
        choices: [present, absent]
        default: present
  exclusive_permissions:
    description: Remove the user's permissions on virtual hosts not listed in its O(users[].permissions).
    type: bool
    default: true
extends_documentation_fragment: [tgstack.hybrid.rabbitmq]
attributes:
  check_mode:
    support: full
    description: Reads the broker and plans the same calls; returns them in RV(commands) without running them.
  diff_mode:
    support: full
    description: The diff shows names, tags, permissions and which passwords change, never a password.
"""

EXAMPLES = r"""
- name: The gateway's user, a monitoring user and an admin; no guest
  tgstack.hybrid.rabbitmq_users:
    users:
      - name: tgstack_gateway
        password: "{{ vault_rabbitmq_gateway_password }}"
        permissions:
          - {vhost: tgstack, configure: "^$", write: "^tgstack\\.messages$", read: "^$"}
      - name: tgstack_monitoring
        password: "{{ vault_rabbitmq_monitoring_password }}"
        tags: [monitoring]
      - name: guest
        state: absent
"""

RETURN = r"""
users:
  description: The managed users after the run (check mode - as they would be), without password hashes.
  returned: always
  type: list
  elements: dict
  sample:
    - name: tgstack_gateway
      tags: []
      permissions: [{"vhost": "tgstack", "configure": "^$", "write": ".*", "read": "^$"}]
commands:
  description: The rabbitmqctl commands run (or, in check mode, that would run); passwords are never part of them.
  returned: always
  type: list
  elements: str
  sample: ["add_user tgstack_gateway", "set_permissions -p tgstack tgstack_gateway ^$ .* ^$", "delete_user guest"]
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.rabbitmq import (
    Rabbitmqctl,
    TgstackRabbitmqError,
    password_matches,
    rabbitmq_common_argument_spec,
)

PERMISSION_KINDS = ("configure", "write", "read")


def current_users(definitions: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """Users of the broker: name -> {"definition": ..., "tags": [...], "permissions": {vhost: {...}}}."""
    users = {}
    for user in definitions.get("users", []):
        tags = user.get("tags") or []
        if isinstance(tags, str):  # older brokers export tags as one comma-separated string
            tags = [tag for tag in tags.split(",") if tag]
        users[user["name"]] = {"definition": user, "tags": sorted(tags), "permissions": {}}
    for permission in definitions.get("permissions", []):
        if permission["user"] in users:
            users[permission["user"]]["permissions"][permission["vhost"]] = {
                kind: permission.get(kind, "") for kind in PERMISSION_KINDS
            }
    return users


def plan(
    wanted: list[dict[str, t.Any]], current: dict[str, dict[str, t.Any]], vhosts: set[str], exclusive: bool
) -> list[tuple[list[str], str | None]]:
    """The rabbitmqctl calls (arguments, secret for stdin) that bring CURRENT to WANTED."""
    calls: list[tuple[list[str], str | None]] = []
    for user in wanted:
        name = user["name"]
        have = current.get(name)
        if user["state"] == "absent":
            if have is not None:
                calls.append((["delete_user", name], None))
            continue
        if have is None:
            calls.append((["add_user", name], user["password"]))
            have = {"tags": [], "permissions": {}}
        elif not password_matches(have["definition"], user["password"]):
            calls.append((["change_password", name], user["password"]))
        if sorted(set(user["tags"])) != have["tags"]:
            calls.append((["set_user_tags", name, *sorted(set(user["tags"]))], None))
        wanted_permissions = {}
        for permission in user["permissions"]:
            if permission["vhost"] not in vhosts:
                raise TgstackRabbitmqError(
                    f"users: {name} has permissions on the virtual host {permission['vhost']}, which does not exist: "
                    f"create it first (the existing ones: {', '.join(sorted(vhosts)) or 'none'})"
                )
            wanted_permissions[permission["vhost"]] = {kind: permission[kind] for kind in PERMISSION_KINDS}
        for vhost, permission in sorted(wanted_permissions.items()):
            if have["permissions"].get(vhost) != permission:
                calls.append(
                    (["set_permissions", "-p", vhost, name, *(permission[kind] for kind in PERMISSION_KINDS)], None)
                )
        if exclusive:
            for vhost in sorted(set(have["permissions"]) - set(wanted_permissions)):
                calls.append((["clear_permissions", "-p", vhost, name], None))
    return calls


def summary(wanted: list[dict[str, t.Any]], current: dict[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The managed users as they are in CURRENT (no hashes)."""
    result = []
    for user in wanted:
        have = current.get(user["name"])
        if have is not None:
            result.append({
                "name": user["name"],
                "tags": have["tags"],
                "permissions": [{"vhost": vhost, **perm} for vhost, perm in sorted(have["permissions"].items())],
            })  # fmt: skip
    return result


def predicted(wanted: list[dict[str, t.Any]], current: dict[str, dict[str, t.Any]], exclusive: bool) -> list[dict]:
    """The managed users as the plan leaves them (check mode's answer and diff.after)."""
    result = []
    for user in wanted:
        if user["state"] == "absent":
            continue
        have = current.get(user["name"], {"permissions": {}})
        permissions = {} if exclusive else dict(have["permissions"])
        permissions.update({p["vhost"]: {kind: p[kind] for kind in PERMISSION_KINDS} for p in user["permissions"]})
        result.append({
            "name": user["name"],
            "tags": sorted(set(user["tags"])),
            "permissions": [{"vhost": vhost, **perm} for vhost, perm in sorted(permissions.items())],
        })  # fmt: skip
    return result


def check_input(users: list[dict[str, t.Any]]) -> None:
    names = [user["name"] for user in users]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TgstackRabbitmqError(f"users: {', '.join(duplicates)} listed more than once: list each user once")
    for user in users:
        if user["state"] == "present":
            if not user.get("password"):
                raise TgstackRabbitmqError(f"users: {user['name']} has no password: set one (from Ansible Vault)")
            if "\n" in user["password"] or "\r" in user["password"]:
                raise TgstackRabbitmqError(f"users: the password of {user['name']} has a line break: use one line")


def main() -> None:
    permission_spec = {
        "vhost": {"type": "str", "required": True},
        "configure": {"type": "str", "default": ""},
        "write": {"type": "str", "default": ""},
        "read": {"type": "str", "default": ""},
    }
    user_spec = {
        "name": {"type": "str", "required": True},
        "password": {"type": "str", "no_log": True},
        "tags": {"type": "list", "elements": "str", "default": []},
        "permissions": {"type": "list", "elements": "dict", "default": [], "options": permission_spec},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    }
    module = AnsibleModule(
        argument_spec={
            "users": {"type": "list", "elements": "dict", "required": True, "options": user_spec},
            "exclusive_permissions": {"type": "bool", "default": True},
            **rabbitmq_common_argument_spec(),
        },
        supports_check_mode=True,
    )
    users = module.params["users"]
    try:
        check_input(users)
        ctl = Rabbitmqctl(module, node=module.params["node"])
        definitions = ctl.definitions()
        current = current_users(definitions)
        vhosts = {vhost["name"] for vhost in definitions.get("vhosts", [])}
        calls = plan(users, current, vhosts, module.params["exclusive_permissions"])
        before = summary(users, current)
        if module.check_mode or not calls:
            after = predicted(users, current, module.params["exclusive_permissions"])
        else:
            for arguments, secret in calls:
                ctl.run(*arguments, stdin=secret, doing=f"rabbitmqctl {' '.join(arguments)}")
            after = summary(users, current_users(ctl.definitions()))
    except TgstackRabbitmqError as error:
        module.fail_json(msg=str(error))
    passwords = sorted(arguments[-1] for arguments, _secret in calls if arguments[0] == "change_password")
    module.exit_json(
        changed=bool(calls),
        users=after,
        commands=[" ".join(arguments) for arguments, _secret in calls],
        diff={"before": {"users": before}, "after": {"users": after, "passwords_changed": passwords}},
    )


if __name__ == "__main__":
    main()
