"""Helpers for the integration tests: commands, lab containers."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
LAB_IMAGE = os.environ.get("TGSTACK_LAB_IMAGE", "tgstack-lab/debian-systemd:13")
# The same container settings as the molecule platforms and lab/up (see ../shared/LAB.md).
SYSTEMD_CONTAINER_ARGS = [
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
]  # fmt: skip


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text; never raises on a non-zero exit."""
    kwargs.setdefault("timeout", 900)
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for ansible commands run from the tests: this checkout as tgstack.hybrid."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env |= {
        "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / ".ansible" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        **extra,
    }
    return env


def run_playbook_on(name: str, playbook: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run PLAYBOOK (YAML text) against lab container NAME through the Docker connection."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "play.yml"
        path.write_text(playbook)
        return run(
            ["ansible-playbook", "-i", f"{name},", "-c", "community.docker.docker", str(path), *args],
            env=ansible_env(),
            timeout=timeout,
        )


def converge_timescaledb(name: str, role_vars: dict[str, Any]) -> subprocess.CompletedProcess:
    """Apply the tgstack.hybrid.timescaledb role with ROLE_VARS to lab container NAME."""
    play = [
        {"name": "TimescaleDB", "hosts": "all", "roles": [{"role": "tgstack.hybrid.timescaledb", "vars": role_vars}]}
    ]
    return run_playbook_on(name, json.dumps(play))


def run_module(
    name: str,
    module: str,
    args: dict[str, Any],
    *,
    check: bool = False,
    diff: bool = False,
    become_user: str | None = "postgres",
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one module task on lab container NAME and return its result (failed, msg, changed, ...).

    The module runs exactly as in a playbook (the JSON callback captures the result), in check mode
    and with diff when asked.
    """
    task: dict[str, Any] = {"name": "module under test", module: args, "check_mode": check, "diff": diff}
    if become_user:
        task |= {"become": True, "become_user": become_user}
    if environment:
        task["environment"] = environment
    play = [{"name": "One module", "hosts": "all", "gather_facts": False, "tasks": [task]}]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "play.yml"
        path.write_text(json.dumps(play))
        done = run(
            ["ansible-playbook", "-i", f"{name},", "-c", "community.docker.docker", str(path)],
            env=ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(
            f"ansible-playbook printed no JSON (rc {done.returncode}):\n{done.stdout}{done.stderr}"
        ) from error
    tasks = report["plays"][0]["tasks"]
    if not tasks:
        raise AssertionError(f"the play ran no task:\n{done.stdout}{done.stderr}")
    return tasks[0]["hosts"][name]


def psql(name: str, sql: str, db: str = "postgres", *, check: bool = True) -> str:
    """Run SQL as the local postgres superuser inside lab container NAME; return psql's unaligned output."""
    done = run(
        ["docker", "exec", name, "runuser", "-u", "postgres", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1",
         "-d", db, "-Atc", sql],
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"psql failed in {db}: {done.stderr}\nSQL: {sql}")
    return done.stdout.strip()


def start_lab_container(name: str, apt_cache: str = "host-gateway") -> None:
    """Start a fresh lab host NAME (removing an old one of that name) and wait for systemd.

    Its apt takes packages from the machine's cache (lab/bootstrap, lab/image/) at the address APT_CACHE:
    Docker's host-gateway, where the cache listens, unless a test wants it elsewhere."""
    run(["docker", "rm", "-f", name])
    started = run(["docker", "run", "-d", "--name", name, "--hostname", name, "--label", "tgstack-it=1",
                   *SYSTEMD_CONTAINER_ARGS, "--add-host", f"tgstack-apt-cache:{apt_cache}", LAB_IMAGE])  # fmt: skip
    if started.returncode != 0:
        raise AssertionError(f"docker run {name} failed: {started.stderr}")
    for _attempt in range(30):
        state = run(["docker", "exec", name, "systemctl", "is-system-running"]).stdout.strip()
        if state in {"running", "degraded"}:
            return
        time.sleep(1)
    raise AssertionError(f"systemd in {name} did not come up")
