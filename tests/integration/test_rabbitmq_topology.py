"""tgstack.hybrid.rabbitmq_topology against a real RabbitMQ 4 (Debian's package) on a lab host."""

from __future__ import annotations

import json

from conftest import RABBITMQ_HOST as HOST
from labhost import run, run_module

MODULE = "tgstack.hybrid.rabbitmq_topology"
VHOST = "topology"
TOPOLOGY = {
    "vhost": VHOST,
    "default_queue_type": "quorum",
    "exchanges": [{"name": "tg.messages", "type": "topic"}, {"name": "tg.dead-letter", "type": "fanout"}],
    "queues": [{"name": "tg.messages.all"}, {"name": "tg.dead-letter"}],
    "bindings": [
        {"source": "tg.messages", "destination": "tg.messages.all", "routing_key": "#"},
        {"source": "tg.dead-letter", "destination": "tg.dead-letter"},
    ],
    "policies": [
        {
            "name": "tg-messages",
            "pattern": "^tg\\.messages\\.",
            "apply_to": "quorum_queues",
            "definition": {"delivery-limit": 20, "max-length": 100000, "dead-letter-exchange": "tg.dead-letter"},
        }
    ],
}


def ctl(*args: str) -> str:
    done = run(["docker", "exec", HOST, "rabbitmqctl", "--quiet", *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


def state() -> dict:
    """The vhost's queues (name -> type), exchanges, bindings and policies, as the broker has them."""
    definitions = json.loads(ctl("export_definitions", "-", "--format", "json", "--silent"))
    mine = {kind: [item for item in definitions[kind] if item["vhost"] == VHOST]
            for kind in ("queues", "exchanges", "bindings", "policies")}  # fmt: skip
    return {
        "queues": {queue["name"]: queue.get("type") for queue in mine["queues"]},
        "exchanges": sorted(exchange["name"] for exchange in mine["exchanges"]),
        "bindings": sorted(f"{b['source']}->{b['destination']}:{b['routing_key']}" for b in mine["bindings"]),
        "policies": {policy["name"]: policy["definition"] for policy in mine["policies"]},
        "vhost": [v for v in definitions["vhosts"] if v["name"] == VHOST],
    }


def declare_classic_queue(name: str) -> None:
    """A queue as an older deployment left it: classic, declared by a client."""
    script = (
        f'echo \'{{"queues":[{{"name":"{name}","vhost":"{VHOST}","durable":true,"auto_delete":false,'
        f'"arguments":{{"x-queue-type":"classic"}}}}]}}\' > /tmp/classic.json && chmod 644 /tmp/classic.json && '
        f"rabbitmqctl --quiet import_definitions /tmp/classic.json >/dev/null && "
        f"for i in $(seq 50); do rabbitmqctl --quiet list_queues -p {VHOST} name | grep -qx '{name}' && exit 0; "
        "sleep 0.2; done; exit 1"
    )
    assert run(["docker", "exec", HOST, "bash", "-c", script]).returncode == 0


def test_topology_created_then_nothing_to_do(broker):
    ctl("add_vhost", VHOST)
    checked = run_module(broker, MODULE, TOPOLOGY, check=True, diff=True, become_user=None)
    assert checked["changed"] is True and "declare queue tg.messages.all" in checked["actions"], checked
    assert checked["diff"]["after"]["queues"]["tg.messages.all"]["type"] == "quorum", checked["diff"]
    assert checked["diff"]["before"]["queues"] == {}
    assert state()["queues"] == {}, "check mode changed the broker"

    first = run_module(broker, MODULE, TOPOLOGY, diff=True, become_user=None)
    assert first["changed"] is True and not first.get("failed"), first
    now = state()
    assert now["queues"] == {"tg.messages.all": "quorum", "tg.dead-letter": "quorum"}
    assert now["exchanges"] == ["tg.dead-letter", "tg.messages"]
    assert now["bindings"] == ["tg.dead-letter->tg.dead-letter:", "tg.messages->tg.messages.all:#"]
    assert now["policies"]["tg-messages"]["delivery-limit"] == 20
    assert now["vhost"][0]["default_queue_type"] == "quorum"
    # the policy is in effect on the queue it matches
    queues = json.loads(ctl("list_queues", "-p", VHOST, "name", "policy", "--formatter", "json"))
    assert {queue["name"]: queue["policy"] for queue in queues}["tg.messages.all"] == "tg-messages"

    second = run_module(broker, MODULE, TOPOLOGY, become_user=None)
    assert second["changed"] is False and second["actions"] == [], second


def test_a_policy_changes_in_place(broker):
    changed = json.loads(json.dumps(TOPOLOGY))
    changed["policies"][0]["definition"]["max-length"] = 5000
    result = run_module(broker, MODULE, changed, become_user=None)
    assert result["changed"] is True and result["actions"] == ["set policy tg-messages"], result
    assert state()["policies"]["tg-messages"]["max-length"] == 5000
    run_module(broker, MODULE, TOPOLOGY, become_user=None)


def test_classic_where_quorum_is_asked_fails_clearly_and_changes_nothing(broker):
    declare_classic_queue("tg.legacy")
    before = state()
    asked = json.loads(json.dumps(TOPOLOGY))
    asked["queues"] += [{"name": "tg.new"}, {"name": "tg.legacy"}]
    asked["policies"][0]["definition"]["max-length"] = 7
    result = run_module(broker, MODULE, asked, become_user=None)
    assert result.get("failed") is True, result
    message = result["msg"]
    assert message.startswith(f"nothing was changed in vhost {VHOST}"), message
    assert "queue tg.legacy" in message and "exists as a classic queue" in message
    assert "asked: a quorum queue" in message
    assert f"rabbitmqctl delete_queue --vhost {VHOST} tg.legacy" in message
    assert "Traceback" not in message and "PRECONDITION_FAILED" not in message
    assert state() == before, "a conflict must leave the broker as it was (no tg.new, policy unchanged)"


def test_a_policy_the_broker_refuses_puts_back_the_others(broker):
    before = state()
    asked = json.loads(json.dumps(TOPOLOGY))
    asked["queues"].append({"name": "tg.other"})
    asked["policies"][0]["definition"]["max-length"] = 9
    asked["policies"].append({"name": "tg-typo", "pattern": "^tg\\.x", "definition": {"max-lenght": 5}})
    result = run_module(broker, MODULE, asked, become_user=None)
    assert result.get("failed") is True and "max-lenght" in result["msg"] and "put back" in result["msg"], result
    assert state() == before


def test_mistakes_in_the_request_are_named(broker):
    cases = [
        ({"exchanges": [{"name": "amq.topic"}]}, "belongs to the broker"),
        ({"queues": [{"name": "q", "durable": False}]}, "always durable"),
        ({"bindings": [{"source": "tg.nowhere", "destination": "tg.messages.all"}]}, "'tg.nowhere' does not exist"),
        ({"queues": [{"name": "a"}, {"name": "a"}]}, "listed more than once"),
        ({"vhost": "no-such-vhost"}, "the virtual host no-such-vhost does not exist"),
    ]
    for extra, words in cases:
        result = run_module(broker, MODULE, {"vhost": VHOST, **extra}, become_user=None)
        assert result.get("failed") is True and words in result["msg"], (extra, result)
