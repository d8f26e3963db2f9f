# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What tgstack.hybrid's RabbitMQ modules share: rabbitmqctl with secrets on stdin, the broker's
definitions as one JSON document, and RabbitMQ's salted password hashes checked without the broker.

Passwords never reach a command line (where ``ps`` shows them): ``rabbitmqctl add_user NAME`` and
``change_password NAME`` read the password from standard input when it is left out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing as t

# RabbitMQ's hashing modules: the hash is base64(salt + digest(salt + UTF-8 password)), 4-byte salt
HASHES = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
    "rabbit_password_hashing_md5": hashlib.md5,
}


def rabbitmq_common_argument_spec() -> dict[str, t.Any]:
    """Options shared by every RabbitMQ module (documented by the doc fragment tgstack.hybrid.rabbitmq)."""
    return {"node": {"type": "str"}}


class TgstackRabbitmqError(Exception):
    """An error a module reports as "<what it was doing>: <cause>"."""


def password_matches(user: dict[str, t.Any], password: str) -> bool:
    """Whether PASSWORD is the one stored for USER (an entry of the definitions' "users")."""
    stored = user.get("password_hash") or ""
    digest = HASHES.get(user.get("hashing_algorithm") or "rabbit_password_hashing_sha256")
    if not stored or digest is None:
        return False
    try:
        raw = base64.b64decode(stored, validate=True)
    except ValueError:
        return False
    salt, expected = raw[:4], raw[4:]
    return len(salt) == 4 and digest(salt + password.encode("utf-8")).digest() == expected


class Rabbitmqctl:
    """rabbitmqctl on the managed host, run through AnsibleModule.run_command (no shell)."""

    def __init__(self, module, executable: str = "rabbitmqctl", node: str | None = None) -> None:
        self.module = module
        self.executable = module.get_bin_path(executable, required=True)
        self.node = node

    def run(self, *args: str, stdin: str | None = None, doing: str = "") -> str:
        # no --timeout: with it, RabbitMQ 4.0's add_user / change_password never read the password from
        # standard input and hang
        command = [self.executable]
        if self.node:
            command += ["--node", self.node]
        command += list(args)
        # with a secret on stdin run_command adds the newline that ends it (change_password waits for it)
        rc, out, err = self.module.run_command(command, data=stdin)
        if rc != 0:
            message = " ".join((err or out).split()) or f"exit status {rc}"
            raise TgstackRabbitmqError(f"{doing or 'rabbitmqctl ' + args[0]}: {message}")
        return out

    def definitions(self) -> dict[str, t.Any]:
        """Users, vhosts, permissions, queues, exchanges, bindings and policies, as the broker has them."""
        out = self.run("export_definitions", "-", "--format", "json", "--silent", doing="reading the definitions")
        try:
            return json.loads(out)
        except ValueError as error:
            raise TgstackRabbitmqError(f"reading the definitions: rabbitmqctl printed no JSON ({error})") from None
