"""Batches: by size and time, one version per message (the newest edit), deletions kept in order."""

from __future__ import annotations

import pytest
from tgstack_gateway.batch import Batcher
from tgstack_gateway.events import DeleteEvent, MessageEvent


def message(message_id: int, text: str = "x", edited_at: str | None = None, chat_id: int = -100) -> MessageEvent:
    row = {"chat_id": chat_id, "message_id": message_id, "created_at": "2026-11-27T00:00:00+00:00", "text": text}
    return MessageEvent(row | ({"edited_at": edited_at} if edited_at else {}))


def test_a_full_batch_is_handed_over_with_its_positions():
    batcher = Batcher(size=3, delay=10)
    assert batcher.add(message(1), position=1) is None
    assert batcher.add(message(2), position=2) is None
    batch = batcher.add(DeleteEvent(-100, (1,)), position=3)
    assert batch is not None and len(batch) == 3 and batch.positions == [1, 2, 3]
    assert [row["message_id"] for row in batch.rows()] == [1, 2] and batch.deletions == [DeleteEvent(-100, (1,))]
    assert batcher.take() is None


def test_duplicates_collapse_and_the_newest_edit_wins_whatever_the_order():
    batcher = Batcher(size=100, delay=10)
    batcher.add(message(1, "edit 2", "2026-11-27T00:02:00+00:00"))
    batcher.add(message(1, "original"))
    batcher.add(message(1, "edit 1", "2026-11-27T00:01:00+00:00"))
    batcher.add(message(1, "original"))
    batcher.add(message(1, "x", chat_id=-200))  # another chat, same id: another message
    batch = batcher.take()
    assert batch.duplicates == 3 and len(batch.rows()) == 2
    assert batch.rows()[0]["text"] == "edit 2"


def test_a_batch_is_due_after_its_delay():
    batcher = Batcher(size=100, delay=0.05)
    assert batcher.due(now=0) is None
    batcher.add(message(1))
    started = batcher.current.started
    assert batcher.due(now=started + 0.01) is None
    batch = batcher.due(now=started + 0.06)
    assert batch is not None and len(batch) == 1


def test_nonsense_sizes_are_refused():
    with pytest.raises(ValueError, match="size of 1 or more"):
        Batcher(size=0, delay=1)
