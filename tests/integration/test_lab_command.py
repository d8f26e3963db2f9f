"""The README's first command: lab/up brings up the lab hosts, runs site.yml, prints how to connect."""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import urllib.request

import redis
from labhost import PROJECT, run

REDIS_HOSTS = ["tgstack-lab-db1", "tgstack-lab-cache1", "tgstack-lab-cache2"]
LAB_HOSTS = [*REDIS_HOSTS, "tgstack-lab-mq1"]


def recap_line(name: str, changed: str = r"\d+") -> str:
    return rf"{name}\s+: ok=\d+\s+changed={changed}\s+unreachable=0\s+failed=0"


def psql_through(line: str, password: str, query: str) -> str:
    """Run QUERY with a printed psql line, from this machine when it has psql, else inside the lab host."""
    if shutil.which("psql"):
        answer = run(["psql", line, "-Atc", query], env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"})
    else:  # no client on this machine: the same connection from inside the host (its own ports)
        inside = re.sub(r"port=(\d+)", lambda m: "port=" + {"15432": "5432", "16432": "6432"}[m.group(1)], line)
        answer = run(
            ["docker", "exec", "-e", f"PGPASSWORD={password}", "tgstack-lab-db1", "psql", inside, "-Atc", query]
        )
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.strip()


def lab_address(name: str) -> str:
    inspect = run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name])
    return inspect.stdout.strip()


def test_lab_up_converges_and_the_printed_psql_line_connects(lab):
    # the lab fixture (conftest.py) ran lab/up once, for every test that needs the lab
    up = lab
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    for name in LAB_HOSTS:
        assert re.search(recap_line(name), up.stdout), up.stdout[-3000:]
    lines = re.findall(r'^\s*psql "(host=127\.0\.0\.1 port=\d+ dbname=\w+ user=\w+)"$', up.stdout, re.MULTILINE)
    assert len(lines) == 2, up.stdout[-2000:]  # TimescaleDB, then PgBouncer
    password = re.search(r"password: ([\w-]+)\)", up.stdout).group(1)
    query = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    for line in lines:
        assert psql_through(line, password, query).startswith("2.")

    # every Sentinel answers with the password printed, and they agree on a master among the lab hosts
    sentinel_password = re.search(r"Sentinels which Redis node is master \(password: ([\w-]+)\)", up.stdout)
    assert sentinel_password, up.stdout[-2000:]
    masters = set()
    for name in REDIS_HOSTS:
        sentinel = redis.Redis(
            host=lab_address(name), port=26379, password=sentinel_password.group(1), socket_timeout=3
        )
        masters.add(tuple(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "tgstack")))
    assert len(masters) == 1, masters
    master_ip = masters.pop()[0].decode()
    assert master_ip in {lab_address(name) for name in REDIS_HOSTS}

    # RabbitMQ: the printed command lists the gateway's quorum queue; the printed UI answers
    command = re.search(r"^\s*(docker exec tgstack-lab-mq1 rabbitmqctl list_queues .*)$", up.stdout, re.MULTILINE)
    assert command, up.stdout[-2000:]
    queues = run(shlex.split(command.group(1)))
    assert queues.returncode == 0 and re.search(r"^tgstack\.messages\.all\s+quorum\s+\d+$", queues.stdout, re.M)
    ui = re.search(r"management UI: (http://127\.0\.0\.1:\d+/) \(user (\w+), password: ([\w-]+)\)", up.stdout)
    assert ui, up.stdout[-2000:]
    request = urllib.request.Request(ui.group(1) + "api/overview")
    token = base64.b64encode(f"{ui.group(2)}:{ui.group(3)}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read())["rabbitmq_version"].startswith("4.")

    again = run([str(PROJECT / "lab" / "up")], cwd=PROJECT, timeout=1200)
    assert again.returncode == 0, again.stdout[-3000:]
    for name in LAB_HOSTS:
        assert re.search(recap_line(name, "0"), again.stdout), again.stdout[-3000:]
