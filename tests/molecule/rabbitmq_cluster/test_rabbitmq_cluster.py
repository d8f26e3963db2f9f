"""The rabbitmq role on three hosts: one cluster, quorum queues on every node."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from amqp_checks import amqp, install_client, lab_host, management_api, prometheus_metrics, publish_through, url, wait
from playbook_run import ansible_playbook

APPLY = Path(__file__).resolve().parents[1] / "rabbitmq" / "apply.yml"

NODES = {f"rabbit@rabbitmq-cluster-{n}" for n in (1, 2, 3)}


def test_every_node_runs_in_one_cluster(host):
    status = json.loads(host.check_output("rabbitmqctl --quiet cluster_status --formatter json"))
    assert set(status["running_nodes"]) == NODES and set(status["disk_nodes"]) == NODES, status
    assert status["alarms"] == [] and status["partitions"] == {}, status


def test_the_config_lists_the_cluster_and_partition_handling(host):
    conf = host.file("/etc/rabbitmq/rabbitmq.conf").content_string
    assert "cluster_formation.peer_discovery_backend = classic_config" in conf
    for node in NODES:
        assert f"= {node}" in conf
    assert "cluster_partition_handling = pause_minority" in conf


def test_quorum_queues_have_a_member_on_every_node(host):
    queues = json.loads(
        host.check_output("rabbitmqctl --quiet list_queues -p tgstack name type members online --formatter json")
    )
    assert {q["name"] for q in queues} == {"tgstack.messages.all", "tgstack.dead-letter"}
    for queue in queues:
        assert queue["type"] == "quorum" and set(queue["members"]) == NODES and set(queue["online"]) == NODES, queue


def test_users_and_topology_are_the_same_from_every_node(host):
    users = {
        entry["user"] for entry in json.loads(host.check_output("rabbitmqctl --quiet list_users --formatter json"))
    }
    assert "guest" not in users and {"tgstack_gateway", "tgstack_monitoring", "tgstack_admin"} <= users
    policies = {
        p["name"]
        for p in json.loads(host.check_output("rabbitmqctl --quiet list_policies -p tgstack --formatter json"))
    }
    assert policies == {"tgstack-messages", "tgstack-dead-letter"}


def test_the_watermark_is_in_effect_on_every_node(host):
    status = host.check_output("rabbitmq-diagnostics --quiet status")
    assert "Memory high watermark setting: 0.4 of available memory" in status, status


def test_every_node_serves_prometheus_and_the_management_api(host):
    assert "rabbitmq_identity_info" in prometheus_metrics(host)
    nodes = management_api(host, "tgstack_monitoring", "nodes")
    assert nodes["status"] == 200 and {n["name"] for n in nodes["body"] if n["running"]} == NODES, nodes
    assert management_api(host, "tgstack_gateway", "overview")["status"] == 401


@pytest.mark.parametrize(("action", "name", "allowed"), [("publish", "tgstack.messages", True),
                                                         ("publish", "amq.topic", False),
                                                         ("declare-queue", "gateway.own", False)])  # fmt: skip
def test_the_gateway_user_publishes_to_its_exchange_and_nothing_else_on_every_node(host, action, name, allowed):
    install_client(host)
    rc, probe = amqp(host, "tgstack_gateway", "probe", "--url", url("tgstack_gateway"), "--action", action,
                     "--name", name)  # fmt: skip
    assert rc == 0 and probe["ok"] is allowed, probe


def down_windows() -> list[tuple[int, int, str]]:
    """When each node's RabbitMQ was last down: (stopped, running again, node), on the kernel's monotonic
    clock, which the containers share."""
    windows = []
    for node in sorted(NODES):
        name = node.split("@")[1]
        shown = lab_host(name).check_output(
            "systemctl show -P ActiveExitTimestampMonotonic -P ActiveEnterTimestampMonotonic rabbitmq-server"
        )
        entered, exited = (int(value) for value in shown.split())
        windows.append((exited, entered, name))
    return sorted(windows)


def test_a_changed_setting_restarts_one_node_at_a_time():
    started_before = {name: started for _stopped, started, name in down_windows()}
    try:
        changed = ansible_playbook(APPLY, "-e", "rabbitmq_memory_high_watermark=0.35")
        assert changed.rc == 0, changed.output[-3000:]
        windows = down_windows()
        for stopped, _started, name in windows:
            assert stopped > started_before[name], f"{name} was not restarted: {windows}"
        for (_stop, start, first), (next_stop, _start, second) in itertools.pairwise(windows):
            assert start <= next_stop, f"{first} was still down when {second} stopped: {windows}"
        for node in sorted(NODES):
            status = lab_host(node.split("@")[1]).check_output("rabbitmq-diagnostics --quiet status")
            assert "Memory high watermark setting: 0.35 of available memory" in status
    finally:
        restored = ansible_playbook(APPLY)
        assert restored.rc == 0, restored.output[-3000:]


def leader(asked: str = "rabbitmq-cluster-1") -> str:
    queues = json.loads(lab_host(asked).check_output(
        "rabbitmqctl --quiet list_queues -p tgstack name leader --formatter json"))  # fmt: skip
    return next(q["leader"] for q in queues if q["name"] == "tgstack.messages.all").split("@")[1]


def test_no_confirmed_message_is_lost_when_the_queue_leader_stops():
    stopped = leader()
    publishing_node = next(name for name in sorted(n.split("@")[1] for n in NODES) if name != stopped)
    publisher = lab_host(publishing_node)
    try:
        counts = publish_through(
            publisher, lambda: lab_host(stopped).check_output("systemctl stop rabbitmq-server"), count=60000
        )
        assert counts["complete"] and counts["confirmed"] == 60000, counts
        assert counts["confirmed_missing"] == 0, counts
        assert counts["received"] == 60000 + counts["duplicates"], counts
        assert leader(asked=publishing_node) != stopped
    finally:
        lab_host(stopped).check_output("systemctl start rabbitmq-server")
    # the node comes back into the cluster and the queue has all its members online again
    listing = "rabbitmqctl --quiet list_queues -p tgstack name online --formatter json"
    wait(
        "the stopped node rejoins",
        lambda: all(set(q["online"]) == NODES for q in json.loads(publisher.check_output(listing))),
        limit=120,
    )
