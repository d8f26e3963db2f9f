"""The whole test suite's scheduler (tests/run calls it after lab/bootstrap): stages as jobs, side by side.

Each stage runs as a job with its output in tests/output/suite/<job>.log, printed whole when the job
ends, so two jobs at once never interleave their lines. At most TGSTACK_TEST_JOBS jobs run at once
(default 2): the suite's time goes into waiting for systemd, RabbitMQ, failover timers and package
installs inside the lab hosts as much as into the controller's CPU. The longest jobs start first
(their usual durations are below), so the short ones fill the end. Jobs that share lab hosts name the
same `hosts` and never run at the same time.

At the end it prints a table of every job's duration, pytest's ten slowest tests (from each job's
JUnit XML), what the package cache served, and a warning when the run took longer than 40 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
OUTPUT = PROJECT / "tests" / "output" / "suite"
STAGES = ("lint", "sanity", "unit", "molecule", "integration")
WARN_SECONDS = 40 * 60
AIM_SECONDS = 30 * 60


@dataclasses.dataclass
class Job:
    name: str
    command: list[str]
    # usual duration in seconds on the 2-core machine, alone: the longest jobs start first
    expected: int
    # jobs naming the same lab hosts never run at once
    hosts: str | None = None
    # the names of the containers the job creates (or their prefixes, ending in "-"): their CPU is the job's
    containers: tuple[str, ...] = ()
    process: subprocess.Popen | None = None
    started: float = 0.0
    ended: float = 0.0
    returncode: int | None = None
    # CPU seconds of the job's own processes (and what they waited for) and of its lab hosts
    cpu_controller: float = 0.0
    cpu_hosts: float = 0.0

    def owns(self, container: str) -> bool:
        return any(container == name or (name.endswith("-") and container.startswith(name)) for name in self.containers)

    @property
    def slug(self) -> str:
        return self.name.replace(" ", "-")

    @property
    def log(self) -> Path:
        return OUTPUT / f"{self.slug}.log"

    @property
    def junit(self) -> Path:
        return OUTPUT / f"{self.slug}.xml"


# Usual durations (seconds) of each job alone; update them when a job's time changes a lot.
EXPECTED = {
    "lint": 25,
    "sanity": 60,
    "unit": 10,
    "integration": 900,
    "molecule pgbouncer_redis_sentinel": 760,
    "molecule rabbitmq_cluster": 300,
    "molecule rabbitmq_default": 240,
    "molecule redis_sentinel_hostnames": 200,
    "molecule timescaledb_custom": 200,
    "molecule timescaledb_default": 200,
}


def scenarios() -> list[str]:
    return sorted(path.parent.name for path in (PROJECT / "molecule").glob("*/molecule.yml"))


def platforms(scenario: str) -> tuple[str, ...]:
    config = yaml.safe_load((PROJECT / "molecule" / scenario / "molecule.yml").read_text())
    return tuple(platform["name"] for platform in config.get("platforms", []))


def jobs_for(stages: list[str]) -> list[Job]:
    lint = (
        "yamllint --strict . ; a=$?; ansible-lint --profile production --offline; b=$?; "
        "ruff check .; c=$?; ruff format --check .; d=$?; exit $((a | b | c | d))"
    )
    jobs: list[Job] = []
    for stage in stages:
        if stage == "lint":
            jobs.append(Job("lint", ["bash", "-c", lint], EXPECTED["lint"]))
        elif stage == "sanity":
            jobs.append(Job("sanity", ["tests/sanity/run"], EXPECTED["sanity"]))
        elif stage == "unit":
            jobs.append(Job("unit", ["pytest", "-q", "tests/unit"], EXPECTED["unit"]))
        elif stage == "molecule":
            for scenario in scenarios():
                name = f"molecule {scenario}"
                command = ["molecule", "test", "-s", scenario]
                jobs.append(Job(name, command, EXPECTED.get(name, 300), containers=platforms(scenario)))
        elif stage == "integration":
            command = ["pytest", "-q", "tests/integration"]
            containers = ("tgstack-lab-", "tgstack-it-")
            jobs.append(Job("integration", command, EXPECTED["integration"], "lab", containers))
        else:
            raise SystemExit(f"unknown stage {stage} ({' '.join(STAGES)})")
    return jobs


def say(message: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Suite:
    def __init__(self, jobs: list[Job], parallel: int) -> None:
        self.waiting = sorted(jobs, key=lambda job: -job.expected)
        self.running: list[Job] = []
        self.done: list[Job] = []
        self.parallel = max(1, parallel)
        self.start = time.monotonic()
        self.hosts_cpu = ContainerCpu()
        self.machine_busy_at_start = machine_busy_seconds()

    def startable(self) -> Job | None:
        busy = {job.hosts for job in self.running if job.hosts}
        return next((job for job in self.waiting if not job.hosts or job.hosts not in busy), None)

    def launch(self, job: Job) -> None:
        self.waiting.remove(job)
        env = dict(os.environ)
        # every pytest run of the job (the verify step of molecule too) writes its test times
        job.junit.unlink(missing_ok=True)
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} --junitxml={job.junit}".strip()
        with job.log.open("w") as log:
            job.process = subprocess.Popen(
                job.command, cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        job.started = time.monotonic()
        self.running.append(job)
        others = ", ".join(other.name for other in self.running if other is not job)
        say(f"started {job.name}" + (f" (beside {others})" if others else ""))

    def reap(self) -> None:
        for job in list(self.running):
            if job.process is None:
                continue
            # wait4: the exit status and the CPU time of the job and every process of it that was waited for
            pid, status, usage = os.wait4(job.process.pid, os.WNOHANG)
            if pid == 0:
                continue
            job.returncode = job.process.returncode = os.waitstatus_to_exitcode(status)
            job.cpu_controller = usage.ru_utime + usage.ru_stime
            job.ended = time.monotonic()
            self.running.remove(job)
            self.done.append(job)
            verdict = "passed" if job.returncode == 0 else "FAILED"
            print(f"\n===== {job.name} =====", flush=True)
            sys.stdout.write(job.log.read_text(errors="replace"))
            print(f"===== {job.name}: {verdict} in {job.ended - job.started:.0f}s =====", flush=True)

    def run(self) -> None:
        last_note = time.monotonic()
        while self.waiting or self.running:
            while len(self.running) < self.parallel and (job := self.startable()):
                self.launch(job)
            time.sleep(1)
            self.hosts_cpu.sample()
            self.reap()
            if time.monotonic() - last_note > 300 and self.running:
                last_note = time.monotonic()
                say("running: " + ", ".join(f"{j.name} ({time.monotonic() - j.started:.0f}s)" for j in self.running))

    def stop(self) -> None:
        for job in self.running:
            if job.process and job.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job.process.pid, signal.SIGTERM)
        for job in self.running:
            if job.process:
                try:
                    job.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(job.process.pid, signal.SIGKILL)


def machine_busy_seconds() -> float:
    """CPU seconds this machine spent busy since boot, all cores (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: everything but idle and iowait
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class ContainerCpu:
    """The CPU time of every container (its cgroup's cpuacct), sampled every few seconds by name.

    A container's last few seconds before it is removed are not seen: the figures are a little low.
    Containers already running when the suite starts (the package cache) count from that moment."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.last = 0.0
        self.seconds: dict[str, float] = {}
        self.sample()
        self.before = dict(self.seconds)

    def sample(self) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        try:
            listed = subprocess.run(["docker", "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
                                    capture_output=True, text=True, check=False)  # fmt: skip
        except OSError:  # no Docker on this machine: no containers to count
            return
        for line in listed.stdout.splitlines():
            container_id, _space, name = line.partition(" ")
            for path in (f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
                         f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"):  # fmt: skip
                try:
                    text = Path(path).read_text()
                except OSError:
                    continue
                used = int(text.split()[1]) / 1e6 if text.startswith("usage_usec") else int(text) / 1e9
                key = f"{name} {container_id[:12]}"
                self.seconds[key] = max(self.seconds.get(key, 0.0), used)
                break

    def used(self) -> dict[str, float]:
        return {key: seconds - self.before.get(key, 0.0) for key, seconds in self.seconds.items()}

    def of(self, job: Job) -> float:
        return sum(seconds for key, seconds in self.used().items() if job.owns(key.split(" ")[0]))

    def named(self, name: str) -> float:
        return sum(seconds for key, seconds in self.used().items() if key.split(" ")[0] == name)


def slowest_tests(jobs: list[Job], count: int = 10) -> list[tuple[float, str, str]]:
    cases: list[tuple[float, str, str]] = []
    for job in jobs:
        if not job.junit.exists():
            continue
        try:
            root = ET.parse(job.junit).getroot()
        except ET.ParseError:
            continue
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            cases.append((float(case.get("time") or 0), job.name, name))
    return sorted(cases, reverse=True)[:count]


def apt_cache_report(since: float) -> str:
    """What the package cache (lab/bootstrap: apt-cacher-ng in tgstack-apt-cache) did during the run."""
    done = subprocess.run(
        ["docker", "exec", "tgstack-apt-cache", "cat", "/var/log/apt-cacher-ng/apt-cacher.log"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return "no package cache ran (lab hosts downloaded from the mirror)"
    fetched = served = requests = 0
    hosts: set[str] = set()
    for line in done.stdout.splitlines():
        fields = line.split("|")
        if len(fields) < 5 or not fields[0].isdigit() or int(fields[0]) < since or not fields[2].isdigit():
            continue
        if fields[1] == "I":
            fetched += int(fields[2])
        elif fields[1] == "O":
            served += int(fields[2])
            requests += 1
            hosts.add(fields[3])
    if not requests:
        return "the package cache served nothing during this run"
    from_cache = 100 * (1 - fetched / max(served, 1))
    return (
        f"{served / 1e6:.0f} MB served to {len(hosts)} lab host addresses in {requests} requests; "
        f"{fetched / 1e6:.0f} MB of it fetched from the mirror ({from_cache:.0f} % from the cache)"
    )


def report(suite: Suite, cache_report: str) -> bool:
    wall = time.monotonic() - suite.start
    jobs = sorted(suite.done, key=lambda job: job.started)
    failed = [job for job in jobs if job.returncode != 0]
    width = max((len(job.name) for job in jobs), default=5)
    print("\n===== stage times =====")
    print(f"{'stage':<{width}}  result  start  seconds  CPU s (tools + lab hosts)")
    for job in jobs:
        verdict = "passed" if job.returncode == 0 else "FAILED"
        job.cpu_hosts = suite.hosts_cpu.of(job)
        cpu = f"{job.cpu_controller + job.cpu_hosts:6.0f} ({job.cpu_controller:.0f} + {job.cpu_hosts:.0f})"
        timing = f"{job.started - suite.start:5.0f}  {job.ended - job.started:7.0f}"
        print(f"{job.name:<{width}}  {verdict:<6}  {timing}  {cpu}")
    busy = sum(job.ended - job.started for job in jobs)
    print(f"{'whole run':<{width}}  {'':<6}  {'':>5}  {wall:7.0f}  ({busy:.0f} s of stages, {suite.parallel} at once)")
    cores = os.cpu_count() or 1
    used = machine_busy_seconds() - suite.machine_busy_at_start
    print(
        f"machine: {used:.0f} CPU s busy of {wall * cores:.0f} on {cores} cores ({100 * used / (wall * cores):.0f} %); "
        f"the package cache {suite.hosts_cpu.named('tgstack-apt-cache'):.0f} CPU s"
    )
    slowest = slowest_tests(jobs)
    if slowest:
        print("\n===== the ten slowest tests =====")
        for seconds, job, name in slowest:
            print(f"{seconds:7.1f}s  {job}: {name}")
    if cache_report:
        print(f"\n===== package cache =====\n{cache_report}")
    print(f"\nsuite finished in {wall:.0f}s" + (f"; failed: {', '.join(job.name for job in failed)}" if failed else ""))
    print(f"stages: {len(jobs) - len(failed)} passed, {len(failed)} failed")
    if wall > WARN_SECONDS:
        print(
            f"WARNING: the suite took {wall / 60:.0f} min, over the {WARN_SECONDS // 60}-minute warning line "
            f"(the aim is {AIM_SECONDS // 60}; CI refuses a run past 90): see the slowest stages and tests above"
        )
    return not failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", default=list(STAGES), help=" ".join(STAGES))
    args = parser.parse_args()
    parallel = int(os.environ.get("TGSTACK_TEST_JOBS", "2"))
    OUTPUT.mkdir(parents=True, exist_ok=True)
    started_at = time.time()
    suite = Suite(jobs_for(args.stages), parallel)
    say(f"{len(suite.waiting)} jobs, {parallel} at once; logs in {OUTPUT.relative_to(PROJECT)}/")
    interrupted = False

    def on_signal(number, _frame) -> None:
        raise KeyboardInterrupt(signal.Signals(number).name)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        suite.run()
    except KeyboardInterrupt as reason:
        interrupted = True
        say(f"interrupted ({reason or 'SIGINT'}): stopping {', '.join(job.name for job in suite.running)}")
        suite.stop()
        suite.reap()
    ok = report(suite, apt_cache_report(started_at))
    return 0 if ok and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
