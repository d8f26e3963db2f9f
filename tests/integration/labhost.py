"""Helpers for the integration tests: commands, lab containers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
LAB_IMAGE = os.environ.get("TGSTACK_LAB_IMAGE", "tgstack-lab/debian-systemd:13")
# The same container settings as the molecule platforms and lab/up (see ../shared/LAB.md).
SYSTEMD_CONTAINER_ARGS = [
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "-v", "tgstack-apt-cache:/var/cache/apt/archives",
]  # fmt: skip


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text; never raises on a non-zero exit."""
    kwargs.setdefault("timeout", 900)
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
