"""The package cache (lab/bootstrap: apt-cacher-ng) seen from a lab host's converge: first host, second host.

Converges the timescaledb role (the largest download of the stack: PostgreSQL 17, TimescaleDB, pg_cron
and their dependencies) on new lab hosts one after the other and prints, per host, the converge time and
what the cache served it and fetched from the mirror for it (from the cache's own log):

    direct   a host whose apt does not use the cache (it downloads from the mirror itself)
    first    the first host through an empty cache: everything comes from the mirror, once
    second   a second new host: everything comes from the cache

The cache the suite uses keeps its packages in the volume tgstack-apt-cache; for an empty cache this
script runs the same container on a volume of its own (removed afterwards) and starts the usual one
again at the end. Run it with nothing else using the lab (not beside tests/run):

    . lab/bootstrap && python3 bench/apt_cache.py [--role timescaledb]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CACHE = "tgstack-apt-cache"
BENCH_VOLUME = "tgstack-apt-cache-bench"
IMAGE = os.environ.get("TGSTACK_LAB_IMAGE", "tgstack-lab/debian-systemd:13")
SYSTEMD_ARGS = [
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
]  # fmt: skip


def sh(command: list[str], timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        sys.exit(f"bench: {' '.join(command[:5])} ... failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def cache_container_args() -> list[str]:
    """The arguments lab/bootstrap started the cache with (the bench reuses them with another volume)."""
    inspect = json.loads(sh(["docker", "inspect", CACHE]).stdout)[0]
    return inspect["Config"]["Cmd"]


def start_cache(volume: str, command: list[str]) -> None:
    sh(["docker", "rm", "-f", CACHE], check=False)
    sh(["docker", "run", "-d", "--name", CACHE, "--label", "tgstack-apt-cache=1", "--network", "host",
        "--user", "apt-cacher-ng", "-v", f"{volume}:/var/cache/apt-cacher-ng", "tgstack-lab/apt-cacher-ng:13",
        *command])  # fmt: skip
    for _attempt in range(40):
        log = sh(["docker", "exec", CACHE, "true"], check=False)
        if log.returncode == 0:
            return
        time.sleep(0.25)
    sys.exit("bench: the cache container did not start")


def cache_lines() -> list[list[str]]:
    out = sh(["docker", "exec", CACHE, "cat", "/var/log/apt-cacher-ng/apt-cacher.log"], check=False).stdout
    return [line.split("|") for line in out.splitlines() if line.count("|") >= 4]


def converge(name: str, role: str, cache_address: str) -> dict:
    sh(["docker", "rm", "-f", name], check=False)
    sh(["docker", "run", "-d", "--name", name, "--hostname", name, "--label", "tgstack-it=1", *SYSTEMD_ARGS,
        "--add-host", f"tgstack-apt-cache:{cache_address}", IMAGE])  # fmt: skip
    for _attempt in range(60):
        state = sh(["docker", "exec", name, "systemctl", "is-system-running"], check=False).stdout.strip()
        if state in {"running", "degraded"}:
            break
        time.sleep(0.5)
    address = sh(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name])
    play = [{"name": "bench", "hosts": "all", "roles": [{"role": f"tgstack.hybrid.{role}",
             "vars": {"timescaledb_tune_memory_mb": 1024}}]}]  # fmt: skip
    before = len(cache_lines())
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / ".ansible" / "collections"), "ANSIBLE_NOCOLOR": "1"}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "play.yml"
        path.write_text(json.dumps(play))
        started = time.monotonic()
        command = ["ansible-playbook", "-i", f"{name},", "-c", "community.docker.docker", str(path)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=1200, check=False)
        seconds = time.monotonic() - started
    sh(["docker", "rm", "-f", name], check=False)
    if done.returncode != 0:
        sys.exit(f"bench: the converge of {name} failed:\n{done.stdout[-3000:]}")
    mine = [line for line in cache_lines()[before:] if line[3] == address.stdout.strip()]
    served = sum(int(line[2]) for line in mine if line[1] == "O" and line[2].isdigit())
    fetched = sum(int(line[2]) for line in cache_lines()[before:] if line[1] == "I" and line[2].isdigit())
    return {"seconds": seconds, "served_mb": served / 1e6, "fetched_mb": fetched / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="timescaledb")
    args = parser.parse_args()
    command = cache_container_args()
    rows = []
    try:
        sh(["docker", "volume", "rm", "-f", BENCH_VOLUME], check=False)
        start_cache(BENCH_VOLUME, command)
        # no such address on the default bridge: the host's apt finds no cache and goes direct
        rows.append(("direct (no cache)", converge("tgstack-bench-apt-direct", args.role, "172.17.255.254")))
        rows.append(("first host, empty cache", converge("tgstack-bench-apt-first", args.role, "host-gateway")))
        rows.append(("second host", converge("tgstack-bench-apt-second", args.role, "host-gateway")))
    finally:
        sh(["docker", "rm", "-f", CACHE], check=False)
        sh(["docker", "volume", "rm", "-f", BENCH_VOLUME], check=False)
        sh(["bash", "-c", f"cd {PROJECT} && . lab/bootstrap"], check=False)
    print(f"converge of the {args.role} role on a new lab host (the cache's own log)")
    print(f"{'host':<26} {'converge s':>10} {'served by cache MB':>19} {'from the mirror MB':>19}")
    for label, row in rows:
        print(f"{label:<26} {row['seconds']:>10.1f} {row['served_mb']:>19.1f} {row['fetched_mb']:>19.1f}")


if __name__ == "__main__":
    main()
