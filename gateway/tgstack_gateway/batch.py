"""Batching: events gathered by size and time, collapsed so each message appears once per batch.

A batch keeps the order of its events but holds at most one version of each (chat, message id): the
newest edit wins (edited_at; an unedited version counts as oldest), so an edit that arrives before its
original is not undone by it. Collapsed events are counted as duplicates. Deletions stay in order after
the messages of the same batch (the store applies them last), so a message and its deletion in one batch
end up stored and marked deleted.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from tgstack_gateway.events import DeleteEvent, Event, MessageEvent


@dataclasses.dataclass
class Batch:
    messages: dict[tuple[int, int], MessageEvent] = dataclasses.field(default_factory=dict)
    deletions: list[DeleteEvent] = dataclasses.field(default_factory=list)
    positions: list[t.Any] = dataclasses.field(default_factory=list)
    received: list[float] = dataclasses.field(default_factory=list)  # monotonic receive times, for latency
    duplicates: int = 0
    started: float = 0.0

    def __len__(self) -> int:
        return len(self.messages) + len(self.deletions)

    def add(self, event: Event, position: t.Any = None, received: float | None = None) -> None:
        if not self.positions and not self.messages and not self.deletions:
            self.started = time.monotonic()
        if position is not None:
            self.positions.append(position)
        if received is not None:
            self.received.append(received)
        if isinstance(event, DeleteEvent):
            self.deletions.append(event)
            return
        held = self.messages.get(event.key)
        if held is None:
            self.messages[event.key] = event
            return
        self.duplicates += 1
        if (event.row.get("edited_at") or "") > (held.row.get("edited_at") or ""):
            self.messages[event.key] = event

    def rows(self) -> list[dict[str, t.Any]]:
        return [event.row for event in self.messages.values()]

    def records(self) -> list[dict[str, t.Any]]:
        """The batch in the replay format (events.py), messages first then deletions: what the spool keeps."""
        deletions = [{"type": "delete", "chat_id": deletion.chat_id, "message_ids": list(deletion.message_ids),
                      "deleted_at": deletion.deleted_at} for deletion in self.deletions]  # fmt: skip
        return [{"type": "message", **row} for row in self.rows()] + deletions


class Batcher:
    """Collects events into batches of at most SIZE events, or whatever arrived within DELAY seconds."""

    def __init__(self, size: int, delay: float) -> None:
        if size < 1 or delay <= 0:
            raise ValueError("a batch needs a size of 1 or more and a delay above 0")
        self.size = size
        self.delay = delay
        self.current = Batch()

    def add(self, event: Event, position: t.Any = None, received: float | None = None) -> Batch | None:
        """Add EVENT; returns the batch when it is full."""
        self.current.add(event, position, received)
        return self.take() if len(self.current) >= self.size else None

    def due(self, now: float | None = None) -> Batch | None:
        """The batch, if its oldest event has waited DELAY seconds."""
        if len(self.current) == 0:
            return None
        if (now if now is not None else time.monotonic()) - self.current.started >= self.delay:
            return self.take()
        return None

    def take(self) -> Batch | None:
        """Whatever is gathered (on a timer, at shutdown); None when empty."""
        if len(self.current) == 0 and not self.current.positions:
            return None
        batch, self.current = self.current, Batch()
        return batch
