"""Shared timing code of the module no-op benchmarks (sql_scripts_noop.py, timescaledb_hypertable_noop.py).

Two figures per module, each the median of ROUNDS runs after one warm-up run:

(a) the module's own run ON THE HOST. One task runs with ANSIBLE_KEEP_REMOTE_FILES=1 and pipelining off,
    so Ansible leaves the self-contained AnsiballZ wrapper it executed on the host (AnsiballZ_<module>.py:
    the module, its module_utils and the task's arguments in one file). That file is copied to its own
    directory under /var/tmp, unpacked once with the wrapper's `explode` subcommand and then run with
    `execute` (Ansible's documented module-debugging path: the same code and arguments, imported from plain
    files, so Python's bytecode cache works), as postgres with the host's python3, timed on the host by a
    small Python loop (neither `docker exec` nor the controller is in the figure). Each run is a whole
    process: interpreter start, Ansible's module_utils import, argument parsing, the module's work, JSON
    result. Also measured: the wrapper run directly (what a task really pays on the host: Ansible imports
    the module_utils from the embedded zip and recompiles them on every run).
(b) the task through ansible-playbook (Docker connection, pipelining on, as the integration tests run it):
    the task's duration as recorded by the ansible.posix.json callback, and the wall time of the whole
    ansible-playbook process.

ansible.builtin.ping measured both ways (with the same become) is the per-module floor on the host.

Without a host name a benchmark starts its own lab host (STANDALONE_HOST), converges it with the
timescaledb role (STANDALONE_VARS) and removes it at the end.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from labhost import ansible_env, converge_timescaledb, run, start_lab_container

WRAPPER_DIR = "/var/tmp/tgstack-bench-ansiballz"
PING = "ansible.builtin.ping"
TARGET_SECONDS = 0.3
STANDALONE_HOST = "tgstack-bench-modules"
# Like the integration tests' TSDB_VARS (tests/integration/conftest.py): PostgreSQL 17 + TimescaleDB.
STANDALONE_VARS = {
    "timescaledb_tune_memory_mb": 1024,
    "timescaledb_pg_cron_enabled": True,
    "timescaledb_schema_enabled": False,
    "timescaledb_roles": [{"name": "tgstack_app", "password": "bench-app-password"}],
    "timescaledb_databases": [{"name": "tgstack", "owner": "tgstack_app"}],
}

# Runs a wrapper (with an optional subcommand) ROUNDS + 1 times as the current user (the first run warms
# the page and bytecode caches) and prints the wall times of the measured runs as JSON; fails if the
# module failed or reported a change.
HOST_TIMER = """
import json, subprocess, sys, time
wrapper, rounds, subcommand = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = []
for attempt in range(rounds + 1):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, wrapper, *subcommand], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    result = json.loads(done.stdout)
    if done.returncode or result.get("failed") or result.get("changed"):
        sys.exit("unexpected result: " + done.stdout[-2000:] + done.stderr[-2000:])
    if attempt:
        times.append(elapsed)
print(json.dumps(times))
"""


def docker_exec(host: str, *command: str, stdin: str | None = None) -> str:
    done = run(["docker", "exec", "-i", host, *command], input=stdin)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed on {host}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


@contextlib.contextmanager
def lab_host(name: str | None) -> Iterator[str]:
    """Yield NAME; without a name, a fresh converged TimescaleDB lab host that is removed afterwards."""
    if name:
        yield name
        return
    name = STANDALONE_HOST
    print(f"starting and converging lab host {name} (timescaledb role) ...", file=sys.stderr)
    try:
        start_lab_container(name)
        converged = converge_timescaledb(name, STANDALONE_VARS)
        if converged.returncode != 0:
            sys.exit(f"converging {name} failed:\n{converged.stdout[-3000:]}{converged.stderr[-2000:]}")
        yield name
    finally:
        run(["docker", "rm", "-f", name])


def play(task: dict[str, Any]) -> str:
    return json.dumps([{"name": "bench", "hosts": "all", "gather_facts": False, "tasks": [task]}])


def run_play(host: str, playbook: str, **env: str):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "play.yml"
        path.write_text(playbook)
        started = time.perf_counter()
        done = run(
            ["ansible-playbook", "-i", f"{host},", "-c", "community.docker.docker", str(path)],
            env=ansible_env(**env),
        )
        return done, time.perf_counter() - started


def kept_wrapper(host: str, module: str, args: dict[str, Any], name: str) -> str:
    """Run MODULE once keeping its AnsiballZ wrapper on HOST; copy it to WRAPPER_DIR/NAME for postgres."""
    docker_exec(host, "bash", "-c", "rm -rf /var/tmp/ansible-tmp-* ~/.ansible/tmp/ansible-tmp-*")
    task = {module: args, "become": True, "become_user": "postgres"}
    done, _elapsed = run_play(host, play(task), ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_PIPELINING="False")
    if done.returncode != 0:
        sys.exit(f"{module} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    short = module.rsplit(".", 1)[-1]
    found = docker_exec(host, "bash", "-c", f"ls -t /var/tmp/ansible-tmp-*/AnsiballZ_{short}.py "
                        f"~/.ansible/tmp/ansible-tmp-*/AnsiballZ_{short}.py 2>/dev/null | head -1").strip()  # fmt: skip
    if not found:
        sys.exit(f"Ansible kept no AnsiballZ_{short}.py on {host}")
    target = f"{WRAPPER_DIR}/{name}/AnsiballZ_{short}.py"
    docker_exec(host, "bash", "-c", f"mkdir -p {WRAPPER_DIR}/{name} && cp {found} {target} && "
                f"chown -R postgres:postgres {WRAPPER_DIR} && rm -rf /var/tmp/ansible-tmp-*")  # fmt: skip
    docker_exec(host, "runuser", "-u", "postgres", "--", "python3", target, "explode")
    return target


def time_on_host(host: str, wrapper: str, rounds: int, *subcommand: str) -> list[float]:
    out = docker_exec(host, "runuser", "-u", "postgres", "--", "python3", "-", wrapper, str(rounds), *subcommand,
                      stdin=HOST_TIMER)  # fmt: skip
    return json.loads(out)


def time_through_ansible(host: str, module: str, args: dict[str, Any], rounds: int) -> tuple[list[float], list[float]]:
    """Task durations (json callback) and ansible-playbook wall times of ROUNDS no-op runs of MODULE."""
    task = {"name": "no-op", module: args, "become": True, "become_user": "postgres"}
    tasks, walls = [], []
    for attempt in range(rounds + 1):
        done, wall = run_play(host, play(task), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
        report = json.loads(done.stdout)
        entry = report["plays"][0]["tasks"][0]
        result = entry["hosts"][host]
        if result.get("failed") or result.get("changed"):
            sys.exit(f"the no-op {module} task failed or changed: {result}")
        duration = entry["task"]["duration"]
        start, end = (datetime.datetime.fromisoformat(duration[key].replace("Z", "+00:00")) for key in ("start", "end"))
        if attempt:  # the first run warms caches (and Python interpreter discovery)
            tasks.append((end - start).total_seconds())
            walls.append(wall)
    return tasks, walls


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms (runs: {', '.join(f'{v * 1000:.0f}' for v in values)})"


def measure_and_report(host: str, module: str, args: dict[str, Any], rounds: int, title: str) -> None:
    """Time MODULE's no-op run with ARGS (already up to date on HOST) and ping both ways; print the figures."""
    short = module.rsplit(".", 1)[-1]
    module_wrapper = kept_wrapper(host, module, args, short)
    ping_wrapper = kept_wrapper(host, PING, {}, "ping")
    own = time_on_host(host, module_wrapper, rounds, "execute")
    floor = time_on_host(host, ping_wrapper, rounds, "execute")
    own_zip = time_on_host(host, module_wrapper, rounds)
    floor_zip = time_on_host(host, ping_wrapper, rounds)
    task, wall = time_through_ansible(host, module, args, rounds)
    ping_task, ping_wall = time_through_ansible(host, PING, {}, rounds)
    docker_exec(host, "rm", "-rf", WRAPPER_DIR)

    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    print(f"{title}, host {host}, median of {rounds} (controller load average {load}):")
    print(f"  (a) module's own run on the host (AnsiballZ explode + execute): {short} {ms(own)}")
    print(f"                                                                  ping {ms(floor)}")
    print(f"      AnsiballZ wrapper run directly (as a task runs it):         {short} {ms(own_zip)}")
    print(f"                                                                  ping {ms(floor_zip)}")
    print(f"  (b) task duration through ansible-playbook:                     {short} {ms(task)}")
    print(f"                                                                  ping {ms(ping_task)}")
    print(f"      whole ansible-playbook run (controller start included):     {short} {ms(wall)}")
    print(f"                                                                  ping {ms(ping_wall)}")
    verdict = "met" if statistics.median(own) < TARGET_SECONDS else "NOT met"
    print(f"  target (a) < {TARGET_SECONDS * 1000:.0f} ms: {verdict}")
