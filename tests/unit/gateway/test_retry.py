"""Backoff and retries on a virtual clock; Telegram's flood waits honoured with Telethon's own error."""

from __future__ import annotations

import asyncio
import random

import pytest
from telethon.errors import FloodWaitError
from tgstack_gateway.retry import Backoff, flood_wait, retry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(times: int, error: BaseException):
    calls = {"n": 0}

    async def operation():
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "done"

    return operation, calls


def test_backoff_grows_to_its_cap_with_jitter():
    delays = Backoff(initial=0.1, factor=2, cap=1.0, jitter=0.2).delays(random.Random(1))
    first = [next(delays) for _round in range(8)]
    assert 0.08 <= first[0] <= 0.12 and 0.16 <= first[1] <= 0.24
    assert all(0.8 <= delay <= 1.2 for delay in first[4:])


def test_a_transient_error_is_retried_until_it_succeeds():
    clock = Clock()
    operation, calls = failing(3, ConnectionRefusedError("down"))
    seen = []
    result = asyncio.run(retry(operation, retry_on=(ConnectionError,), budget=60, sleep=clock.sleep, clock=clock,
                               on_retry=lambda attempt, error, delay: seen.append(attempt)))  # fmt: skip
    assert result == "done" and calls["n"] == 4 and seen == [1, 2, 3]


def test_the_budget_ends_the_retries_with_the_last_error():
    clock = Clock()
    operation, calls = failing(1000, ConnectionResetError("reset"))
    with pytest.raises(ConnectionResetError):
        asyncio.run(retry(operation, retry_on=(ConnectionError,), budget=5, sleep=clock.sleep, clock=clock))
    assert clock.now <= 5 and calls["n"] > 3


def test_other_errors_are_not_retried():
    operation, calls = failing(1, ValueError("bad batch"))
    with pytest.raises(ValueError, match="bad batch"):
        asyncio.run(retry(operation, retry_on=(ConnectionError,), budget=60))
    assert calls["n"] == 1


def test_flood_waits_are_honoured_and_a_too_long_one_is_raised():
    clock = Clock()
    operation, calls = failing(2, FloodWaitError(request=None, capture=7))
    assert asyncio.run(flood_wait(operation, sleep=clock.sleep)) == "done"
    assert clock.slept == [8.0, 8.0] and calls["n"] == 3
    operation, _calls = failing(1, FloodWaitError(request=None, capture=86400))
    with pytest.raises(FloodWaitError):
        asyncio.run(flood_wait(operation, max_wait=3600, sleep=clock.sleep))
