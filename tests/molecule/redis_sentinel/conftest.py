"""Fixtures for the redis_sentinel scenario's verify step (molecule/pgbouncer_redis_sentinel)."""

from __future__ import annotations

import pytest
from redislab import variables


@pytest.fixture
def lab_vars() -> dict:
    return variables()
