"""The AMQP messages the gateway publishes: routing keys, ids consumers can deduplicate on, no raw."""

from __future__ import annotations

import json

from tgstack_gateway.outgoing import batch, message

ROW = {"chat_id": -100, "message_id": 7, "created_at": "2026-11-27T00:00:00+00:00", "text": "é", "raw": {"id": 7}}


def test_a_new_message_and_its_edit():
    new = message(ROW)
    assert new.routing_key == "message.new.-100" and new.message_id == "-100:7:0"
    assert json.loads(new.body) == {k: v for k, v in ROW.items() if k != "raw"} and "é" in new.body.decode()
    edit = message(ROW | {"edited_at": "2026-11-27T00:05:00+00:00"})
    assert edit.routing_key == "message.edit.-100" and edit.message_id == "-100:7:2026-11-27T00:05:00+00:00"
    assert new.headers == {}  # the chat is in the routing key


def test_a_batch_is_one_message():
    out = batch([ROW, ROW | {"message_id": 8}], sequence=42)
    assert out.routing_key == "batch" and out.headers == {"count": 2, "sequence": 42}
    assert [row["message_id"] for row in json.loads(out.body)] == [7, 8]
    # the id follows the content, not a counter that starts again with every process: consumers
    # deduplicate a batch published again after a crash, and never drop a different batch
    assert out.message_id == batch([ROW, ROW | {"message_id": 8}], sequence=1).message_id
    assert out.message_id != batch([ROW, ROW | {"message_id": 9}], sequence=42).message_id
    edited = ROW | {"edited_at": "2026-11-27T00:05:00+00:00"}
    assert out.message_id != batch([edited, ROW | {"message_id": 8}], sequence=42).message_id
