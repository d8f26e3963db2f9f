"""The COPY text the store sends to the staging table (backends.copy_text): PostgreSQL's text format, whatever
the message holds. The round trip through a real PostgreSQL is in tests/integration/test_gateway.py."""

from __future__ import annotations

import json

from tgstack_gateway.backends import STAGED_COLUMNS, copy_text, copy_value


def parse_copy_line(line: str) -> list[str | None]:
    """The reverse of COPY's text format for one line, as PostgreSQL reads it (the escapes copy_value writes)."""
    fields: list[str | None] = []
    for field in line.split("\t"):
        if field == "\\N":
            fields.append(None)
            continue
        out, index = [], 0
        while index < len(field):
            char = field[index]
            if char == "\\":
                following = field[index + 1]
                out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[following])
                index += 2
            else:
                out.append(char)
                index += 1
        fields.append("".join(out))
    return fields


def test_every_column_in_order_and_null_for_what_a_row_lacks():
    row = {"chat_id": -1001, "message_id": 7, "created_at": "2026-11-27T00:00:00+00:00", "text": "hi", "media_size": 0}
    text = copy_text([row, row])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3
    fields = parse_copy_line(lines[0])
    assert len(fields) == len(STAGED_COLUMNS) == 22
    values = dict(zip(STAGED_COLUMNS, fields, strict=True))
    assert values["chat_id"] == "-1001" and values["message_id"] == "7" and values["text"] == "hi"
    assert values["media_size"] == "0"  # zero is a value, not NULL
    assert values["sender_id"] is None and values["raw"] is None


def test_text_that_looks_like_the_format_comes_back_unchanged():
    tricky = "tab\there\nnew line\r\nback\\slash \\N \\t literal, emoji \U0001f600, RTL \u05e9\u05dc\u05d5\u05dd"
    row = {"chat_id": 1, "message_id": 1, "created_at": "2026-11-27T00:00:00+00:00", "text": tricky}
    line = copy_text([row])
    assert line.count("\n") == 1 and line.endswith("\n")  # the row's own newlines are escaped
    assert parse_copy_line(line[:-1])[STAGED_COLUMNS.index("text")] == tricky
    assert copy_value("\\N") == "\\\\N"  # the text \N is not NULL


def test_objects_are_json_and_a_nul_inside_becomes_the_replacement_character():
    meta = {"file_name": "a\tb.pdf", "caption": "line\nbreak", "path": "C:\\dir"}
    assert json.loads(parse_copy_line(copy_value(meta))[0]) == meta
    raw = {"message": "x\u0000y", "literal": "\\u0000 stays text", "nested": {"z": "\u0000"}}
    back = json.loads(parse_copy_line(copy_value(raw))[0])
    assert back == {"message": "x\ufffdy", "literal": "\\u0000 stays text", "nested": {"z": "\ufffd"}}


def test_numbers():
    assert copy_value(3) == "3" and copy_value(-1001234567890) == "-1001234567890"
    assert float(copy_value(12.5)) == 12.5
