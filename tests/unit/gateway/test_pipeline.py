"""The pipeline's logic with in-memory backends: order, idempotence, spooling, backpressure, stop, failures.

The backends here are stand-ins that keep what they were given (the real ones run against the lab's
servers in tests/integration/test_gateway.py); each can be switched "down", raising Unavailable as the
real ones do when their server is away.
"""

from __future__ import annotations

import asyncio
import typing as t

import pytest
from tgstack_gateway.backends import Stored, Unavailable
from tgstack_gateway.events import DeleteEvent, MessageEvent
from tgstack_gateway.metrics import Metrics
from tgstack_gateway.pipeline import Pipeline
from tgstack_gateway.retry import Backoff
from tgstack_gateway.spool import Spool

FAST = Backoff(initial=0.005, factor=2.0, cap=0.02, jitter=0.0)


def message(chat: int, number: int, text: str = "hello", edited_at: str | None = None) -> MessageEvent:
    row = {"chat_id": chat, "message_id": number, "created_at": "2026-11-27T00:00:00+00:00", "text": text}
    if edited_at:
        row["edited_at"] = edited_at
    return MessageEvent(row)


class ListSource:
    name = "list"

    def __init__(self, events: list[t.Any]) -> None:
        self.events_ = events
        self.acknowledged: list[int] = []
        self.read = 0

    async def events(self) -> t.AsyncIterator[tuple[int, t.Any]]:
        for position, event in enumerate(self.events_, 1):
            self.read = position
            yield position, event

    async def acknowledge(self, positions: t.Sequence[int]) -> None:
        self.acknowledged.extend(positions)

    async def close(self) -> None:
        return None


class Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.error: Exception | None = None
        self.calls: list[t.Any] = []

    def check(self) -> None:
        if self.error is not None:
            raise self.error
        if self.down:
            raise Unavailable(self.name, "switched off by the test")


class MemoryStore(Backend):
    def __init__(self) -> None:
        super().__init__("postgres")
        self.rows: dict[tuple[int, int], dict[str, t.Any]] = {}
        self.deleted: set[tuple[int, int]] = set()

    async def store(self, rows: list[dict[str, t.Any]], deletions: list[DeleteEvent]) -> Stored:
        self.check()
        result = Stored()
        for row in rows:
            key = (row["chat_id"], row["message_id"])
            held = self.rows.get(key)
            if held is None:
                self.rows[key] = row
                result.inserted += 1
            elif (row.get("edited_at") or "") > (held.get("edited_at") or ""):
                self.rows[key] = row
                result.updated += 1
            else:
                result.unchanged += 1
            self.calls.append(("row", key))
        for deletion in deletions:
            for number in deletion.message_ids:
                key = (t.cast(int, deletion.chat_id), number)
                self.calls.append(("delete", key))
                if key in self.rows:
                    self.deleted.add(key)
                    result.deleted += 1
        return result


class MemoryPublisher(Backend):
    def __init__(self) -> None:
        super().__init__("rabbitmq")

    async def publish(self, rows: list[dict[str, t.Any]]) -> int:
        self.check()
        self.calls.extend((row["chat_id"], row["message_id"], row.get("edited_at")) for row in rows)
        return len(rows)


class MemoryCache(Backend):
    def __init__(self) -> None:
        super().__init__("redis")
        self.seen_keys: set[tuple[int, int, str | None]] = set()

    async def seen(self, rows: list[dict[str, t.Any]]) -> list[bool]:
        self.check()
        return [(row["chat_id"], row["message_id"], row.get("edited_at")) in self.seen_keys for row in rows]

    async def update(self, rows: list[dict[str, t.Any]], deletions: list[DeleteEvent], deleted: t.Any = ()) -> None:
        self.check()
        self.seen_keys.update((row["chat_id"], row["message_id"], row.get("edited_at")) for row in rows)


def pipeline(source: ListSource, tmp_path: t.Any, *, max_bytes: int = 1 << 30, **kwargs: t.Any) -> Pipeline:
    return Pipeline(source, MemoryStore(), MemoryPublisher(), MemoryCache(), Spool(tmp_path / "spool", max_bytes),
                    Metrics(), batch_size=kwargs.pop("batch_size", 10), batch_delay=0.01, backoff=FAST,
                    retry_budget=kwargs.pop("retry_budget", 0.05), **kwargs)  # fmt: skip


def run(coroutine: t.Awaitable[t.Any], timeout: float = 20) -> t.Any:
    async def bounded() -> t.Any:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


def test_every_event_is_stored_published_cached_and_acknowledged_in_order(tmp_path):
    events = [message(-100, number) for number in range(1, 101)]
    events += [message(-100, 5), message(-100, 7, "edited", "2026-11-27T00:10:00+00:00"), DeleteEvent(-100, (9,))]
    source = ListSource(events)
    gateway = pipeline(source, tmp_path)
    totals = run(gateway.run())
    assert source.acknowledged == list(range(1, len(events) + 1))
    assert len(gateway.store.rows) == 100 and gateway.store.rows[(-100, 7)]["text"] == "edited"
    assert gateway.store.deleted == {(-100, 9)}
    assert totals.stored == 101 and totals.published == 101 and totals.deleted == 1  # 100 new + 1 edit
    assert totals.duplicates == 1  # message 5 again, dropped by its dedup key before the store
    assert len(gateway.spool) == 0


def test_a_backend_away_longer_than_the_retry_budget_spools_then_replays_in_order(tmp_path):
    """PostgreSQL away for 0.3 s (budget 0.05 s): batches go to the spool, in order, and are replayed once
    it is back; the deletion of message 3 is applied after message 3 is stored, nothing is lost."""
    events = [message(-100, number) for number in range(1, 61)] + [DeleteEvent(-100, (3,))]
    events += [message(-100, number) for number in range(61, 121)]

    class SlowSource(ListSource):
        async def events(self) -> t.AsyncIterator[tuple[int, t.Any]]:
            async for item in super().events():
                await asyncio.sleep(0.002)
                yield item

    source = SlowSource(events)
    gateway = pipeline(source, tmp_path)

    async def outage() -> None:
        await asyncio.sleep(0.02)
        gateway.store.down = True
        await asyncio.sleep(0.3)
        gateway.store.down = False

    async def both() -> t.Any:
        return (await asyncio.gather(gateway.run(), outage()))[0]

    totals = run(both())
    assert totals.spooled_batches > 0
    assert len(gateway.spool) == 0 and not gateway.spooling
    assert set(gateway.store.rows) == {(-100, number) for number in range(1, 121)}
    assert gateway.store.deleted == {(-100, 3)}
    calls = gateway.store.calls
    assert calls.index(("delete", (-100, 3))) > calls.index(("row", (-100, 3)))
    published = {(chat, number) for chat, number, _version in gateway.publisher.calls}
    assert published == set(gateway.store.rows)
    assert source.acknowledged == list(range(1, len(events) + 1))


def test_a_full_spool_stops_the_reading_instead_of_growing(tmp_path):
    """Every backend away and a spool of 4 KB: the source is read only as far as the bounded queues and
    the spool take, then waits; stop() ends the run with everything read either spooled or acknowledged."""
    source = ListSource([message(-100, number, "x" * 100) for number in range(1, 100001)])
    gateway = pipeline(source, tmp_path, max_bytes=4096, queue_size=50)
    gateway.store.down = True

    async def scenario() -> t.Any:
        running = asyncio.create_task(gateway.run())
        await asyncio.sleep(0.5)
        read_while_full = source.read
        await asyncio.sleep(0.3)
        assert source.read == read_while_full  # no more reading while the spool is full
        gateway.stop()
        return await running

    totals = run(scenario())
    assert source.read < 200
    assert gateway.spool.size <= 4096 + 2000
    assert totals.acknowledged <= source.read


def test_stop_while_a_backend_is_away_spools_what_was_read_and_returns(tmp_path):
    source = ListSource([message(-100, number) for number in range(1, 41)])
    gateway = pipeline(source, tmp_path, retry_budget=60.0)
    gateway.publisher.down = True

    async def scenario() -> t.Any:
        running = asyncio.create_task(gateway.run())
        await asyncio.sleep(0.3)
        gateway.stop()
        return await asyncio.wait_for(running, 5)

    totals = run(scenario())
    assert totals.published == 0 and totals.spooled_batches > 0
    spooled = [record["message_id"] for _path, records in gateway.spool.batches() for record in records]
    assert sorted(spooled) == sorted(set(spooled)) and set(spooled) <= set(range(1, 41))
    assert len(spooled) == totals.acknowledged  # what was acknowledged is in the spool, on disk


def test_an_unexpected_error_ends_the_run_instead_of_hanging(tmp_path):
    source = ListSource([message(-100, number) for number in range(1, 1001)])
    gateway = pipeline(source, tmp_path)
    gateway.publisher.error = ValueError("a bug in the publisher")
    with pytest.raises(ValueError, match="a bug in the publisher"):
        run(gateway.run(), timeout=5)
