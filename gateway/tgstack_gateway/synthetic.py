"""Realistic synthetic messages for load tests and demos: many chats, replies, media, edits, deletions and
duplicates, deterministic for a seed, with the final state they must leave behind.

The records have the shape of events.py (the replay format), so the same stream can be written to a
JSON Lines file and replayed, or fed to the pipeline directly at a chosen rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import typing as t

SENTENCE = (
    "telegram channel market update price news alert bitcoin weather report morning evening city team match "
    "score release version build deploy server error fixed thanks hello everyone today tomorrow photo video "
    "link read more join chat group admin rules welcome"
)
WORDS = SENTENCE.split()
MEDIA = (
    {"media_type": "photo", "media_mime": "image/jpeg", "media_width": 1280, "media_height": 960},
    {"media_type": "video", "media_mime": "video/mp4", "media_width": 640, "media_height": 360, "media_duration": 12.5},
    {"media_type": "voice", "media_mime": "audio/ogg", "media_duration": 7.0},
    {"media_type": "document", "media_mime": "application/pdf", "media_meta": {"file_name": "report.pdf"}},
)


# The users that post: a few thousand, so that senders recur as in real chats (and the store registers a
# sender once, not with nearly every message).
SENDERS = 5000


@dataclasses.dataclass
class Mix:
    """Shares of the records (the rest are new messages)."""

    duplicates: float = 0.05
    edits: float = 0.05
    deletions: float = 0.01
    replies: float = 0.15
    media: float = 0.2


@dataclasses.dataclass
class Final:
    """What one message must look like in the store once everything is applied."""

    text: str | None
    edited_at: str | None = None
    deleted: bool = False


class SyntheticLoad:
    def __init__(self, chats: int = 50, seed: int = 1, mix: Mix | None = None,
                 start: dt.datetime | None = None, first_chat: int = -1001000000000,
                 last_message_id: int = 0) -> None:  # fmt: skip
        if chats < 1:
            raise ValueError("chats must be 1 or more")
        self.random = random.Random(seed)
        self.mix = mix or Mix()
        self.chats = [first_chat - number for number in range(chats)]  # channel ids (-100 prefix)
        self.last_id = dict.fromkeys(self.chats, last_message_id)
        self.clock = start or dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        self.sent: list[dict[str, t.Any]] = []  # every new message so far (duplicates and edits pick from it)
        self.final: dict[tuple[int, int], Final] = {}

    def text(self) -> str:
        return " ".join(self.random.choices(WORDS, k=self.random.randint(3, 25)))

    def new_message(self) -> dict[str, t.Any]:
        chat = self.random.choice(self.chats)
        self.last_id[chat] += 1
        self.clock += dt.timedelta(milliseconds=self.random.randint(1, 40))
        record: dict[str, t.Any] = {
            "chat_id": chat,
            "message_id": self.last_id[chat],
            "created_at": self.clock.isoformat(),
            "sender_id": self.random.randint(1000, 1000 + SENDERS - 1),
            "text": self.text(),
        }
        if self.last_id[chat] > 1 and self.random.random() < self.mix.replies:
            record["reply_to_message_id"] = self.random.randint(1, self.last_id[chat] - 1)
        if self.random.random() < self.mix.media:
            record |= self.random.choice(MEDIA) | {"media_file_id": str(self.random.getrandbits(48))}
            record["media_size"] = self.random.randint(10_000, 20_000_000)
        self.sent.append(record)
        self.final[(chat, record["message_id"])] = Final(record["text"])
        return record

    def edit(self) -> dict[str, t.Any]:
        original = self.random.choice(self.sent)
        key = (original["chat_id"], original["message_id"])
        previous = self.final[key]
        edited_at = dt.datetime.fromisoformat(previous.edited_at or original["created_at"])
        edited_at += dt.timedelta(seconds=self.random.randint(1, 600))
        record = original | {"type": "edit", "text": self.text() + " (edited)", "edited_at": edited_at.isoformat()}
        self.final[key] = Final(record["text"], record["edited_at"], previous.deleted)
        return record

    def deletion(self) -> dict[str, t.Any]:
        original = self.random.choice(self.sent)
        key = (original["chat_id"], original["message_id"])
        self.final[key].deleted = True
        return {"type": "delete", "chat_id": original["chat_id"], "message_ids": [original["message_id"]]}

    def records(self, count: int) -> t.Iterator[dict[str, t.Any]]:
        """COUNT records: new messages mixed with duplicates, edits and deletions of earlier ones."""
        for _number in range(count):
            roll = self.random.random()
            if not self.sent:
                yield self.new_message()
            elif roll < self.mix.duplicates:
                yield dict(self.random.choice(self.sent))
            elif roll < self.mix.duplicates + self.mix.edits:
                yield self.edit()
            elif roll < self.mix.duplicates + self.mix.edits + self.mix.deletions:
                yield self.deletion()
            else:
                yield self.new_message()
