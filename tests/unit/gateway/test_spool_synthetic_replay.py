"""The spool (durable, ordered, bounded), the synthetic load (deterministic, with a known final state) and
the replay reader (bad lines reported and skipped)."""

from __future__ import annotations

import json

import pytest
from tgstack_gateway.events import DeleteEvent, MessageEvent, parse_record
from tgstack_gateway.replay import read_replay
from tgstack_gateway.spool import Spool, SpoolFull
from tgstack_gateway.synthetic import Mix, SyntheticLoad


def test_the_spool_keeps_batches_in_order_across_a_restart(tmp_path):
    spool = Spool(tmp_path)
    first = spool.put([{"n": 1}, {"n": 2}])
    spool.put([{"n": 3}])
    (tmp_path / "000000000003.tmp").write_text('{"n": "half written"')  # a crash in the middle of a write
    again = Spool(tmp_path)  # the gateway restarted
    assert [records for _path, records in again.batches()] == [[{"n": 1}, {"n": 2}], [{"n": 3}]]
    assert not list(tmp_path.glob("*.tmp"))
    again.remove(first)
    assert [records for _path, records in again.batches()] == [[{"n": 3}]]
    assert again.put([{"n": 4}]).name == "000000000003.jsonl"


def test_the_spool_is_bounded(tmp_path):
    spool = Spool(tmp_path, max_bytes=100)
    spool.put([{"text": "x" * 40}])
    with pytest.raises(SpoolFull, match="reading pauses until it drains"):
        spool.put([{"text": "y" * 80}])
    path, _records = next(spool.batches())
    spool.remove(path)
    spool.put([{"text": "y" * 80}])


def test_the_synthetic_load_is_deterministic_and_valid():
    first = list(SyntheticLoad(chats=5, seed=7).records(2000))
    assert first == list(SyntheticLoad(chats=5, seed=7).records(2000))
    events = [parse_record(record) for record in first]  # every record passes the gateway's own checks
    kinds = {"message": 0, "edit": 0, "delete": 0}
    for record in first:
        kinds[record.get("type", "message")] += 1
    assert kinds["edit"] > 50 and kinds["delete"] > 5 and kinds["message"] > 1500
    keys = [event.key for event in events if isinstance(event, MessageEvent)]
    assert len(keys) > len(set(keys))  # duplicates and edits of earlier messages
    assert any(isinstance(event, DeleteEvent) for event in events)


def test_the_synthetic_final_state_follows_edits_and_deletions():
    load = SyntheticLoad(chats=2, seed=3, mix=Mix(duplicates=0.2, edits=0.3, deletions=0.1))
    records = list(load.records(500))
    latest = {}
    for record in records:
        if record.get("type") == "delete":
            continue
        key = (record["chat_id"], record["message_id"])
        if key not in latest or (record.get("edited_at") or "") > (latest[key].get("edited_at") or ""):
            latest[key] = record
    assert set(latest) == set(load.final)
    assert all(load.final[key].text == record["text"] for key, record in latest.items())


def test_replay_reports_bad_lines_and_keeps_the_good_ones(tmp_path):
    good = {"chat_id": 1, "message_id": 1, "created_at": "2026-11-27T00:00:00+00:00", "text": "a"}
    lines = [json.dumps(good), "{broken", json.dumps(good | {"type": "sticker-pack"}), "",
             json.dumps(good | {"message_id": 2})]  # fmt: skip
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    bad: list[tuple[int, str]] = []
    read = list(read_replay(tmp_path / "in.jsonl", lambda number, reason: bad.append((number, reason))))
    assert [number for number, _event in read] == [1, 5]
    assert [number for number, _reason in bad] == [2, 3]
    assert "not JSON" in bad[0][1] and "unknown type" in bad[1][1]
    assert [number for number, _event in read_replay(tmp_path / "in.jsonl", lambda *_: None, start_after=1)] == [5]
