"""At start, a database that cannot take the batches is a deployment error (exit 2), a database that is down is
not (service.check_schema)."""

from __future__ import annotations

import asyncio

import pytest
from tgstack_gateway.backends import Unavailable
from tgstack_gateway.config import ConfigError
from tgstack_gateway.service import check_schema


class Answering:
    name = "postgres"

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    async def ping(self) -> str:
        if self.error:
            raise self.error
        return "PostgreSQL as tgstack_app"


def test_a_schema_older_than_the_gateway_is_a_configuration_error():
    missing = PermissionError("the database has no tgstack.upsert_staged_messages(): apply the schema scripts")
    with pytest.raises(ConfigError) as caught:
        asyncio.run(check_schema(Answering(missing)))
    assert caught.value.problems == [f"postgres: {missing}"]


def test_a_database_that_is_down_or_fine_lets_the_gateway_start(caplog):
    asyncio.run(check_schema(Answering(Unavailable("postgres", "connection refused"))))
    assert "starting anyway" in caplog.text
    asyncio.run(check_schema(Answering(None)))
