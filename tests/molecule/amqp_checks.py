"""AMQP from inside the RabbitMQ hosts, for the verify steps of rabbitmq_default and rabbitmq_cluster.

rabbitmq/amqp_client.py (Debian's aio-pika, publisher confirms) is copied into a host and run there, a
client on the broker's host. Its password goes through the environment (AMQP_PASSWORD), never its
arguments.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import testinfra

CLIENT = Path(__file__).resolve().parent / "rabbitmq" / "amqp_client.py"
REMOTE = "/root/amqp_client.py"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
VHOST = "tgstack"
EXCHANGE = "tgstack.messages"
QUEUE = "tgstack.messages.all"


def lab_host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def passwords(host) -> dict[str, str]:
    return {user["name"]: user["password"] for user in host.ansible.get_variables()["rabbitmq_users"]}


def install_client(host) -> None:
    host.ansible("copy", f"src={CLIENT} dest={REMOTE} mode=0644", check=False)


def amqp(host, user: str, *args: str) -> tuple[int, dict]:
    """Run the client as USER on HOST; its exit status and its JSON summary."""
    secret = shlex.quote(passwords(host)[user])
    done = host.run(f"AMQP_PASSWORD={secret} python3 {REMOTE} {shlex.join(args)}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"amqp_client printed nothing: {done.stderr}"
    return done.rc, json.loads(lines[-1])


API_PROBE = """
import base64, json, os, sys, urllib.error, urllib.request
request = urllib.request.Request("http://127.0.0.1:15672/api/" + sys.argv[1])
request.add_header("Authorization", "Basic " + base64.b64encode(os.environ["CREDENTIALS"].encode()).decode())
try:
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(json.dumps({"status": answer.status, "body": json.loads(answer.read())}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code}))
"""


def management_api(host, user: str, path: str) -> dict:
    """GET /api/PATH of the management API on HOST as USER: {"status": ..., "body": ...}."""
    host.check_output(f"cat > /root/api_probe.py <<'EOF'\n{API_PROBE}EOF")
    secret = shlex.quote(f"{user}:{passwords(host)[user]}")
    return json.loads(host.check_output(f"CREDENTIALS={secret} python3 /root/api_probe.py {shlex.quote(path)}"))


def prometheus_metrics(host, port: int = 15692) -> str:
    return host.check_output(
        f"python3 -c 'import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:{port}/metrics\").read().decode())'"
    )


def url(user: str, address: str = "127.0.0.1") -> str:
    return f"amqp://{user}@{address}:5672/{VHOST}"


def wait(what: str, check: Callable[[], bool], limit: float = 240.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {limit:.0f} s"
        time.sleep(0.5)


def publish_through(publisher, disrupt: Callable[[], None], count: int) -> dict:
    """Publish COUNT persistent messages with confirms from PUBLISHER while DISRUPT runs, then drain.

    The publisher reconnects and publishes again whatever was not confirmed. Every confirmed message
    must be consumed afterwards; unconfirmed ones may arrive twice (counted as duplicates).
    """
    install_client(publisher)
    publisher.check_output(f"rabbitmqctl --quiet purge_queue --vhost {VHOST} {QUEUE}")
    publisher.run("rm -f /root/noloss-*")
    command = shlex.join([
        "python3", REMOTE, "publish", "--url", url("tgstack_gateway"), "--exchange", EXCHANGE,
        "--routing-key", "message.noloss", "--count", str(count), "--reconnect", "--deadline", "200",
        "--confirmed-file", "/root/noloss-confirmed", "--under-way-file", "/root/noloss-under-way",
        "--under-way-after", "5000",
    ])  # fmt: skip
    secret = shlex.quote(passwords(publisher)["tgstack_gateway"])
    publisher.check_output(
        f"systemd-run --quiet --unit tgstack-noloss-publish --collect -p RuntimeMaxSec=300 "
        f"--setenv=AMQP_PASSWORD={secret} sh -c {shlex.quote(command + ' > /root/noloss-publish.json')}"
    )
    # the publisher is well under way (its first 5,000 messages confirmed) before the disruption
    wait("the publisher's first 5,000 confirms", lambda: publisher.run("test -e /root/noloss-under-way").rc == 0
         or publisher.run("systemctl is-active tgstack-noloss-publish").rc != 0, limit=60)  # fmt: skip
    assert publisher.run("systemctl is-active tgstack-noloss-publish").stdout.strip() == "active"
    disrupt()
    wait("the publisher ends", lambda: publisher.run("systemctl is-active tgstack-noloss-publish").rc != 0)
    summary = json.loads(publisher.check_output("cat /root/noloss-publish.json").splitlines()[-1])
    confirmed = [int(n) for n in publisher.check_output("cat /root/noloss-confirmed").split()]
    rc, drained = amqp(publisher, "tgstack_admin", "drain", "--url", url("tgstack_admin"), "--queue", QUEUE,
                       "--idle", "5", "--deadline", "200", "--received-file", "/root/noloss-received")  # fmt: skip
    assert rc == 0, drained
    received = [int(n) for n in publisher.check_output("cat /root/noloss-received").split()]
    counts = {
        "asked": count,
        "confirmed": len(set(confirmed)),
        "republished": summary["republished"],
        "reconnects": summary["reconnects"],
        "received": len(received),
        "duplicates": len(received) - len(set(received)),
        "confirmed_missing": len(set(confirmed) - set(received)),
        "complete": summary["complete"],
    }
    print(f"no-loss counts: {json.dumps(counts)}")
    publisher.check_output(f"rabbitmqctl --quiet purge_queue --vhost {VHOST} {QUEUE}")
    return counts
