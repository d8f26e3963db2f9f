"""The gateway's throughput and latency against its real backends, with the ceilings measured in the same run.

``tgstack-gateway bench`` (or ``python3 -m tgstack_gateway.bench``) runs, in one process and in this order:

1. **broker ceiling**: the gateway's ``Publisher`` (per-message mode) publishes synthetic rows with
   confirms, ``batch_size`` messages in flight at once as the publish stage sends them, one batch after
   the other, for ``seconds``: what the broker takes from this client with nothing else to do.
2. **database ceiling**: the gateway's ``Store`` writes synthetic rows of fresh chats (COPY into the
   staging table and ``tgstack.upsert_staged_messages()`` through PgBouncer, ``batch_size`` rows a batch
   shared among ``postgres.connections`` connections as the pipeline does), one batch after the other,
   for ``seconds``: inserts only.
3. **pipeline, per message, full speed**: the synthetic source unthrottled through the whole pipeline
   (dedup in Redis, store, publish with confirms, cache): received and published messages per second,
   and the ratio to (1).
4. **latency**: the same pipeline at ``latency_rate`` messages per second: p50/p99 from receipt to
   confirmed publish.
5. **batch mode**: the pipeline publishing one AMQP message per stored batch, full speed, for
   ``batch_seconds``: messages per second against the 20,000 target.
6. with ``profile``: run (3) again under cProfile, and group the time by stage.

Each pipeline run starts after its backends are connected, runs ``warmup`` seconds unmeasured, then
``seconds`` measured, then stops as the service does (what was read is finished). At both ends of the
measured time it reads the pipeline's counters, its own stage timers (milliseconds per batch of dedup,
store, publish, cache: the busiest stage is the bottleneck) and how the process spent the time: CPU time,
and for the event loop's thread (Linux schedstat) on a CPU, waiting for a CPU (the machine is busy) or idle
(waiting for the backends). Every phase writes to chats of its own, counting down from
``first_chat`` minus an offset taken from the clock, so a run inserts new messages and never meets another
run's; the chat ids used are in the result (``chats``) so the caller can delete the rows, and the Redis keys
of those chats are deleted at the end. Progress lines go to stderr (``bench: phase NAME start|end``); the
result is a dict of figures, ``report()`` turns it into text.

This is a load test: run it on a lab, not next to a production gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import os
import platform
import pstats
import shutil
import sys
import tempfile
import time
import typing as t

from tgstack_gateway.config import Config

BATCH_TARGET = 20_000.0  # messages/s in batch mode (issue 6)
BROKER_SHARE_TARGET = 0.90  # per-message pipeline against the bare broker
LATENCY_P99_TARGET = 0.250  # seconds, at LATENCY_TARGET_RATE
LATENCY_TARGET_RATE = 1000.0
CHAT_BLOCK = 1000  # chat ids per phase
RUN_BLOCKS = 100_000  # distinct run offsets before they repeat (one per 10 s: about 11 days)
PHASES = ("broker", "database", "pipeline", "latency", "batch", "profile")
STAGE_HISTOGRAM = "tgstack_gateway_batch_stage_seconds"  # the pipeline's own timing of each batch and stage
STAGE_TIMERS = ("dedup", "store", "publish", "cache")
STOP_LIMIT = 120.0  # seconds a stopped pipeline may take to finish what it read
# cProfile's time of a function, by where the function's code lives (first match wins)
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("publish: aio-pika, aiormq, pamqp", ("/aiormq/", "/pamqp/", "/aio_pika/")),
    ("store: psycopg", ("/psycopg/", "/psycopg_c/", "/psycopg_binary/", "/psycopg_pool/")),
    ("redis: redis-py", ("/redis/",)),
    ("json encoding", ("/json/",)),
    ("synthetic source and record parsing", ("tgstack_gateway/synthetic.py", "tgstack_gateway/sources.py",
                                             "tgstack_gateway/events.py", "/random.py", "/_strptime.py")),
    ("batching and pipeline", ("tgstack_gateway/batch.py", "tgstack_gateway/pipeline.py",
                               "tgstack_gateway/retry.py", "tgstack_gateway/spool.py")),
    ("gateway backends and outgoing messages", ("tgstack_gateway/backends.py", "tgstack_gateway/outgoing.py")),
    ("metrics: prometheus-client", ("/prometheus_client/",)),
    ("asyncio: event loop, transports, sockets", ("/asyncio/", "/selectors.py", "/socket.py", "/ssl.py")),
)  # fmt: skip
IDLE = "idle: waiting for I/O (epoll)"
OTHER = "other"


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# -- synthetic rows ----------------------------------------------------------------------------------------


def chat_ids(first_chat: int, chats: int) -> list[int]:
    """The chats of a synthetic load starting at FIRST_CHAT (SyntheticLoad counts down)."""
    return [first_chat - number for number in range(chats)]


class Rows:
    """Rows shaped as the synthetic source makes them (new messages), each call with fresh keys.

    A pool of generated rows is reused with new (chat, message id) keys, so that producing a batch costs a
    dict copy per row and the ceilings measure the backends, not the generator.
    """

    def __init__(self, first_chat: int, chats: int, seed: int, pool: int = 2000) -> None:
        from tgstack_gateway.events import MessageEvent, parse_record
        from tgstack_gateway.synthetic import Mix, SyntheticLoad

        load = SyntheticLoad(chats=chats, seed=seed, first_chat=first_chat,
                             mix=Mix(duplicates=0.0, edits=0.0, deletions=0.0))  # fmt: skip
        events = [parse_record(record) for record in load.records(pool)]
        self.pool = [event.row for event in events if isinstance(event, MessageEvent)]
        self.chats = chat_ids(first_chat, chats)
        self.next_id = dict.fromkeys(self.chats, 0)
        self.turn = 0

    def batch(self, size: int) -> list[dict[str, t.Any]]:
        rows = []
        for _number in range(size):
            template = self.pool[self.turn % len(self.pool)]
            chat = self.chats[self.turn % len(self.chats)]
            self.turn += 1
            self.next_id[chat] += 1
            rows.append({**template, "chat_id": chat, "message_id": self.next_id[chat]})
        return rows


# -- measuring ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Reading:
    """Counters at one moment of a run."""

    at: float
    cpu: float
    scheduler: tuple[float, float] | None = None
    received: int = 0
    stored: int = 0
    published: int = 0
    spooled: int = 0
    samples: int = 0
    stages: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)  # stage: (seconds, batches)


def scheduler() -> tuple[float, float] | None:
    """Seconds the event loop's thread has run on a CPU, and waited for one while runnable (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as handle:
            on_cpu, waiting, _slices = handle.read().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def reading(pipeline: t.Any = None, samples: list[float] | None = None) -> Reading:
    now = Reading(time.monotonic(), time.process_time(), scheduler())
    if pipeline is not None:
        totals = pipeline.totals
        now.received, now.stored, now.published = totals.received, totals.stored, totals.published
        now.spooled = totals.spooled_batches
        registry = pipeline.metrics.registry
        for stage in STAGE_TIMERS:
            labels = {"stage": stage}
            now.stages[stage] = (registry.get_sample_value(f"{STAGE_HISTOGRAM}_sum", labels) or 0.0,
                                 registry.get_sample_value(f"{STAGE_HISTOGRAM}_count", labels) or 0.0)  # fmt: skip
    now.samples = len(samples) if samples is not None else 0
    return now


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def process_use(start: Reading, end: Reading) -> dict[str, float]:
    """Shares of the wall time between START and END: the process's CPU time (all threads), and for the event
    loop's thread the time on a CPU, waiting for a CPU (runnable, the machine busy) and idle (waiting for I/O)."""
    wall = end.at - start.at
    use = {"cpu": rate(end.cpu - start.cpu, wall)}
    if start.scheduler is not None and end.scheduler is not None:
        on_cpu = rate(end.scheduler[0] - start.scheduler[0], wall)
        waiting = rate(end.scheduler[1] - start.scheduler[1], wall)
        use |= {"loop_on_cpu": on_cpu, "loop_waiting_for_cpu": waiting, "loop_idle": max(0.0, 1 - on_cpu - waiting)}
    return use


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of VALUES (SHARE 0..1); 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(share * len(ordered) + 0.5) - 1))]


async def repeat(seconds: float, step: t.Callable[[], t.Awaitable[int]]) -> dict[str, float]:
    """STEP (which returns how many it handled) over and over for SECONDS; count, seconds, rate, cpu share."""
    start = reading()
    deadline = start.at + seconds
    count = 0
    while time.monotonic() < deadline:
        count += await step()
    end = reading()
    wall = end.at - start.at
    return {"count": count, "seconds": round(wall, 3), "rate": rate(count, wall)} | process_use(start, end)


async def broker_ceiling(config: Config, seconds: float, rows: Rows) -> dict[str, t.Any]:
    from tgstack_gateway import outgoing
    from tgstack_gateway.backends import Publisher

    publisher = Publisher(config.rabbitmq_url, config.secrets["TGSTACK_RABBITMQ_PASSWORD"], config.rabbitmq_exchange,
                          "message")  # fmt: skip
    # a ring of batches: the broker does not care that message ids repeat, and building rows stays out of it
    ring = [rows.batch(config.batch_size) for _number in range(8)]
    bodies = [len(outgoing.message(row).body) for batch in ring for row in batch]
    turn = 0

    async def step() -> int:
        nonlocal turn
        turn += 1
        return await publisher.publish(ring[turn % len(ring)])

    try:
        await publisher.connect()
        await step()  # the first publish opens what is opened lazily
        result = await repeat(seconds, step)
    finally:
        await publisher.close()
    return result | {"body_bytes": round(sum(bodies) / len(bodies)), "window": config.batch_size}


async def database_ceiling(config: Config, seconds: float, rows: Rows) -> dict[str, t.Any]:
    from tgstack_gateway.backends import Store

    store = Store.for_config(config)
    inserted = 0

    async def step() -> int:
        nonlocal inserted
        stored = await store.store(rows.batch(config.batch_size), [])
        inserted += stored.inserted
        return stored.inserted + stored.updated + stored.unchanged

    try:
        await store.connect()
        await step()
        inserted = 0
        result = await repeat(seconds, step)
    finally:
        await store.close()
    return result | {"inserted": inserted, "rows_per_call": config.batch_size, "connections": store.lanes}


async def pipeline_run(config: Config, *, mode: str, rate_: float, first_chat: int, warmup: float, seconds: float,
                       spool_dir: str, profiler: cProfile.Profile | None = None) -> dict[str, t.Any]:  # fmt: skip
    """The synthetic source at RATE_ (0: unthrottled) through the whole pipeline; figures over SECONDS after
    WARMUP. PROFILER, when given, records the measured seconds."""
    from tgstack_gateway.metrics import Metrics
    from tgstack_gateway.pipeline import Pipeline
    from tgstack_gateway.service import backends, bad_record_reporter
    from tgstack_gateway.sources import SyntheticSource
    from tgstack_gateway.spool import Spool

    config = dataclasses.replace(config, publish_mode=mode)
    metrics = Metrics()
    store, publisher, cache = backends(config)
    source = SyntheticSource(bad_record_reporter(metrics), rate=rate_, chats=config.synthetic_chats, count=None,
                             seed=config.synthetic_seed, first_chat=first_chat)  # fmt: skip
    samples: list[float] = []
    pipeline = Pipeline(source, store, publisher, cache, Spool(spool_dir, config.spool_max_bytes), metrics,
                        batch_size=config.batch_size, batch_delay=config.batch_delay_ms / 1000,
                        queue_size=config.queue_size, retry_budget=config.retry_budget_seconds,
                        latency_samples=samples)  # fmt: skip
    running: asyncio.Task[t.Any] | None = None
    try:
        await store.connect()  # connected before the clock starts, as a service that has been running is
        await publisher.connect()
        await cache.ping()
        running = asyncio.create_task(pipeline.run(), name="pipeline")
        await keep_running(running, warmup)
        start = reading(pipeline, samples)
        if profiler is not None:
            profiler.enable()
        await keep_running(running, seconds)
        if profiler is not None:
            profiler.disable()
        end = reading(pipeline, samples)
        pipeline.stop()
        stopping = time.monotonic()
        totals = await asyncio.wait_for(running, STOP_LIMIT)
        stop_seconds = time.monotonic() - stopping
    finally:
        if running is not None and not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await source.close()
        for backend in (store, publisher, cache):
            await backend.close()
    wall = end.at - start.at
    latencies = samples[start.samples : end.samples]
    return {
        "mode": mode,
        "rate_asked": rate_,
        "seconds": round(wall, 3),
        "received_rate": rate(end.received - start.received, wall),
        "stored_rate": rate(end.stored - start.stored, wall),
        "published_rate": rate(end.published - start.published, wall),
        **process_use(start, end),
        "spooled_batches": end.spooled - start.spooled,
        "latency_ms": {"p50": 1000 * percentile(latencies, 0.50), "p99": 1000 * percentile(latencies, 0.99),
                       "max": 1000 * max(latencies, default=0.0), "samples": len(latencies)},
        "stages": stage_times(start, end, wall),
        "stop_seconds": round(stop_seconds, 2),
        "totals": dataclasses.asdict(totals),
    }  # fmt: skip


def stage_times(start: Reading, end: Reading, wall: float) -> dict[str, dict[str, float]]:
    """Per stage, between START and END: milliseconds per batch and the share of the wall time it was busy
    (dedup and store run one after the other in the store stage; above 100 % together, that stage is the
    bottleneck)."""
    times = {}
    for stage in STAGE_TIMERS:
        seconds = end.stages[stage][0] - start.stages[stage][0]
        batches = end.stages[stage][1] - start.stages[stage][1]
        times[stage] = {"ms_per_batch": 1000 * rate(seconds, batches), "busy": rate(seconds, wall),
                        "batches": batches}  # fmt: skip
    return times


async def keep_running(task: asyncio.Task[t.Any], seconds: float) -> None:
    """Wait SECONDS; a pipeline that ends meanwhile (it should not) ends the benchmark with its error."""
    done, _pending = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        raise RuntimeError("the pipeline ended by itself while it was measured")


async def forget_chats(config: Config, chats: list[int]) -> None:
    """Delete the Redis keys the pipeline wrote for CHATS (recent messages, chat metadata, dedup keys)."""
    from tgstack_gateway.backends import Cache

    cache = Cache(config)
    try:
        keys = [f"tgstack:{kind}:{chat}" for chat in chats for kind in ("recent", "chat", "seen")]
        for start in range(0, len(keys), 500):
            await cache.guarded(cache.client.delete(*keys[start : start + 500]))
    finally:
        await cache.close()


# -- profile -----------------------------------------------------------------------------------------------


def stage_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    for stage, fragments in STAGES:
        if any(fragment in path for fragment in fragments):
            return stage
    return OTHER


def label(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    if filename == "~":
        return name
    parts = filename.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{line}({name})"


def where_the_time_goes(profiler: cProfile.Profile, top: int = 4, overall: int = 15) -> dict[str, t.Any]:
    """The profiled time by stage: each function's own time (tottime) goes to the stage its code belongs to;
    a built-in (C) function's time goes to the stages of its callers, in the shares cProfile recorded, and
    the time spent blocked in epoll is idle. The shares add up to 100 % of the profiled time."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values()) or 1e-9
    stages: dict[str, float] = {}
    functions: dict[str, list[tuple[float, str]]] = {}

    def charge(stage: str, seconds: float, function: tuple[str, int, str]) -> None:
        stages[stage] = stages.get(stage, 0.0) + seconds
        functions.setdefault(stage, []).append((seconds, label(function)))

    for function, (_cc, _nc, own, _cumulative, callers) in stats.items():
        if function[0] != "~":
            charge(stage_of(function[0]), own, function)
        elif "poll" in function[2] and ("epoll" in function[2] or "select" in function[2]):
            charge(IDLE, own, function)
        else:
            by_caller = {caller: entry[2] for caller, entry in callers.items()}
            shared = sum(by_caller.values())
            if shared <= 0:
                charge(OTHER, own, function)
                continue
            for caller, seconds in by_caller.items():
                charge(stage_of(caller[0]) if caller[0] != "~" else OTHER, own * seconds / shared, function)
    merged: dict[str, dict[str, float]] = {}
    for stage, entries in functions.items():
        for seconds, name in entries:
            merged.setdefault(stage, {})[name] = merged.setdefault(stage, {}).get(name, 0.0) + seconds
    by_stage = [{"stage": stage, "percent": 100 * seconds / total,
                 "top": [{"function": name, "percent": 100 * own / total}
                         for name, own in sorted(merged[stage].items(), key=lambda item: -item[1])[:top]]}
                for stage, seconds in sorted(stages.items(), key=lambda item: -item[1])]  # fmt: skip
    # inclusive time of the gateway's and the libraries' entry points; the event loop's own frames (which
    # include everything) and coroutine plumbing are left out
    loop_frames = ("/asyncio/", "/selectors.py")
    cumulative = sorted(
        ((entry[3], function) for function, entry in stats.items()
         if function[0] != "~" and not any(part in function[0] for part in loop_frames)),
        key=lambda item: -item[0],
    )[:overall]  # fmt: skip
    return {
        "seconds": round(total, 3),
        "stages": by_stage,
        "cumulative": [{"function": label(function), "stage": stage_of(function[0]), "percent": 100 * seconds / total}
                       for seconds, function in cumulative],
    }  # fmt: skip


# -- the run -----------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in ("aio-pika", "aiormq", "pamqp", "psycopg", "redis"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


async def main(config: Config, *, seconds: float = 20.0, batch_seconds: float = 60.0, warmup: float = 2.0,
               latency_rate: float = LATENCY_TARGET_RATE, first_chat: int | None = None, profile: bool = False,
               profile_seconds: float = 15.0, phases: t.Sequence[str] = PHASES, spool_dir: str | None = None,
               cleanup: bool = True) -> dict[str, t.Any]:  # fmt: skip
    """Run the phases (see the module's docstring) and return their figures, the targets and the chats used."""
    chats = min(config.synthetic_chats, CHAT_BLOCK)
    config = dataclasses.replace(config, source="synthetic", synthetic_chats=chats)
    base = first_chat if first_chat is not None else config.synthetic_first_chat
    base -= (int(time.time()) // 10 % RUN_BLOCKS) * CHAT_BLOCK * len(PHASES)
    first_of = {phase: base - number * CHAT_BLOCK for number, phase in enumerate(PHASES)}
    used: list[int] = []
    spool_root = spool_dir or tempfile.mkdtemp(prefix="tgstack-gateway-bench-")
    figures: dict[str, t.Any] = {
        "settings": {"seconds": seconds, "batch_seconds": batch_seconds, "warmup": warmup,
                     "latency_rate": latency_rate, "batch_size": config.batch_size,
                     "batch_delay_ms": config.batch_delay_ms, "queue_size": config.queue_size, "chats": chats,
                     "cpus": os.cpu_count(), "host": platform.node(), "versions": versions()},
    }  # fmt: skip

    async def pipeline_phase(phase: str, mode: str, rate_: float, measured: float,
                             profiler: cProfile.Profile | None = None) -> dict[str, t.Any]:  # fmt: skip
        used.extend(chat_ids(first_of[phase], chats))
        return await pipeline_run(config, mode=mode, rate_=rate_, first_chat=first_of[phase], warmup=warmup,
                                  seconds=measured, spool_dir=os.path.join(spool_root, phase),
                                  profiler=profiler)  # fmt: skip

    try:
        for phase in PHASES:
            if phase not in phases or (phase == "profile" and not profile):
                continue
            progress(f"phase {phase} start")
            if phase == "broker":
                result = await broker_ceiling(config, seconds, Rows(first_of[phase], chats, config.synthetic_seed))
                summary = f"{result['rate']:.0f} msg/s"
            elif phase == "database":
                used.extend(chat_ids(first_of[phase], chats))
                result = await database_ceiling(config, seconds, Rows(first_of[phase], chats, config.synthetic_seed))
                summary = f"{result['rate']:.0f} rows/s"
            elif phase == "pipeline":
                result = await pipeline_phase(phase, "message", 0.0, seconds)
                summary = f"{result['published_rate']:.0f} msg/s published"
            elif phase == "latency":
                result = await pipeline_phase(phase, "message", latency_rate, seconds)
                summary = f"p99 {result['latency_ms']['p99']:.0f} ms"
            elif phase == "batch":
                result = await pipeline_phase(phase, "batch", 0.0, batch_seconds)
                summary = f"{result['published_rate']:.0f} msg/s published"
            else:
                # CPU time, not wall time: on a busy machine the wall clock also counts the time the process
                # waited for a CPU, charged to whatever function it was in
                profiler = cProfile.Profile(time.process_time)
                result = await pipeline_phase(phase, "message", 0.0, profile_seconds, profiler)
                result["where"] = where_the_time_goes(profiler)
                summary = f"{result['published_rate']:.0f} msg/s published under the profiler"
            figures[phase] = result
            progress(f"phase {phase} end: {summary}")
    finally:
        if cleanup and used:
            try:
                await forget_chats(config, used)
            except Exception as error:  # best effort: the figures matter more than the tidying
                progress(f"could not delete the Redis keys of the benchmark's chats: {error}")
        if spool_dir is None:
            shutil.rmtree(spool_root, ignore_errors=True)
    figures["chats"] = {"low": min(used), "high": max(used)} if used else None
    figures["targets"] = verdicts(figures)
    return figures


def verdicts(figures: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The issue's targets that this run's figures can judge."""
    found = []
    if "broker" in figures and "pipeline" in figures:
        share = rate(figures["pipeline"]["published_rate"], figures["broker"]["rate"])
        found.append({"target": "per-message pipeline >= 90 % of the bare broker's confirmed-publish rate",
                      "measured": f"{100 * share:.0f} %", "met": share >= BROKER_SHARE_TARGET})  # fmt: skip
    if "latency" in figures:
        latency = figures["latency"]
        p99 = latency["latency_ms"]["p99"] / 1000
        judged = abs(latency["rate_asked"] - LATENCY_TARGET_RATE) < 1e-9
        found.append({"target": f"p99 receive -> confirmed publish < 250 ms at {LATENCY_TARGET_RATE:,.0f} msg/s",
                      "measured": f"{1000 * p99:.0f} ms at {latency['received_rate']:.0f} msg/s received",
                      "met": judged and p99 < LATENCY_P99_TARGET and not latency["spooled_batches"]})  # fmt: skip
    if "batch" in figures:
        batch = figures["batch"]
        long_enough = batch["seconds"] >= 60 - 0.5
        found.append({"target": "batch mode >= 20,000 msg/s for 60 s",
                      "measured": f"{batch['published_rate']:.0f} msg/s for {batch['seconds']:.0f} s "
                                  f"({100 * batch['published_rate'] / BATCH_TARGET:.0f} %)",
                      "met": long_enough and batch["published_rate"] >= BATCH_TARGET})  # fmt: skip
    return found


def use_text(figures: dict[str, t.Any]) -> str:
    """How this process spent the measured time (see process_use)."""
    text = f"this process {100 * figures['cpu']:.0f} % of a core"
    if "loop_on_cpu" in figures:
        shares = (figures["loop_on_cpu"], figures["loop_waiting_for_cpu"], figures["loop_idle"])
        text += " (event loop: on a CPU {:.0f} %, waiting for a CPU {:.0f} %, idle {:.0f} %)".format(
            *(100 * share for share in shares)
        )
    return text


PIPELINE_TITLES = {
    "pipeline": "pipeline, per message, full speed",
    "latency": "pipeline, per message, paced",
    "batch": "pipeline, batch mode, full speed",
    "profile": "pipeline, per message, full speed, under cProfile",
}


def report(figures: dict[str, t.Any]) -> str:
    """The figures as text: settings, each phase, the targets with PASS/MISS, where the time goes."""
    settings = figures["settings"]
    lines = [
        f"gateway bench on {settings['host']} ({settings['cpus']} CPUs), "
        + ", ".join(f"{name} {version}" for name, version in settings["versions"].items()),
        f"batch_size {settings['batch_size']}, batch delay {settings['batch_delay_ms']} ms, inbox "
        f"{settings['queue_size']}, {settings['chats']} chats per phase; {settings['seconds']:g} s measured per "
        f"phase (batch mode {settings['batch_seconds']:g} s) after {settings['warmup']:g} s of warm-up",
    ]
    if "broker" in figures:
        broker = figures["broker"]
        lines.append(f"broker ceiling: {broker['rate']:.0f} msg/s confirmed (Publisher, per message, "
                     f"{broker['window']} in flight, bodies {broker['body_bytes']} B mean); "
                     f"{use_text(broker)}")  # fmt: skip
    if "database" in figures:
        database = figures["database"]
        lines.append(f"database ceiling: {database['rate']:.0f} rows/s (Store.store: COPY + upsert_staged_messages "
                     f"through PgBouncer, {database['rows_per_call']} rows per batch over "
                     f"{database['connections']} connections, {database['inserted']} inserted); "
                     f"{use_text(database)}")  # fmt: skip
    for phase, title in PIPELINE_TITLES.items():
        if phase not in figures:
            continue
        run = figures[phase]
        paced = f" at {run['rate_asked']:.0f}/s" if run["rate_asked"] else ""
        extra = ""
        if phase == "pipeline" and "broker" in figures:
            extra = f" = {100 * rate(run['published_rate'], figures['broker']['rate']):.0f} % of the broker ceiling"
        if phase == "batch":
            extra = f" = {100 * run['published_rate'] / BATCH_TARGET:.0f} % of {BATCH_TARGET:,.0f}"
        if phase in ("pipeline", "batch") and "database" in figures:
            extra += f"; stored = {100 * rate(run['stored_rate'], figures['database']['rate']):.0f} % of the database's"
        latency = run["latency_ms"]
        lines.append(
            f"{title}{paced}: received {run['received_rate']:.0f}/s, stored {run['stored_rate']:.0f}/s, published "
            f"{run['published_rate']:.0f} msg/s{extra}; latency p50 {latency['p50']:.0f} ms, p99 "
            f"{latency['p99']:.0f} ms, max {latency['max']:.0f} ms ({latency['samples']} samples); {use_text(run)}; "
            f"{run['seconds']:.0f} s measured"
            + (f"; {run['spooled_batches']} batches SPOOLED (a backend was away)" if run["spooled_batches"] else "")
        )
        stages = run["stages"]
        if any(stage["batches"] for stage in stages.values()):
            size = rate(run["published_rate"] * run["seconds"], stages["publish"]["batches"])
            timings = ", ".join(f"{name} {stage['ms_per_batch']:.0f} ms (busy {100 * stage['busy']:.0f} %)"
                                for name, stage in stages.items())  # fmt: skip
            lines.append(f"  per batch ({size:.0f} messages): {timings}")
    for verdict in figures.get("targets", []):
        lines.append(f"{'PASS' if verdict['met'] else 'MISS'}: {verdict['target']}: {verdict['measured']}")
    if "profile" in figures:
        where = figures["profile"]["where"]
        lines.append(f"where the time goes (cProfile of the CPU time, {where['seconds']:.1f} s; own time by stage, "
                     "a C function's time charged to its callers):")  # fmt: skip
        for stage in where["stages"]:
            if stage["percent"] >= 0.5:
                tops = "; ".join(f"{entry['function']} {entry['percent']:.1f} %" for entry in stage["top"][:3])
                lines.append(f"  {stage['percent']:5.1f} %  {stage['stage']}: {tops}")
        lines.append("  inclusive (cumulative) time of the top functions outside the event loop:")
        for entry in where["cumulative"]:
            lines.append(f"  {entry['percent']:5.1f} %  {entry['function']} [{entry['stage']}]")
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tgstack-gateway bench`` (besides --config, --env-file, --log-level)."""
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase (default 20)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="measured seconds of batch mode "
                        "(default 60, as the target asks)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each pipeline run")
    parser.add_argument("--latency-rate", type=float, default=LATENCY_TARGET_RATE,
                        help="messages/s of the latency phase (default 1000)")  # fmt: skip
    parser.add_argument("--first-chat", type=int, help="chat ids count down from here, minus an offset per run "
                        "(default: source.synthetic.first_chat)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="also profile a full-speed run: where the time goes")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, from {','.join(PHASES)} "
                        "(default: all; profile needs --profile)")  # fmt: skip
    parser.add_argument("--spool-dir", help="where the runs' spools go (default: a temporary directory, removed)")
    parser.add_argument("--keep-keys", action="store_true", help="keep the Redis keys of the benchmark's chats")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object, not as text")
    parser.add_argument("--batch-size", type=int, help="instead of the configuration's pipeline.batch_size")
    parser.add_argument("--connections", type=int, help="instead of the configuration's postgres.connections")


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with ARGS, or None."""
    phases = [phase for phase in args.phases.split(",") if phase]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        return f"--phases: unknown {', '.join(unknown)}: choose from {', '.join(PHASES)}"
    if min(args.seconds, args.batch_seconds, args.profile_seconds) <= 0 or args.warmup < 0 or args.latency_rate <= 0:
        return "--seconds, --batch-seconds, --profile-seconds, --latency-rate: positive; --warmup: not negative"
    if args.batch_size is not None and args.batch_size < 1:
        return "--batch-size: 1 or more"
    if args.connections is not None and not 1 <= args.connections <= 8:
        return "--connections: 1 to 8"
    return None


def command(args: argparse.Namespace, config: Config) -> int:
    """``tgstack-gateway bench``: run the benchmark, print the figures; 0 when it ran (whatever they are)."""
    problem = check_arguments(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.batch_size is not None:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    if args.connections is not None:
        config = dataclasses.replace(config, postgres_connections=args.connections)
    figures = asyncio.run(main(
        config, seconds=args.seconds, batch_seconds=args.batch_seconds, warmup=args.warmup,
        latency_rate=args.latency_rate, first_chat=args.first_chat, profile=args.profile,
        profile_seconds=args.profile_seconds, phases=args.phases.split(","), spool_dir=args.spool_dir,
        cleanup=not args.keep_keys,
    ))  # fmt: skip
    print(json.dumps(figures) if args.json else report(figures), flush=True)
    return 0


def cli(argv: t.Sequence[str] | None = None) -> int:
    """``python3 -m tgstack_gateway.bench``: the same as ``tgstack-gateway bench``."""
    from tgstack_gateway.cli import DEFAULT_CONFIG, DEFAULT_SECRETS, configuration
    from tgstack_gateway.service import setup_logging

    parser = argparse.ArgumentParser(prog="python3 -m tgstack_gateway.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the settings file (default {DEFAULT_CONFIG})")
    parser.add_argument("--env-file", default=DEFAULT_SECRETS, help=f"the secrets (default {DEFAULT_SECRETS})")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    config = configuration(args)
    if config is None:
        return 2
    return command(args, config)


if __name__ == "__main__":
    sys.exit(cli())
