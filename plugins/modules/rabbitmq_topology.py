#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: rabbitmq_topology
short_description: A virtual host's exchanges, queues, bindings and policies, checked as a whole before any change
version_added: 0.1.0
description:
  - Brings one virtual host's topology to the wanted state in one step - its default queue type,
    exchanges, queues (quorum by default), bindings and policies - after checking the whole of it
    against what the broker has.
  - A queue or exchange that already exists with another type or other arguments (for example a classic
    queue where a quorum queue is asked for) cannot be changed in place by RabbitMQ. The module finds
    every such conflict before it changes anything, fails with what each object is and what was asked,
    and says what to do; the broker is left as it was.
  - Policies (message TTL, max length, delivery limit, dead-lettering) are the settings that may change
    later, and they are updated in place. If the broker refuses one (an unknown key, a bad value), the
    policies this run already set are put back as they were.
  - Objects of the virtual host that are not listed are left alone; nothing is deleted, since deleting
    a queue deletes its messages.
  - Works through C(rabbitmqctl) on a broker node (as root), so it needs neither the management plugin
    nor an administrator's password. The C(community.rabbitmq) modules for queues, exchanges and
    bindings go through the management HTTP API with such a password, look at one object at a time (so
    a conflict on the third queue is found after the first two were created), and answer a conflicting
    queue with "RabbitMQ RESTAPI doesn't support attribute changes for existing queues"; that is why this
    module exists.
  - Exchanges, queues and bindings are created with C(rabbitmqctl import_definitions), which RabbitMQ 4
    applies in the background; the module waits until every one of them is there.
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  vhost:
    description: The virtual host; it must exist.
    type: str
    required: true
  default_queue_type:
    description:
      - The type of queues declared in this virtual host without C(x-queue-type) (the vhost's metadata).
      - Left as it is when not given.
    type: str
    choices: [quorum, classic, stream]
  exchanges:
    description: Exchanges that exist (created when missing).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Exchange name. Names starting with C(amq.) belong to the broker.
        type: str
        required: true
      type:
        description: V(direct), V(fanout), V(topic), V(headers) or a type a plugin adds.
        type: str
        default: topic
      durable:
        description: Whether it survives a restart.
        type: bool
        default: true
      auto_delete:
        description: Whether it is deleted when its last binding goes.
        type: bool
        default: false
      internal:
        description: Whether clients can publish to it directly.
        type: bool
        default: false
      arguments:
        description: Optional arguments, for example C(alternate-exchange).
        type: dict
        default: {}
  queues:
    description: Queues that exist (created when missing).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Queue name.
        type: str
        required: true
      type:
        description: V(quorum) (replicated, survives a node), V(classic) or V(stream).
        type: str
        choices: [quorum, classic, stream]
        default: quorum
      durable:
        description: Whether it survives a restart (quorum queues and streams always do).
        type: bool
        default: true
      auto_delete:
        description: Whether it is deleted when its last consumer goes.
        type: bool
        default: false
      arguments:
        description:
          - Queue arguments other than C(x-queue-type), fixed once the queue exists. Prefer O(policies) for
            what may change later.
        type: dict
        default: {}
  bindings:
    description: Bindings that exist (added when missing). Source and destination must exist or be listed.
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: The exchange messages come from.
        type: str
        required: true
      destination:
        description: The queue or exchange they go to.
        type: str
        required: true
      destination_type:
        description: Whether O(bindings[].destination) is a queue or an exchange.
        type: str
        choices: [queue, exchange]
        default: queue
      routing_key:
        description: The routing key (for topic exchanges a pattern such as V(#)).
        type: str
        default: ""
      arguments:
        description: Binding arguments (headers exchanges).
        type: dict
        default: {}
  policies:
    description: Policies of the virtual host, set or updated in place.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Policy name.
        type: str
        required: true
      pattern:
        description: Regular expression matched against queue or exchange names.
        type: str
        required: true
      apply_to:
        description: What the policy applies to.
        type: str
        choices: [all, queues, exchanges, classic_queues, quorum_queues, streams]
        default: queues
      definition:
        description:
          - The policy's keys and values, for example C(delivery-limit), C(max-length), C(message-ttl),
            C(dead-letter-exchange).
        type: dict
        required: true
      priority:
        description: The policy with the highest priority wins where several match.
        type: int
        default: 0
  timeout:
    description: Seconds to wait for created exchanges, queues and bindings to appear.
    type: int
    default: 60
extends_documentation_fragment: [tgstack.hybrid.rabbitmq]
attributes:
  check_mode:
    support: full
    description: Reads the broker, finds conflicts and plans the changes; returns them in RV(actions), makes none.
  diff_mode:
    support: full
    description: Shows the listed objects before and after.
"""

EXAMPLES = r"""
- name: The gateway's exchange, a quorum queue bound to it, dead-lettering and limits
  tgstack.hybrid.rabbitmq_topology:
    vhost: tgstack
    default_queue_type: quorum
    exchanges:
      - {name: tgstack.messages, type: topic}
      - {name: tgstack.dead-letter, type: fanout}
    queues:
      - {name: tgstack.messages.all}
      - {name: tgstack.dead-letter}
    bindings:
      - {source: tgstack.messages, destination: tgstack.messages.all, routing_key: "#"}
      - {source: tgstack.dead-letter, destination: tgstack.dead-letter}
    policies:
      - name: tgstack-messages
        pattern: "^tgstack\\.messages\\."
        apply_to: quorum_queues
        definition: {delivery-limit: 20, max-length: 1000000, dead-letter-exchange: tgstack.dead-letter}
"""

RETURN = r"""
actions:
  description: What was changed (or, in check mode, would be), in order.
  returned: always
  type: list
  elements: str
  sample: ["set policy tgstack-messages", "set vhost default queue type: quorum", "declare queue tgstack.messages.all"]
conflicts:
  description: Existing objects that differ from what was asked in ways RabbitMQ cannot change (the run fails).
  returned: on conflict
  type: list
  elements: str
"""

import json
import os
import tempfile
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgstack.hybrid.plugins.module_utils.rabbitmq import (
    Rabbitmqctl,
    TgstackRabbitmqError,
    rabbitmq_common_argument_spec,
)

QUEUE_FIELDS = ("type", "durable", "auto_delete", "arguments")
EXCHANGE_FIELDS = ("type", "durable", "auto_delete", "internal", "arguments")
POLICY_FIELDS = ("pattern", "apply-to", "definition", "priority")


def canonical(value: t.Any) -> str:
    return json.dumps(value, sort_keys=True)


def binding_key(binding: dict[str, t.Any]) -> str:
    return canonical([binding["source"], binding["destination_type"], binding["destination"],
                      binding["routing_key"], binding.get("arguments") or {}])  # fmt: skip


def existing(definitions: dict[str, t.Any], vhost: str) -> dict[str, t.Any]:
    """The virtual host's topology as the broker has it."""
    have: dict[str, t.Any] = {"exchanges": {}, "queues": {}, "bindings": {}, "policies": {}, "default_queue_type": None}
    for entry in definitions.get("vhosts", []):
        if entry["name"] == vhost:
            metadata = entry.get("metadata") or {}
            have["default_queue_type"] = entry.get("default_queue_type") or metadata.get("default_queue_type")
    for exchange in definitions.get("exchanges", []):
        if exchange["vhost"] == vhost:
            have["exchanges"][exchange["name"]] = {
                "type": exchange["type"],
                "durable": exchange.get("durable", True),
                "auto_delete": exchange.get("auto_delete", False),
                "internal": exchange.get("internal", False),
                "arguments": exchange.get("arguments") or {},
            }
    for queue in definitions.get("queues", []):
        if queue["vhost"] == vhost:
            arguments = dict(queue.get("arguments") or {})
            kind = queue.get("type") or arguments.get("x-queue-type") or "classic"
            arguments.pop("x-queue-type", None)
            have["queues"][queue["name"]] = {
                "type": kind,
                "durable": queue.get("durable", True),
                "auto_delete": queue.get("auto_delete", False),
                "arguments": arguments,
            }
    for binding in definitions.get("bindings", []):
        if binding["vhost"] == vhost:
            have["bindings"][binding_key(binding)] = binding
    for policy in definitions.get("policies", []):
        if policy["vhost"] == vhost:
            have["policies"][policy["name"]] = {field: policy.get(field) for field in POLICY_FIELDS}
    return have


def wanted_queue(queue: dict[str, t.Any]) -> dict[str, t.Any]:
    arguments = dict(queue.get("arguments") or {})
    arguments.pop("x-queue-type", None)
    return {"type": queue["type"], "durable": queue["durable"], "auto_delete": queue["auto_delete"],
            "arguments": arguments}  # fmt: skip


def wanted_exchange(exchange: dict[str, t.Any]) -> dict[str, t.Any]:
    return {field: exchange[field] if field != "arguments" else (exchange.get("arguments") or {})
            for field in EXCHANGE_FIELDS}  # fmt: skip


def wanted_policy(policy: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"pattern": policy["pattern"], "apply-to": policy["apply_to"], "definition": policy["definition"],
            "priority": policy["priority"]}  # fmt: skip


def describe(kind: str, fields: dict[str, t.Any]) -> str:
    text = f"{fields['type']} {kind}" + ("" if fields["durable"] else ", not durable")
    text += ", auto-delete" if fields["auto_delete"] else ""
    text += ", internal" if fields.get("internal") else ""
    return text + f", arguments {canonical(fields['arguments'])}"


def check_input(params: dict[str, t.Any]) -> None:
    """Mistakes in the request itself, found before the broker is asked anything."""
    for kind in ("exchanges", "queues", "policies"):
        names = [item["name"] for item in params[kind]]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise TgstackRabbitmqError(f"{kind}: {', '.join(twice)} listed more than once: list each once")
    for exchange in params["exchanges"]:
        if exchange["name"] == "" or exchange["name"].startswith("amq."):
            raise TgstackRabbitmqError(
                f"exchanges: '{exchange['name']}' belongs to the broker (the default exchange or amq.*) and cannot "
                "be declared: choose another name, or use it as a binding source without listing it"
            )
    for queue in params["queues"]:
        if queue["type"] in ("quorum", "stream") and (not queue["durable"] or queue["auto_delete"]):
            raise TgstackRabbitmqError(
                f"queues: {queue['name']} is a {queue['type']} queue, which is always durable and never "
                "auto-delete: drop durable/auto_delete or use type classic"
            )


def plan(params: dict[str, t.Any], have: dict[str, t.Any]) -> dict[str, t.Any]:
    """Conflicts and changes: everything is decided here, before the broker is changed."""
    vhost = params["vhost"]
    result: dict[str, t.Any] = {"conflicts": [], "default_queue_type": None, "policies": [], "exchanges": [],
                                "queues": [], "bindings": []}  # fmt: skip
    if params["default_queue_type"] and params["default_queue_type"] != (have["default_queue_type"] or "classic"):
        result["default_queue_type"] = params["default_queue_type"]
    for exchange in params["exchanges"]:
        want, current = wanted_exchange(exchange), have["exchanges"].get(exchange["name"])
        if current is None:
            result["exchanges"].append(exchange["name"])
        elif canonical(current) != canonical(want):
            result["conflicts"].append(
                f"exchange {exchange['name']} in vhost {vhost} exists as a {describe('exchange', current)}; asked: "
                f"{describe('exchange', want)}. An exchange cannot be changed in place: use another name, or "
                f"delete it (rabbitmqctl delete_exchange --vhost {vhost} {exchange['name']}; its bindings go "
                "with it) and run again, or ask for what it is"
            )
    for queue in params["queues"]:
        want, current = wanted_queue(queue), have["queues"].get(queue["name"])
        if current is None:
            result["queues"].append(queue["name"])
        elif canonical(current) != canonical(want):
            result["conflicts"].append(
                f"queue {queue['name']} in vhost {vhost} exists as a {describe('queue', current)}; asked: a "
                f"{describe('queue', want)}. A queue's type and arguments cannot change once it exists. Either "
                f"ask for what it is; or create the new queue under another name (for example {queue['name']}.v2), "
                "bind it, move the consumers over and delete the old queue once it is drained; or, if its "
                f"messages are not needed, delete it (rabbitmqctl delete_queue --vhost {vhost} {queue['name']}) "
                "and run again. Settings that may change later (TTL, max length, delivery limit, "
                "dead-lettering) belong in policies, which are updated in place"
            )
    exchanges = set(have["exchanges"]) | {exchange["name"] for exchange in params["exchanges"]}
    queues = set(have["queues"]) | {queue["name"] for queue in params["queues"]}
    for binding in params["bindings"]:
        source_known = binding["source"].startswith("amq.") or binding["source"] in exchanges
        destinations = queues if binding["destination_type"] == "queue" else exchanges
        if binding["source"] == "" or not source_known:
            result["conflicts"].append(
                f"binding {binding['source']} -> {binding['destination']}: the exchange '{binding['source']}' "
                f"does not exist in vhost {vhost} and is not listed in exchanges: list it there"
            )
        elif binding["destination"] not in destinations:
            result["conflicts"].append(
                f"binding {binding['source']} -> {binding['destination']}: the {binding['destination_type']} "
                f"'{binding['destination']}' does not exist in vhost {vhost} and is not listed in "
                f"{binding['destination_type']}s: list it there"
            )
        elif binding_key(binding) not in have["bindings"]:
            result["bindings"].append(binding)
    for policy in params["policies"]:
        want, current = wanted_policy(policy), have["policies"].get(policy["name"])
        if current is None or canonical(current) != canonical(want):
            result["policies"].append(policy)
    return result


def actions(changes: dict[str, t.Any]) -> list[str]:
    done = [f"set policy {policy['name']}" for policy in changes["policies"]]
    if changes["default_queue_type"]:
        done.append(f"set vhost default queue type: {changes['default_queue_type']}")
    done += [f"declare exchange {name}" for name in changes["exchanges"]]
    done += [f"declare queue {name}" for name in changes["queues"]]
    done += [f"bind {b['source']} -> {b['destination']} ({b['routing_key'] or 'no key'})" for b in changes["bindings"]]
    return done


def view(params: dict[str, t.Any], have: dict[str, t.Any]) -> dict[str, t.Any]:
    """The listed objects as HAVE has them (the diff)."""
    listed = {kind: [item["name"] for item in params[kind]] for kind in ("exchanges", "queues", "policies")}
    return {
        "default_queue_type": have["default_queue_type"],
        **{kind: {name: have[kind][name] for name in names if name in have[kind]} for kind, names in listed.items()},
        "bindings": sorted(key for key in have["bindings"] if key in {binding_key(b) for b in params["bindings"]}),
    }


def predicted(params: dict[str, t.Any], have: dict[str, t.Any], changes: dict[str, t.Any]) -> dict[str, t.Any]:
    """HAVE as the planned CHANGES leave it (check mode's diff)."""
    after = {kind: dict(have[kind]) for kind in ("exchanges", "queues", "bindings", "policies")}
    after["default_queue_type"] = changes["default_queue_type"] or have["default_queue_type"]
    exchanges = {exchange["name"]: exchange for exchange in params["exchanges"]}
    queues = {queue["name"]: queue for queue in params["queues"]}
    after["exchanges"].update({name: wanted_exchange(exchanges[name]) for name in changes["exchanges"]})
    after["queues"].update({name: wanted_queue(queues[name]) for name in changes["queues"]})
    after["bindings"].update({binding_key(binding): binding for binding in changes["bindings"]})
    after["policies"].update({policy["name"]: wanted_policy(policy) for policy in changes["policies"]})
    return after


def set_policy(ctl: Rabbitmqctl, vhost: str, name: str, policy: dict[str, t.Any]) -> None:
    ctl.run("set_policy", "--vhost", vhost, "--priority", str(policy["priority"]), "--apply-to", policy["apply-to"],
            name, policy["pattern"], canonical(policy["definition"]), doing=f"setting policy {name}")  # fmt: skip


def apply_policies(ctl: Rabbitmqctl, vhost: str, policies: list[dict[str, t.Any]], have: dict[str, t.Any]) -> None:
    """Set the policies; if the broker refuses one, put back those already set and report."""
    done: list[str] = []
    try:
        for policy in policies:
            set_policy(ctl, vhost, policy["name"], wanted_policy(policy))
            done.append(policy["name"])
    except TgstackRabbitmqError as error:
        for name in reversed(done):
            if name in have["policies"]:
                set_policy(ctl, vhost, name, have["policies"][name])
            else:
                ctl.run("clear_policy", "--vhost", vhost, name, doing=f"removing policy {name} again")
        raise TgstackRabbitmqError(
            f"{error}. The broker refused this policy; the policies this run had set were put back, and no "
            "exchange or queue was created. Fix the policy's definition (see "
            "https://www.rabbitmq.com/docs/parameters#policies for its keys)"
        ) from None


def import_objects(module: AnsibleModule, ctl: Rabbitmqctl, params: dict[str, t.Any], changes: dict[str, t.Any]):
    vhost = params["vhost"]
    exchanges = {e["name"]: e for e in params["exchanges"]}
    queues = {q["name"]: q for q in params["queues"]}
    document = {
        "exchanges": [{"vhost": vhost, "name": n, **wanted_exchange(exchanges[n])} for n in changes["exchanges"]],
        "queues": [
            {"vhost": vhost, "name": n, "durable": queues[n]["durable"], "auto_delete": queues[n]["auto_delete"],
             "arguments": {**queues[n]["arguments"], "x-queue-type": queues[n]["type"]}}
            for n in changes["queues"]
        ],
        "bindings": [
            {"vhost": vhost, "source": b["source"], "destination": b["destination"],
             "destination_type": b["destination_type"], "routing_key": b["routing_key"], "arguments": b["arguments"]}
            for b in changes["bindings"]
        ],
    }  # fmt: skip
    # no secrets in it; the CLI reads it as the rabbitmq user
    fd, path = tempfile.mkstemp(prefix="tgstack-topology-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
        os.chmod(path, 0o644)
        ctl.run("import_definitions", path, doing="importing exchanges, queues and bindings")
    finally:
        os.unlink(path)
    deadline = time.monotonic() + params["timeout"]
    while True:
        have = existing(ctl.definitions(), vhost)
        missing = [f"exchange {n}" for n in changes["exchanges"] if n not in have["exchanges"]]
        missing += [f"queue {n}" for n in changes["queues"] if n not in have["queues"]]
        missing += [f"binding {b['source']} -> {b['destination']}" for b in changes["bindings"]
                    if binding_key(b) not in have["bindings"]]  # fmt: skip
        if not missing:
            return have
        if time.monotonic() > deadline:
            raise TgstackRabbitmqError(
                f"{', '.join(missing)} did not appear within {params['timeout']} s of the import: the broker "
                "applies imports in the background and logs why one failed (journalctl -u rabbitmq-server, "
                "/var/log/rabbitmq)"
            )
        time.sleep(0.5)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "vhost": {"type": "str", "required": True},
            "default_queue_type": {"type": "str", "choices": ["quorum", "classic", "stream"]},
            "exchanges": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "type": {"type": "str", "default": "topic"},
                "durable": {"type": "bool", "default": True},
                "auto_delete": {"type": "bool", "default": False},
                "internal": {"type": "bool", "default": False},
                "arguments": {"type": "dict", "default": {}},
            }},
            "queues": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "type": {"type": "str", "choices": ["quorum", "classic", "stream"], "default": "quorum"},
                "durable": {"type": "bool", "default": True},
                "auto_delete": {"type": "bool", "default": False},
                "arguments": {"type": "dict", "default": {}},
            }},
            "bindings": {"type": "list", "elements": "dict", "default": [], "options": {
                "source": {"type": "str", "required": True},
                "destination": {"type": "str", "required": True},
                "destination_type": {"type": "str", "choices": ["queue", "exchange"], "default": "queue"},
                "routing_key": {"type": "str", "default": "", "no_log": False},
                "arguments": {"type": "dict", "default": {}},
            }},
            "policies": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "pattern": {"type": "str", "required": True},
                "apply_to": {"type": "str", "default": "queues",
                             "choices": ["all", "queues", "exchanges", "classic_queues", "quorum_queues", "streams"]},
                "definition": {"type": "dict", "required": True},
                "priority": {"type": "int", "default": 0},
            }},
            "timeout": {"type": "int", "default": 60},
            **rabbitmq_common_argument_spec(),
        },
        supports_check_mode=True,
    )  # fmt: skip
    params = module.params
    vhost = params["vhost"]
    try:
        check_input(params)
        ctl = Rabbitmqctl(module, node=params["node"])
        definitions = ctl.definitions()
        if vhost not in {entry["name"] for entry in definitions.get("vhosts", [])}:
            raise TgstackRabbitmqError(f"the virtual host {vhost} does not exist: create it first")
        have = existing(definitions, vhost)
        changes = plan(params, have)
        if changes["conflicts"]:
            module.fail_json(
                msg=f"nothing was changed in vhost {vhost}: " + "; ".join(changes["conflicts"]),
                conflicts=changes["conflicts"],
                actions=[],
            )
        done = actions(changes)
        after = predicted(params, have, changes)
        if done and not module.check_mode:
            # policies first: the broker may refuse one, and then they are put back before anything else
            apply_policies(ctl, vhost, changes["policies"], have)
            if changes["default_queue_type"]:
                ctl.run("update_vhost_metadata", vhost, "--default-queue-type", changes["default_queue_type"],
                        doing=f"setting the default queue type of vhost {vhost}")  # fmt: skip
            if changes["exchanges"] or changes["queues"] or changes["bindings"]:
                after = import_objects(module, ctl, params, changes)
            else:
                after = existing(ctl.definitions(), vhost)
    except TgstackRabbitmqError as error:
        module.fail_json(msg=str(error))
    module.exit_json(
        changed=bool(done), actions=done, diff={"before": view(params, have), "after": view(params, after)}
    )


if __name__ == "__main__":
    main()
