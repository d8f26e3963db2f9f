"""The rabbitmq role on one host: what an operator and a client of the broker notice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playbook_run import ansible_playbook

HERE = Path(__file__).resolve().parent
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
    metrics = host.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:15692/metrics').read().decode())\""
    )
    assert "rabbitmq_build_info" in metrics or "rabbitmq_identity_info" in metrics


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
