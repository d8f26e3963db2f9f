"""What a source hands to the pipeline: new or edited messages (rows) and deletions, checked on the way in.

A record is a JSON object: the columns of tgstack.messages that tgstack.upsert_messages takes, plus
"type": "message" (the default), "edit" or "delete". Replay files hold one record per line (JSON Lines);
the synthetic source and the Telethon source build the same records. A record that cannot be stored
raises BadRecord, which names the problem; sources log it, count it and go on, so one bad line never
stops the gateway nor costs a good message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing as t

INTEGER_COLUMNS = ("sender_id", "reply_to_message_id", "thread_id", "forward_from_id", "forward_message_id",
                   "media_size", "media_width", "media_height")  # fmt: skip
TEXT_COLUMNS = ("text", "forward_from_name", "media_type", "media_file_id", "media_mime")
TIME_COLUMNS = ("forward_date", "edited_at", "received_at")
OBJECT_COLUMNS = ("media_meta", "raw")
TYPES = ("message", "edit", "delete")


class BadRecord(ValueError):
    """A record that cannot be stored; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class MessageEvent:
    """A new message, or a newer version of one (edited_at set): upserted by its key."""

    row: dict[str, t.Any]

    @property
    def key(self) -> tuple[int, int]:
        return self.row["chat_id"], self.row["message_id"]


@dataclasses.dataclass(frozen=True)
class DeleteEvent:
    """Messages deleted in a chat (chat_id None: a private chat or basic group, Telegram omits it)."""

    chat_id: int | None
    message_ids: tuple[int, ...]
    deleted_at: str | None = None


Event = MessageEvent | DeleteEvent


def integer(record: dict[str, t.Any], name: str, *, positive: bool = False, required: bool = False) -> int | None:
    value = record.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"{name} must be an integer, not {json.dumps(value)[:40]}")
    if positive and value <= 0:
        raise BadRecord(f"{name} must be positive, not {value}")
    if not -(2**63) <= value < 2**63:
        raise BadRecord(f"{name} {value} does not fit in a bigint")
    return value


def timestamp(record: dict[str, t.Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise BadRecord(f"{name} is missing (an ISO 8601 time with its offset, e.g. 2026-11-27T12:30:05+00:00)")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{name} must be an ISO 8601 string, not {json.dumps(value)[:40]}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(f"{name} '{value[:40]}' is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRecord(f"{name} '{value}' has no UTC offset: add one (e.g. +00:00), local times are ambiguous")
    return moment.isoformat()


def message_event(record: dict[str, t.Any]) -> MessageEvent:
    row: dict[str, t.Any] = {
        "chat_id": integer(record, "chat_id", required=True),
        "message_id": integer(record, "message_id", positive=True, required=True),
        "created_at": timestamp(record, "created_at", required=True),
    }
    for name in INTEGER_COLUMNS:
        row[name] = integer(record, name)
    for name in TEXT_COLUMNS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRecord(f"{name} must be a string or null, not {json.dumps(value)[:40]}")
        if value is not None and "\x00" in value:
            raise BadRecord(f"{name} holds a NUL character (\\u0000), which PostgreSQL text cannot store")
        row[name] = value
    for name in TIME_COLUMNS:
        row[name] = timestamp(record, name)
    duration = record.get("media_duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise BadRecord(f"media_duration must be a number of seconds, not {json.dumps(duration)[:40]}")
    row["media_duration"] = duration
    for name in OBJECT_COLUMNS:
        value = record.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadRecord(f"{name} must be a JSON object or null")
        row[name] = value
    if record.get("type") == "edit" and row["edited_at"] is None:
        raise BadRecord("an edit needs edited_at (Telegram's edit_date): without it the edit could not win")
    return MessageEvent({key: value for key, value in row.items() if value is not None or key == "text"})


def delete_event(record: dict[str, t.Any]) -> DeleteEvent:
    ids = record.get("message_ids")
    if not isinstance(ids, list) or not ids:
        raise BadRecord("a deletion needs message_ids, a non-empty list of message ids")
    checked = tuple(integer({"message_id": value}, "message_id", positive=True) for value in ids)
    return DeleteEvent(integer(record, "chat_id"), t.cast(tuple[int, ...], checked), timestamp(record, "deleted_at"))


def parse_record(record: t.Any) -> Event:
    if not isinstance(record, dict):
        raise BadRecord(f"a record is a JSON object, not {type(record).__name__}")
    kind = record.get("type", "message")
    if kind not in TYPES:
        raise BadRecord(f"unknown type {json.dumps(kind)[:40]}: one of {', '.join(TYPES)}")
    return delete_event(record) if kind == "delete" else message_event(record)


def parse_line(line: str) -> Event:
    try:
        record = json.loads(line)
    except ValueError as error:
        raise BadRecord(f"not JSON ({error.msg} at column {error.colno})") from None
    return parse_record(record)
