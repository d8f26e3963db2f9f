"""The Telegram source against a fake TelegramClient that speaks Telethon's own types (no network)."""

from __future__ import annotations

import asyncio
import datetime as dt
import typing as t

import pytest
from telethon import events, utils
from telethon.crypto import AuthKey
from telethon.errors import FloodWaitError
from telethon.sessions import StringSession
from telethon.tl import types
from tgstack_gateway.events import DeleteEvent, MessageEvent
from tgstack_gateway.telethon_source import (
    BackfillSource,
    Position,
    TelegramSourceError,
    TelethonSource,
    login,
    make_client,
)

DATE = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NEWS, OTHER = 1234567890, 555  # channel ids as Telegram gives them
NEWS_ID, OTHER_ID = -1001234567890, -1000000000555  # the same, marked (the ids of tgstack.messages)
GROUP_ID = -4242


def post(message_id: int, channel: int = NEWS, **fields: t.Any) -> types.Message:
    text = fields.pop("message", f"post {message_id}")
    date = DATE + dt.timedelta(minutes=message_id)
    return types.Message(
        id=message_id, peer_id=types.PeerChannel(channel), date=date, message=text, post=True, **fields
    )


def at(message_id: int) -> str:
    return (DATE + dt.timedelta(minutes=message_id)).isoformat()


class FakeClient:
    """The TelegramClient methods the source uses, over an in-memory history (per marked chat id, ascending)."""

    def __init__(self, history: dict[int, list[t.Any]] | None = None, known: dict[t.Any, t.Any] | None = None) -> None:
        self.history = history or {NEWS_ID: []}
        self.known = known if known is not None else {"@news": types.InputPeerChannel(NEWS, 1)}
        self.in_dialogs: dict[t.Any, t.Any] = {}
        self.handlers: list[tuple[t.Any, t.Any]] = []
        self.reads: list[dict[str, t.Any]] = []
        self.floods: list[tuple[int, int]] = []  # (after this many messages of a read, seconds): raised once each
        self.gate: asyncio.Event | None = None  # when set up, a read waits for it before messages above gate_after
        self.gate_after = 0
        self.authorized = True
        self.caught_up = 0
        self.connected = False
        self.disconnected: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        self.connected = True
        self.disconnected = asyncio.get_running_loop().create_future()

    async def is_user_authorized(self) -> bool:
        return self.authorized

    async def get_input_entity(self, chat: t.Any) -> t.Any:
        if chat in self.known:
            return self.known[chat]
        if isinstance(chat, int) and chat == GROUP_ID:  # basic groups need no access hash, as in Telethon
            return types.InputPeerChat(-GROUP_ID)
        raise ValueError(f'No user has "{chat}" as username')

    async def get_dialogs(self) -> list[t.Any]:
        self.known.update(self.in_dialogs)
        return []

    def iter_messages(
        self,
        entity: t.Any,
        limit: int | None = None,
        *,
        min_id: int = 0,
        offset_id: int = 0,
        offset_date: dt.datetime | None = None,
        reverse: bool = False,
    ) -> t.AsyncIterator[t.Any]:
        self.reads.append({"chat": utils.get_peer_id(entity), "limit": limit, "min_id": min_id, "offset_id": offset_id,
                           "offset_date": offset_date, "reverse": reverse})  # fmt: skip
        messages = self.history.get(utils.get_peer_id(entity), [])
        if reverse:
            chosen = [m for m in messages if m.id > min_id and (offset_date is None or m.date >= offset_date)]
        else:
            chosen = [m for m in reversed(messages) if not offset_id or m.id < offset_id]
        return self.read(chosen[:limit] if limit is not None else chosen)

    async def read(self, messages: list[t.Any]) -> t.AsyncIterator[t.Any]:
        for number, message in enumerate(messages):
            for flood in list(self.floods):
                if flood[0] == number:
                    self.floods.remove(flood)
                    raise FloodWaitError(request=None, capture=flood[1])
            if self.gate is not None and message.id > self.gate_after:
                await self.gate.wait()
            yield message

    def add_event_handler(self, callback: t.Any, builder: t.Any) -> None:
        self.handlers.append((callback, builder))

    def remove_event_handler(self, callback: t.Any, builder: t.Any) -> None:
        self.handlers.remove((callback, builder))

    async def catch_up(self) -> None:
        self.caught_up += 1

    async def disconnect(self) -> None:
        self.connected = False
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)

    async def push(self, update: t.Any) -> None:
        """Telegram sends UPDATE: dispatched as Telethon does, through each handler's event builder."""
        for callback, builder in self.handlers:
            if builder.filter(builder.build(update)):
                await callback(update)


class Watermarks:
    def __init__(self, stored: dict[int, int] | None = None, failures: int = 0) -> None:
        self.stored = dict(stored or {})
        self.calls: list[tuple[int, int, str | None]] = []
        self.failures = failures

    async def get(self, chat_id: int) -> int | None:
        return self.stored.get(chat_id)

    async def set(self, chat_id: int, message_id: int, at: str | None) -> None:
        self.calls.append((chat_id, message_id, at))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("PgBouncer is restarting")
        self.stored[chat_id] = max(self.stored.get(chat_id, 0), message_id)


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def source(client: FakeClient, watermarks: Watermarks, chats: t.Sequence[str | int] = ("@news",),
           bad: list[tuple[str, str]] | None = None, **options: t.Any) -> TelethonSource:  # fmt: skip
    def on_bad(where: str, reason: str) -> None:
        (bad if bad is not None else []).append((where, reason))

    return TelethonSource(client, list(chats), on_bad, watermarks=watermarks, **options)


async def take(stream: t.AsyncIterator[tuple[t.Any, t.Any]], count: int) -> list[tuple[t.Any, t.Any]]:
    return [await asyncio.wait_for(anext(stream), 2) for _number in range(count)]


def ids(items: list[tuple[t.Any, t.Any]]) -> list[int]:
    return [event.row["message_id"] for _position, event in items]


def run(test: t.Callable[[], t.Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 5))


def test_backfill_from_the_watermark_then_live_updates_of_the_configured_chats_only():
    client = FakeClient({NEWS_ID: [post(i) for i in range(1, 7)]})
    the_source = source(client, Watermarks({NEWS_ID: 3}))

    async def scenario() -> None:
        stream = the_source.events()
        backfilled = await take(stream, 3)
        assert ids(backfilled) == [4, 5, 6]
        assert client.reads == [{"chat": NEWS_ID, "limit": None, "min_id": 3, "offset_id": 0, "offset_date": None,
                                 "reverse": True}]  # fmt: skip
        assert backfilled[0][1].row["created_at"] == at(4) and backfilled[0][1].row["text"] == "post 4"
        assert client.caught_up == 1
        await the_source.caught_up.wait()

        await client.push(types.UpdateNewChannelMessage(post(7), pts=10, pts_count=1))
        await client.push(types.UpdateNewChannelMessage(post(1, channel=OTHER), pts=1, pts_count=1))  # not followed
        fixed = post(5, message="fixed", edit_date=DATE + dt.timedelta(hours=1))
        await client.push(types.UpdateEditChannelMessage(fixed, pts=11, pts_count=1))
        await client.push(types.UpdateDeleteChannelMessages(channel_id=OTHER, messages=[1], pts=2, pts_count=1))
        await client.push(types.UpdateDeleteMessages(messages=[9], pts=3, pts_count=1))  # no chat: only channels here
        await client.push(types.UpdateDeleteChannelMessages(channel_id=NEWS, messages=[4], pts=12, pts_count=1))
        new, edit, deletion = await take(stream, 3)

        assert new[1].key == (NEWS_ID, 7) and new[0] == Position(NEWS_ID, 7, at(7), live=True)
        assert edit[1].key == (NEWS_ID, 5) and edit[1].row["text"] == "fixed" and "edited_at" in edit[1].row
        assert deletion[1] == DeleteEvent(NEWS_ID, (4,), deletion[1].deleted_at) and deletion[0].message_id is None
        await the_source.close()

    run(scenario)


def test_deletions_without_a_chat_are_kept_when_a_private_chat_or_basic_group_is_followed():
    client = FakeClient()
    the_source = source(client, Watermarks({NEWS_ID: 0}), chats=["@news", GROUP_ID])

    async def scenario() -> None:
        first = asyncio.create_task(anext(the_source.events()))
        await the_source.caught_up.wait()  # started: the handler is registered
        await client.push(types.UpdateDeleteMessages(messages=[9, 10], pts=3, pts_count=2))
        _position, event = await asyncio.wait_for(first, 2)
        assert isinstance(event, DeleteEvent) and event.chat_id is None and event.message_ids == (9, 10)
        await the_source.close()

    run(scenario)


def test_without_a_watermark_the_last_messages_up_to_the_limit_oldest_first():
    client = FakeClient({NEWS_ID: [post(i) for i in range(1, 11)]})
    the_source = source(client, Watermarks(), backfill_limit=3)

    async def scenario() -> None:
        stream = the_source.events()
        assert ids(await take(stream, 3)) == [8, 9, 10]
        await the_source.caught_up.wait()
        await the_source.close()

    run(scenario)


def test_acknowledged_messages_move_the_watermark_once_per_call_and_never_over_a_hole():
    client = FakeClient({NEWS_ID: [post(i) for i in range(4, 9)]})
    watermarks = Watermarks({NEWS_ID: 3})
    the_source = source(client, watermarks)

    async def scenario() -> None:
        stream = the_source.events()
        p4, p5, p6, p7, p8 = (position for position, _event in await take(stream, 5))
        await the_source.acknowledge([p4, p5])
        assert watermarks.calls == [(NEWS_ID, 5, at(5))]  # one call for the whole batch, with the message's date
        await the_source.acknowledge([p7, p8])  # 6 is still on its way: the watermark waits for it
        assert watermarks.calls == [(NEWS_ID, 5, at(5))]
        await the_source.acknowledge([p6])
        assert watermarks.calls[-1] == (NEWS_ID, 8, at(8)) and len(watermarks.calls) == 2
        await the_source.acknowledge([])
        assert len(watermarks.calls) == 2  # nothing new, nothing written
        await the_source.close()

    run(scenario)


def test_a_live_message_acknowledged_during_the_backfill_does_not_move_the_watermark_past_the_gap():
    client = FakeClient({NEWS_ID: [post(i) for i in range(4, 9)]})
    client.gate, client.gate_after = asyncio.Event(), 5  # the history read stops after message 5 until opened
    watermarks = Watermarks({NEWS_ID: 3})
    the_source = source(client, watermarks)

    async def scenario() -> None:
        stream = the_source.events()
        p4, p5 = (position for position, _event in await take(stream, 2))
        await client.push(types.UpdateNewChannelMessage(post(20), pts=10, pts_count=1))
        ((p20, live),) = await take(stream, 1)
        assert live.key == (NEWS_ID, 20)
        await the_source.acknowledge([p4, p5, p20])
        assert watermarks.stored[NEWS_ID] == 5  # 6..19 are not read yet

        client.gate.set()
        rest = await take(stream, 3)
        assert ids(rest) == [6, 7, 8]
        await the_source.caught_up.wait()
        await the_source.acknowledge([position for position, _event in rest])
        assert watermarks.calls[-1] == (NEWS_ID, 20, at(20))  # the history met the live updates: no gap left
        await client.push(types.UpdateNewChannelMessage(post(21), pts=11, pts_count=1))
        await the_source.acknowledge([position for position, _event in await take(stream, 1)])
        assert watermarks.stored[NEWS_ID] == 21
        await the_source.close()

    run(scenario)


def test_a_failing_watermark_store_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture):
    client = FakeClient({NEWS_ID: [post(4), post(5)]})
    watermarks = Watermarks({NEWS_ID: 3}, failures=1)
    the_source = source(client, watermarks)

    async def scenario() -> None:
        stream = the_source.events()
        positions = [position for position, _event in await take(stream, 2)]
        await the_source.acknowledge(positions)  # does not raise
        assert watermarks.stored[NEWS_ID] == 3
        await the_source.acknowledge([])
        assert watermarks.calls == [(NEWS_ID, 5, at(5)), (NEWS_ID, 5, at(5))] and watermarks.stored[NEWS_ID] == 5
        await the_source.close()

    run(scenario)
    assert "could not store the watermark of chat -1001234567890" in caplog.text


def test_a_flood_wait_is_waited_out_and_the_history_resumes_after_the_last_message():
    client = FakeClient({NEWS_ID: [post(i) for i in range(1, 7)]})
    client.floods = [(2, 30)]  # Telegram answers FLOOD_WAIT_30 after two messages
    sleeps = Sleeps()
    the_source = source(client, Watermarks({NEWS_ID: 0}), sleep=sleeps)

    async def scenario() -> None:
        stream = the_source.events()
        assert ids(await take(stream, 6)) == [1, 2, 3, 4, 5, 6]
        await the_source.close()

    run(scenario)
    assert sleeps.slept == [31.0]  # as long as Telegram asked, and a second more
    assert [read["min_id"] for read in client.reads] == [0, 2]


def test_an_unmappable_message_is_reported_and_the_rest_flows():
    client = FakeClient({NEWS_ID: [post(4), types.MessageEmpty(id=5, peer_id=types.PeerChannel(NEWS)), post(6)]})
    bad: list[tuple[str, str]] = []
    watermarks = Watermarks({NEWS_ID: 3})
    the_source = source(client, watermarks, bad=bad)

    async def scenario() -> None:
        stream = the_source.events()
        backfilled = await take(stream, 2)
        assert ids(backfilled) == [4, 6]
        undated = types.Message(id=7, peer_id=types.PeerChannel(NEWS), date=None, message="?")
        await client.push(types.UpdateNewChannelMessage(undated, pts=10, pts_count=1))
        await client.push(types.UpdateNewChannelMessage(post(8), pts=11, pts_count=1))
        assert ids(await take(stream, 1)) == [8]
        await the_source.caught_up.wait()
        await the_source.acknowledge([position for position, _event in backfilled])
        assert watermarks.stored[NEWS_ID] == 6  # the empty message 5 is no hole
        await the_source.close()

    run(scenario)
    assert bad[0] == ("telegram:@news:5", "not a storable message: MessageEmpty")
    assert bad[1][0] == "telegram:update:UpdateNewChannelMessage" and "has no date" in bad[1][1]


def test_unresolvable_chats_are_named_before_anything_is_read():
    client = FakeClient()
    the_source = source(client, Watermarks(), chats=["@news", "@typo", "-1000000000555"])

    async def scenario() -> None:
        with pytest.raises(TelegramSourceError) as raised:
            await anext(the_source.events())
        message = str(raised.value)
        assert "cannot resolve 2 of the chats in source.telethon.chats" in message
        assert "'@typo'" in message and "-1000000000555" in message and "joined" in message
        assert client.reads == [] and client.handlers == []

    run(scenario)


def test_a_numeric_channel_id_is_found_in_the_dialogs():
    client = FakeClient({NEWS_ID: [], OTHER_ID: [post(1, channel=OTHER)]})
    client.in_dialogs = {OTHER_ID: types.InputPeerChannel(OTHER, 7)}
    the_source = source(client, Watermarks(), chats=["@news", str(OTHER_ID)])

    async def scenario() -> None:
        stream = the_source.events()
        ((position, event),) = await take(stream, 1)
        assert event.key == (OTHER_ID, 1) and position.chat_id == OTHER_ID
        await the_source.close()

    run(scenario)


def test_a_session_that_is_not_logged_in_says_how_to_get_one():
    client = FakeClient()
    client.authorized = False

    async def scenario() -> None:
        with pytest.raises(TelegramSourceError, match="tgstack-gateway login"):
            await anext(source(client, Watermarks()).events())

    run(scenario)


def test_close_removes_the_handler_and_disconnects():
    client = FakeClient()
    the_source = source(client, Watermarks({NEWS_ID: 0}))

    async def scenario() -> None:
        stream = the_source.events()
        task = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.01)
        assert len(client.handlers) == 1 and isinstance(client.handlers[0][1], events.Raw)
        await the_source.close()
        assert client.handlers == [] and not client.connected
        task.cancel()

    run(scenario)


def test_a_lost_connection_ends_the_events_with_an_error():
    client = FakeClient()

    async def scenario() -> None:
        stream = source(client, Watermarks({NEWS_ID: 0})).events()
        task = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.01)
        t.cast(asyncio.Future, client.disconnected).set_exception(ConnectionError("retries exhausted"))
        with pytest.raises(ConnectionError, match="lost the connection to Telegram"):
            await task

    run(scenario)


def test_a_full_queue_holds_the_update_handler_back():
    client = FakeClient()
    the_source = source(client, Watermarks({NEWS_ID: 0}), queue_size=1)

    async def scenario() -> None:
        stream = the_source.events()
        first = asyncio.create_task(anext(stream))
        await the_source.caught_up.wait()
        await client.push(types.UpdateNewChannelMessage(post(1), pts=1, pts_count=1))  # taken by `first`
        await client.push(types.UpdateNewChannelMessage(post(2), pts=2, pts_count=1))  # fills the queue
        blocked = asyncio.create_task(client.push(types.UpdateNewChannelMessage(post(3), pts=3, pts_count=1)))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # Telethon's dispatch waits until the pipeline takes more
        assert (await first)[1].key == (NEWS_ID, 1)
        assert ids(await take(stream, 1)) == [2]
        await asyncio.wait_for(blocked, 1)
        assert ids(await take(stream, 1)) == [3]
        await the_source.close()

    run(scenario)


def test_the_backfill_command_from_an_id_or_a_date_with_progress():
    client = FakeClient({NEWS_ID: [post(i) for i in range(1, 251)]})
    watermarks = Watermarks({NEWS_ID: 100})
    progress: list[tuple[int, int | None]] = []

    async def scenario() -> None:
        the_source = source(client, watermarks)
        got = [item async for item in the_source.backfill("@news", since_id=50, progress=lambda *p: progress.append(p))]
        assert ids(got)[:2] == [50, 51] and ids(got)[-1] == 250 and len(got) == 201
        assert client.reads[-1]["min_id"] == 49
        assert progress == [(100, None), (200, None), (201, None)]
        await the_source.acknowledge([position for position, _event in got])
        assert watermarks.stored[NEWS_ID] == 250  # read from below the watermark: nothing is missing

        later = source(FakeClient({NEWS_ID: [post(i) for i in range(1, 400)]}), watermarks)
        since = DATE + dt.timedelta(minutes=300)
        dated = [item async for item in later.backfill("@news", since_date=since)]
        assert ids(dated)[0] == 300 and later.client.reads[0]["offset_date"] == since
        await later.acknowledge([position for position, _event in dated])
        assert watermarks.stored[NEWS_ID] == 250  # 251..299 were not read: the watermark stays

    run(scenario)


def test_the_backfill_source_runs_the_command_through_the_source_interface():
    client = FakeClient({NEWS_ID: [post(i) for i in range(1, 4)]})

    async def scenario() -> None:
        backfill = BackfillSource(client, "@news", since_id=2)
        assert [event.key for _position, event in [item async for item in backfill.events()]] == [
            (NEWS_ID, 2),
            (NEWS_ID, 3),
        ]
        await backfill.close()
        assert not client.connected

    run(scenario)


class FakeLoginClient:
    def __init__(self, session: StringSession, api_id: int, api_hash: str) -> None:
        self.session, self.api_id, self.api_hash = session, api_id, api_hash
        self.answers: dict[str, t.Any] = {}
        self.disconnected = False

    async def start(self, phone: t.Any = None, password: t.Any = None, *, bot_token: str | None = None,
                    code_callback: t.Any = None) -> FakeLoginClient:  # fmt: skip
        if bot_token is None:  # Telethon asks for what it needs, in this order
            self.answers = {"phone": phone() if callable(phone) else phone, "code": code_callback(),
                            "password": password()}  # fmt: skip
        else:
            self.answers = {"bot_token": bot_token}
        self.session.set_dc(2, "149.154.167.51", 443)
        self.session.auth_key = AuthKey(bytes(range(256)))
        return self

    async def get_me(self) -> types.User:
        return types.User(id=777, first_name="Gateway")

    async def disconnect(self) -> None:
        self.disconnected = True


def test_login_with_a_phone_returns_the_session_string():
    clients: list[FakeLoginClient] = []
    asked: list[str] = []
    printed: list[str] = []

    def factory(*args: t.Any) -> FakeLoginClient:
        clients.append(FakeLoginClient(*args))
        return clients[-1]

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return "+4915112345678" if "Phone" in prompt else "12345"

    session = asyncio.run(login(12345, "hash", input_fn=answer, print_fn=printed.append,
                                password_fn=lambda prompt: "secret", client_factory=factory))  # fmt: skip
    (client,) = clients
    assert (client.api_id, client.api_hash) == (12345, "hash")
    assert client.answers == {"phone": "+4915112345678", "code": "12345", "password": "secret"}
    restored = StringSession(session)
    assert (restored.dc_id, restored.server_address, restored.port) == (2, "149.154.167.51", 443)
    assert restored.auth_key.key == bytes(range(256))
    assert client.disconnected and printed == ["Logged in as Gateway (id 777)."]


def test_login_with_a_bot_token():
    clients: list[FakeLoginClient] = []

    def factory(*args: t.Any) -> FakeLoginClient:
        clients.append(FakeLoginClient(*args))
        return clients[-1]

    session = asyncio.run(login(1, "hash", bot_token="1:abc", print_fn=lambda line: None, client_factory=factory))
    assert clients[0].answers == {"bot_token": "1:abc"} and StringSession(session).dc_id == 2
    with pytest.raises(ValueError, match="not both"):
        asyncio.run(login(1, "hash", phone="+1", bot_token="1:abc", client_factory=factory))


def test_make_client_takes_the_secrets_and_leaves_flood_waits_to_the_source():
    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    secrets = {"TGSTACK_TELEGRAM_API_ID": "12345", "TGSTACK_TELEGRAM_API_HASH": "abc",
               "TGSTACK_TELEGRAM_SESSION": session.save()}  # fmt: skip

    class Config:
        pass

    config = Config()
    config.secrets = secrets  # type: ignore[attr-defined]

    async def build() -> t.Any:  # Telethon binds a client to the running event loop
        return make_client(config)

    client = asyncio.run(build())
    assert client.api_id == 12345 and client.api_hash == "abc"
    assert client.flood_sleep_threshold == 0
    assert client.session.dc_id == 2 and client.session.auth_key.key == bytes(range(256))


def test_positions_of_messages_name_their_chat_and_message():
    client = FakeClient({NEWS_ID: [post(4)]})

    async def scenario() -> None:
        the_source = source(client, Watermarks({NEWS_ID: 3}))
        ((position, event),) = await take(the_source.events(), 1)
        assert position == Position(NEWS_ID, 4, at(4)) and isinstance(event, MessageEvent)
        await the_source.close()

    run(scenario)
