"""The Telegram source: the configured chats' history since their watermarks, then their live updates.

``TelethonSource`` follows the Source interface of sources.py. On start it resolves every configured
chat (one error naming each chat it cannot resolve, before anything is read), registers a handler for
Telegram's raw updates, and backfills each chat from its watermark (tgstack.chat_watermarks: the last
message id stored without gaps). Backfilled messages and live updates flow through one bounded queue,
so a slow pipeline stops both the history reading and Telethon's update dispatch (backpressure).

Positions and watermarks: a position names a chat and a message id. Once the pipeline acknowledges a
chat's messages without a hole, the chat's watermark moves to the highest of them. While a chat's
backfill runs, messages above the last backfilled id may still be missing, so the watermark never
passes that id, whatever live message was acknowledged (the schema's ``set_chat_watermark`` explains
why the store does not move it by itself).

Flood waits (``FloodWaitError``) are waited out as long as Telegram asks (``retry.flood_wait``); a
history read resumes after the last message it gave. Telethon catches up on missed updates by itself
after a reconnect; ``backfill()`` reads one chat again from a message id or a date for what it cannot
(``BackfillSource`` wraps it as a Source for the backfill command). If Telethon gives up reconnecting,
events() ends with ConnectionError so that the service fails and systemd restarts it.

``make_client()`` builds the client from the secrets (call it inside the running event loop: Telethon
binds a client to it); ``login()`` creates the session string once, interactively.

The TelegramClient methods used (the fakes of the unit tests provide exactly these): ``connect``,
``is_user_authorized``, ``get_input_entity``, ``get_dialogs`` (only for numeric ids the session does
not know yet), ``iter_messages``, ``add_event_handler``, ``remove_event_handler``, ``catch_up``,
``disconnected`` and ``disconnect``; ``login()`` uses ``start``, ``get_me`` and ``disconnect``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import getpass
import logging
import math
import typing as t

from telethon import TelegramClient, events, utils
from telethon.errors import FloodWaitError, RPCError
from telethon.sessions import StringSession
from telethon.tl import types

from tgstack_gateway.events import DeleteEvent, Event, MessageEvent, parse_record
from tgstack_gateway.retry import flood_wait
from tgstack_gateway.sources import OnBad
from tgstack_gateway.telegram import message_row, update_events

# the raw updates that carry messages or deletions (telegram.update_events maps them)
UPDATE_TYPES = (
    types.UpdateNewMessage,
    types.UpdateNewChannelMessage,
    types.UpdateEditMessage,
    types.UpdateEditChannelMessage,
    types.UpdateDeleteMessages,
    types.UpdateDeleteChannelMessages,
)
# UnmappableMessage and BadRecord are ValueErrors; the others stand for a TL object of a shape the mapping
# does not expect: one odd message is reported and skipped, it never stops the source
MAPPING_ERRORS = (ValueError, TypeError, AttributeError, KeyError)
PROGRESS_EVERY = 100
Sleep = t.Callable[[float], t.Awaitable[None]]
Progress = t.Callable[[int, int | None], None]


class TelegramSourceError(RuntimeError):
    """A problem the operator has to fix (a chat that cannot be resolved, a session that is not logged in)."""


class Watermarks(t.Protocol):
    async def get(self, chat_id: int) -> int | None: ...

    async def set(self, chat_id: int, message_id: int, at: str | None) -> None: ...


@dataclasses.dataclass(frozen=True)
class Position:
    """Where an event came from: its chat and message (message_id None for a deletion: it moves no watermark)."""

    chat_id: int | None
    message_id: int | None
    at: str | None = None  # the message's date, stored with the watermark
    live: bool = False


@dataclasses.dataclass(frozen=True)
class Chat:
    """A configured chat, resolved: as written in the configuration, its marked id and its input peer."""

    name: str | int
    peer_id: int
    input_peer: t.Any

    @property
    def private(self) -> bool:
        """A user or basic group: Telegram reports its deletions without naming the chat."""
        return isinstance(self.input_peer, types.InputPeerUser | types.InputPeerChat)


@dataclasses.dataclass
class ChatProgress:
    """What is known about one chat's messages between reading and acknowledging them.

    ``ceiling`` is the highest id the watermark may reach: the chat's history is read up to there (the
    last backfilled id while a backfill runs, infinity once it finished); ``in_flight`` counts the ids
    handed on and not yet acknowledged; ``acked`` holds the acknowledged ids above the stored watermark.
    """

    stored: int | None
    ceiling: float = dataclasses.field(init=False)
    in_flight: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    acked: dict[int, str | None] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ceiling = float(self.stored or 0)

    def handed_on(self, message_id: int, *, read_through: bool) -> None:
        """MESSAGE_ID goes to the pipeline; READ_THROUGH: the history is read without a hole up to it."""
        self.in_flight[message_id] += 1
        if read_through:
            self.ceiling = max(self.ceiling, message_id)

    def acknowledged(self, position: Position) -> None:
        message_id = t.cast(int, position.message_id)
        if self.in_flight[message_id] > 1:
            self.in_flight[message_id] -= 1
        else:
            self.in_flight.pop(message_id, None)
        if self.stored is None or message_id > self.stored:
            self.acked[message_id] = position.at

    def next_watermark(self) -> tuple[int, str | None] | None:
        """The highest acknowledged id below every id in flight and within the history read, if it is new."""
        limit = min(self.ceiling, min(self.in_flight, default=math.inf) - 1)
        eligible = [message_id for message_id in self.acked if message_id <= limit]
        if not eligible:
            return None
        best = max(eligible)
        return best, self.acked[best]

    def stored_as(self, message_id: int) -> None:
        self.stored = message_id
        self.acked = {key: at for key, at in self.acked.items() if key > message_id}


@dataclasses.dataclass(frozen=True)
class Failure:
    """An error of a background task, handed to the reader of events() through the queue."""

    error: BaseException


class Resumable:
    """A history read that survives flood waits: after one, it is opened again after the last message it gave.

    OPEN(last, count) returns a new iterator given the last message read (None at first) and how many were read.
    """

    def __init__(self, open_after: t.Callable[[t.Any, int], t.AsyncIterator[t.Any]]) -> None:
        self.open_after = open_after
        self.iterator: t.AsyncIterator[t.Any] | None = None
        self.last: t.Any = None
        self.count = 0

    async def next(self) -> t.Any:
        """The next message, or None at the end; FloodWaitError is raised for flood_wait() to wait out."""
        if self.iterator is None:
            self.iterator = aiter(self.open_after(self.last, self.count))
        try:
            message = await anext(self.iterator)
        except StopAsyncIteration:
            return None
        except FloodWaitError:
            self.iterator = None  # Telethon's iterators cannot go on after an error: reopen after self.last
            raise
        self.last = message
        self.count += 1
        return message


def chat_key(chat: str | int) -> str | int:
    """A configured chat as Telethon takes it: numeric ids (also written as strings) as ints."""
    if isinstance(chat, str) and chat.strip().lstrip("-").isdigit():
        return int(chat.strip())
    return chat


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TelethonSource:
    """The configured chats of a Telegram account (TelegramClient CLIENT): history since the watermarks, then live."""

    name = "telethon"

    def __init__(self, client: t.Any, chats: t.Sequence[str | int], on_bad: OnBad, *, watermarks: Watermarks,
                 backfill_limit: int | None = None, log: logging.Logger | None = None, queue_size: int = 1000,
                 sleep: Sleep = asyncio.sleep) -> None:  # fmt: skip
        self.client = client
        self.chats = [chat_key(chat) for chat in chats]
        self.on_bad = on_bad
        self.watermarks = watermarks
        self.backfill_limit = backfill_limit
        self.log = log or logging.getLogger("tgstack_gateway.telethon")
        self.sleep = sleep
        self.queue: asyncio.Queue[tuple[Position, Event] | Failure] = asyncio.Queue(maxsize=queue_size)
        self.followed: dict[int, Chat] = {}
        self.progress: dict[int, ChatProgress] = {}
        self.follows_private = False
        self.caught_up = asyncio.Event()  # set once every chat's backfill has finished
        self.builder = events.Raw(types=list(UPDATE_TYPES))
        self.handler_added = False
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []

    # -- the Source interface

    async def events(self) -> t.AsyncIterator[tuple[Position, Event]]:
        await self.start()
        self.tasks = [asyncio.create_task(self.backfill_all()), asyncio.create_task(self.watch_connection())]
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, Failure):
                    raise item.error
                yield item
        finally:
            for task in self.tasks:
                task.cancel()

    async def acknowledge(self, positions: t.Sequence[t.Any]) -> None:
        for position in positions:
            if isinstance(position, Position) and position.message_id is not None:
                progress = self.progress.get(t.cast(int, position.chat_id))
                if progress is not None:
                    progress.acknowledged(position)
        for chat_id, progress in self.progress.items():
            target = progress.next_watermark()
            if target is None:
                continue
            try:
                await self.watermarks.set(chat_id, target[0], target[1])
            except Exception as error:  # the next acknowledge tries again; a restart backfills from the old one
                self.log.warning("could not store the watermark of chat %s (%s: %s); kept for the next try",
                                 chat_id, type(error).__name__, error)  # fmt: skip
                continue
            progress.stored_as(target[0])

    async def close(self) -> None:
        self.closing = True
        for task in self.tasks:
            task.cancel()
        if self.handler_added:
            self.client.remove_event_handler(self.on_update, self.builder)
            self.handler_added = False
        await self.client.disconnect()

    # -- one chat again, for the backfill command

    async def backfill(self, chat: str | int, since_id: int | None = None, since_date: dt.datetime | None = None,
                       progress: Progress | None = None) -> t.AsyncIterator[tuple[Position, Event]]:  # fmt: skip
        """CHAT's messages from message SINCE_ID on or from SINCE_DATE on (neither: after its watermark), oldest first.

        PROGRESS(done, total) is called every hundred messages and at the end (total unknown: None).
        Acknowledging these positions moves the chat's watermark only if the read started at or below it:
        otherwise the messages between the watermark and the first one read are still missing.
        """
        if since_id is not None and since_date is not None:
            raise ValueError("backfill from a message id or from a date, not both")
        await self.connect()
        (target,) = await self.resolve([chat_key(chat)])
        state = self.progress.get(target.peer_id)
        if state is None:
            state = self.progress[target.peer_id] = ChatProgress(await self.watermarks.get(target.peer_id))
        start = state.stored
        after_id = since_id - 1 if since_id is not None else start if since_date is None else None
        read_through = start is None or (after_id is not None and after_id <= start)
        done = 0
        async for message in self.history(target, after_id=after_id, since_date=since_date):
            done += 1
            read_through = read_through or message.id <= t.cast(int, start) + 1
            event = self.checked_message(message, f"telegram:{target.name}:{message.id}")
            if event is not None:
                state.handed_on(message.id, read_through=read_through)
                yield Position(target.peer_id, message.id, event.row["created_at"]), event
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, None)
        if progress is not None:
            progress(done, None)

    # -- start

    async def connect(self) -> None:
        await self.client.connect()
        if not await self.client.is_user_authorized():
            raise TelegramSourceError(
                "the Telegram session in TGSTACK_TELEGRAM_SESSION is not logged in (or was revoked): "
                "create one with `tgstack-gateway login` and put it in the vault"
            )

    async def start(self) -> None:
        await self.connect()
        for chat in await self.resolve(self.chats):
            self.followed[chat.peer_id] = chat
            self.progress[chat.peer_id] = ChatProgress(await self.watermarks.get(chat.peer_id))
        self.follows_private = any(chat.private for chat in self.followed.values())
        self.client.add_event_handler(self.on_update, self.builder)
        self.handler_added = True
        await self.client.catch_up()  # Telethon's advice: after registering the handlers

    async def resolve(self, chats: t.Sequence[str | int]) -> list[Chat]:
        """CHATS resolved; TelegramSourceError names every chat that cannot be and what to do about it."""
        resolved: dict[str | int, Chat] = {}
        problems: dict[str | int, str] = {}
        for chat in chats:
            await self.resolve_one(chat, resolved, problems)
        if any(isinstance(chat, int) for chat in problems):
            # a channel's numeric id needs its access hash, which a fresh session learns from the dialogs
            await self.flooded(self.client.get_dialogs, "loading the dialogs")
            for chat in [chat for chat in problems if isinstance(chat, int)]:
                del problems[chat]
                await self.resolve_one(chat, resolved, problems)
        if problems:
            lines = "\n".join(f"  - {chat!r}: {reason}" for chat, reason in problems.items())
            raise TelegramSourceError(
                f"cannot resolve {len(problems)} of the chats in source.telethon.chats:\n{lines}\n"
                "Check the spelling; give a @username, a t.me link or a numeric id (-100... for channels), "
                "and make sure the account has joined the chat or channel."
            )
        return [resolved[chat] for chat in chats]

    async def resolve_one(
        self, chat: str | int, resolved: dict[str | int, Chat], problems: dict[str | int, str]
    ) -> None:
        try:
            input_peer = await self.flooded(lambda: self.client.get_input_entity(chat), f"resolving {chat!r}")
            resolved[chat] = Chat(chat, utils.get_peer_id(input_peer), input_peer)
        except (ValueError, TypeError, RPCError) as error:
            problems[chat] = str(error) or type(error).__name__

    # -- reading

    async def backfill_all(self) -> None:
        try:
            for chat in self.followed.values():
                await self.backfill_chat(chat)
            self.caught_up.set()
        except Exception as error:
            await self.queue.put(Failure(error))

    async def backfill_chat(self, chat: Chat) -> None:
        progress = self.progress[chat.peer_id]
        if progress.stored is not None:
            messages = self.history(chat, after_id=progress.stored)
        elif self.backfill_limit is None:
            messages = self.history(chat, after_id=None)
        else:
            messages = self.latest(chat, self.backfill_limit)
        count = 0
        async for message in messages:
            count += 1
            event = self.checked_message(message, f"telegram:{chat.name}:{message.id}")
            if event is not None:
                progress.handed_on(message.id, read_through=True)
                await self.queue.put((Position(chat.peer_id, message.id, event.row["created_at"]), event))
        progress.ceiling = math.inf  # from here on live updates carry on where the history ends
        self.log.info("backfilled chat %s: %d messages after %s", chat.name, count, progress.stored)

    async def history(self, chat: Chat, *, after_id: int | None,
                      since_date: dt.datetime | None = None) -> t.AsyncIterator[t.Any]:  # fmt: skip
        """CHAT's messages after AFTER_ID (or from SINCE_DATE), oldest first."""

        def open_after(last: t.Any, _count: int) -> t.AsyncIterator[t.Any]:
            if last is None and since_date is not None:
                return self.client.iter_messages(chat.input_peer, offset_date=since_date, reverse=True)
            return self.client.iter_messages(chat.input_peer, min_id=last.id if last else after_id or 0, reverse=True)

        reader = Resumable(open_after)
        while (message := await self.flooded(reader.next, f"reading the history of {chat.name!r}")) is not None:
            yield message

    async def latest(self, chat: Chat, limit: int) -> t.AsyncIterator[t.Any]:
        """CHAT's LIMIT newest messages, oldest first (for a chat without a watermark)."""

        def open_after(last: t.Any, count: int) -> t.AsyncIterator[t.Any]:
            return self.client.iter_messages(chat.input_peer, limit=limit - count, offset_id=last.id if last else 0)

        reader = Resumable(open_after)
        newest_first = []
        while reader.count < limit:
            message = await self.flooded(reader.next, f"reading the latest messages of {chat.name!r}")
            if message is None:
                break
            newest_first.append(message)
        for message in reversed(newest_first):
            yield message

    async def flooded(self, operation: t.Callable[[], t.Awaitable[t.Any]], doing: str) -> t.Any:
        """OPERATION's result; Telegram's flood waits are waited out however long, never fatal."""

        def on_wait(seconds: float) -> None:
            self.log.warning("Telegram asks to wait %.0f s (flood wait) before %s", seconds, doing)

        return await flood_wait(operation, max_wait=math.inf, on_wait=on_wait, sleep=self.sleep)

    def checked_message(self, message: t.Any, where: str) -> MessageEvent | None:
        """MESSAGE as a checked event, or None after reporting it to on_bad."""
        try:
            return self.checked(MessageEvent(message_row(message, received_at=now())))
        except MAPPING_ERRORS as error:
            self.on_bad(where, str(error) or type(error).__name__)
            return None

    @staticmethod
    def checked(event: MessageEvent) -> MessageEvent:
        return t.cast(MessageEvent, parse_record(event.row))

    # -- live

    async def on_update(self, update: t.Any) -> None:
        """Telethon's handler for raw updates: the configured chats' events go to the queue (waiting while full)."""
        try:
            found = [self.checked(event) if isinstance(event, MessageEvent) else event
                     for event in update_events(update, received_at=now())]  # fmt: skip
        except MAPPING_ERRORS as error:
            self.on_bad(f"telegram:update:{type(update).__name__}", str(error) or type(error).__name__)
            return
        for event in found:
            position = self.live_position(event)
            if position is not None:
                await self.queue.put((position, event))

    def live_position(self, event: Event) -> Position | None:
        """EVENT's position, or None when it is not about a configured chat."""
        if isinstance(event, DeleteEvent):
            wanted = event.chat_id in self.followed or (event.chat_id is None and self.follows_private)
            return Position(event.chat_id, None, event.deleted_at, live=True) if wanted else None
        chat_id, message_id = event.key
        if chat_id not in self.followed:
            return None
        self.progress[chat_id].handed_on(message_id, read_through=False)
        return Position(chat_id, message_id, event.row["created_at"], live=True)

    async def watch_connection(self) -> None:
        """Ends events() with an error once Telethon gives up reconnecting, so that the service restarts."""
        reason = "disconnected"
        try:
            await self.client.disconnected
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
        if not self.closing:
            await self.queue.put(Failure(ConnectionError(f"lost the connection to Telegram ({reason})")))


class NoWatermarks:
    """Watermarks that are neither read nor kept (a backfill run without the store's)."""

    async def get(self, chat_id: int) -> int | None:
        return None

    async def set(self, chat_id: int, message_id: int, at: str | None) -> None:
        return None


class BackfillSource:
    """One chat's history from a message id or a date on, as a Source: what the backfill command runs."""

    name = "telethon"

    def __init__(self, client: t.Any, chat: str | int, *, since_id: int | None = None,
                 since_date: dt.datetime | None = None, progress: Progress | None = None,
                 on_bad: OnBad | None = None, watermarks: Watermarks | None = None,
                 log: logging.Logger | None = None, sleep: Sleep = asyncio.sleep) -> None:  # fmt: skip
        self.chat = chat
        self.since_id = since_id
        self.since_date = since_date
        self.progress = progress
        self.source = TelethonSource(client, [chat], on_bad or self.report_bad, watermarks=watermarks or NoWatermarks(),
                                     log=log, sleep=sleep)  # fmt: skip

    def report_bad(self, where: str, reason: str) -> None:
        self.source.log.warning("skipped a message that cannot be stored: %s (%s)", reason, where)

    def events(self) -> t.AsyncIterator[tuple[Position, Event]]:
        return self.source.backfill(self.chat, since_id=self.since_id, since_date=self.since_date,
                                    progress=self.progress)  # fmt: skip

    async def acknowledge(self, positions: t.Sequence[t.Any]) -> None:
        await self.source.acknowledge(positions)

    async def close(self) -> None:
        await self.source.close()


def make_client(config: t.Any) -> TelegramClient:
    """The TelegramClient of the gateway's account, from the secrets of CONFIG (config.Config)."""
    secrets = config.secrets
    return TelegramClient(
        StringSession(secrets["TGSTACK_TELEGRAM_SESSION"]),
        int(secrets["TGSTACK_TELEGRAM_API_ID"]),
        secrets["TGSTACK_TELEGRAM_API_HASH"],
        flood_sleep_threshold=0,  # every flood wait reaches the source, which waits it out and logs it
        sequential_updates=True,  # one update at a time, in order: a full queue holds the dispatch back
        connection_retries=10,
        retry_delay=3,
        auto_reconnect=True,
        request_retries=5,
        device_model="tgstack-gateway",
    )


async def login(api_id: int, api_hash: str, *, phone: str | None = None, bot_token: str | None = None,
                input_fn: t.Callable[[str], str] = input, print_fn: t.Callable[[str], None] = print,
                password_fn: t.Callable[[str], str] = getpass.getpass,
                client_factory: t.Callable[..., t.Any] = TelegramClient) -> str:  # fmt: skip
    """A new session string for the account of PHONE (asking for the code and any 2FA password) or BOT_TOKEN.

    The caller shows it once, for the vault (TGSTACK_TELEGRAM_SESSION); it grants the account: never log it.
    """
    if phone and bot_token:
        raise ValueError("log in with a phone number or a bot token, not both")
    session = StringSession()
    client = client_factory(session, api_id, api_hash)
    try:
        if bot_token:
            await client.start(bot_token=bot_token)
        else:
            await client.start(
                phone=phone or (lambda: input_fn("Phone number (international format, +...): ")),
                code_callback=lambda: input_fn("The login code Telegram sent: "),
                password=lambda: password_fn("Two-step verification password: "),
            )
        me = await client.get_me()
        print_fn(f"Logged in as {utils.get_display_name(me) or me.id} (id {me.id}).")
        return session.save()
    finally:
        await client.disconnect()
