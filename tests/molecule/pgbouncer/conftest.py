"""Fixtures for the pgbouncer molecule scenario's verify step (molecule/pgbouncer_redis_sentinel)."""

from __future__ import annotations

import pytest
from bouncer import Bouncer


@pytest.fixture
def bouncer(host) -> Bouncer:
    return Bouncer(host)
