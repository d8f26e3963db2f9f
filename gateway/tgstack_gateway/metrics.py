"""The gateway's Prometheus metrics (scraped from metrics.listen, 127.0.0.1:9465 by default).

Counters follow a message through the pipeline: received from the source, stored in TimescaleDB,
published to RabbitMQ (confirmed), duplicates collapsed or already stored, batches spooled while a
backend was away, and records skipped as bad (by reason). Histograms time each stage of a batch and
the end-to-end latency from receipt to confirmed publish; the source lag is how far behind Telegram's
own time the last stored message is.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One registry per gateway process (tests make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("tgstack_gateway_received", "Records received from the source", ["source"], registry=r)
        self.stored = Counter("tgstack_gateway_stored", "Messages stored (inserted or updated)", registry=r)
        self.published = Counter("tgstack_gateway_published", "Messages published and confirmed", registry=r)
        self.duplicates = Counter("tgstack_gateway_duplicates", "Records that changed nothing", registry=r)
        self.deletions = Counter("tgstack_gateway_deletions", "Deletion events applied", registry=r)
        self.bad_records = Counter("tgstack_gateway_bad_records", "Records skipped as bad", ["reason"], registry=r)
        self.spooled = Counter("tgstack_gateway_spooled_batches", "Batches written to the spool", registry=r)
        self.spool_bytes = Gauge("tgstack_gateway_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.retries = Counter("tgstack_gateway_retries", "Backend calls retried", ["backend"], registry=r)
        self.stage_seconds = Histogram("tgstack_gateway_batch_stage_seconds", "Time per batch and stage", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.latency = Histogram("tgstack_gateway_latency_seconds", "From receipt to confirmed publish",
                                 buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.source_lag = Gauge("tgstack_gateway_source_lag_seconds", "Telegram time to stored, last message",
                                registry=r)  # fmt: skip

    def bad(self, reason: str) -> None:
        """Count a skipped record by the kind of problem: the words before any value, colon or parenthesis,
        so the label set stays small whatever the records hold."""
        kind = re.split(r"""[:("'\[{0-9]""", reason, maxsplit=1)[0].strip()
        self.bad_records.labels(reason=kind[:60] or "other").inc()
