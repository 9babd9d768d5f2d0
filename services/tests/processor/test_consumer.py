"""The Kafka consumer: bad records go to the dead-letter topic with a reason, good ones in the
same batch are stored, and every offset is committed only after its batch is stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gpu_analytics_tools.testing.harness import PARTITIONS, Pipeline, read_records

pytestmark = pytest.mark.integration

BAD_RECORDS: list[tuple[bytes, str]] = [
    (b"{not json", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (
        orjson.dumps(
            {
                "ts": "2026-11-27T08:00:00Z",
                "host": "h",
                "gpu_index": "zero",
                "gpu_uuid": "GPU-1",
                "name": "L4",
            }
        ),
        "wrong_type",
    ),
    (
        orjson.dumps(
            {
                "ts": "2026-11-27T08:00:00Z",
                "host": "h",
                "gpu_index": 0,
                "gpu_uuid": "GPU-1",
                "name": "L4",
                "utilization_gpu_pct": 140,
            }
        ),
        "out_of_range",
    ),
    (orjson.dumps({"ts": "2026-11-27T08:00:00Z", "host": "h", "gpu_index": 0}), "missing_field"),
    (orjson.dumps({"ts": "2026-11-27T08:00:00Z", "host": "h" * 70_000}), "too_large"),
    (b"", "empty"),
]


async def test_bad_records_are_dead_lettered_with_reason_and_good_ones_stored(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    processor = await pipeline.start_processor()
    producer = AIOKafkaProducer(
        bootstrap_servers=pipeline.stack.bootstrap_servers, max_request_size=2_000_000
    )
    await producer.start()
    try:
        for seq in range(50):  # good and bad interleaved on one partition: one batch
            await producer.send(pipeline.gpu_topic, orjson.dumps(make_gpu_event(seq)), partition=0)
            if seq < len(BAD_RECORDS):
                await producer.send(pipeline.gpu_topic, BAD_RECORDS[seq][0], partition=0)
        await producer.flush()
    finally:
        await producer.stop()

    docs = await pipeline.wait_stored(50)
    assert sorted(d["host"] for d in docs) == sorted(f"seq-{i}" for i in range(50))
    dead = await read_records(
        pipeline.stack.bootstrap_servers, f"{pipeline.gpu_topic}.dlq", len(BAD_RECORDS)
    )
    reasons = {dict(r.headers)["dlq.reason"].decode(): r for r in dead}
    assert sorted(reasons) == sorted(reason for _, reason in BAD_RECORDS)
    for value, reason in BAD_RECORDS:
        assert reasons[reason].value == value
        assert dict(reasons[reason].headers)["dlq.source"].startswith(
            f"{pipeline.gpu_topic}:0:".encode()
        )
    for _, reason in BAD_RECORDS:
        assert await processor.metric("gpu_analytics_events_invalid_total", reason=reason) == 1
    assert await processor.metric("gpu_analytics_events_stored_total") == 50
    async with httpx.AsyncClient(base_url=processor.url) as client:
        stats = (await client.get("/api/v1/stats")).json()
    assert stats["dlq"][f"{pipeline.gpu_topic}.dlq"] == len(BAD_RECORDS)
    assert stats["dlq_total"] == len(BAD_RECORDS)

    await _assert_committed_to_end(pipeline)


# What no store can hold: before the models said out_of_range, each was accepted and then failed
# the insert of its whole batch again and again (pymongo's OverflowError, which no retry catches).
UNSTORABLE: list[tuple[dict[str, Any], bytes]] = [
    ({"gpu_index": 2**63}, b"gpu_index"),  # a count >= 0, but no 64-bit BSON integer
    # stamps whose UTC instant is in year 0 or 10000 (the last in a form only pydantic reads)
    ({"ts": "0001-01-01T00:30:00+01:00"}, b"outside the years 1 to 9999 in UTC"),
    ({"ts": "9999-12-31T23:59:59-01:00"}, b"outside the years 1 to 9999 in UTC"),
    ({"ts": "0001-01-01t00:30:00+01:00"}, b"outside the years 1 to 9999 in UTC"),
]


@pytest.mark.parametrize("overrides, error", UNSTORABLE)
async def test_a_value_mongodb_cannot_store_is_dead_lettered_not_a_poisoned_batch(
    pipeline: Pipeline,
    make_gpu_event: Callable[..., dict[str, Any]],
    overrides: dict[str, Any],
    error: bytes,
) -> None:
    processor = await pipeline.start_processor()
    bad = orjson.dumps(make_gpu_event(1, **overrides))
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await producer.start()
    try:
        await producer.send(pipeline.gpu_topic, orjson.dumps(make_gpu_event(0)), partition=0)
        await producer.send(pipeline.gpu_topic, bad, partition=0)
        await producer.send(pipeline.gpu_topic, orjson.dumps(make_gpu_event(2)), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    docs = await pipeline.wait_stored(2)
    assert sorted(d["host"] for d in docs) == ["seq-0", "seq-2"]
    (dead,) = await read_records(pipeline.stack.bootstrap_servers, f"{pipeline.gpu_topic}.dlq", 1)
    headers = dict(dead.headers)
    assert (dead.value, headers["dlq.reason"]) == (bad, b"out_of_range")
    assert error in headers["dlq.error"]
    assert await processor.metric("gpu_analytics_events_invalid_total") == 1


async def test_events_without_id_get_a_stable_offset_id_and_redelivery_is_ignored(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await producer.start()
    try:
        for seq in range(20):
            event = make_gpu_event(seq)
            del event["event_id"]
            await producer.send(pipeline.gpu_topic, orjson.dumps(event), partition=seq % 2)
        await producer.flush()
    finally:
        await producer.stop()
    first = await pipeline.start_processor()
    docs = await pipeline.wait_stored(20)
    assert {d["_id"].rsplit(":", 2)[0] for d in docs} == {pipeline.gpu_topic}
    first.stop()

    # A new group re-reads the whole topic: every record is redelivered, nothing is stored twice.
    pipeline.group += "-again"
    second = await pipeline.start_processor()
    deadline = time.monotonic() + 30
    while await second.metric("gpu_analytics_events_duplicate_total") < 20:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.5)
    assert len(await pipeline.stored()) == 20
    assert await second.metric("gpu_analytics_events_stored_total") == 0


async def _assert_committed_to_end(pipeline: Pipeline) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.stack.bootstrap_servers,
        group_id=pipeline.group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(pipeline.gpu_topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + 15
        while True:
            committed = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if committed == ends or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert committed == ends
    finally:
        await consumer.stop()


async def test_stored_timestamps_keep_their_instant_in_every_form_and_local_zone(
    pipeline: Pipeline,
    make_gpu_event: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The consumer holds `ts` as naive UTC: the processor runs here with a local zone of
    # UTC+05:30, so reading a stamp as local time anywhere (storage, latency, GPU gauges) shows.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    now = datetime.now(UTC).replace(microsecond=123456)
    kolkata = timezone(timedelta(hours=5, minutes=30))
    forms = {
        "producer": now.isoformat().replace("+00:00", "Z"),  # the fast path's common form
        "offset": now.astimezone(kolkata).isoformat(),
        "seconds": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "pydantic": now.isoformat().replace("+00:00", "z"),  # declined by the fast decoder
    }
    payloads = [
        make_gpu_event(seq, gpu_uuid=f"GPU-{form}", ts=text)
        for seq, (form, text) in enumerate(forms.items())
    ]
    legacy = {"gpu_index": 7, "name": "NVIDIA L4", "utilization": 0.5, "mem_used_mb": 1.0}
    legacy |= {"mem_total_mb": 2.0, "power_w": 3.0, "price_per_hour_usd": 0.8, "host": "legacy"}
    legacy["ts"] = now.replace(tzinfo=None).isoformat()  # naive: the legacy producer's UTC
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await producer.start()
    try:
        for payload in [*payloads, legacy]:
            await producer.send(pipeline.gpu_topic, orjson.dumps(payload), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    processor = await pipeline.start_processor()

    docs = await pipeline.wait_stored(len(forms) + 1)
    stored = {doc["gpu_uuid"]: doc["ts"] for doc in docs if doc["host"] != "legacy"}
    in_ms = now.replace(microsecond=123000, tzinfo=None)  # BSON dates hold milliseconds
    assert stored == {
        "GPU-producer": in_ms,
        "GPU-offset": in_ms,
        "GPU-seconds": in_ms.replace(microsecond=0),
        "GPU-pydantic": in_ms,
    }
    assert [doc["ts"] for doc in docs if doc["host"] == "legacy"] == [in_ms]
    last_seen = {
        labels["gpu_uuid"]: value
        for labels, value in await processor.samples(
            "gpu_analytics_gpu_last_sample_timestamp_seconds"
        )
    }
    assert last_seen["GPU-producer"] == now.timestamp()
    assert last_seen["GPU-offset"] == now.timestamp()
    latency = await processor.metric("gpu_analytics_end_to_end_latency_seconds_sum")
    count = await processor.metric("gpu_analytics_end_to_end_latency_seconds_count")
    assert count == len(forms) + 1
    assert 0 <= latency / count < 120, latency / count
