"""Records from replay files and the other sources: what is accepted, and bad input named, not a crash."""

from __future__ import annotations

import json

import pytest
from tgstack_gateway.events import BadRecord, DeleteEvent, MessageEvent, parse_line, parse_record

GOOD = {"chat_id": -1001234567890, "message_id": 5, "created_at": "2026-11-27T12:30:05Z", "text": "hi"}


def test_a_message_record_becomes_a_row():
    event = parse_line(json.dumps(GOOD | {"sender_id": 7, "media_meta": {"alt": ":)"}, "unknown_key": 1}))
    assert isinstance(event, MessageEvent) and event.key == (-1001234567890, 5)
    assert event.row == {
        "chat_id": -1001234567890,
        "message_id": 5,
        "created_at": "2026-11-27T12:30:05+00:00",
        "sender_id": 7,
        "text": "hi",
        "media_meta": {"alt": ":)"},
    }


def test_an_edit_and_a_deletion():
    edit = parse_record(GOOD | {"type": "edit", "text": "hi!", "edited_at": "2026-11-27T12:31:00+00:00"})
    assert isinstance(edit, MessageEvent) and edit.row["edited_at"] == "2026-11-27T12:31:00+00:00"
    deletion = parse_record({"type": "delete", "chat_id": -100, "message_ids": [5, 6]})
    assert deletion == DeleteEvent(-100, (5, 6), None)
    assert parse_record({"type": "delete", "message_ids": [9]}).chat_id is None


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"chat_id": 1, "message_id": 2, "created_at": ', "not JSON"),
        ("[1, 2]", "a record is a JSON object"),
        (json.dumps(GOOD | {"type": "reaction"}), 'unknown type "reaction"'),
        (json.dumps({k: v for k, v in GOOD.items() if k != "chat_id"}), "chat_id is missing"),
        (json.dumps(GOOD | {"message_id": "5"}), "message_id must be an integer"),
        (json.dumps(GOOD | {"message_id": 0}), "message_id must be positive"),
        (json.dumps(GOOD | {"message_id": True}), "message_id must be an integer"),
        (json.dumps(GOOD | {"chat_id": 2**70}), "does not fit in a bigint"),
        (json.dumps(GOOD | {"created_at": "yesterday"}), "is not an ISO 8601 time"),
        (json.dumps(GOOD | {"created_at": "2026-11-27T12:30:05"}), "has no UTC offset"),
        (json.dumps(GOOD | {"text": 42}), "text must be a string or null"),
        (json.dumps(GOOD | {"text": "a\u0000b"}), "text holds a NUL character"),
        (json.dumps(GOOD | {"media_mime": "\u0000"}), "media_mime holds a NUL character"),
        (json.dumps(GOOD | {"raw": [1]}), "raw must be a JSON object"),
        (json.dumps(GOOD | {"type": "edit"}), "an edit needs edited_at"),
        (json.dumps({"type": "delete", "chat_id": 1, "message_ids": []}), "non-empty list"),
        (json.dumps({"type": "delete", "message_ids": [1, "x"]}), "message_id must be an integer"),
    ],
)
def test_bad_records_are_named(line, words):
    with pytest.raises(BadRecord, match=words):
        parse_line(line)
