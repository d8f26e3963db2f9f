"""RabbitMQ confirmed publish rate on the lab: persistent messages to a quorum queue, client on the broker host.

The client is tests/molecule/rabbitmq/amqp_client.py (aio-pika, publisher confirms, mandatory, persistent
messages, up to --window unconfirmed at once), copied into the RabbitMQ lab container and run there
against 127.0.0.1, so the figure is the broker's and not the Docker network's. python3-aio-pika is
installed in the container when it is missing. Each round purges the queue, publishes --count messages
of --size bytes to the exchange (routed to the queue) and records confirmed messages per second over the
whole run; the queue is purged again at the end. The lab's own settings apply.

    source lab/bootstrap && lab/up && python3 bench/rabbitmq_publish.py [--rounds 3] [--count 50000] \\
        [--size 1024] [--window 256] [--host NAME]

Defaults come from the lab inventory (inventories/lab): the first host of group rabbitmq, vhost tgstack,
user tgstack_gateway (its password from the host's rabbitmq_users), exchange tgstack.messages (routing
key message.bench), quorum queue tgstack.messages.all. Every one of them is an option; with AMQP_PASSWORD
set in the environment the inventory is not read for the password, so a broker container of your own
works too (e.g. --host my-rabbit --user me). The password reaches `docker exec` through its environment.

Bounded: each round's client gives up after --deadline seconds (default 120).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import urllib.parse

from _lab import PROJECT, docker_exec, fail, group, host_vars, require_lab, run

CLIENT = PROJECT / "tests" / "molecule" / "rabbitmq" / "amqp_client.py"
# Not under /tmp: the lab hosts mount a tmpfs there, which hides what `docker cp` writes.
REMOTE_CLIENT = "/root/tgstack-bench-amqp_client.py"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=50000, help="messages per round")
    parser.add_argument("--size", type=int, default=1024, help="message body size in bytes")
    parser.add_argument("--window", type=int, default=256, help="unconfirmed messages at most")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per round")
    parser.add_argument("--host", help="the RabbitMQ container (default: first host of group rabbitmq)")
    parser.add_argument("--port", type=int, help="AMQP port (default: the host's first rabbitmq_amqp_listeners, 5672)")
    parser.add_argument("--vhost", default="tgstack")
    parser.add_argument("--user", default="tgstack_gateway", help="password: env AMQP_PASSWORD or rabbitmq_users")
    parser.add_argument("--exchange", default="tgstack.messages")
    parser.add_argument("--routing-key", default="message.bench")
    parser.add_argument("--queue", default="tgstack.messages.all")
    args = parser.parse_args()
    if args.rounds < 1 or args.count < 1 or args.window < 1 or args.deadline <= 0:
        parser.error("--rounds, --count, --window and --deadline must be positive")
    return args


def lab_host(args: argparse.Namespace) -> str:
    if args.host:
        return args.host
    hosts = group("rabbitmq")
    if not hosts:
        fail("inventories/lab has no host in group rabbitmq: name the broker container with --host")
    return hosts[0]


def inventory_vars(host: str) -> dict:
    try:
        return host_vars(host)
    except KeyError:
        return {}


def password_for(host: str, user: str, variables: dict) -> str:
    """AMQP_PASSWORD when set, else the user's entry in the host's rabbitmq_users."""
    if os.environ.get("AMQP_PASSWORD"):
        return os.environ["AMQP_PASSWORD"]
    if not variables:
        fail(f"{host} is not in inventories/lab: set AMQP_PASSWORD to the password of {user!r} on it")
    entry = next((item for item in variables.get("rabbitmq_users") or [] if item.get("name") == user), None)
    if entry is None or not entry.get("password"):
        fail(f"{host}'s rabbitmq_users has no password for {user!r}: add it to the inventory or set AMQP_PASSWORD")
    password = str(entry["password"])
    if "{{" in password:
        fail(f"the password of {user!r} in rabbitmq_users is a template ({password}): set AMQP_PASSWORD instead")
    return password


def amqp_port(args: argparse.Namespace, variables: dict) -> int:
    if args.port:
        return args.port
    listeners = variables.get("rabbitmq_amqp_listeners") or ["5672"]
    try:
        return int(str(listeners[0]).rsplit(":", 1)[-1])
    except ValueError:
        fail(f"cannot read a port from rabbitmq_amqp_listeners {listeners!r}: give --port")
    return 5672


def prepare(host: str) -> None:
    """The client in the container, and aio-pika for it."""
    run(["docker", "cp", str(CLIENT), f"{host}:{REMOTE_CLIENT}"])
    probe = subprocess.run(
        ["docker", "exec", host, "python3", "-c", "import aio_pika"], capture_output=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        print(f"bench: python3-aio-pika is missing on {host}: installing it (apt-get install)", file=sys.stderr)
        docker_exec(
            host,
            "sh",
            "-c",
            "export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq python3-aio-pika >/dev/null 2>&1 "
            "|| { apt-get update -qq && apt-get install -y -qq python3-aio-pika >/dev/null; }",
            timeout=600,
        )


def queue_type(host: str, vhost: str, queue: str) -> str:
    listing = docker_exec(host, "rabbitmqctl", "--quiet", "list_queues", "--vhost", vhost, "name", "type",
                          "--formatter", "json")  # fmt: skip
    try:
        queues = {entry["name"]: entry["type"] for entry in json.loads(listing)}
    except (ValueError, KeyError, TypeError):
        fail(f"cannot read rabbitmqctl list_queues on {host}:\n{listing[-2000:]}")
    if queue not in queues:
        fail(f"no queue {queue!r} in vhost {vhost!r} on {host} (queues: {sorted(queues)}): converge the lab first")
    return queues[queue]


def purge(host: str, vhost: str, queue: str) -> None:
    docker_exec(host, "rabbitmqctl", "--quiet", "purge_queue", "--vhost", vhost, queue)


def publish(args: argparse.Namespace, number: int, host: str, url: str, password: str) -> dict:
    """One run of the client's publish subcommand; its JSON summary, or the bench ends saying why."""
    command = ["docker", "exec", "-e", "AMQP_PASSWORD", host, "python3", REMOTE_CLIENT, "publish", "--url", url,
               "--exchange", args.exchange, "--routing-key", args.routing_key, "--count", str(args.count),
               "--size", str(args.size), "--window", str(args.window), "--deadline", str(args.deadline)]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            env={**os.environ, "AMQP_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=args.deadline + 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        fail(f"the publish client on {host} did not end within {args.deadline + 60:.0f} s")
    try:
        summary = json.loads(done.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        fail(f"the publish client on {host} printed no summary (rc {done.returncode}):\n{done.stderr[-2000:]}")
    if done.returncode != 0 or not summary.get("complete"):
        fail(f"round {number} failed on {host}: {summary.get('error') or summary}")
    return summary


def main() -> None:
    args = parse()
    host = lab_host(args)
    require_lab([host])
    variables = {} if args.host and os.environ.get("AMQP_PASSWORD") else inventory_vars(host)
    password = password_for(host, args.user, variables)
    port = amqp_port(args, variables)
    url = f"amqp://{urllib.parse.quote(args.user, safe='')}@127.0.0.1:{port}/{urllib.parse.quote(args.vhost, safe='')}"
    prepare(host)
    version = docker_exec(host, "rabbitmqctl", "--quiet", "version").strip()
    kind = queue_type(host, args.vhost, args.queue)
    print(
        f"RabbitMQ {version} on {host}: {args.count} persistent messages of {args.size} B per round, exchange "
        f"{args.exchange} -> {kind} queue {args.queue} (vhost {args.vhost}), publisher confirms, window "
        f"{args.window}, client on the broker host (aio-pika)",
        flush=True,
    )
    rates: list[float] = []
    try:
        for number in range(1, args.rounds + 1):
            purge(host, args.vhost, args.queue)
            summary = publish(args, number, host, url, password)
            rates.append(summary["rate"])
            extra = "".join(
                f", {summary[key]} {key}" for key in ("nacked", "returned", "republished") if summary.get(key)
            )
            print(
                f"round {number}: {summary['confirmed']} confirmed in {summary['seconds']:.2f} s: "
                f"{summary['rate']:.0f} msg/s{extra}",
                flush=True,
            )
    finally:
        purge(host, args.vhost, args.queue)
    median = statistics.median(rates)
    print(
        f"confirmed publish rate, median of {args.rounds}: {median:.0f} msg/s "
        f"({median * args.size / 1e6:.1f} MB/s of bodies); RabbitMQ {version}, {kind} queue"
    )
    cells = " | ".join(f"{rate:.0f} msg/s" for rate in rates)
    print(
        f"| {datetime.date.today().isoformat()} | RabbitMQ {version}, {kind} queue | {args.count} x {args.size} B, "
        f"window {args.window} | {cells} | **{median:.0f} msg/s** |"
    )


if __name__ == "__main__":
    main()
