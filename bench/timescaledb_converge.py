"""First converge and idempotent re-run time of the timescaledb_default molecule scenario.

Each round: destroy, create fresh containers, time `molecule converge` (the first converge installs
and configures everything), then time a second `molecule converge` (the idempotent re-run). Prints
every round and the medians. Run from the repository root with the lab bootstrapped:

    source lab/bootstrap && python3 bench/timescaledb_converge.py [--rounds 3] [--scenario NAME]

Each first converge downloads its packages from the Debian mirror (the lab hosts share no apt cache:
concurrent installs would fight over its lock), so the figure includes the download.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def molecule(action: str, scenario: str) -> float:
    started = time.monotonic()
    done = subprocess.run(["molecule", action, "-s", scenario], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"molecule {action} -s {scenario} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", default="timescaledb_default")
    args = parser.parse_args()
    first, rerun = [], []
    try:
        for round_number in range(1, args.rounds + 1):
            molecule("destroy", args.scenario)
            molecule("create", args.scenario)
            first.append(molecule("converge", args.scenario))
            rerun.append(molecule("converge", args.scenario))
            print(f"round {round_number}: first converge {first[-1]:.1f} s, idempotent re-run {rerun[-1]:.1f} s")
    finally:
        molecule("destroy", args.scenario)
    print(f"{args.scenario}: median of {args.rounds}: first converge {statistics.median(first):.1f} s, "
          f"idempotent re-run {statistics.median(rerun):.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
