"""Retrying a backend call: exponential backoff with jitter, a time budget, and Telegram's flood waits.

``retry()`` runs an async operation until it succeeds, waiting longer after each failure of the kinds
listed in ``retry_on`` (connection refused, a failover in progress, ...), up to ``budget`` seconds in all;
then the last error is raised and the caller spools the batch. Any other error is raised at once.
Telethon's FloodWaitError carries the wait Telegram asks for: ``flood_wait()`` honours it instead of
treating it as a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import typing as t

T = t.TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Backoff:
    initial: float = 0.1
    factor: float = 2.0
    cap: float = 10.0
    jitter: float = 0.2  # each delay is moved by up to this share, so clients do not retry in step

    def delays(self, rng: random.Random | None = None) -> t.Iterator[float]:
        rng = rng or random.Random()
        delay = self.initial
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.cap)


async def retry(
    operation: t.Callable[[], t.Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    budget: float,
    backoff: Backoff = Backoff(),
    on_retry: t.Callable[[int, BaseException, float], None] | None = None,
    sleep: t.Callable[[float], t.Awaitable[None]] = asyncio.sleep,
    clock: t.Callable[[], float] = time.monotonic,
) -> T:
    """OPERATION's result; retried on RETRY_ON errors for BUDGET seconds, then its last error is raised."""
    deadline = clock() + budget
    delays = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except retry_on as error:
            delay = next(delays)
            if clock() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(attempt, error, delay)
            await sleep(delay)


async def flood_wait(
    operation: t.Callable[[], t.Awaitable[T]],
    *,
    max_wait: float = 3600.0,
    on_wait: t.Callable[[float], None] | None = None,
    sleep: t.Callable[[float], t.Awaitable[None]] = asyncio.sleep,
) -> T:
    """OPERATION's result, waiting as long as Telegram asks when it answers FLOOD_WAIT (up to MAX_WAIT)."""
    from telethon.errors import FloodWaitError  # Telethon only where the Telegram source runs

    while True:
        try:
            return await operation()
        except FloodWaitError as error:
            wait = float(error.seconds) + 1.0
            if wait > max_wait:
                raise
            if on_wait is not None:
                on_wait(wait)
            await sleep(wait)
