"""What the data-tier benchmarks need from the lab that `lab/up` brings up (inventories/lab).

The benchmarks read the lab inventory's variables (with `ansible-inventory`, so group_vars apply), talk
to the containers' own addresses on the lab network (Docker bridge addresses are reachable from this
machine) and run commands in the containers with `docker exec`. Secrets reach `docker exec` through its
environment (`-e NAME` without a value), never through a command line.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
INVENTORY = PROJECT / "inventories" / "lab"


def fail(message: str) -> None:
    sys.exit(f"bench: {message}")


def run(command: list[str], *, env: dict[str, str] | None = None, timeout: int = 120) -> str:
    """Run COMMAND; return its stdout; exit with its output when it fails."""
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)
    if done.returncode != 0:
        fail(f"{' '.join(command[:6])} ... failed (rc {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def docker_exec(host: str, *command: str, secrets: dict[str, str] | None = None, timeout: int = 120) -> str:
    """Run COMMAND in the lab host; SECRETS become its environment without appearing in any argv."""
    names = [arg for name in (secrets or {}) for arg in ("-e", name)]
    return run(["docker", "exec", *names, host, *command], env=secrets, timeout=timeout)


@functools.cache
def inventory() -> dict:
    return json.loads(run(["ansible-inventory", "-i", str(INVENTORY), "--list"]))


def group(name: str) -> list[str]:
    data = inventory()
    hosts = list(data.get(name, {}).get("hosts", []))
    for child in data.get(name, {}).get("children", []):
        hosts += [host for host in group(child) if host not in hosts]
    return hosts


def host_vars(name: str) -> dict:
    return inventory()["_meta"]["hostvars"][name]


@functools.cache
def address(host: str) -> str:
    return run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", host]).strip()


def require_lab(hosts: list[str]) -> None:
    """Exit with what to do when the lab hosts are not running."""
    for host in hosts:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Status}}", host], capture_output=True, text=True, check=False
        ).stdout.strip()
        if state != "running":
            fail(f"lab host {host} is not running ({state or 'missing'}): bring the lab up first with lab/up")
