"""The replay source: records from a JSON Lines file (demos, tests, re-ingesting exports).

Each line is one record (events.py). A line that cannot be stored is reported to ``on_bad`` with its line
number and reason (the gateway logs it and counts it in a metric) and skipped; the good lines around it
still flow. The position of a record is its line number, so a run can resume after the last line whose
records were stored.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from tgstack_gateway.events import BadRecord, Event, parse_line


def read_replay(
    path: str | Path, on_bad: t.Callable[[int, str], None], start_after: int = 0
) -> t.Iterator[tuple[int, Event]]:
    """(line number, event) for every good line after START_AFTER; bad lines go to ON_BAD."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= start_after or not line.strip():
                continue
            try:
                yield number, parse_line(line)
            except BadRecord as error:
                on_bad(number, str(error))
