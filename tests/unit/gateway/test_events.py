"""Records from replay files and the other sources: what is accepted, and bad input named, not a crash."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from tgstack_gateway.events import BadRecord, DeleteEvent, MessageEvent, parse_line, parse_record

GOOD = {"chat_id": -1001234567890, "message_id": 5, "created_at": "2026-11-27T12:30:05Z", "text": "hi"}


def nested(depth: int) -> list:
    value: list = [1]
    for _level in range(depth):
        value = [value]
    return value


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


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "text": "\\ud800"}',
         "text holds a lone surrogate"),
        ('{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "raw": {"x": NaN}}',
         "not strict JSON: NaN"),
        ('{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "raw": {"x": -Infinity}}',
         "not strict JSON: -Infinity"),
        ('{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "raw": {"x": 1e400}}',
         "raw.x holds inf"),
        ('{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "media_duration": 1e999}',
         "media_duration must be a finite number"),
        (json.dumps(GOOD | {"media_width": 2**31}), "media_width 2147483648 does not fit in its column"),
        (json.dumps(GOOD | {"sender_id": -(2**63) - 1}), "does not fit in a bigint"),
        (json.dumps(GOOD | {"raw": {"a": nested(70)}}), "nested more than 64 levels"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (json.dumps(GOOD | {"text": "x" * (1 << 20)}), "more than the 1048576 a record may have"),
    ],
)  # fmt: skip
def test_what_postgresql_or_strict_json_cannot_hold_is_a_bad_record(line, words):
    with pytest.raises(BadRecord, match=words):
        parse_line(line)


NEW_TEXT = ['"text": NaN, "x": "', '"text": "\\ud83d', '"text": "\\u0000']
NEW_SENDER = ['"sender_id": 1e400', f'"sender_id": {2**64}', '"sender_id": Infinity']
NEW_WIDTH = [f'"media_width": {2**31}', '"media_width": -1', '"media_width": 1.5']
NEW_RAW = ['"raw": {"deep": ' + "[" * 70 + "]" * 70 + ", ", '"raw": {"n": NaN, ']
INSERTED = ["\\ud800", "\\udfff", "\\u0000", "\u0000", "\x7f", '"', "{", "]", ","]


def test_a_lone_surrogate_inside_raw_becomes_the_replacement_character_as_a_nul_does():
    line = '{"chat_id": 1, "message_id": 2, "created_at": "2026-11-27T12:30:05Z", "raw": {"\\udfff": ["a\\ud800b"]}}'
    assert parse_line(line).row["raw"] == {"\ufffd": ["a\ufffdb"]}


def damage(rng: random.Random, line: str) -> str:
    """LINE with one random kind of damage (it may still be a good record)."""
    kind = rng.randrange(8)
    at = rng.randrange(len(line) + 1)
    if kind == 0:
        return line[:at]
    if kind == 1:
        return line[:at] + rng.choice(INSERTED) + line[at:]
    if kind == 2:
        return line.replace('"text": "', rng.choice(NEW_TEXT), 1)
    if kind == 3:
        return line.replace('"sender_id": 7', rng.choice(NEW_SENDER))
    if kind == 4:
        return line.replace('"media_width": 640', rng.choice(NEW_WIDTH))
    if kind == 5:
        return line.replace('"raw": {', rng.choice(NEW_RAW), 1)
    if kind == 6:
        return "".join(char for char in line if rng.random() > 0.02)
    return line[::-1] if rng.random() < 0.5 else line * 2


@pytest.mark.parametrize("seed", range(300))
def test_random_damage_is_a_bad_record_or_a_good_event_never_a_crash(seed):
    rng = random.Random(seed)
    good = json.dumps(GOOD | {"sender_id": 7, "media_width": 640, "raw": {"id": 5, "entities": [{"type": "bold"}]}})
    assert isinstance(parse_line(good), MessageEvent)
    for _line in range(20):
        line = damage(rng, good)
        try:
            event = parse_line(line)
        except BadRecord:
            continue
        # what passes is storable and publishable: strict JSON, UTF-8, within the columns
        assert isinstance(event, MessageEvent | DeleteEvent)
        if isinstance(event, MessageEvent):
            json.dumps(event.row, allow_nan=False).encode("utf-8")
            assert -(2**31) <= event.row.get("media_width", 0) < 2**31


@pytest.mark.parametrize(
    "created_at",
    ["1970-01-01T00:00:00+00:00", "2013-08-13T23:59:59+00:00", "2099-01-01T00:00:00+00:00"],
)
def test_a_message_dated_outside_the_accepted_window_is_a_bad_record(created_at):
    with pytest.raises(BadRecord, match="created_at is outside the accepted dates"):
        parse_record(GOOD | {"created_at": created_at})


def test_the_window_is_configurable_and_its_edges_are_accepted():
    from tgstack_gateway.events import DEFAULT_WINDOW, DateWindow, set_date_window

    now = dt.datetime.now(dt.UTC)
    assert parse_record(GOOD | {"created_at": "2013-08-14T00:00:00+00:00"})
    assert parse_record(GOOD | {"created_at": (now + dt.timedelta(hours=23)).isoformat()})
    try:
        set_date_window(DateWindow(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.timedelta(days=400)))
        assert parse_record(GOOD | {"created_at": "1970-01-01T00:00:00+00:00"})
        assert parse_record(GOOD | {"created_at": (now + dt.timedelta(days=300)).isoformat()})
    finally:
        set_date_window(DEFAULT_WINDOW)
