"""The rabbitmq role on three hosts: one cluster, quorum queues on every node."""

from __future__ import annotations

import json

from amqp_checks import lab_host, publish_through, wait

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
