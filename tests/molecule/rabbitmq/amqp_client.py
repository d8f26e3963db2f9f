"""An AMQP 0-9-1 test client that runs on a RabbitMQ host: confirmed publishing, draining, permission probes.

It needs only Debian's python3 and python3-aio-pika (9.5); tests and bench/rabbitmq_publish.py copy it
to the host and run it there:

    AMQP_PASSWORD=... python3 amqp_client.py publish --url amqp://USER@HOST:5672/VHOST --exchange X \\
        --routing-key K --count N [--size 1024] [--window 256] [--deadline 120] [--confirmed-file F] [--reconnect]
        [--under-way-file F [--under-way-after 1000]]
    AMQP_PASSWORD=... python3 amqp_client.py drain --url amqp://USER@HOST:5672/VHOST --queue Q [--idle 3] \\
        [--deadline 120] [--received-file F]
    AMQP_PASSWORD=... python3 amqp_client.py probe --url amqp://USER@HOST:5672/VHOST \\
        --action {publish,declare-queue,consume,declare-exchange} --name NAME [--routing-key K]

The password comes from the environment variable AMQP_PASSWORD only (a command line shows in `ps`).
Every subcommand prints exactly one JSON object on stdout as its last line; what went wrong also goes to
stderr in words.

publish: N persistent messages (message_id = sequence number, body JSON {"seq": N, "pad": "x..."} of about
--size bytes), mandatory, with publisher confirms, up to --window unconfirmed at once. A message counts as
confirmed when the broker's ack arrives. A nack or a return (unroutable) publishes it again. With
--reconnect a lost connection or channel is reopened (every 0.5 s until the deadline) and every message
that was not confirmed is published again; without it a lost connection ends the run. Exit 0 when all N
are confirmed, 1 otherwise. --under-way-file is created once --under-way-after messages are confirmed:
a test waits for it before it disrupts the broker, instead of sleeping for a while.

drain: consumes (manual acks) until no message arrived for --idle seconds; records every sequence number
in arrival order, duplicates kept. Exit 0, or 1 when it failed or hit the deadline.

probe: one operation as the given user; a refusal by the broker is "ok": false with the broker's reply
text. Exit 0 whatever the broker answered, 2 when it could not connect or authenticate at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.parse
import uuid
from collections import deque
from pathlib import Path
from typing import Any

try:
    import aio_pika
    import aio_pika.abc
    import aiormq
    import aiormq.abc
    import aiormq.exceptions
    import pamqp.exceptions
except ImportError as missing:
    print(
        f"amqp_client: {missing}: install Debian's python3-aio-pika (apt-get install -y python3-aio-pika)",
        file=sys.stderr,
    )
    print(json.dumps({"ok": False, "error": f"python3-aio-pika is not installed ({missing})"}))
    sys.exit(2)

CONNECT_TIMEOUT = 5.0  # seconds for TCP + AMQP handshake
OPERATION_TIMEOUT = 10.0  # seconds for one broker round trip in probe / drain setup
RECONNECT_PAUSE = 0.5
RETRY_PAUSE = 0.2  # before publishing a nacked or returned message again
HEARTBEAT = 10
LOSS_GRACE = 2.0  # seconds for in-flight publishes to fail after a loss; the rest are cancelled
# Channel closures that reconnecting does not cure: refused access, missing exchange/queue, mismatches.
FATAL_CHANNEL_ERRORS = (
    aiormq.exceptions.ChannelAccessRefused,
    aiormq.exceptions.ChannelNotFoundEntity,
    aiormq.exceptions.ChannelPreconditionFailed,
    aiormq.exceptions.ChannelLockedResource,
)
# What a publish raises when its connection or channel goes away.
LOSS_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError, TimeoutError, EOFError)


class Fatal(Exception):
    """An expected failure; the message says what failed and what to do."""


class Target:
    """Where to connect: the --url without a password plus AMQP_PASSWORD."""

    def __init__(self, url: str, password: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise Fatal(f"--url {url!r}: expected amqp://USER@HOST:PORT/VHOST")
        if parts.password is not None:
            raise Fatal("--url must not contain a password (it would show in ps): set AMQP_PASSWORD instead")
        if not parts.username or not parts.hostname:
            raise Fatal(f"--url {url!r}: the user and host are missing (amqp://USER@HOST:PORT/VHOST)")
        try:
            port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        except ValueError as error:
            raise Fatal(f"--url {url!r}: {error}") from None
        self.user = urllib.parse.unquote(parts.username)
        self.vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.shown = f"{parts.scheme}://{self.user}@{parts.hostname}:{port}/{urllib.parse.quote(self.vhost, safe='')}"
        self.url = aio_pika.connection.make_url(
            host=parts.hostname,
            port=port,
            login=self.user,
            password=password,
            virtualhost=self.vhost,
            ssl=parts.scheme == "amqps",
            heartbeat=HEARTBEAT,
        )

    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> aio_pika.abc.AbstractConnection:
        """An open connection, or Fatal saying why there is none."""
        try:
            return await aio_pika.connect(self.url, timeout=timeout)
        except aiormq.exceptions.ProbableAuthenticationError as error:
            raise Fatal(
                f"{self.shown}: the broker refused the login ({describe(error)}): check the user and AMQP_PASSWORD"
            ) from None
        except (aiormq.exceptions.ConnectionClosed, pamqp.exceptions.AMQPInternalError) as error:
            raise Fatal(
                f"{self.shown}: the broker closed the connection ({describe(error)}): does vhost {self.vhost!r} "
                f"exist and may {self.user!r} use it?"
            ) from None
        except TimeoutError:
            raise Fatal(f"{self.shown}: no AMQP handshake within {timeout:.0f} s: is RabbitMQ running there?") from None
        except (aiormq.exceptions.AMQPError, OSError) as error:
            raise Fatal(
                f"{self.shown}: cannot connect ({describe(error)}): is RabbitMQ running and listening there?"
            ) from None
        except asyncio.CancelledError:
            if cancelled_by_us():
                raise
            # aiormq cancels its own handshake when the broker drops the socket (e.g. while it shuts down)
            raise Fatal(f"{self.shown}: the broker closed the connection during the handshake") from None
        except Exception as error:  # aiormq lets the handshake's odd failures through as they come
            raise Fatal(
                f"{self.shown}: the AMQP handshake failed ({type(error).__name__}: {describe(error)})"
            ) from None


def describe(error: BaseException | None) -> str:
    """The broker's reply text when there is one (e.g. ACCESS_REFUSED - ...), else the error in words."""
    if error is None:
        return "closed"
    if isinstance(error, asyncio.CancelledError):
        return "connection closed"
    args = getattr(error, "args", ())
    frames = [arg.reply_text for arg in args if getattr(arg, "reply_text", None)]  # a Connection.Close frame
    if frames:
        return frames[-1]
    texts = [arg for arg in args if isinstance(arg, str) and arg]
    if texts:
        return texts[0] if isinstance(error, aiormq.exceptions.PublishError) else texts[-1]
    codes = [str(arg) for arg in args if arg is not None]
    return f"{type(error).__name__}{': ' + ' '.join(codes) if codes else ''}"


def cancelled_by_us() -> bool:
    """Whether a CancelledError is a real cancellation of this task rather than aiormq rejecting a future
    of a closed connection with CancelledError (which it does: a pending confirm or handshake ends so)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def close_quietly(connection: aio_pika.abc.AbstractConnection | None) -> None:
    if connection is None or connection.is_closed:
        return
    try:
        await asyncio.wait_for(connection.close(), 3)
    except asyncio.CancelledError:
        if cancelled_by_us():
            raise
    except Exception:  # the connection is gone either way
        pass


def write_lines(path: str | None, values: list[Any]) -> str | None:
    """Write VALUES one a line to PATH; what went wrong, if anything."""
    if not path:
        return None
    try:
        Path(path).write_text("".join(f"{value}\n" for value in values))
    except OSError as error:
        return f"cannot write {path}: {error.strerror or error}"
    return None


# ---------------------------------------------------------------------------------------------- publish


class Session:
    """One connection's worth of publishing: the window, and why it ended."""

    def __init__(self, window: int) -> None:
        self.window = asyncio.Semaphore(window)
        self.lost = asyncio.Event()
        self.changed = asyncio.Event()
        self.in_flight = 0  # publishes started and not finished (a task's done callback runs later)
        self.reason: str | None = None
        self.fatal: str | None = None

    def lose(self, reason: str, *, fatal: bool = False) -> None:
        if self.reason is None:
            self.reason = reason
        if fatal and self.fatal is None:
            self.fatal = reason
        self.lost.set()
        self.changed.set()

    def on_close(self, _sender: object, error: BaseException | None = None, *_: object) -> None:
        self.lose(describe(error), fatal=isinstance(error, FATAL_CHANNEL_ERRORS))


class Publisher:
    def __init__(self, args: argparse.Namespace, target: Target) -> None:
        self.args = args
        self.target = target
        self.todo: deque[int] = deque(range(1, args.count + 1))
        self.confirmed: set[int] = set()
        self.unconfirmed_after_loss: set[int] = set()
        self.published = self.republished = self.nacked = self.returned = self.reconnects = 0
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.pad = "x" * max(0, args.size - len(json.dumps({"seq": args.count, "pad": ""})))

    def message(self, seq: int) -> aio_pika.Message:
        body = json.dumps({"seq": seq, "pad": self.pad}).encode()
        return aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(seq),
            content_type="application/json",
        )

    async def run(self) -> None:
        """Publish until every message is confirmed; Fatal when that cannot happen."""
        self.connection = await self.target.connect()
        while True:
            session = Session(self.args.window)
            await self.session(self.connection, session)
            await close_quietly(self.connection)
            if not self.todo:
                return
            if session.fatal:
                raise Fatal(
                    f"the broker closed the channel: {session.fatal}: check --exchange {self.args.exchange!r} and "
                    f"the user's write permission on it"
                )
            if not self.args.reconnect:
                raise Fatal(
                    f"connection lost ({session.reason}) with {len(self.todo)} of {self.args.count} messages not "
                    f"confirmed (--reconnect reconnects and publishes them again)"
                )
            print(f"amqp_client: connection lost ({session.reason}); reconnecting", file=sys.stderr, flush=True)
            self.connection = await self.reconnect()
            self.reconnects += 1

    async def reconnect(self) -> aio_pika.abc.AbstractConnection:
        """Try every RECONNECT_PAUSE s; the caller's deadline bounds it."""
        while True:
            await asyncio.sleep(RECONNECT_PAUSE)
            try:
                return await self.target.connect(timeout=2)
            except Fatal as error:
                self.last_connect_error = str(error)

    async def session(self, connection: aio_pika.abc.AbstractConnection, session: Session) -> None:
        connection.close_callbacks.add(session.on_close)
        try:
            channel = await asyncio.wait_for(
                connection.channel(publisher_confirms=True, on_return_raises=True), OPERATION_TIMEOUT
            )
        except (*LOSS_ERRORS, asyncio.CancelledError) as error:
            if isinstance(error, asyncio.CancelledError) and cancelled_by_us():
                raise
            session.lose(f"could not open a channel: {describe(error)}")
            return
        channel.close_callbacks.add(session.on_close)
        exchange = await channel.get_exchange(self.args.exchange, ensure=False)
        self.todo = deque(sorted(self.todo))
        tasks: set[asyncio.Task[None]] = set()
        while not session.lost.is_set():
            if not self.todo:
                if not session.in_flight:
                    break
                session.changed.clear()
                await session.changed.wait()
                continue
            if not await self.acquire(session):
                break
            seq = self.todo.popleft()
            session.in_flight += 1
            task = asyncio.create_task(self.publish_one(exchange, seq, session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            # The connection or channel went: the in-flight publishes fail and put their messages back in todo.
            # Not all of them: after a channel error aiormq leaves some confirms pending for ever (the broker
            # then closes the connection with CHANNEL_ERROR and the pending futures are not rejected).
            _done, pending = await asyncio.wait(set(tasks), timeout=0 if session.fatal else LOSS_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @staticmethod
    async def acquire(session: Session) -> bool:
        """A slot in the window, or False when the connection was lost while waiting for one."""
        while not session.lost.is_set():
            try:
                await asyncio.wait_for(session.window.acquire(), 0.5)
            except TimeoutError:
                continue
            if session.lost.is_set():  # the slot came from a publish that failed with the connection
                session.window.release()
                return False
            return True
        return False

    async def publish_one(self, exchange: aio_pika.abc.AbstractExchange, seq: int, session: Session) -> None:
        outcome = "lost"
        try:
            outcome = await self.attempt(exchange, seq, session)
            if outcome in ("nacked", "returned"):
                await asyncio.sleep(RETRY_PAUSE)
        finally:
            if outcome == "confirmed":
                self.confirmed.add(seq)
                if self.args.under_way_file and len(self.confirmed) == self.args.under_way_after:
                    Path(self.args.under_way_file).touch()
            else:
                self.todo.append(seq)
                if outcome == "lost":
                    self.unconfirmed_after_loss.add(seq)
            session.in_flight -= 1
            session.window.release()
            session.changed.set()

    async def attempt(self, exchange: aio_pika.abc.AbstractExchange, seq: int, session: Session) -> str:
        self.published += 1
        if seq in self.unconfirmed_after_loss:
            self.unconfirmed_after_loss.discard(seq)
            self.republished += 1
        try:
            await exchange.publish(self.message(seq), self.args.routing_key, mandatory=True)
        except aiormq.exceptions.PublishError:  # basic.return: unroutable
            self.returned += 1
            return "returned"
        except aiormq.exceptions.DeliveryError:  # basic.nack
            self.nacked += 1
            return "nacked"
        except asyncio.CancelledError:
            if cancelled_by_us():
                raise
            # aiormq rejects the pending confirms of a closed connection with CancelledError
            session.lose("connection closed")
            return "lost"
        except LOSS_ERRORS as error:
            session.lose(describe(error), fatal=isinstance(error, FATAL_CHANNEL_ERRORS))
            return "lost"
        except Exception as error:
            session.lose(f"publish failed: {type(error).__name__}: {error}", fatal=True)
            return "lost"
        return "confirmed"


async def publish(args: argparse.Namespace, target: Target) -> tuple[dict[str, Any], int]:
    publisher = Publisher(args, target)
    error: str | None = None
    started = time.monotonic()
    try:
        await asyncio.wait_for(publisher.run(), args.deadline)
    except TimeoutError:
        error = f"deadline of {args.deadline:.0f} s reached with {len(publisher.confirmed)} of {args.count} confirmed"
        if publisher.returned:
            error += f"; {publisher.returned} returned as unroutable: is a queue bound for {args.routing_key!r}?"
        if publisher.nacked:
            error += f"; {publisher.nacked} nacked by the broker: is the queue full (overflow reject-publish) or down?"
        last = getattr(publisher, "last_connect_error", None)
        if last and publisher.connection is not None and publisher.connection.is_closed:
            error += f"; last reconnect attempt: {last}"
    except Fatal as failure:
        error = str(failure)
    seconds = time.monotonic() - started
    confirmed = sorted(publisher.confirmed)
    await close_quietly(publisher.connection)
    error = write_lines(args.confirmed_file, confirmed) or error
    summary: dict[str, Any] = {
        "count": args.count,
        "confirmed": len(confirmed),
        "published": publisher.published,
        "republished": publisher.republished,
        "nacked": publisher.nacked,
        "returned": publisher.returned,
        "reconnects": publisher.reconnects,
        "seconds": round(seconds, 3),
        "rate": round(len(confirmed) / seconds, 1) if seconds > 0 else 0.0,
        "complete": len(confirmed) == args.count,
    }
    if error:
        summary["error"] = error
    return summary, 0 if summary["complete"] and not error else 1


# ------------------------------------------------------------------------------------------------ drain


def sequence_number(message: aio_pika.abc.AbstractIncomingMessage) -> int | str:
    """The message_id as a number; the body's "seq" when there is no message_id."""
    if message.message_id:
        try:
            return int(message.message_id)
        except ValueError:
            return message.message_id
    try:
        return int(json.loads(message.body)["seq"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def drain(args: argparse.Namespace, target: Target) -> tuple[dict[str, Any], int]:
    received: list[int | str] = []
    error: str | None = None
    started = time.monotonic()
    last = started
    connection = None
    try:
        connection = await target.connect()
        closed: list[str] = []
        connection.close_callbacks.add(lambda _s, exc=None, *_: closed.append(describe(exc)))
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=False), OPERATION_TIMEOUT)
        channel.close_callbacks.add(lambda _s, exc=None, *_: closed.append(describe(exc)))
        await channel.set_qos(prefetch_count=args.prefetch, timeout=OPERATION_TIMEOUT)
        queue = await channel.get_queue(args.queue, ensure=False)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal last
            received.append(sequence_number(message))
            last = time.monotonic()
            await message.ack()

        try:
            tag = await queue.consume(on_message, timeout=OPERATION_TIMEOUT)
        except aiormq.exceptions.AMQPError as refused:
            raise Fatal(f"cannot consume from queue {args.queue!r}: {describe(refused)}") from None
        last = time.monotonic()
        while not closed:
            now = time.monotonic()
            if now - last >= args.idle:
                break
            if now - started >= args.deadline:
                error = f"deadline of {args.deadline:.0f} s reached while messages were still arriving"
                break
            await asyncio.sleep(0.05)
        if closed:
            error = f"connection lost while draining: {closed[0]}"
        else:
            await asyncio.wait_for(queue.cancel(tag), OPERATION_TIMEOUT)
    except Fatal as failure:
        error = str(failure)
    except (*LOSS_ERRORS, asyncio.CancelledError) as failure:
        if isinstance(failure, asyncio.CancelledError) and cancelled_by_us():
            raise
        error = f"draining {args.queue!r} failed: {describe(failure)}"
    seconds = time.monotonic() - started
    await close_quietly(connection)
    error = write_lines(args.received_file, received) or error
    distinct = len(set(received))
    summary: dict[str, Any] = {
        "received": len(received),
        "distinct": distinct,
        "duplicates": len(received) - distinct,
        "seconds": round(seconds, 3),
    }
    if error:
        summary["error"] = error
    return summary, 1 if error else 0


# ------------------------------------------------------------------------------------------------ probe


async def probe_action(channel: aio_pika.abc.AbstractChannel, args: argparse.Namespace) -> dict[str, Any]:
    """Do the action; extra result fields; raises what the broker answered when it refused."""
    timeout = OPERATION_TIMEOUT
    if args.action == "publish":
        exchange = await channel.get_exchange(args.name, ensure=False)
        message = aio_pika.Message(
            b'{"probe": true}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=f"probe-{uuid.uuid4()}"
        )
        confirmation = await exchange.publish(message, args.routing_key, mandatory=True, timeout=timeout)
        # on_return_raises=False: a returned (unroutable) message still ends with the broker's ack
        return {"routed": not isinstance(confirmation, aiormq.abc.DeliveredMessage)}
    if args.action == "declare-queue":
        await channel.declare_queue(args.name, durable=True, timeout=timeout)
    elif args.action == "declare-exchange":
        await channel.declare_exchange(args.name, aio_pika.ExchangeType.TOPIC, durable=True, timeout=timeout)
    elif args.action == "consume":
        await channel.set_qos(prefetch_count=1, timeout=timeout)
        queue = await channel.get_queue(args.name, ensure=False)

        async def leave(_message: aio_pika.abc.AbstractIncomingMessage) -> None:
            """Neither ack nor reject: the broker requeues it when the channel closes."""

        tag = await queue.consume(leave, timeout=timeout)
        await queue.cancel(tag, timeout=timeout)
    return {}


async def probe(args: argparse.Namespace, target: Target) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {"action": args.action, "name": args.name, "ok": False, "error": None}
    try:
        connection = await target.connect()
    except Fatal as failure:
        result["error"] = f"could not connect: {failure}"
        return result, 2
    try:
        channel = await asyncio.wait_for(
            connection.channel(publisher_confirms=True, on_return_raises=False), OPERATION_TIMEOUT
        )
        result.update(await asyncio.wait_for(probe_action(channel, args), OPERATION_TIMEOUT * 2))
    except TimeoutError:
        result["error"] = f"no answer from the broker within {OPERATION_TIMEOUT:.0f} s"
    except asyncio.CancelledError:
        if cancelled_by_us():
            raise
        result["error"] = "the broker closed the connection"
    except (*LOSS_ERRORS, ValueError) as refused:
        result["error"] = describe(refused)
    else:
        result["ok"] = True
    await close_quietly(connection)
    return result, 0


# ------------------------------------------------------------------------------------------------- main


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--url", required=True, help="amqp://USER@HOST:PORT/VHOST (password: env AMQP_PASSWORD)")
        return sub

    def positive(kind: type) -> Any:
        def convert(text: str) -> Any:
            value = kind(text)
            if value <= 0:
                raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
            return value

        return convert

    sub = command("publish", "publish N persistent messages with publisher confirms")
    sub.add_argument("--exchange", required=True)
    sub.add_argument("--routing-key", required=True)
    sub.add_argument("--count", type=positive(int), required=True)
    sub.add_argument("--size", type=int, default=1024, help="body size in bytes (about; at least the JSON)")
    sub.add_argument("--window", type=positive(int), default=256, help="unconfirmed messages at most")
    sub.add_argument("--deadline", type=positive(float), default=120.0, help="seconds for the whole run")
    sub.add_argument("--confirmed-file", help="write the confirmed sequence numbers here, sorted, one a line")
    sub.add_argument("--reconnect", action="store_true", help="reconnect and republish when the connection goes")
    sub.add_argument("--under-way-file", help="create this file once --under-way-after messages are confirmed")
    sub.add_argument("--under-way-after", type=positive(int), default=1000)

    sub = command("drain", "consume a queue until it stays idle")
    sub.add_argument("--queue", required=True)
    sub.add_argument("--idle", type=positive(float), default=3.0, help="stop after this many seconds without one")
    sub.add_argument("--deadline", type=positive(float), default=120.0)
    sub.add_argument("--prefetch", type=positive(int), default=500)
    sub.add_argument("--received-file", help="write the received sequence numbers here, in arrival order")

    sub = command("probe", "try one operation; report whether the broker allowed it")
    sub.add_argument("--action", required=True, choices=["publish", "declare-queue", "consume", "declare-exchange"])
    sub.add_argument("--name", required=True, help="the exchange (publish, declare-exchange) or queue")
    sub.add_argument("--routing-key", default="probe", help="for publish")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.CRITICAL)  # aiormq logs every closed connection; the summary says it
    password = os.environ.get("AMQP_PASSWORD")
    try:
        if not password:
            raise Fatal("AMQP_PASSWORD is not set: pass the user's password in that environment variable")
        target = Target(args.url, password)
    except Fatal as failure:
        print(f"amqp_client {args.command}: {failure}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(failure)}))
        return 2
    handler = {"publish": publish, "drain": drain, "probe": probe}[args.command]
    summary, code = asyncio.run(handler(args, target))
    if summary.get("error"):
        print(f"amqp_client {args.command}: {summary['error']}", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
