"""Fixtures for the timescaledb molecule scenarios' verify step (molecule/timescaledb_*)."""

from __future__ import annotations

import pytest
from pgserver import Server


@pytest.fixture
def server(host) -> Server:
    return Server(host)
