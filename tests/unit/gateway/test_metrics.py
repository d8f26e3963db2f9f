"""The gateway's metrics as Prometheus scrapes them."""

from __future__ import annotations

from prometheus_client import generate_latest
from tgstack_gateway.metrics import Metrics


def test_the_metrics_are_exposed_with_their_labels():
    metrics = Metrics()
    metrics.received.labels(source="replay").inc(3)
    metrics.stored.inc(2)
    metrics.duplicates.inc()
    metrics.bad("not JSON (Expecting value at column 1)")
    metrics.bad('unknown type "reaction": one of message, edit, delete')
    metrics.stage_seconds.labels(stage="store").observe(0.02)
    text = generate_latest(metrics.registry).decode()
    assert 'tgstack_gateway_received_total{source="replay"} 3.0' in text
    assert "tgstack_gateway_stored_total 2.0" in text and "tgstack_gateway_duplicates_total 1.0" in text
    assert 'tgstack_gateway_bad_records_total{reason="not JSON"} 1.0' in text
    assert 'tgstack_gateway_bad_records_total{reason="unknown type"} 1.0' in text
    metrics.bad("chat_id 12345678901234567890123 does not fit in a bigint")
    assert 'reason="chat_id"' in generate_latest(metrics.registry).decode()
    assert 'tgstack_gateway_batch_stage_seconds_bucket{le="0.025",stage="store"} 1.0' in text


def test_two_gateways_in_one_process_do_not_clash():
    Metrics()
    Metrics()  # each has its own registry
