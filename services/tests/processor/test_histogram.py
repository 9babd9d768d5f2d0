"""BulkHistogram exposes what prometheus_client's own Histogram does for the same observations:
the same buckets (le: value <= bound, edges included), counts, sum and text format."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gpu_analytics.processor.histogram import BulkHistogram

BUCKETS = (0.005, 0.01, 0.1, 1.0, 2.5, 10.0)


def test_a_batch_is_counted_as_the_library_counts_one_value_at_a_time() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("latency_seconds", "Latency.", ["topic"], BUCKETS, registry=ours)
    single = Histogram("latency_seconds", "Latency.", ["topic"], buckets=BUCKETS, registry=theirs)
    rng = random.Random(7)
    batches = [
        [*BUCKETS, 0.0, -1.0, 11.0, float("inf")],  # the edges, below and beyond
        [rng.expovariate(2.0) for _ in range(1000)],
        [],
        [rng.uniform(0, 20) for _ in range(333)],
    ]
    for topic in ("a", "b"):
        for values in batches:
            bulk.observe_many((topic,), values)
            for value in values:
                single.labels(topic).observe(value)
    # prometheus_client adds a _created series per label set, which BulkHistogram does not
    expected = b"\n".join(
        line for line in generate_latest(theirs).split(b"\n") if b"_created" not in line
    )
    assert generate_latest(ours) == expected


def test_ages_are_counted_as_the_library_counts_each_age() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("age_seconds", "Age.", ["topic"], BUCKETS, registry=ours)
    single = Histogram("age_seconds", "Age.", ["topic"], buckets=BUCKETS, registry=theirs)
    rng = random.Random(7)
    now = datetime(2026, 12, 7, 8, 0, 0, 500)
    tick = timedelta(microseconds=1)
    edges = [now - timedelta(seconds=b) + d for b in BUCKETS for d in (-tick, 0 * tick, tick)]
    batches = [
        [*edges, now, now + timedelta(seconds=3), now - timedelta(days=1)],  # future, old
        [now - timedelta(seconds=rng.expovariate(2.0)) for _ in range(1000)],
        [],
    ]
    for topic, zone in (("naive", None), ("aware", UTC)):
        at = now.replace(tzinfo=zone)
        for stamps in batches:
            stamps = [s.replace(tzinfo=zone) for s in stamps]
            bulk.observe_elapsed((topic,), at, stamps)
            for stamp in stamps:
                single.labels(topic).observe((at - stamp).total_seconds())
    for topic in ("naive", "aware"):
        for bound in (*BUCKETS, float("inf")):
            labels = {"topic": topic, "le": "+Inf" if bound == float("inf") else str(bound)}
            count = theirs.get_sample_value("age_seconds_bucket", labels)
            assert ours.get_sample_value("age_seconds_bucket", labels) == count, labels
        labels = {"topic": topic}
        # the sum: exact timedeltas against the library's float additions
        assert ours.get_sample_value("age_seconds_sum", labels) == pytest.approx(
            theirs.get_sample_value("age_seconds_sum", labels), abs=1e-6
        )
