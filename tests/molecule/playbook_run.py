"""Running a playbook from a molecule scenario's verify step, the way an operator would."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class PlaybookRun:
    rc: int
    output: str

    def recap(self, host: str) -> dict[str, int]:
        """Counters of the PLAY RECAP line for one host."""
        match = re.search(rf"^{re.escape(host)}\s+:\s+(.*)$", self.output, re.MULTILINE)
        assert match, f"no PLAY RECAP line for {host} in:\n{self.output[-3000:]}"
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def ansible_playbook(playbook: Path, *args: str, timeout: int = 900) -> PlaybookRun:
    """Run PLAYBOOK with ARGS against the scenario's inventory; never raises on failure."""
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(playbook), *args]
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(PROJECT / ".ansible" / "collections"))
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    return PlaybookRun(done.returncode, done.stdout + done.stderr)
