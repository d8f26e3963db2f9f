# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""rabbitmq_topology's pure logic: reading the broker's definitions, conflicts and the plan."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.tgstack.hybrid.plugins.module_utils.rabbitmq import TgstackRabbitmqError
from ansible_collections.tgstack.hybrid.plugins.modules.rabbitmq_topology import (
    actions,
    check_input,
    existing,
    plan,
    predicted,
    view,
)

# the shape RabbitMQ 4.0.5's export_definitions gives (trimmed)
DEFINITIONS = {
    "vhosts": [
        {"name": "tgstack", "default_queue_type": "quorum", "metadata": {"default_queue_type": "quorum"}},
        {"name": "/", "default_queue_type": "classic", "metadata": {}},
    ],
    "exchanges": [
        {"name": "tg.messages", "vhost": "tgstack", "type": "topic", "durable": True, "auto_delete": False,
         "internal": False, "arguments": {}},
    ],
    "queues": [
        {"name": "tg.all", "vhost": "tgstack", "type": "quorum", "durable": True, "auto_delete": False,
         "arguments": {"x-queue-type": "quorum"}},
        {"name": "tg.old", "vhost": "tgstack", "type": "classic", "durable": True, "auto_delete": False,
         "arguments": {}},
        {"name": "tg.all", "vhost": "/", "type": "classic", "durable": True, "auto_delete": False, "arguments": {}},
    ],
    "bindings": [
        {"source": "tg.messages", "vhost": "tgstack", "destination": "tg.all", "destination_type": "queue",
         "routing_key": "#", "arguments": {}},
    ],
    "policies": [
        {"vhost": "tgstack", "name": "limits", "pattern": "^tg\\.", "apply-to": "quorum_queues",
         "definition": {"max-length": 10}, "priority": 0},
    ],
}  # fmt: skip


def request(**changes) -> dict:
    params = {
        "vhost": "tgstack",
        "default_queue_type": "quorum",
        "exchanges": [{"name": "tg.messages", "type": "topic", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}}],
        "queues": [{"name": "tg.all", "type": "quorum", "durable": True, "auto_delete": False, "arguments": {}}],
        "bindings": [{"source": "tg.messages", "destination": "tg.all", "destination_type": "queue",
                      "routing_key": "#", "arguments": {}}],
        "policies": [{"name": "limits", "pattern": "^tg\\.", "apply_to": "quorum_queues",
                      "definition": {"max-length": 10}, "priority": 0}],
    }  # fmt: skip
    params.update(changes)
    return params


def test_existing_reads_one_vhost_and_the_queue_type():
    have = existing(DEFINITIONS, "tgstack")
    assert have["default_queue_type"] == "quorum"
    assert have["queues"]["tg.all"] == {"type": "quorum", "durable": True, "auto_delete": False, "arguments": {}}
    assert have["queues"]["tg.old"]["type"] == "classic"
    assert set(have["queues"]) == {"tg.all", "tg.old"}


def test_what_the_broker_has_needs_nothing():
    changes = plan(request(), existing(DEFINITIONS, "tgstack"))
    assert changes["conflicts"] == [] and actions(changes) == []


def test_missing_objects_and_a_changed_policy_are_planned():
    params = request(
        queues=[*request()["queues"], {"name": "tg.new", "type": "quorum", "durable": True, "auto_delete": False,
                                       "arguments": {}}],
        bindings=[*request()["bindings"], {"source": "tg.messages", "destination": "tg.new",
                                           "destination_type": "queue", "routing_key": "x.*", "arguments": {}}],
        policies=[{**request()["policies"][0], "definition": {"max-length": 20}}],
    )  # fmt: skip
    assert actions(plan(params, existing(DEFINITIONS, "tgstack"))) == [
        "set policy limits",
        "declare queue tg.new",
        "bind tg.messages -> tg.new (x.*)",
    ]


def test_default_queue_type_is_set_when_it_differs():
    assert actions(plan(request(vhost="/"), existing(DEFINITIONS, "/")))[0] == "set policy limits"
    assert "set vhost default queue type: quorum" in actions(plan(request(vhost="/"), existing(DEFINITIONS, "/")))


def test_a_classic_queue_where_quorum_is_asked_is_a_conflict_with_what_to_do():
    params = request(queues=[{"name": "tg.old", "type": "quorum", "durable": True, "auto_delete": False,
                              "arguments": {}}])  # fmt: skip
    conflicts = plan(params, existing(DEFINITIONS, "tgstack"))["conflicts"]
    assert len(conflicts) == 1
    assert "queue tg.old in vhost tgstack exists as a classic queue" in conflicts[0]
    assert "rabbitmqctl delete_queue --vhost tgstack tg.old" in conflicts[0]


def test_other_arguments_and_another_exchange_type_are_conflicts():
    params = request(
        queues=[{**request()["queues"][0], "arguments": {"x-max-length": 5}}],
        exchanges=[{**request()["exchanges"][0], "type": "direct"}],
    )
    conflicts = plan(params, existing(DEFINITIONS, "tgstack"))["conflicts"]
    assert any("exchange tg.messages" in c and "topic exchange" in c for c in conflicts)
    assert any("queue tg.all" in c and '{"x-max-length": 5}' in c for c in conflicts)


def test_a_binding_to_nowhere_is_a_conflict():
    params = request(bindings=[{"source": "tg.nowhere", "destination": "tg.all", "destination_type": "queue",
                                "routing_key": "", "arguments": {}}])  # fmt: skip
    assert "'tg.nowhere' does not exist" in plan(params, existing(DEFINITIONS, "tgstack"))["conflicts"][0]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"exchanges": [{"name": "amq.direct"}]}, "belongs to the broker"),
        ({"queues": [{"name": "q", "type": "quorum", "durable": True, "auto_delete": True}]}, "never auto-delete"),
        ({"policies": [{"name": "p"}, {"name": "p"}]}, "listed more than once"),
    ],
)
def test_mistakes_in_the_request(changes, words):
    params = copy.deepcopy(request(**changes))
    with pytest.raises(TgstackRabbitmqError, match=words):
        check_input(params)


def test_check_mode_diff_shows_the_planned_state():
    params = request(
        queues=[*request()["queues"], {"name": "tg.new", "type": "quorum", "durable": True, "auto_delete": False,
                                       "arguments": {}}],
        policies=[{**request()["policies"][0], "definition": {"max-length": 20}}],
    )  # fmt: skip
    have = existing(DEFINITIONS, "tgstack")
    after = view(params, predicted(params, have, plan(params, have)))
    assert after["queues"]["tg.new"]["type"] == "quorum" and "tg.new" not in view(params, have)["queues"]
    assert after["policies"]["limits"]["definition"] == {"max-length": 20}
