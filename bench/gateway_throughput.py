"""Telegram gateway throughput on the lab: sustained messages/s and latency through the whole stack, with the
bare broker's and the database's rates measured in the same run as ceilings (issue 6, acceptance 5).

The measuring is the gateway's own (gateway/tgstack_gateway/bench.py, `tgstack-gateway bench`): in one
process, the broker ceiling (the gateway's Publisher, per message, confirms), the database ceiling (the
gateway's Store: upsert_messages through PgBouncer, fresh chats), the full pipeline per message at full
speed, the pipeline at 1,000 msg/s (p50/p99 from receipt to confirmed publish), batch mode at full speed
for 60 s, and with the profile a full-speed run under cProfile grouped by stage. This script runs it where
the gateway runs when it can: in the gateway host of the lab with Debian's packages (`docker exec ...
tgstack-gateway bench`, or `python3 -m tgstack_gateway.bench` when the installed command has no bench yet),
otherwise from this machine with the venv and a configuration that reaches the lab (--config, --env-file);
the output says which. Meanwhile it reads the CPU time of each lab container (cgroup) and of this machine at
the start and end of every phase.

    source lab/bootstrap && python3 bench/gateway_throughput.py [--seconds 20] [--batch-seconds 60] \\
        [--no-profile] [--where auto|host|local] [--config gateway.yml --env-file secrets.env] \\
        [--batch-size N] [--connections N]

Before and after, the queue the exchange feeds (tgstack.messages.all) is purged so that it does not fill
the disk; afterwards the rows of the run's chats are deleted from the database (--keep-rows keeps them)
and the gateway deletes their Redis keys. Bounded: the benchmark is stopped after its phases' time plus
--slack seconds (with the defaults a run takes about 3.5 minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from _lab import PROJECT, docker_exec, fail, group, require_lab, run

sys.path.insert(0, str(PROJECT / "gateway"))
from tgstack_gateway.bench import PHASES, report  # the gateway's package, not installed here

HOST_COMMAND = "/usr/local/bin/tgstack-gateway"
HOST_LIBRARY = "/usr/lib/tgstack-gateway"
HOST_CONFIG = "/etc/tgstack-gateway/gateway.yml"
HOST_SECRETS = "/etc/tgstack-gateway/secrets.env"
VENV_PYTHON = PROJECT / ".venv" / "bin" / "python"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase (default 20)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="measured seconds of batch mode (60)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each pipeline run")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset (default: all)")
    parser.add_argument("--batch-size", type=int, help="instead of the gateway's pipeline.batch_size")
    parser.add_argument("--connections", type=int, help="instead of the gateway's postgres.connections")
    parser.add_argument("--first-chat", type=int, default=-1100000000000,
                        help="the run's chat ids count down from here, below the service's "
                        "(default %(default)s)")  # fmt: skip
    parser.add_argument("--where", choices=("auto", "host", "local"), default="auto",
                        help="host: in the gateway host; local: from here with the venv; auto: host when the "
                        "gateway is installed there")  # fmt: skip
    parser.add_argument("--host", help="the gateway host (default: the first host of group gateway)")
    parser.add_argument("--config", help="local runs: the gateway's settings file")
    parser.add_argument("--env-file", help="local runs: its secrets file")
    parser.add_argument("--rabbitmq-host", help="where to purge the queue (default: first host of group rabbitmq)")
    parser.add_argument("--vhost", default="tgstack")
    parser.add_argument("--queue", default="tgstack.messages.all")
    parser.add_argument("--database-host", help="where to delete the run's rows (default: first of timescaledb)")
    parser.add_argument("--database", default="tgstack")
    parser.add_argument("--keep-rows", action="store_true", help="keep the run's rows in the database")
    parser.add_argument("--slack", type=float, default=180.0, help="seconds allowed beyond the phases' own time")
    args = parser.parse_args()
    if min(args.seconds, args.batch_seconds, args.profile_seconds, args.slack) <= 0 or args.warmup < 0:
        parser.error("--seconds, --batch-seconds, --profile-seconds and --slack must be positive")
    return args


def first_host(name: str, given: str | None) -> str:
    if given:
        return given
    hosts = group(name)
    if not hosts:
        fail(f"inventories/lab has no host in group {name}: name it with the matching option")
    return hosts[0]


def succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0


def bench_arguments(args: argparse.Namespace) -> list[str]:
    arguments = ["--json", "--seconds", str(args.seconds), "--batch-seconds", str(args.batch_seconds),
                 "--warmup", str(args.warmup), "--profile-seconds", str(args.profile_seconds),
                 "--first-chat", str(args.first_chat), "--phases", args.phases]  # fmt: skip
    for option, value in (("--batch-size", args.batch_size), ("--connections", args.connections)):
        if value is not None:
            arguments += [option, str(value)]
    return arguments + ([] if args.no_profile else ["--profile"])


def time_limit(args: argparse.Namespace) -> float:
    phases = args.phases.split(",")
    measured = sum(args.seconds for phase in ("broker", "database", "pipeline", "latency") if phase in phases)
    measured += args.batch_seconds if "batch" in phases else 0
    measured += args.profile_seconds if "profile" in phases and not args.no_profile else 0
    return measured + len(phases) * args.warmup + args.slack


def command_for(args: argparse.Namespace, host: str) -> tuple[str, list[str], dict[str, str] | None]:
    """Where the benchmark runs (a sentence for the output), its command, and its environment when local."""
    limit = f"{time_limit(args):.0f}"
    # in the host, `timeout` stops the benchmark itself: killing `docker exec` would leave it running there
    in_host = ["docker", "exec", host, "timeout", "-k", "30", "-s", "INT", limit]
    if args.where in ("auto", "host") and succeeds(["docker", "exec", host, "test", "-x", HOST_COMMAND]):
        settings = ["--config", HOST_CONFIG, "--env-file", HOST_SECRETS]
        if succeeds(["docker", "exec", host, HOST_COMMAND, "bench", "--help"]):
            return (f"in the gateway host {host} (tgstack-gateway bench, Debian's packages)",
                    [*in_host, HOST_COMMAND, "bench", *settings, *bench_arguments(args)], None)  # fmt: skip
        if succeeds(["docker", "exec", host, "test", "-f", f"{HOST_LIBRARY}/tgstack_gateway/bench.py"]):
            return (f"in the gateway host {host} (python3 -m tgstack_gateway.bench: the installed command has no "
                    "bench subcommand yet; Debian's packages)",
                    [*in_host, "env", f"PYTHONPATH={HOST_LIBRARY}", "python3", "-P", "-m", "tgstack_gateway.bench",
                     *settings, *bench_arguments(args)], None)  # fmt: skip
        if args.where == "host":
            fail(f"the gateway on {host} has no benchmark (tgstack_gateway/bench.py): converge the gateway role")
    elif args.where == "host":
        fail(f"the gateway is not installed on {host} ({HOST_COMMAND}): converge the gateway role, or --where local")
    if not (args.config and args.env_file):
        fail(f"the gateway is not installed on {host}: run from here with --config and --env-file, a gateway.yml "
             "and secrets.env that reach the lab's addresses (PgBouncer, RabbitMQ, the Sentinels)")  # fmt: skip
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT / "gateway")}
    return (f"from this machine ({python}, the venv): the gateway is not installed on {host}",
            ["timeout", "-k", "30", "-s", "INT", limit, python, "-m", "tgstack_gateway.bench", "--config",
             args.config, "--env-file", args.env_file, *bench_arguments(args)], environment)  # fmt: skip


# -- CPU of the lab containers and of this machine, read at the phases' edges ---------------------------------


def cgroup_usage_file(container: str) -> Path | None:
    identifier = run(["docker", "inspect", "-f", "{{.Id}}", container]).strip()
    for candidate in (Path(f"/sys/fs/cgroup/cpuacct/docker/{identifier}/cpuacct.usage"),
                      Path(f"/sys/fs/cgroup/system.slice/docker-{identifier}.scope/cpu.stat")):  # fmt: skip
        if candidate.exists():
            return candidate
    return None


def cpu_seconds(path: Path) -> float:
    text = path.read_text(encoding="ascii")
    if path.name == "cpu.stat":  # cgroup v2: usage_usec
        return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
    return int(text) / 1e9  # cgroup v1: nanoseconds


def machine_busy_seconds() -> float:
    """CPU seconds this machine's CPUs spent busy (all but idle and iowait), from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of each container and of the machine, at the start and end of each phase."""

    def __init__(self, containers: list[str]) -> None:
        self.files = {name: path for name in containers if (path := cgroup_usage_file(name)) is not None}
        self.started: dict[str, tuple[float, dict[str, float]]] = {}
        self.phases: dict[str, dict[str, float]] = {}

    def sample(self) -> tuple[float, dict[str, float]]:
        values = {name: cpu_seconds(path) for name, path in self.files.items()}
        values["this machine"] = machine_busy_seconds()
        return time.monotonic(), values

    def mark(self, phase: str, edge: str) -> None:
        if edge == "start":
            self.started[phase] = self.sample()
        elif phase in self.started:
            (began, first), (ended, last) = self.started.pop(phase), self.sample()
            wall = ended - began
            self.phases[phase] = {name: 100 * (last[name] - first[name]) / wall for name in last}


def run_bench(command: list[str], environment: dict[str, str] | None, meter: CpuMeter, limit: float) -> dict:
    """Run the benchmark, echo its progress, mark the phases for METER; its JSON result."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    errors: list[str] = []
    for line in process.stderr:  # type: ignore[union-attr]
        errors.append(line)
        words = line.split()
        if line.startswith("bench: phase ") and len(words) >= 4:
            meter.mark(words[2], words[3].rstrip(":"))
        print(line.rstrip(), file=sys.stderr, flush=True)
    try:
        process.wait(timeout=limit + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        fail(f"the benchmark did not end within {limit + 60:.0f} s")
    reader.join(timeout=10)
    text = "".join(output).strip()
    if process.returncode != 0 or not text:
        fail(f"the benchmark failed (rc {process.returncode}):\n{''.join(errors)[-3000:]}")
    try:
        return json.loads(text.splitlines()[-1])
    except ValueError:
        fail(f"the benchmark printed no JSON result:\n{text[-2000:]}")
    return {}


def purge(host: str, vhost: str, queue: str) -> None:
    docker_exec(host, "rabbitmqctl", "--quiet", "purge_queue", "--vhost", vhost, queue)


def delete_rows(host: str, database: str, chats: dict) -> str:
    """Delete the run's chats (ids between chats['low'] and ['high']) from the gateway's tables, as postgres."""
    low, high = int(chats["low"]), int(chats["high"])
    statements = "; ".join(
        f"DELETE FROM tgstack.{table} WHERE {column} BETWEEN {low} AND {high}"
        for table, column in (("messages", "chat_id"), ("message_edits", "chat_id"), ("message_deletions", "chat_id"),
                              ("chats", "id"))
    )  # fmt: skip
    done = docker_exec(host, "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                       database, "-c", f"BEGIN; {statements}; COMMIT", timeout=600)  # fmt: skip
    return done.strip()


def main() -> None:
    args = parse()
    if args.no_profile:
        args.phases = ",".join(phase for phase in args.phases.split(",") if phase != "profile")
    gateway_host = first_host("gateway", args.host)
    broker_host = first_host("rabbitmq", args.rabbitmq_host)
    database_host = first_host("timescaledb", args.database_host)
    lab_hosts = list(dict.fromkeys([gateway_host, broker_host, database_host, *group("redis")]))
    require_lab(lab_hosts)
    where, command, environment = command_for(args, gateway_host)
    meter = CpuMeter(lab_hosts)
    before = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
    print(f"gateway throughput: run {where}; load average before {' '.join(before)} "
          f"({os.cpu_count()} CPUs on this machine)", flush=True)  # fmt: skip
    print("command: " + shlex.join(command), flush=True)
    if environment is None and succeeds(["docker", "exec", gateway_host, "systemctl", "is-active", "--quiet",
                                         "tgstack-gateway"]):  # fmt: skip
        print(f"note: the tgstack-gateway service is running on {gateway_host} and shares the backends", flush=True)
    purge(broker_host, args.vhost, args.queue)
    figures: dict = {}
    try:
        figures = run_bench(command, environment, meter, time_limit(args))
    finally:
        purge(broker_host, args.vhost, args.queue)
        if figures.get("chats") and not args.keep_rows:
            started = time.monotonic()
            delete_rows(database_host, args.database, figures["chats"])
            print(f"deleted the run's rows (chats {figures['chats']['low']} .. {figures['chats']['high']}) "
                  f"in {time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
    after = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
    print(report(figures))
    print("CPU during each phase, % of one core (cgroup CPU time of the lab containers; this machine: all "
          f"{os.cpu_count()} CPUs, busy):")  # fmt: skip
    for phase, usage in meter.phases.items():
        print(f"  {phase:9s} " + ", ".join(f"{name} {value:.0f}" for name, value in usage.items()))
    print(f"load average before {' '.join(before)}, after {' '.join(after)}")
    verdicts = " / ".join(f"{'PASS' if verdict['met'] else 'MISS'} {verdict['measured']}"
                          for verdict in figures.get("targets", []))  # fmt: skip
    phases = {name: figures.get(name, {}) for name in ("broker", "database", "pipeline", "latency", "batch")}
    print(
        f"| {datetime.date.today().isoformat()} | {'gateway host' if environment is None else 'this machine (venv)'} "
        f"| {before[0]} | {phases['broker'].get('rate', 0):.0f} msg/s | {phases['database'].get('rate', 0):.0f} rows/s "
        f"| {phases['pipeline'].get('published_rate', 0):.0f} msg/s "
        f"| {phases['latency'].get('latency_ms', {}).get('p50', 0):.0f} / "
        f"{phases['latency'].get('latency_ms', {}).get('p99', 0):.0f} ms "
        f"| {phases['batch'].get('published_rate', 0):.0f} msg/s | {verdicts} |"
    )


if __name__ == "__main__":
    main()
