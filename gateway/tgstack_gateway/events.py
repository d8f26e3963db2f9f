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
import math
import typing as t

INTEGER_COLUMNS = ("sender_id", "reply_to_message_id", "thread_id", "forward_from_id", "forward_message_id",
                   "media_size", "media_width", "media_height")  # fmt: skip
TEXT_COLUMNS = ("text", "forward_from_name", "media_type", "media_file_id", "media_mime")
TIME_COLUMNS = ("forward_date", "edited_at", "received_at")
OBJECT_COLUMNS = ("media_meta", "raw")
TYPES = ("message", "edit", "delete")
# columns narrower than bigint (tgstack.messages)
INTEGER_RANGES = {"media_width": (-(2**31), 2**31 - 1), "media_height": (-(2**31), 2**31 - 1)}
MAX_RECORD_BYTES = 1 << 20  # one line of a replay file, one record of a source
MAX_DEPTH = 64  # nesting of raw and media_meta


class BadRecord(ValueError):
    """A record that cannot be stored; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class DateWindow:
    """The message dates accepted: from EARLIEST to AHEAD past the current time."""

    earliest: dt.datetime
    ahead: dt.timedelta

    def check(self, created_at: str) -> None:
        moment = dt.datetime.fromisoformat(created_at)
        latest = dt.datetime.now(dt.UTC) + self.ahead
        if not self.earliest <= moment <= latest:
            raise BadRecord(
                f"created_at is outside the accepted dates: {created_at} is not between "
                f"{self.earliest.date().isoformat()} and {self.ahead} from now (records.earliest, records.ahead_days)"
            )


# Telegram started on 14 August 2013; a message from further ahead than a day is a clock or a bug
DEFAULT_WINDOW = DateWindow(dt.datetime(2013, 8, 14, tzinfo=dt.UTC), dt.timedelta(days=1))
_ACCEPTED = {"window": DEFAULT_WINDOW}  # one setting for every source of the process


def set_date_window(window: DateWindow) -> None:
    """The dates every source accepts from now on (service.run_pipeline sets the configured ones)."""
    _ACCEPTED["window"] = window


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
    low, high = INTEGER_RANGES.get(name, (-(2**63), 2**63 - 1))
    if not low <= value <= high:
        raise BadRecord(f"{name} {value} does not fit in its column (an integer from {low} to {high})")
    return value


def text_problem(value: str) -> str | None:
    """Why PostgreSQL text or jsonb cannot hold VALUE, or None."""
    if "\x00" in value:
        return "holds a NUL character (\\u0000), which PostgreSQL text cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"holds a lone surrogate ({value[error.start]!a}) at character {error.start}, which UTF-8 cannot encode"
    return None


def clean_object(name: str, value: t.Any, depth: int = 0) -> t.Any:
    """VALUE (raw, media_meta) as jsonb and a strict JSON reader can hold it: a lone surrogate becomes U+FFFD
    (as a NUL does when it is written, backends.copy_value); NaN, Infinity and nesting deeper than
    MAX_DEPTH are a bad record."""
    if depth > MAX_DEPTH:
        raise BadRecord(f"{name} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRecord(f"{name} holds {value}, which JSON cannot carry (strict JSON has no NaN or Infinity)")
        return value
    if isinstance(value, dict):
        return {clean_object(f"{name} key", key, depth + 1): clean_object(f"{name}.{key}"[:80], item, depth + 1)
                for key, item in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [clean_object(f"{name}[]", item, depth + 1) for item in value]
    return value


def instant(value: str | None) -> dt.datetime | None:
    """The moment an ISO 8601 time (with its offset) names, for comparing versions; None stays None."""
    return None if value is None else dt.datetime.fromisoformat(value)


def newer(candidate: str | None, held: str | None) -> bool:
    """Whether version CANDIDATE (an edited_at) is newer than HELD; an unedited version is the oldest."""
    if candidate is None:
        return False
    return held is None or instant(candidate) > instant(held)


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
    _ACCEPTED["window"].check(row["created_at"])
    for name in INTEGER_COLUMNS:
        row[name] = integer(record, name)
    for name in TEXT_COLUMNS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise BadRecord(f"{name} must be a string or null, not {json.dumps(value)[:40]}")
        problem = text_problem(value) if value is not None else None
        if problem:
            raise BadRecord(f"{name} {problem}")
        row[name] = value
    for name in TIME_COLUMNS:
        row[name] = timestamp(record, name)
    duration = record.get("media_duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise BadRecord(f"media_duration must be a number of seconds, not {json.dumps(duration)[:40]}")
    if duration is not None and not math.isfinite(duration):
        raise BadRecord(f"media_duration must be a finite number of seconds, not {duration}")
    row["media_duration"] = duration
    for name in OBJECT_COLUMNS:
        value = record.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadRecord(f"{name} must be a JSON object or null")
        row[name] = clean_object(name, value) if value is not None else None
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


def _no_constant(name: str) -> t.NoReturn:
    raise BadRecord(f"not strict JSON: {name} is not a JSON number (write null, or leave the field out)")


def parse_line(line: str) -> Event:
    """The event of one JSON line: strict JSON (no NaN or Infinity), at most MAX_RECORD_BYTES."""
    size = len(line.encode("utf-8", "surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise BadRecord(f"a record of {size} bytes, more than the {MAX_RECORD_BYTES} a record may have")
    try:
        record = json.loads(line, parse_constant=_no_constant)
    except BadRecord:
        raise
    except RecursionError:
        raise BadRecord("not JSON this gateway reads: nested too deeply") from None
    except ValueError as error:
        where = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise BadRecord(f"not JSON ({getattr(error, 'msg', error)}{where})") from None
    return parse_record(record)
