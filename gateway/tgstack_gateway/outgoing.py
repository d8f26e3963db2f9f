"""What the gateway publishes to RabbitMQ for each stored message (or each stored batch).

Per message: the row as JSON, routing key ``message.new.<chat id>`` or ``message.edit.<chat id>`` (topic
exchange: bind ``#`` or ``message.#`` for everything, ``message.*.-1001234567890`` for one chat),
persistent, with ``message_id`` ``<chat>:<message>:<version>`` (the version is the edit time, or 0) so
consumers can drop the duplicates that at-least-once delivery allows. In batch mode one AMQP message
carries a stored batch as a JSON array (routing key ``batch``, ``message_id`` a digest of the message
versions it holds), for consumers that take batches. ``raw`` (Telegram's whole object) stays in the
database: consumers get the columns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing as t

CONTENT_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class Outgoing:
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, t.Any]


def version(row: dict[str, t.Any]) -> str:
    return row.get("edited_at") or "0"


def public(row: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: value for key, value in row.items() if key != "raw"}


def message(row: dict[str, t.Any]) -> Outgoing:
    kind = "edit" if row.get("edited_at") else "new"
    return Outgoing(
        routing_key=f"message.{kind}.{row['chat_id']}",
        body=json.dumps(public(row), separators=(",", ":"), ensure_ascii=False).encode(),
        message_id=f"{row['chat_id']}:{row['message_id']}:{version(row)}",
        # no headers: the chat is in the routing key, and a header table costs the client's CPU on
        # every message (bench/gateway_throughput.py's profile)
        headers={},
    )


def batch(rows: t.Sequence[dict[str, t.Any]], sequence: int) -> Outgoing:
    """One AMQP message for a stored batch. Its message_id is derived from the message versions it holds,
    not from SEQUENCE (which starts again with every process): a batch published again after a crash has
    the same id, and two different batches never share one."""
    versions = "\n".join(f"{row['chat_id']}:{row['message_id']}:{version(row)}" for row in rows)
    return Outgoing(
        routing_key="batch",
        body=json.dumps([public(row) for row in rows], separators=(",", ":"), ensure_ascii=False).encode(),
        message_id="batch:" + hashlib.sha256(versions.encode()).hexdigest()[:32],
        headers={"count": len(rows), "sequence": sequence},
    )
