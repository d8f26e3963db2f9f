"""The gateway's unit tests import its package from gateway/ in the checkout."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "gateway"))
