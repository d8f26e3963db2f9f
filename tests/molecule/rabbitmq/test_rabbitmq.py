"""The rabbitmq role on one host: what an operator and a client of the broker notice."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from amqp_checks import amqp, install_client, management_api, prometheus_metrics, publish_through, url
from playbook_run import PROJECT, ansible_playbook

HERE = Path(__file__).resolve().parent
ROLE_DEFAULTS = yaml.safe_load((PROJECT / "roles" / "rabbitmq" / "defaults" / "main.yml").read_text())
# what a refused run must not change: the config, the cookie and the running process
STATE = (
    "sha256sum /etc/rabbitmq/rabbitmq.conf /var/lib/rabbitmq/.erlang.cookie; systemctl show -P MainPID rabbitmq-server"
)


def test_running_enabled_and_configured_by_file_only(host):
    unit = host.service("rabbitmq-server")
    assert unit.is_running and unit.is_enabled
    conf = host.file("/etc/rabbitmq/rabbitmq.conf")
    assert conf.user == "root" and conf.group == "rabbitmq" and conf.mode == 0o640
    assert "vm_memory_high_watermark.relative = 0.4" in conf.content_string
    environment = host.check_output("systemctl show -p Environment --value rabbitmq-server")
    assert "RABBITMQ_VM_MEMORY_HIGH_WATERMARK" not in environment


def test_the_watermark_and_disk_limit_are_in_effect(host):
    status = host.check_output("rabbitmq-diagnostics --quiet status")
    assert "Memory high watermark setting: 0.4 of available memory" in status, status
    assert "Low free disk space watermark: 2.0 gb" in status, status


def test_the_cookie_is_private_to_rabbitmq(host):
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert cookie.user == "rabbitmq" and cookie.mode == 0o400
    assert cookie.content_string.strip() == host.ansible.get_variables()["rabbitmq_erlang_cookie"]


def test_guest_is_gone_and_the_users_have_their_tags(host):
    users = {entry["user"]: entry["tags"] for entry in json.loads(
        host.check_output("rabbitmqctl --quiet list_users --formatter json"))}  # fmt: skip
    assert "guest" not in users
    assert users["tgstack_monitoring"] == ["monitoring"] and users["tgstack_admin"] == ["administrator"]
    assert users["tgstack_gateway"] == []


def test_plugins_and_the_prometheus_endpoint(host):
    enabled = host.check_output("rabbitmq-plugins --quiet list --enabled --minimal").split()
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(enabled)
    assert "rabbitmq_identity_info" in prometheus_metrics(host)


def test_a_plugin_turned_off_is_disabled_and_on_again(host):
    off = ansible_playbook(HERE / "apply.yml", "-e", "rabbitmq_prometheus_enabled=false")
    assert off.rc == 0, off.output[-3000:]
    assert "rabbitmq_prometheus" not in host.check_output("rabbitmq-plugins --quiet list --enabled --minimal").split()
    assert host.run("python3 -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:15692/metrics\")'").rc != 0
    on = ansible_playbook(HERE / "apply.yml")
    assert on.rc == 0, on.output[-3000:]
    assert "rabbitmq_identity_info" in prometheus_metrics(host)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"rabbitmq_memory_high_watermark": 2.5}, "above 0 and below 1"),
        ({"rabbitmq_settings": {"vm_memory_high_watermrk.relative": 0.5}}, "unknown variable"),
        ({"rabbitmq_erlang_cookie": "short"}, "rabbitmq_erlang_cookie must be 20 or more"),
    ],
)
def test_bad_input_fails_and_the_running_broker_is_untouched(host, extra, words):
    before = host.check_output(STATE)
    run = ansible_playbook(HERE / "apply.yml", "-e", json.dumps(extra))
    assert run.rc != 0 and words in run.output, run.output[-3000:]
    after = host.check_output(STATE)
    assert after == before
    assert host.service("rabbitmq-server").is_running


def test_a_broken_value_is_refused_before_it_reaches_the_broker(host):
    before = host.check_output(STATE)
    run = ansible_playbook(HERE / "apply.yml", "-e", json.dumps({"rabbitmq_settings": {"consumer_timeout": "soon"}}))
    assert run.rc != 0 and "consumer_timeout" in run.output, run.output[-3000:]
    assert host.check_output(STATE) == before


def definitions(host) -> dict:
    return json.loads(host.check_output("rabbitmqctl export_definitions - --format json --silent"))


def test_the_default_topology_quorum_queues_and_policies(host):
    mine = {kind: [item for item in definitions(host)[kind] if item.get("vhost") == "tgstack"]
            for kind in ("queues", "exchanges", "bindings", "policies")}  # fmt: skip
    assert {q["name"]: q["type"] for q in mine["queues"]} == {
        "tgstack.messages.all": "quorum",
        "tgstack.dead-letter": "quorum",
    }
    assert {e["name"]: e["type"] for e in mine["exchanges"]} == {
        "tgstack.messages": "topic",
        "tgstack.dead-letter": "fanout",
    }
    assert {(b["source"], b["destination"], b["routing_key"]) for b in mine["bindings"]} == {
        ("tgstack.messages", "tgstack.messages.all", "#"),
        ("tgstack.dead-letter", "tgstack.dead-letter", ""),
    }
    effective = {q["name"]: dict(q["effective_policy_definition"]) for q in json.loads(host.check_output(
        "rabbitmqctl --quiet list_queues -p tgstack name effective_policy_definition --formatter json"))}  # fmt: skip
    assert effective["tgstack.messages.all"] == {
        "delivery-limit": 20,
        "max-length": 1000000,
        "message-ttl": 604800000,
        "dead-letter-exchange": "tgstack.dead-letter",
    }
    assert effective["tgstack.dead-letter"]["max-length"] == 100000
    vhost = next(v for v in definitions(host)["vhosts"] if v["name"] == "tgstack")
    assert vhost["default_queue_type"] == "quorum"


def declare_classic_queue(host, name: str) -> None:
    """A queue as an older deployment left it: classic (declared here through a definitions import)."""
    document = {"queues": [{"name": name, "vhost": "tgstack", "durable": True, "auto_delete": False,
                            "arguments": {"x-queue-type": "classic"}}]}  # fmt: skip
    host.check_output(f"echo '{json.dumps(document)}' > /tmp/classic.json && chmod 644 /tmp/classic.json")
    host.check_output("rabbitmqctl --quiet import_definitions /tmp/classic.json")
    host.check_output(
        f"for i in $(seq 50); do rabbitmqctl --quiet list_queues -p tgstack name | grep -qx '{name}' && exit 0; "
        "sleep 0.2; done; exit 1"
    )


def test_classic_where_quorum_is_asked_fails_clearly_and_changes_nothing(host):
    declare_classic_queue(host, "tgstack.messages.archive")
    try:
        topology = ROLE_DEFAULTS["rabbitmq_topology"]["tgstack"]
        asked = {**topology, "queues": [*topology["queues"], {"name": "tgstack.messages.archive"},
                                        {"name": "tgstack.messages.search"}]}  # fmt: skip
        asked["policies"] = [{**p, "definition": {**p["definition"], "max-length": 10}} for p in topology["policies"]]
        before = definitions(host)
        run = ansible_playbook(HERE / "apply.yml", "-e", json.dumps({"rabbitmq_topology": {"tgstack": asked}}))
        assert run.rc != 0, run.output[-3000:]
        output = " ".join(run.output.split())
        assert "nothing was changed in vhost tgstack" in output, output[-3000:]
        assert "queue tgstack.messages.archive in vhost tgstack exists as a classic queue" in output
        assert "rabbitmqctl delete_queue --vhost tgstack tgstack.messages.archive" in output
        assert "PRECONDITION_FAILED" not in output and "Traceback" not in output
        after = definitions(host)
        for kind in ("queues", "exchanges", "bindings", "policies", "vhosts"):
            assert after[kind] == before[kind], kind
    finally:
        host.check_output("rabbitmqctl --quiet delete_queue --vhost tgstack tgstack.messages.archive")


def test_the_monitoring_user_reads_the_management_api(host):

    def get(user: str, path: str) -> dict:
        return management_api(host, user, path)

    overview = get("tgstack_monitoring", "overview")
    assert overview["status"] == 200 and overview["body"]["rabbitmq_version"].startswith("4."), overview
    queues = get("tgstack_monitoring", "queues/tgstack")
    assert queues["status"] == 200 and {q["name"] for q in queues["body"]} >= {"tgstack.messages.all"}
    # the gateway's user has no management tag: the API refuses it
    assert get("tgstack_gateway", "overview")["status"] == 401


SCAN = """
import base64, json, os, stat, sys
secrets = [s.encode() for s in json.loads(base64.b64decode(sys.argv[1]))]
found = []
for top in ("/etc", "/var", "/tmp", "/root", "/home", "/opt", "/usr/local", "/run", "/srv"):
    for directory, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size > 64 * 1024 * 1024:
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if any(secret in data for secret in secrets):
                found.append({"path": path, "mode": stat.S_IMODE(info.st_mode)})
print(json.dumps(found))
"""


def test_no_password_in_ps_during_a_converge_nor_in_a_world_readable_file(host):
    users = host.ansible.get_variables()["rabbitmq_users"]
    rotated = [{**user, "password": f"rotated-{user['name']}-pw 9"} for user in users]
    extra = {"name": "tgstack_extra", "password": "extra-Rabbit-pw 7", "tags": ["management"]}
    passwords = [u["password"] for u in users + rotated] + [extra["password"]]
    # ps every 20 ms (a rabbitmqctl call lasts about a second) for the whole converge: a transient unit,
    # stopped by the test or after 10 minutes
    host.check_output(
        "rm -f /tmp/ps-samples; systemd-run --quiet --unit tgstack-ps-sampler --collect -p RuntimeMaxSec=600 "
        "sh -c 'while :; do ps -eww -o user=,args= >> /tmp/ps-samples; sleep 0.02; done'"
    )
    try:
        rotate = ansible_playbook(HERE / "apply.yml", "-e", json.dumps({"rabbitmq_users": [*rotated, extra]}))
        assert rotate.rc == 0, rotate.output[-3000:]
        restore = ansible_playbook(HERE / "apply.yml")
        assert restore.rc == 0, restore.output[-3000:]
    finally:
        host.run("systemctl stop tgstack-ps-sampler")
        host.run("rabbitmqctl --quiet delete_user tgstack_extra")
    samples = host.file("/tmp/ps-samples").content_string
    # the sampler saw the steps that set passwords (so it was looking at the right moments)
    assert "add_user tgstack_extra" in samples and "change_password tgstack_gateway" in samples
    leaked = [password for password in passwords if password in samples]
    assert leaked == [], f"{len(leaked)} password(s) visible in ps output"
    host.run("rm -f /tmp/ps-samples")

    encoded = base64.b64encode(json.dumps(passwords).encode()).decode()
    host.check_output(f"cat > /tmp/scan.py <<'EOF'\n{SCAN}EOF")
    found = json.loads(host.check_output(f"python3 /tmp/scan.py {encoded}"))
    readable = [entry for entry in found if entry["mode"] & 0o004]
    assert readable == [], readable


@pytest.mark.parametrize(
    ("action", "name", "allowed"),
    [
        ("publish", "tgstack.messages", True),
        ("publish", "amq.topic", False),
        ("publish", "tgstack.dead-letter", False),
        ("declare-queue", "gateway.own", False),
        ("declare-exchange", "gateway.own", False),
        ("consume", "tgstack.messages.all", False),
    ],
)
def test_the_gateway_user_publishes_to_its_exchange_and_nothing_else(host, action, name, allowed):
    install_client(host)
    rc, probe = amqp(host, "tgstack_gateway", "probe", "--url", url("tgstack_gateway"), "--action", action,
                     "--name", name)  # fmt: skip
    assert rc == 0 and probe["ok"] is allowed, probe
    if not allowed:
        assert "ACCESS_REFUSED" in probe["error"], probe


def test_no_confirmed_message_is_lost_across_a_broker_restart(host):
    counts = publish_through(host, lambda: host.check_output("systemctl restart rabbitmq-server"), count=60000)
    assert counts["complete"] and counts["confirmed"] == 60000, counts
    assert counts["reconnects"] >= 1, f"the restart did not happen during the run: {counts}"
    assert counts["confirmed_missing"] == 0, counts
    assert counts["received"] == 60000 + counts["duplicates"], counts
