"""The README's first command: lab/up brings up the lab hosts, runs site.yml, prints how to connect."""

from __future__ import annotations

import re
import shutil

from labhost import PROJECT, run


def lab_exists() -> bool:
    return bool(run(["docker", "ps", "-aq", "--filter", "label=tgstack-lab=1"]).stdout.strip())


def test_lab_up_converges_and_the_printed_psql_line_connects():
    existed = lab_exists()
    try:
        up = run([str(PROJECT / "lab" / "up")], cwd=PROJECT, timeout=1200)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert re.search(r"tgstack-lab-db1\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", up.stdout)
        line = re.search(r'^\s*psql "(host=127\.0\.0\.1 port=\d+ dbname=\w+ user=\w+)"$', up.stdout, re.MULTILINE)
        assert line, up.stdout[-2000:]
        password = re.search(r"password: ([\w-]+)\)", up.stdout).group(1)
        query = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        if shutil.which("psql"):
            answer = run(["psql", line.group(1), "-Atc", query], env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"})
        else:  # no client on this machine: the in-container line printed next to it
            answer = run(["docker", "exec", "-e", f"PGPASSWORD={password}", "tgstack-lab-db1",
                          "psql", "-h", "127.0.0.1", "-U", "tgstack_app", "tgstack", "-Atc", query])  # fmt: skip
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.startswith("2.")

        again = run([str(PROJECT / "lab" / "up")], cwd=PROJECT, timeout=1200)
        assert again.returncode == 0, again.stdout[-3000:]
        assert re.search(r"tgstack-lab-db1\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", again.stdout)
    finally:
        if not existed:
            run([str(PROJECT / "lab" / "down")], cwd=PROJECT)
