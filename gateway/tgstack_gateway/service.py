"""Running the gateway: backends and source from the configuration, systemd notifications, JSON logs.

- ``run_pipeline()`` builds everything from a Config, starts the metrics endpoint, runs the pipeline
  until the source ends or SIGTERM/SIGINT arrives (then drains and flushes), and returns the totals.
- Under systemd (``Type=notify``): READY=1 once the pipeline runs (backends connect lazily and are
  retried, so a database that is still starting does not fail the start), WATCHDOG=1 from the event
  loop every half ``WatchdogSec`` (a stuck loop stops the pings and systemd restarts the service), a
  STATUS= line with the counters, STOPPING=1 on SIGTERM.
- Logs are one JSON object per line on stderr (journald keeps them; ``journalctl -o cat`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
import typing as t

from tgstack_gateway.backends import Cache, Publisher, Store, Unavailable
from tgstack_gateway.config import Config, ConfigError
from tgstack_gateway.lock import LeaseLost, SessionLease
from tgstack_gateway.metrics import Metrics
from tgstack_gateway.pipeline import Pipeline, Totals
from tgstack_gateway.sources import ReplaySource, Source, SyntheticSource
from tgstack_gateway.spool import Spool

log = logging.getLogger("tgstack_gateway")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, t.Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aio_pika", "aiormq", "telethon"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def notify(state: str) -> None:
    """sd_notify(3): python3-systemd when installed, else the datagram it would send."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    try:
        from systemd import daemon  # python3-systemd

        daemon.notify(state)
        return
    except ImportError:
        pass
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.connect(address)
        sender.sendall(state.encode())


def watchdog_interval() -> float | None:
    """Half of WatchdogSec when systemd asked for pings (WATCHDOG_USEC for this process)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6


def status_line(totals: Totals, pipeline: Pipeline) -> str:
    return (f"received {totals.received}, stored {totals.stored}, published {totals.published}, "
            f"duplicates {totals.duplicates}, spool {len(pipeline.spool)} batches"
            + (" (spooling)" if pipeline.spooling else ""))  # fmt: skip


async def keep_systemd_informed(pipeline: Pipeline) -> None:
    interval = watchdog_interval()
    while True:
        notify(f"STATUS={status_line(pipeline.totals, pipeline)}" + ("\nWATCHDOG=1" if interval else ""))
        await asyncio.sleep(min(interval or 5.0, 5.0))


class StoreWatermarks:
    """The Telegram source's per-chat watermarks, kept in tgstack.chat_watermarks."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, chat_id: int) -> int | None:
        return await self.store.watermark(chat_id)

    async def set(self, chat_id: int, message_id: int, at: str | None) -> None:
        await self.store.set_watermark(chat_id, message_id, at)


def backends(config: Config) -> tuple[Store, Publisher, Cache]:
    store = Store.for_config(config)
    publisher = Publisher(config.rabbitmq_url, config.secrets["TGSTACK_RABBITMQ_PASSWORD"], config.rabbitmq_exchange,
                          config.publish_mode)  # fmt: skip
    return store, publisher, Cache(config)


def bad_record_reporter(metrics: Metrics, totals: Totals | None = None) -> t.Callable[[str, str], None]:
    def on_bad(where: str, reason: str) -> None:
        metrics.bad(reason)
        if totals is not None:
            totals.bad_records += 1
        log.warning("skipped a bad record: %s", reason, extra={"fields": {"where": where}})

    return on_bad


async def make_source(config: Config, on_bad: t.Callable[[str, str], None], store: Store,
                      replay_path: str | None = None) -> Source:  # fmt: skip
    if replay_path is not None or config.source == "replay":
        return ReplaySource(replay_path or t.cast(str, config.replay_path), on_bad)
    if config.source == "synthetic":
        return SyntheticSource(on_bad, rate=config.synthetic_rate, chats=config.synthetic_chats,
                               count=config.synthetic_count, seed=config.synthetic_seed,
                               first_chat=config.synthetic_first_chat)  # fmt: skip
    from tgstack_gateway.telethon_source import TelethonSource, make_client

    client = make_client(config)
    return TelethonSource(client, list(config.chats), on_bad, watermarks=StoreWatermarks(store), log=log)


def start_metrics(config: Config, metrics: Metrics) -> None:
    from prometheus_client import start_http_server

    host, port = config.metrics_listen.rsplit(":", 1)
    try:
        start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=metrics.registry)
    except (OSError, ValueError) as error:  # a restart would not help: a configuration error (exit 2)
        raise ConfigError([f"metrics.listen {config.metrics_listen}: cannot serve metrics there ({error}): "
                           "use a free port on an address of this host"]) from None  # fmt: skip


async def check_schema(store: Store) -> None:
    """A database that cannot take the batches (schema older than the gateway, rights missing) is an error of
    the deployment, reported at start (exit 2, no restart loop); a database that is down is not: batches
    wait and spool until it is back."""
    try:
        await store.ping()
    except Unavailable as error:
        log.warning("%s: starting anyway; batches are retried, then spooled, until it is back", error)
    except PermissionError as error:
        raise ConfigError([f"postgres: {error}"]) from None


async def take_lease(config: Config, cache: Cache, wait: bool) -> SessionLease:
    """The Telegram session's lease (lock.py): a standby service waits for it, a command fails at once."""
    lease = SessionLease(cache.client, config.secrets["TGSTACK_TELEGRAM_SESSION"])
    if not wait and not await lease.try_acquire():
        holder = await cache.client.get(lease.key)
        raise LeaseLost(f"the Telegram session is in use by {holder!r} (one process per session, or Telegram "
                        "revokes it): stop that gateway first, e.g. systemctl stop tgstack-gateway")  # fmt: skip

    def waiting(holder: str) -> None:
        notify(f"STATUS=standby: the Telegram session is in use by {holder}")

    await lease.acquire(waiting)
    return lease


async def run_pipeline(config: Config, *, replay_path: str | None = None, metrics: Metrics | None = None,
                       serve_metrics: bool = True, latency_samples: list[float] | None = None,
                       source: Source | None = None, lease_wait: bool = True) -> Totals:  # fmt: skip
    metrics = metrics or Metrics()
    if serve_metrics:
        start_metrics(config, metrics)
    store, publisher, cache = backends(config)
    await check_schema(store)
    lease = None
    if config.source == "telethon" and replay_path is None:
        notify("READY=1")  # a standby waits for the lease as a running service, not as a start that times out
        lease = await take_lease(config, cache, lease_wait)
    bad = Totals()
    source = source or await make_source(config, bad_record_reporter(metrics, bad), store, replay_path)
    pipeline = Pipeline(source, store, publisher, cache, Spool(config.spool_dir, config.spool_max_bytes), metrics,
                        batch_size=config.batch_size, batch_delay=config.batch_delay_ms / 1000,
                        queue_size=config.queue_size, retry_budget=config.retry_budget_seconds,
                        latency_samples=latency_samples)  # fmt: skip
    loop = asyncio.get_running_loop()

    def stop(name: str) -> None:
        log.info("%s: stopping: no more reading; what was read is stored, published or spooled", name)
        notify("STOPPING=1")
        pipeline.stop()

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop, signal.Signals(number).name)
    informer = asyncio.create_task(keep_systemd_informed(pipeline))
    lost: list[LeaseLost] = []

    def lease_lost(error: LeaseLost) -> None:
        lost.append(error)
        stop("lease lost")

    keeper = asyncio.create_task(lease.keep(lease_lost)) if lease is not None else None
    fields = {"source": source.name, "publish": config.publish_mode, "batch_size": config.batch_size,
              "spooled_batches": len(pipeline.spool)}  # fmt: skip
    log.info("running", extra={"fields": fields})
    notify("READY=1")
    try:
        totals = await pipeline.run()
        totals.bad_records = bad.bad_records
    finally:
        informer.cancel()
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(Exception):
                await t.cast(SessionLease, lease).release()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)
        await source.close()
        for backend in (store, publisher, cache):
            await backend.close()
    log.info("stopped: %s", status_line(totals, pipeline), extra={"fields": {"totals": vars(totals)}})
    if lost:
        raise lost[0]
    return totals


async def check_backends(config: Config) -> list[tuple[str, bool, str]]:
    """(backend, reachable, detail) for PostgreSQL (through PgBouncer), RabbitMQ and Redis."""
    results = []
    for backend in backends(config):
        try:
            detail = await asyncio.wait_for(backend.ping(), 20)
            results.append((backend.name, True, detail))
        except (Unavailable, PermissionError, TimeoutError) as error:
            results.append((backend.name, False, str(error) or type(error).__name__))
        except Exception as error:  # check reports every failure, whatever its kind
            results.append((backend.name, False, f"{type(error).__name__}: {error}"))
        finally:
            await backend.close()
    return results
