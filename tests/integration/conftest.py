"""Integration tests: the collection as users get it, and the README's lab command, on real lab hosts."""

from __future__ import annotations

import pytest
from labhost import LAB_IMAGE, SYSTEMD_CONTAINER_ARGS, run


@pytest.fixture
def lab_container(request):
    """A fresh, never-configured lab host; removed afterwards."""
    name = f"tgstack-it-{request.node.name}".replace("[", "-").replace("]", "")[:60]
    run(["docker", "rm", "-f", name])
    started = run(
        ["docker", "run", "-d", "--name", name, "--label", "tgstack-it=1", *SYSTEMD_CONTAINER_ARGS, LAB_IMAGE]
    )
    assert started.returncode == 0, started.stderr
    for _ in range(30):
        state = run(["docker", "exec", name, "systemctl", "is-system-running"]).stdout.strip()
        if state in {"running", "degraded"}:
            break
        run(["sleep", "1"])
    yield name
    run(["docker", "rm", "-f", name])
