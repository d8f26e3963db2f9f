"""The pipeline: source -> bounded queue -> batches -> dedup -> store -> publish -> cache -> acknowledge.

Stages run as tasks joined by small queues, so while one batch is being published the next is being
stored; each stage handles batches one at a time and in order, and the positions of a batch are
acknowledged to the source only after its last stage (or after it is safely in the spool).

- **Backpressure.** The source is read only while the inbox (``queue_size`` events) has room; every
  queue after it holds one or two batches. A slow or absent backend stops the reading, memory stays
  bounded.
- **Dedup.** Before storing, the batch's messages whose dedup key is in Redis (stored and published
  before, at this version) are dropped and counted as duplicates. Redis being away only skips this
  step: the store is idempotent anyway.
- **Faults.** A stage that gets ``Unavailable`` retries with backoff for ``retry_budget`` seconds. Then
  the batch is handed down unprocessed and written to the spool by the last stage, and the gateway
  switches to spooling: every later batch goes to the spool too, in order, until the drain task has
  replayed the spool through the backends (retrying as long as it takes). So a deletion never overtakes
  the message it deletes, and nothing acknowledged is lost. A full spool blocks the last stage, which
  is backpressure again.
- **Stop.** ``stop()`` ends the reading; what was read is batched and finished (retries give up at once
  and go to the spool), then ``run()`` returns. A finite source (replay) ends the same way, after the
  spool has drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import typing as t

from tgstack_gateway.backends import Unavailable
from tgstack_gateway.batch import Batch, Batcher
from tgstack_gateway.events import parse_record
from tgstack_gateway.metrics import Metrics
from tgstack_gateway.retry import Backoff, retry
from tgstack_gateway.sources import Source
from tgstack_gateway.spool import Spool, SpoolFull

log = logging.getLogger("tgstack_gateway.pipeline")
END = None
STOPPING_CLOCK_JUMP = 1e9  # while stopping, retry deadlines are already past
DEFAULT_BACKOFF = Backoff()


async def cancel(tasks: list[asyncio.Task[t.Any]]) -> None:
    """Cancel TASKS and wait for them, cancelling again any that carried on (a swallowed cancellation)."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=1)
    for task in tasks:  # retrieve the errors, so asyncio does not log them as never retrieved
        if not task.cancelled():
            task.exception()


def failed(task: asyncio.Future[t.Any]) -> None:
    """Raise TASK's error if it ended with one."""
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise t.cast(BaseException, task.exception())


@dataclasses.dataclass
class Work:
    """A batch on its way through the stages."""

    batch: Batch
    rows: list[dict[str, t.Any]]
    give_up: bool = False  # a stage could not do it: the batch goes to the spool
    deleted: set[tuple[int, int]] = dataclasses.field(default_factory=set)  # edits of deleted messages


@dataclasses.dataclass
class Totals:
    received: int = 0
    stored: int = 0
    published: int = 0
    duplicates: int = 0
    deleted: int = 0
    spooled_batches: int = 0
    acknowledged: int = 0
    bad_records: int = 0


class Pipeline:
    def __init__(self, source: Source, store: t.Any, publisher: t.Any, cache: t.Any, spool: Spool, metrics: Metrics,
                 *, batch_size: int = 500, batch_delay: float = 0.05, queue_size: int = 10000,
                 retry_budget: float = 30.0, backoff: Backoff = DEFAULT_BACKOFF,
                 latency_samples: list[float] | None = None) -> None:  # fmt: skip
        self.source = source
        self.store = store
        self.publisher = publisher
        self.cache = cache
        self.spool = spool
        self.metrics = metrics
        self.batcher = Batcher(batch_size, batch_delay)
        self.inbox: asyncio.Queue[t.Any] = asyncio.Queue(queue_size)
        self.to_dedup: asyncio.Queue[Work | None] = asyncio.Queue(1)
        self.to_store: asyncio.Queue[Work | None] = asyncio.Queue(1)
        self.to_publish: asyncio.Queue[Work | None] = asyncio.Queue(1)
        self.to_finish: asyncio.Queue[Work | None] = asyncio.Queue(1)
        self.retry_budget = retry_budget
        self.backoff = backoff
        self.latency_samples = latency_samples
        self.totals = Totals()
        self.stopping = asyncio.Event()
        self.spooling = len(spool) > 0
        self.spool_changed = asyncio.Event()
        self.drained = asyncio.Event()
        if not self.spooling:
            self.drained.set()
        self.metrics.spool_bytes.set(spool.size)

    # -- running -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> Totals:
        """Until the source ends (then until the spool is drained) or stop() is called.

        A task that fails with an unexpected error (a bug, not a backend being away: those are retried
        and spooled) ends the run with that error, so the service exits and systemd restarts it, instead
        of a pipeline that silently stopped moving.
        """
        drainer = asyncio.create_task(self.drain(), name="drain")
        reader = asyncio.create_task(self.read(), name="read")
        stages = [
            asyncio.create_task(self.collect(), name="batch"),
            asyncio.create_task(self.stage(self.to_dedup, self.to_store, self.do_dedup), name="dedup"),
            asyncio.create_task(self.stage(self.to_store, self.to_publish, self.do_store), name="store"),
            asyncio.create_task(self.stage(self.to_publish, self.to_finish, self.do_publish), name="publish"),
            asyncio.create_task(self.finish(), name="finish"),
        ]
        stopper = asyncio.create_task(self.stopping.wait(), name="stop")
        everything = [drainer, reader, stopper, *stages]
        try:
            await self.until([reader, stopper], everything)
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            failed(reader)
            ending = asyncio.create_task(self.inbox.put(END), name="end")
            everything.append(ending)
            await self.until([asyncio.gather(*stages)], everything)
            if not self.stopping.is_set():  # the source ended: finish what the spool holds
                await self.until([asyncio.create_task(self.drained.wait()), stopper], everything)
        finally:
            await cancel(everything)
        return self.totals

    @staticmethod
    async def until(wanted: list[asyncio.Future[t.Any]], watched: list[asyncio.Task[t.Any]]) -> None:
        """Wait until one of WANTED is done; raise at once if a task of WATCHED fails meanwhile."""
        pending = set(wanted) | {task for task in watched if not task.done()}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failed(task)
            if any(future.done() for future in wanted):
                return

    async def read(self) -> None:
        async for position, event in self.source.events():
            await self.inbox.put((position, event, time.monotonic()))
            self.totals.received += 1
            self.metrics.received.labels(source=self.source.name).inc()
            if self.stopping.is_set():
                return

    async def collect(self) -> None:
        """Inbox -> batches, by size or after batch_delay."""
        while True:
            timeout = None
            if len(self.batcher.current):
                timeout = max(0.0, self.batcher.current.started + self.batcher.delay - time.monotonic())
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
                # arrives as the get completes, and the task would then go on after the run ended
                async with asyncio.timeout(timeout):
                    item = await self.inbox.get()
            except TimeoutError:
                await self.hand_on(self.batcher.due())
                continue
            if item is END:
                await self.hand_on(self.batcher.take())
                await self.to_dedup.put(END)
                return
            position, event, received = item
            await self.hand_on(self.batcher.add(event, position, received))

    async def hand_on(self, batch: Batch | None) -> None:
        if batch is not None:
            self.metrics.duplicates.inc(batch.duplicates)
            self.totals.duplicates += batch.duplicates
            await self.to_dedup.put(Work(batch, batch.rows()))

    async def stage(self, inbox: asyncio.Queue[Work | None], outbox: asyncio.Queue[Work | None],
                    work: t.Callable[[Work], t.Awaitable[None]]) -> None:  # fmt: skip
        while (item := await inbox.get()) is not END:
            if item.give_up or self.spooling:
                item.give_up = True  # behind a spooled batch: to the spool as well, in order
            else:
                try:
                    await work(item)
                except Unavailable as error:
                    self.give_up(item, error)
            await outbox.put(item)
        await outbox.put(END)

    async def finish(self) -> None:
        while (item := await self.to_finish.get()) is not END:
            if item.give_up or self.spooling:
                item.give_up = True
            else:
                try:
                    await self.do_cache(item)
                except Unavailable as error:
                    self.give_up(item, error)
            if item.give_up and not await self.put_in_spool(item):
                continue  # stopping with a full spool: not acknowledged, so the source gives it again
            await self.acknowledge(item)

    def give_up(self, item: Work, error: Unavailable) -> None:
        log.warning("batch spooled: %s", error, extra={"fields": {"backend": error.backend, "events": len(item.batch)}})
        item.give_up = True
        self.enter_spooling()

    def enter_spooling(self) -> None:
        if not self.spooling:
            self.spooling = True
            self.drained.clear()
            log.warning("spooling: batches go to the spool until the backends are back and it has drained")
        self.spool_changed.set()

    async def put_in_spool(self, item: Work) -> bool:
        """Write the batch to the spool, waiting while it is full; False if stopping meanwhile."""
        warned = False
        while True:
            try:
                self.spool.put(item.batch.records())
                break
            except SpoolFull as error:
                if self.stopping.is_set():
                    log.error("stopping with a full spool: %d events not acknowledged, the source gives them "
                              "again", len(item.batch))  # fmt: skip
                    return False
                if not warned:
                    log.error("%s", error)
                    warned = True
                self.enter_spooling()
                await self.pause(0.5)
        self.enter_spooling()  # also when the spool had drained meanwhile: the batch must not be skipped
        self.totals.spooled_batches += 1
        self.metrics.spooled.inc()
        self.metrics.spool_bytes.set(self.spool.size)
        return True

    async def acknowledge(self, item: Work) -> None:
        if item.batch.positions:
            await self.source.acknowledge(item.batch.positions)
        self.totals.acknowledged += len(item.batch.positions)

    # -- the work of each stage ----------------------------------------------------------------------------

    def clock(self) -> float:
        return time.monotonic() + (STOPPING_CLOCK_JUMP if self.stopping.is_set() else 0.0)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()

    async def attempt(self, backend: str, operation: t.Callable[[], t.Awaitable[t.Any]],
                      budget: float | None = None) -> t.Any:  # fmt: skip
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self.metrics.retries.labels(backend=backend).inc()
            if attempt == 1 or attempt % 10 == 0:
                log.warning("%s: retrying in %.1fs (attempt %d)", error, delay, attempt,
                            extra={"fields": {"backend": backend}})  # fmt: skip

        if self.stopping.is_set():  # one try, then the spool (the clock below makes every deadline past)
            budget = 0.0
        return await retry(operation, retry_on=(Unavailable,), budget=self.retry_budget if budget is None else budget,
                           backoff=self.backoff, on_retry=on_retry, sleep=self.pause, clock=self.clock)  # fmt: skip

    async def do_dedup(self, item: Work) -> None:
        """Drop the messages Redis knows were stored and published at this version (a stage of its own, so
        that the store stage only stores)."""
        started = time.monotonic()
        if item.rows and self.cache is not None:
            try:
                seen = await self.cache.seen(item.rows)
            except Unavailable as error:  # only an optimisation: the store is idempotent
                log.debug("dedup skipped: %s", error)
            else:
                fresh = [row for row, known in zip(item.rows, seen, strict=True) if not known]
                skipped = len(item.rows) - len(fresh)
                if skipped:
                    self.metrics.duplicates.inc(skipped)
                    self.totals.duplicates += skipped
                item.rows = fresh
        self.metrics.stage_seconds.labels(stage="dedup").observe(time.monotonic() - started)

    async def do_store(self, item: Work) -> None:
        started = time.monotonic()
        stored = await self.attempt(self.store.name, lambda: self.store.store(item.rows, item.batch.deletions))
        self.metrics.stage_seconds.labels(stage="store").observe(time.monotonic() - started)
        written = stored.inserted + stored.updated
        item.deleted = stored.deleted_keys
        self.metrics.stored.inc(written)
        self.metrics.duplicates.inc(stored.unchanged + stored.duplicates)
        self.metrics.deletions.inc(stored.deleted)
        self.totals.stored += written
        self.totals.duplicates += stored.unchanged + stored.duplicates
        self.totals.deleted += stored.deleted
        newest = max((row["created_at"] for row in item.rows), default=None)
        if newest is not None:
            lag = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(newest)
            self.metrics.source_lag.set(max(0.0, lag.total_seconds()))

    async def do_publish(self, item: Work) -> None:
        """Every message that was not known to be published before: also those the store found unchanged,
        since a crash after storing and before publishing must not leave a stored message unpublished."""
        started = time.monotonic()
        published = await self.attempt(self.publisher.name, lambda: self.publisher.publish(item.rows))
        done = time.monotonic()
        self.metrics.stage_seconds.labels(stage="publish").observe(done - started)
        self.metrics.published.inc(published)
        self.totals.published += published
        for received in item.batch.received:
            self.metrics.latency.observe(done - received)
        if self.latency_samples is not None:
            self.latency_samples.extend(done - received for received in item.batch.received)

    async def do_cache(self, item: Work) -> None:
        if self.cache is None:
            return
        started = time.monotonic()
        await self.attempt(self.cache.name, lambda: self.cache.update(item.rows, item.batch.deletions, item.deleted))
        self.metrics.stage_seconds.labels(stage="cache").observe(time.monotonic() - started)

    # -- the spool -----------------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Replays the spool, oldest batch first, whenever there is one, until it is empty."""
        while True:
            if not self.spooling:
                self.spool_changed.clear()
                await self.spool_changed.wait()
                continue
            replayed = 0
            for path, records in self.spool.batches():
                batch = Batch()
                for record in records:
                    batch.add(parse_record(record))
                item = Work(batch, batch.rows())
                if not await self.replay(item):
                    return
                self.spool.remove(path)
                self.metrics.spool_bytes.set(self.spool.size)
                replayed += 1
            if replayed == 0:  # nothing left: batches flow through the backends again
                self.spooling = False
                self.drained.set()
                log.info("spool drained: batches go straight to the backends again")
            else:
                log.info("replayed %d spooled batches", replayed)

    async def replay(self, item: Work) -> bool:
        """One spooled batch through every stage, each retried for as long as it takes; False on stop."""
        for step in (self.do_dedup, self.do_store, self.do_publish, self.do_cache):
            while True:
                try:
                    await step(item)
                    break
                except Unavailable as error:
                    if self.stopping.is_set():
                        return False
                    log.warning("spool replay waits for %s", error)
                    await self.pause(self.backoff.cap)
        return True
