"""How the store shares a batch among its connections (backends.Store with lanes): the split and the merge.
The writes themselves run against the lab's PostgreSQL in tests/integration/test_gateway.py."""

from __future__ import annotations

import asyncio

import pytest
from tgstack_gateway.backends import Store, Stored, Unavailable
from tgstack_gateway.events import DeleteEvent


class Recording(Store):
    def __init__(self, lanes: int, failing: dict[int, BaseException] | None = None) -> None:
        super().__init__("host=nowhere", "secret", lanes=lanes)
        self.calls: list[tuple[int, list[tuple[int, int]], list[DeleteEvent]]] = []
        self.failing = failing or {}

    async def call(self, work, lane=0):  # the connection is the lane number here
        return await work(lane)

    async def write(self, connection, rows, deletions):
        await asyncio.sleep(0)
        if connection in self.failing:
            raise self.failing[connection]
        self.calls.append((connection, [(row["chat_id"], row["message_id"]) for row in rows], list(deletions)))
        return Stored(inserted=len(rows), deleted=len(deletions), deleted_keys={(row["chat_id"], 0) for row in rows})


def rows(chats: list[int], per_chat: int) -> list[dict]:
    return [{"chat_id": chat, "message_id": number} for number in range(1, per_chat + 1) for chat in chats]


def test_a_chat_keeps_one_lane_with_its_deletions_and_chatless_deletions_come_last():
    store = Recording(lanes=2)
    chats = [-1001, -1002, -1003, -1004]
    deletions = [DeleteEvent(-1002, (1,)), DeleteEvent(None, (5,)), DeleteEvent(-1003, (2,))]
    result = asyncio.run(store.store(rows(chats, 3), deletions))
    assert result.inserted == 12 and result.deleted == 3
    assert result.deleted_keys == {(chat, 0) for chat in chats}
    lanes_of = {}
    for lane, keys, lane_deletions in store.calls[:-1]:
        for chat, _message in keys:
            lanes_of.setdefault(chat, set()).add(lane)
        assert all(deletion.chat_id % 2 == lane for deletion in lane_deletions)
        assert [message for chat, message in keys if chat == keys[0][0]] == [1, 2, 3]  # order kept
    assert all(len(lanes) == 1 for lanes in lanes_of.values()) and len(lanes_of) == 4
    assert {lane for lane, _keys, _deletions in store.calls[:-1]} == {0, 1}
    assert store.calls[-1] == (0, [], [DeleteEvent(None, (5,))])  # after every lane wrote


def test_one_lane_writes_the_batch_as_one():
    store = Recording(lanes=1)
    asyncio.run(store.store(rows([-1001, -1002], 2), [DeleteEvent(None, (5,))]))
    assert len(store.calls) == 1 and len(store.calls[0][1]) == 4


def test_a_failing_lane_fails_the_batch_and_a_bug_wins_over_an_outage():
    outage = Unavailable("postgres", "connection refused")
    store = Recording(lanes=2, failing={0: outage})
    with pytest.raises(Unavailable):
        asyncio.run(store.store(rows([-1001, -1002], 2), [DeleteEvent(None, (5,))]))
    assert all(deletions != [DeleteEvent(None, (5,))] for _lane, _keys, deletions in store.calls)

    store = Recording(lanes=3, failing={0: outage, 1: KeyError("bug")})
    with pytest.raises(KeyError):
        asyncio.run(store.store(rows([-1001, -1002, -1003], 2), []))
