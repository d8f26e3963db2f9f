"""The sources the pipeline reads from, behind one interface.

A source is an object with:

``name``
    a short label for metrics and logs (``replay``, ``synthetic``, ``telethon``).
``events()``
    an async iterator of ``(position, event)`` pairs (events.py). The pipeline pulls from it only while
    its bounded queue has room: a slow backend stops the reading (backpressure) instead of growing
    memory. Bad records are not yielded: the source reports them to the ``on_bad(where, reason)``
    callback it was built with (the gateway logs them and counts them in a metric) and goes on.
``acknowledge(positions)``
    called, in order, with the positions of each batch once that batch is done: stored, published and
    cached, or durably written to the spool (which replays it in order later). A source may then forget
    those records (the replay source records the line number, the Telegram source its watermarks).
``close()``
    release what the source holds.

This module has the replay and synthetic sources; the Telegram source (Telethon) is telethon_source.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import typing as t

from tgstack_gateway.events import BadRecord, Event, parse_record
from tgstack_gateway.replay import read_replay
from tgstack_gateway.synthetic import Mix, SyntheticLoad

OnBad = t.Callable[[str, str], None]
# live synthetic message ids: milliseconds since 2026-01-01, so ids of a later start are always higher
LIVE_EPOCH_MS = 1_767_225_600_000


class Source(t.Protocol):
    name: str

    def events(self) -> t.AsyncIterator[tuple[t.Any, Event]]: ...

    async def acknowledge(self, positions: t.Sequence[t.Any]) -> None: ...

    async def close(self) -> None: ...


class ReplaySource:
    """A JSON Lines file, read once; the position of a record is its line number."""

    name = "replay"

    def __init__(self, path: str, on_bad: OnBad, start_after: int = 0) -> None:
        self.path = path
        self.on_bad = on_bad
        self.start_after = start_after
        self.done_through = start_after

    async def events(self) -> t.AsyncIterator[tuple[int, Event]]:
        for number, (line, event) in enumerate(
            read_replay(self.path, lambda line, reason: self.on_bad(f"{self.path}:{line}", reason), self.start_after)
        ):
            yield line, event
            if number % 256 == 255:
                await asyncio.sleep(0)  # let the pipeline run between chunks of a fast file

    async def acknowledge(self, positions: t.Sequence[t.Any]) -> None:
        if positions:
            self.done_through = max(self.done_through, *positions)

    async def close(self) -> None:
        return None


class SyntheticSource:
    """Realistic messages at RATE records per second (0: as fast as the pipeline takes them), COUNT in
    all (None: until stopped); the position of a record is its sequence number.

    With a COUNT the load is deterministic for its seed (tests, benchmarks, the state it must leave).
    Without one (a demo service, as on the lab) it is live: dated from now, with message ids from the
    clock, so a restarted gateway adds new messages instead of replaying the earlier ones.
    """

    name = "synthetic"

    def __init__(self, on_bad: OnBad, rate: float, chats: int, count: int | None = None, seed: int = 1,
                 mix: Mix | None = None, first_chat: int = -1001000000000) -> None:  # fmt: skip
        self.on_bad = on_bad
        self.rate = rate
        self.count = count
        if count is None:
            now = dt.datetime.now(dt.UTC)
            live = {"start": now, "last_message_id": int(now.timestamp() * 1000) - LIVE_EPOCH_MS,
                    "seed": int(now.timestamp())}  # fmt: skip
        else:
            live = {"seed": seed}
        self.load = SyntheticLoad(chats=chats, mix=mix, first_chat=first_chat, **live)
        self.acknowledged = 0

    async def events(self) -> t.AsyncIterator[tuple[int, Event]]:
        started = time.monotonic()
        for number, record in enumerate(self.load.records(self.count if self.count is not None else 1 << 62), 1):
            if self.rate > 0:
                ahead = number / self.rate - (time.monotonic() - started)
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            elif number % 256 == 0:
                await asyncio.sleep(0)
            try:
                yield number, parse_record(record)
            except BadRecord as error:  # the generator makes good records; kept for symmetry
                self.on_bad(f"synthetic:{number}", str(error))

    async def acknowledge(self, positions: t.Sequence[t.Any]) -> None:
        self.acknowledged += len(positions)

    async def close(self) -> None:
        return None
