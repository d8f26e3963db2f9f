"""Shared by the verify steps of every molecule scenario: puts this folder on the import path, so that the
helpers of each scenario's tests (pgserver.py, bouncer.py, redislab.py) can import playbook_run.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
