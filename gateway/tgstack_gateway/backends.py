"""The three backends a batch goes through: TimescaleDB (through PgBouncer), RabbitMQ and Redis.

Each backend connects lazily, reconnects after a failure, and turns its library's connection errors
into ``Unavailable`` (naming the backend and the cause), which the pipeline retries with backoff and,
after its budget, answers by spooling the batch. Any other exception is a bug and is not retried.

- ``Store``: psycopg 3 (Debian's python3-psycopg) to PgBouncer in transaction pooling mode, so no
  server-side prepared statements (``prepare_threshold=None``) and nothing kept between transactions.
  One transaction per batch: its messages go as COPY text into the staging table of
  ``tgstack.stage_messages()`` and are written by ``tgstack.upsert_staged_messages()`` (schema script
  008: no jsonb document to parse), then one statement marks its deletions
  (``tgstack.mark_messages_deleted`` per chat and deletion time).
- ``Publisher``: aio-pika with publisher confirms. Per-message mode publishes every message of the
  batch at once and waits for all confirms; batch mode publishes one message carrying the batch.
- ``Cache``: redis-py's asyncio client, through Sentinel (``master_for`` follows a failover: a
  connection to a demoted master is dropped and the new master asked for) or one Redis URL.
  Per chat: the recent messages in a sorted set scored by message id (``tgstack:recent:<chat>``), the
  chat's last message in a hash (``tgstack:chat:<chat>``), and a dedup key per message version with its
  own TTL, as fields of ``tgstack:seen:<chat>``, written only after the batch was stored and published
  (so a crash in between costs a duplicate, never a message).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import re
import typing as t
import urllib.parse

from tgstack_gateway import outgoing
from tgstack_gateway.config import Config
from tgstack_gateway.events import DeleteEvent

JSON_SEPARATORS = (",", ":")


class Unavailable(Exception):
    """A backend cannot take the call now (down, restarting, failing over); worth retrying."""

    def __init__(self, backend: str, cause: BaseException | str) -> None:
        self.backend = backend
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {str(cause).strip() or 'no detail'}"
        super().__init__(f"{backend} unavailable: {text.splitlines()[0] if text else text}")


@dataclasses.dataclass
class Stored:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    deleted: int = 0
    # (chat, message) of the batch's edits whose message is marked deleted: kept out of the recent cache
    deleted_keys: set[tuple[int, int]] = dataclasses.field(default_factory=set)


def dumps(value: t.Any) -> str:
    return json.dumps(value, separators=JSON_SEPARATORS, ensure_ascii=False, default=str)


# The columns of the staging table (008_staged_upserts.sql), in the order COPY sends them.
STAGED_COLUMNS = ("chat_id", "message_id", "created_at", "sender_id", "text", "reply_to_message_id", "thread_id",
                  "forward_from_id", "forward_from_name", "forward_message_id", "forward_date", "media_type",
                  "media_file_id", "media_size", "media_mime", "media_width", "media_height", "media_duration",
                  "media_meta", "edited_at", "raw", "received_at")  # fmt: skip
COPY_STAGED = f"COPY pg_temp.tgstack_staged_messages ({', '.join(STAGED_COLUMNS)}) FROM STDIN"
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# a NUL in a JSON string (\u0000, not preceded by an escaping backslash): jsonb cannot hold it
JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")

# Edits of the batch whose message is marked deleted (they stay out of the recent cache).
DELETED_AMONG_STAGED = """
SELECT m.chat_id, m.message_id
FROM pg_temp.tgstack_staged_messages s
JOIN tgstack.messages m ON m.chat_id = s.chat_id AND m.message_id = s.message_id AND m.created_at = s.created_at
WHERE s.edited_at IS NOT NULL AND m.deleted_at IS NOT NULL
"""

# A batch's deletions in one statement: one mark_messages_deleted call per chat and deletion time, in
# the order the events came.
MARK_DELETED = """
SELECT coalesce(sum(d.marked), 0)::integer
FROM (
    SELECT e.chat_id, array_agg(e.message_id ORDER BY e.n) AS ids, e.deleted_at, min(e.n) AS first
    FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) WITH ORDINALITY AS e (chat_id, message_id, deleted_at, n)
    GROUP BY e.chat_id, e.deleted_at
    ORDER BY first
) g
CROSS JOIN LATERAL tgstack.mark_messages_deleted(g.chat_id, g.ids, g.deleted_at) d
"""


def copy_value(value: t.Any) -> str:
    """VALUE as a field of COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES) if ("\\" in value or "\t" in value or "\n" in value
                                                 or "\r" in value) else value  # fmt: skip
    if isinstance(value, dict):
        text = dumps(value)
        if "\\u0000" in text:  # jsonb refuses it; the replacement character keeps the rest of the object
            text = JSON_NUL.sub(r"\1\\ufffd", text)
        return copy_value(text)
    return str(value)


def copy_text(rows: t.Sequence[dict[str, t.Any]]) -> str:
    """ROWS as COPY text for the staging table, one line each."""
    return "".join("\t".join([copy_value(row.get(column)) for column in STAGED_COLUMNS]) + "\n" for row in rows)


class Store:
    """Writes batches to tgstack.messages through PgBouncer, one transaction per batch and connection.

    With more than one connection (``lanes``), a batch's chats are shared out among them and written at
    once, each part in a transaction of its own: a chat always takes the same lane, so its messages and
    their deletions stay in order, and the database works on more than one core. Deletions without a
    chat (private chats, basic groups) follow once every lane has written. A part that fails fails the
    batch, which the pipeline writes again: every write is idempotent.
    """

    name = "postgres"

    def __init__(self, dsn: str, password: str, timeout: float = 30.0, lanes: int = 1) -> None:
        self.dsn = dsn
        self.password = password
        self.timeout = timeout
        self.lanes = max(1, lanes)
        self.connections: list[t.Any] = [None] * self.lanes

    @classmethod
    def for_config(cls, config: Config) -> Store:
        """The store the settings describe (postgres.dsn, postgres.connections, the password secret)."""
        return cls(config.postgres_dsn, config.secrets["TGSTACK_POSTGRES_PASSWORD"], lanes=config.postgres_connections)

    async def connect(self, lane: int = 0) -> t.Any:
        import psycopg

        connection = self.connections[lane]
        if connection is None or connection.closed:
            try:
                connection = self.connections[lane] = await asyncio.wait_for(
                    psycopg.AsyncConnection.connect(
                        self.dsn, password=self.password, prepare_threshold=None, connect_timeout=10,
                        application_name="tgstack-gateway", autocommit=True, cursor_factory=psycopg.AsyncClientCursor,
                    ),
                    self.timeout,
                )  # fmt: skip
            except (psycopg.OperationalError, OSError, TimeoutError) as error:
                raise Unavailable(self.name, error) from error
        return connection

    async def drop(self, lane: int | None = None) -> None:
        for number in range(self.lanes) if lane is None else (lane,):
            connection, self.connections[number] = self.connections[number], None
            if connection is not None:
                with contextlib.suppress(Exception):  # the connection is broken already; closing is best effort
                    await connection.close()

    async def call(self, work: t.Callable[[t.Any], t.Awaitable[t.Any]], lane: int = 0) -> t.Any:
        """WORK(connection); a broken connection is dropped and reported as Unavailable.

        The connections are in autocommit mode: a statement is a transaction of its own, and ``write``
        opens and commits its transaction itself, in the same round trips as its statements. Whatever fails
        in WORK leaves no transaction open (PgBouncer would keep its server connection for this client).
        """
        import psycopg

        connection = await self.connect(lane)
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    return await work(connection)
                except psycopg.Error as error:
                    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                        raise
                    await connection.execute("ROLLBACK")  # an SQL error: the connection is fine
                    raise
        except (psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError) as error:
            await self.drop(lane)
            raise Unavailable(self.name, error) from error
        except BaseException:  # a bug or a cancellation, maybe in the middle of a statement
            await self.drop(lane)
            raise

    async def store(self, rows: t.Sequence[dict[str, t.Any]], deletions: t.Sequence[DeleteEvent]) -> Stored:
        """ROWS and DELETIONS of one batch; with several lanes, each lane's chats in a transaction of its own."""
        if self.lanes == 1:
            return await self.call(lambda connection: self.write(connection, rows, deletions))
        parts: list[tuple[list[dict[str, t.Any]], list[DeleteEvent]]] = [([], []) for _lane in range(self.lanes)]
        for row in rows:
            parts[row["chat_id"] % self.lanes][0].append(row)
        chatless = []
        for deletion in deletions:
            if deletion.chat_id is None:
                chatless.append(deletion)
            else:
                parts[deletion.chat_id % self.lanes][1].append(deletion)
        busy = [(lane, part) for lane, part in enumerate(parts) if part[0] or part[1]]

        def writer(part: tuple[list[dict[str, t.Any]], list[DeleteEvent]]) -> t.Callable[[t.Any], t.Awaitable[Stored]]:
            return lambda connection: self.write(connection, *part)

        answers = await asyncio.gather(*(self.call(writer(part), lane) for lane, part in busy), return_exceptions=True)
        failures = [answer for answer in answers if isinstance(answer, BaseException)]
        if failures:  # a bug before an outage: only an outage is worth retrying
            raise next((error for error in failures if not isinstance(error, Unavailable)), failures[0])
        if chatless:
            answers.append(await self.call(lambda connection: self.write(connection, [], chatless)))
        result = Stored()
        for part in t.cast(list[Stored], answers):
            result.inserted += part.inserted
            result.updated += part.updated
            result.unchanged += part.unchanged
            result.duplicates += part.duplicates
            result.deleted += part.deleted
            result.deleted_keys |= part.deleted_keys
        return result

    async def write(self, connection: t.Any, rows: t.Sequence[dict[str, t.Any]],
                    deletions: t.Sequence[DeleteEvent]) -> Stored:  # fmt: skip
        """ROWS staged with COPY and upserted, then DELETIONS marked, in one transaction on CONNECTION.

        Four round trips a batch, not one per statement: BEGIN with the staging; COPY (two); the upsert,
        the edits of deleted messages, the deletions and COMMIT as one query (client-side binding).
        """
        result = Stored()
        async with connection.cursor() as cursor:
            await cursor.execute("BEGIN; SELECT tgstack.stage_messages()" if rows else "BEGIN")
            statements, params = [], []
            if rows:
                async with cursor.copy(COPY_STAGED) as copy:
                    await copy.write(copy_text(rows))
                statements.append("SELECT * FROM tgstack.upsert_staged_messages()")
            edits = rows and any(row.get("edited_at") for row in rows)
            if edits:  # an edit of a deleted message stays deleted
                statements.append(DELETED_AMONG_STAGED)
            if deletions:
                events = [(deletion.chat_id, message, deletion.deleted_at or utcnow())
                          for deletion in deletions for message in deletion.message_ids]  # fmt: skip
                statements.append(MARK_DELETED)
                params.extend(list(column) for column in zip(*events, strict=True))
            await cursor.execute("; ".join([*statements, "COMMIT"]), params or None)
            if rows:
                result.inserted, result.updated, result.unchanged, result.duplicates = await cursor.fetchone()
                cursor.nextset()
            if edits:
                result.deleted_keys = {tuple(key) for key in await cursor.fetchall()}
                cursor.nextset()
            if deletions:
                result.deleted = (await cursor.fetchone())[0]
        return result

    async def watermark(self, chat_id: int) -> int | None:
        async def work(connection: t.Any) -> int | None:
            cursor = await connection.execute(
                "SELECT last_message_id FROM tgstack.chat_watermarks WHERE chat_id = %s", [chat_id]
            )
            found = await cursor.fetchone()
            return found[0] if found else None

        return await self.call(work)

    async def set_watermark(self, chat_id: int, message_id: int, at: str | None) -> None:
        async def work(connection: t.Any) -> None:
            await connection.execute("SELECT tgstack.set_chat_watermark(%s, %s, %s::timestamptz)",
                                     [chat_id, message_id, at])  # fmt: skip

        await self.call(work)

    async def ping(self) -> str:
        async def work(connection: t.Any) -> str:
            cursor = await connection.execute(
                "SELECT to_regprocedure('tgstack.upsert_staged_messages()') IS NOT NULL, current_user"
            )
            staged, user = await cursor.fetchone()
            if not staged:
                raise PermissionError("the database has no tgstack.upsert_staged_messages(): its schema predates "
                                      "this gateway; apply the schema scripts (roles/timescaledb, up to "
                                      "008_staged_upserts.sql)")  # fmt: skip
            cursor = await connection.execute(
                "SELECT has_function_privilege('tgstack.upsert_staged_messages()', 'EXECUTE'), "
                "has_table_privilege('tgstack.messages', 'INSERT'), "
                "has_database_privilege(current_database(), 'TEMPORARY')"
            )
            can_call, can_insert, can_stage = await cursor.fetchone()
            if not (can_call and can_insert):
                raise PermissionError(f"the database role {user} may not write tgstack.messages: grant it "
                                      "(roles/timescaledb: timescaledb_schema_writers)")  # fmt: skip
            if not can_stage:
                raise PermissionError(f"the database role {user} may not create temporary tables, where batches "
                                      "are staged: GRANT TEMPORARY ON DATABASE to it")  # fmt: skip
            return f"PostgreSQL as {user}"

        return await self.call(work)

    async def close(self) -> None:
        await self.drop()


def frames_at_once(channel: t.Any) -> bool:
    """Whether CHANNEL (aiormq's) has what Publisher.publish_at_once uses: aiormq 6.8 (Debian 13's) does."""
    needed = ("lock", "delivery_tag", "confirmations", "write_queue", "create_future", "_split_body", "number")
    return all(hasattr(channel, name) for name in needed)


def cached(row: dict[str, t.Any]) -> str:
    """A message as the recent cache keeps it: the public columns, without the receipt time, so that a
    duplicate received later is the same member of the sorted set."""
    return dumps({key: value for key, value in outgoing.public(row).items() if key != "received_at"})


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Publisher:
    """Publishes stored messages to the exchange with publisher confirms."""

    name = "rabbitmq"

    def __init__(self, url: str, password: str, exchange: str, mode: str = "message", timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        user = urllib.parse.quote(parts.username or "", safe="")
        netloc = f"{user}:{urllib.parse.quote(password, safe='')}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        self.where = f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"
        self.exchange_name = exchange
        self.mode = mode
        self.timeout = timeout
        self.connection: t.Any = None
        self.channel: t.Any = None
        self.sequence = 0

    def errors(self) -> tuple[type[BaseException], ...]:
        import aio_pika.exceptions

        # ChannelInvalidStateError (a RuntimeError): publishing on a channel the broker has closed
        return (aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError, ConnectionError, OSError,
                TimeoutError)  # fmt: skip

    async def connect(self) -> t.Any:
        import aio_pika

        if self.channel is None or self.connection is None or self.connection.is_closed or self.channel.is_closed:
            await self.drop()
            try:
                async with asyncio.timeout(self.timeout):
                    self.connection = await aio_pika.connect(self.url, timeout=10, client_properties={
                        "connection_name": "tgstack-gateway"})  # fmt: skip
                    channel = await self.connection.channel(publisher_confirms=True)
                    # aiormq's channel under aio-pika's: publishing through it skips building an aio-pika
                    # Message per message, a third of the client's work at thousands of messages a second
                    self.channel = await channel.get_underlay_channel()
            except self.errors() as error:
                await self.drop()
                raise Unavailable(self.name, error) from error
        return self.channel

    async def drop(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken; closing is best effort
                await connection.close()

    async def publish(self, rows: t.Sequence[dict[str, t.Any]]) -> int:
        """Publish ROWS (as messages, or as one batch) and wait for every confirm; the number confirmed.

        The exchange is not declared: the gateway's user may only write to it (the rabbitmq role declares
        it), and a missing exchange shows on the first publish as NOT_FOUND, which closes the channel.
        """
        from pamqp.commands import Basic

        if not rows:
            return 0
        channel = await self.connect()
        if self.mode == "batch":
            self.sequence += 1
            items = [outgoing.batch(rows, self.sequence)]
        else:
            items = [outgoing.message(row) for row in rows]
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        messages = [(item, Basic.Properties(content_type=outgoing.CONTENT_TYPE, delivery_mode=2,
                                            message_id=item.message_id, headers=item.headers or None, timestamp=now,
                                            app_id="tgstack-gateway")) for item in items]  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout):
                if frames_at_once(channel):
                    await self.publish_at_once(channel, messages)
                else:
                    await asyncio.gather(*(
                        channel.basic_publish(item.body, exchange=self.exchange_name, routing_key=item.routing_key,
                                              properties=properties)
                        for item, properties in messages
                    ))  # fmt: skip
        except self.errors() as error:
            await self.drop()
            raise Unavailable(self.name, error) from error
        return len(rows)

    async def publish_at_once(self, channel: t.Any, messages: list[tuple[outgoing.Outgoing, t.Any]]) -> None:
        """A batch's frames in one write, then every confirm: what ``basic_publish`` does per message (a
        delivery tag and a confirmation future each, in order, under the channel's lock), without its task,
        lock and write-queue drain per message, which were most of the client's CPU per confirmed message
        (bench/gateway_throughput.py's profile). Uses aiormq 6.8's channel internals: frames_at_once()
        checks that they are there, else the pipeline publishes message by message."""
        from aiormq.abc import ChannelFrame
        from aiormq.exceptions import DeliveryError
        from pamqp.commands import Basic
        from pamqp.header import ContentHeader

        frames: list[t.Any] = []
        confirmations = []
        async with channel.lock:
            for item, properties in messages:
                channel.delivery_tag += 1
                confirmation = channel.create_future()
                channel.confirmations[channel.delivery_tag] = confirmation
                confirmations.append(confirmation)
                frames.append(Basic.Publish(exchange=self.exchange_name, routing_key=item.routing_key))
                frames.append(ContentHeader(properties=properties, body_size=len(item.body)))
                frames.extend(channel._split_body(item.body))  # frames over the broker's frame size
            written = channel.create_future()
            await channel.write_queue.put(ChannelFrame.marshall(channel_number=channel.number, frames=frames,
                                                                drain_future=written))  # fmt: skip
            await written
        for answer in await asyncio.gather(*confirmations):
            if not isinstance(answer, Basic.Ack):
                raise DeliveryError(None, answer)

    async def ping(self) -> str:
        await self.connect()
        return f"RabbitMQ {self.where}, exchange {self.exchange_name}"

    async def close(self) -> None:
        await self.drop()


class Cache:
    """Recent messages, chat metadata and dedup keys in Redis (through Sentinel when configured)."""

    name = "redis"

    def __init__(self, config: Config, timeout: float = 5.0) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.sentinel import Sentinel

        password = config.secrets.get("TGSTACK_REDIS_PASSWORD")
        self.recent_per_chat = config.recent_per_chat
        self.dedup_ttl = config.dedup_ttl_seconds
        self.timeout = timeout
        if config.redis_sentinels:
            self.sentinel = Sentinel(
                list(config.redis_sentinels),
                sentinel_kwargs={"password": config.secrets.get("TGSTACK_SENTINEL_PASSWORD"),
                                 "socket_timeout": timeout, "socket_connect_timeout": timeout},
                socket_timeout=timeout, socket_connect_timeout=timeout,
            )  # fmt: skip
            self.client = self.sentinel.master_for(config.redis_master_name, username=config.redis_username,
                                                   password=password, socket_timeout=timeout)  # fmt: skip
            self.where = f"master {config.redis_master_name} through {len(config.redis_sentinels)} Sentinels"
        else:
            self.client = Redis.from_url(t.cast(str, config.redis_url), username=config.redis_username,
                                         password=password, socket_timeout=timeout,
                                         socket_connect_timeout=timeout)  # fmt: skip
            self.where = "Redis " + urllib.parse.urlsplit(t.cast(str, config.redis_url)).netloc.rpartition("@")[2]

    async def guarded(self, work: t.Awaitable[t.Any]) -> t.Any:
        import redis.exceptions

        try:
            async with asyncio.timeout(self.timeout * 2):
                return await work
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError,
                redis.exceptions.BusyLoadingError, OSError, TimeoutError) as error:  # fmt: skip
            raise Unavailable(self.name, error) from error

    @staticmethod
    def by_chat(rows: t.Sequence[dict[str, t.Any]]) -> dict[int, list[dict[str, t.Any]]]:
        chats: dict[int, list[dict[str, t.Any]]] = {}
        for row in rows:
            chats.setdefault(row["chat_id"], []).append(row)
        return chats

    @staticmethod
    def dedup_field(row: dict[str, t.Any]) -> str:
        return f"{row['message_id']}:{outgoing.version(row)}"

    async def seen(self, rows: t.Sequence[dict[str, t.Any]]) -> list[bool]:
        """Whether each row was stored and published before (its dedup key exists)."""
        if not rows:
            return []
        chats = self.by_chat(rows)
        pipe = self.client.pipeline(transaction=False)
        for chat, chat_rows in chats.items():
            pipe.hmget(f"tgstack:seen:{chat}", [self.dedup_field(row) for row in chat_rows])
        answers = await self.guarded(pipe.execute())
        known = {}
        for (chat, chat_rows), values in zip(chats.items(), answers, strict=True):
            for row, value in zip(chat_rows, values, strict=True):
                known[(chat, self.dedup_field(row))] = value is not None
        return [known[(row["chat_id"], self.dedup_field(row))] for row in rows]

    async def update(self, rows: t.Sequence[dict[str, t.Any]], deletions: t.Sequence[DeleteEvent],
                     deleted: t.Collection[tuple[int, int]] = ()) -> None:  # fmt: skip
        """After a batch is stored and published: recent messages, chat metadata, then the dedup keys.

        A few commands per chat, not per message: the recent messages of a chat are one sorted set
        (score: the message id; an edit first removes the version it replaces), the dedup keys of a chat
        are the fields of one hash, each with its own TTL (HSETEX, Redis 8). DELETED: edits of messages
        marked deleted, which stay out of the recent messages.
        """
        pipe = self.client.pipeline(transaction=False)
        for chat, chat_rows in self.by_chat(rows).items():
            recent = f"tgstack:recent:{chat}"
            for row in chat_rows:
                if row.get("edited_at"):
                    pipe.zremrangebyscore(recent, row["message_id"], row["message_id"])
            alive = {cached(row): row["message_id"] for row in chat_rows if (chat, row["message_id"]) not in deleted}
            if alive:
                pipe.zadd(recent, alive)
            pipe.zremrangebyrank(recent, 0, -self.recent_per_chat - 1)
            newest = max(chat_rows, key=lambda row: row["message_id"])
            last = {"last_message_id": newest["message_id"], "last_message_at": newest["created_at"],
                    "updated_at": utcnow()}  # fmt: skip
            pipe.hset(f"tgstack:chat:{chat}", mapping=last)
            fields = [part for row in chat_rows for part in (self.dedup_field(row), 1)]
            pipe.execute_command("HSETEX", f"tgstack:seen:{chat}", "EX", self.dedup_ttl, "FIELDS", len(chat_rows),
                                 *fields)  # fmt: skip
        for deletion in deletions:
            if deletion.chat_id is not None:
                for message in deletion.message_ids:
                    pipe.zremrangebyscore(f"tgstack:recent:{deletion.chat_id}", message, message)
        await self.guarded(pipe.execute())

    async def ping(self) -> str:
        await self.guarded(self.client.ping())
        return self.where

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            await self.client.aclose()
