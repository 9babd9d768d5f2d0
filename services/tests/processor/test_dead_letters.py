"""Dead letters exactly once: a redelivered batch (after a SIGKILL) does not dead-letter its
invalid records a second time in the count, the stats or the metrics; the DLQ topic's records
carry the stable source key readers dedupe on. And the dead-letter tools: the API's newest
first view and `gpu-analytics dlq replay`, at most once."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from gpu_analytics_tools.testing import reliability
from gpu_analytics_tools.testing.harness import CLI, PARTITIONS, Pipeline, read_records

pytestmark = pytest.mark.integration

GOOD = 400
BAD = [b"{not json", b"[1, 2]", orjson.dumps({"host": "h"}), b""]


async def send(pipeline: Pipeline, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send(pipeline.gpu_topic, value, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


def mixed(make: Callable[..., dict[str, Any]], first: int, good: int, bad: int) -> list[bytes]:
    """`good` valid events from `first` with `bad` invalid records spread among them."""
    values = [orjson.dumps(make(seq)) for seq in range(first, first + good)]
    for i in range(bad):
        values.insert((i + 1) * len(values) // (bad + 1), BAD[i % len(BAD)])
    return values


async def rewind_group(pipeline: Pipeline) -> None:
    """Commit offset 0 for every partition of the group: the next processor re-reads it all,
    as after a crash between dead-lettering and committing, only for every record."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.stack.bootstrap_servers,
        group_id=pipeline.group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(pipeline.gpu_topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        deadline = time.monotonic() + 60
        while True:  # the killed member holds the group until its session times out
            try:
                await consumer.commit(dict.fromkeys(parts, 0))
                return
            except CommitFailedError:
                assert time.monotonic() < deadline, "the group never became empty"
                await asyncio.sleep(1)
    finally:
        await consumer.stop()


async def stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        body: dict[str, Any] = (await client.get("/api/v1/stats")).json()
        return body


async def wait_until(check: Callable[[], Any], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.5)


async def test_each_invalid_record_is_counted_once_after_a_kill_and_a_full_redelivery(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    first = await pipeline.start_processor()
    await send(pipeline, mixed(make_gpu_event, 0, GOOD // 2, 8))  # bad records before the kill
    await pipeline.wait_stored(GOOD // 2)

    async def eight() -> bool:
        return bool((await stats(first.url))["dlq_total"] == 8)

    await wait_until(eight)
    first.kill()
    await rewind_group(pipeline)  # everything is redelivered, the 8 dead letters included
    await send(pipeline, mixed(make_gpu_event, GOOD // 2, GOOD // 2, 7))  # and after it
    second = await pipeline.start_processor()

    async def all_read() -> bool:
        stored = await second.metric("gpu_analytics_events_stored_total")
        duplicates = await second.metric("gpu_analytics_events_duplicate_total")
        return stored + duplicates == GOOD

    await wait_until(all_read)
    assert len(await pipeline.stored()) == GOOD
    assert await second.metric("gpu_analytics_events_duplicate_total") == GOOD // 2
    figures = await stats(second.url)
    assert figures["dlq_total"] == 15, figures
    assert figures["dlq"][f"{pipeline.gpu_topic}.dlq"] == 15
    # the second processor counts only the 7 it saw first; the 8 redelivered are not new
    assert await second.metric("gpu_analytics_events_invalid_total") == 7
    # one more than expected, so a surplus record would show (the read then waits 10 s)
    dlq = f"{pipeline.gpu_topic}.dlq"
    records = await read_records(pipeline.stack.bootstrap_servers, dlq, 24, timeout=10)
    keys = {r.key.decode() for r in records}
    assert len(keys) == 15 and len(records) == 23  # 8 dead-lettered twice, same keys
    assert all(k.startswith(f"{pipeline.gpu_topic}:") for k in keys)
    assert all(dict(r.headers)["dlq.source"].decode() == r.key.decode() for r in records)
    reliability.record(
        scenario="processor SIGKILL, every record redelivered; 15 invalid among them",
        sent=f"{GOOD} + 15 invalid",
        stored=len(await pipeline.stored()),
        **{
            "duplicates ignored": int(await second.metric("gpu_analytics_events_duplicate_total")),
            "dead letters": len(await pipeline.stored("dead_letters")),
            "stats figure": figures["dlq_total"],
        },
    )


async def test_the_api_lists_dead_letters_newest_first_and_replay_is_at_most_once(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    processor = await pipeline.start_processor()
    await send(pipeline, mixed(make_gpu_event, 0, 20, 4))
    await pipeline.wait_stored(20)

    async def four() -> bool:
        return bool((await stats(processor.url))["dlq_total"] == 4)

    await wait_until(four)
    async with httpx.AsyncClient(base_url=processor.url, timeout=10) as client:
        letters = (
            await client.get("/api/v1/dead-letters", params={"topic": pipeline.gpu_topic})
        ).json()
        assert len(letters) == 4
        times = [letter["dead_lettered_at"] for letter in letters]
        assert times == sorted(times, reverse=True)
        assert {letter["reason"] for letter in letters} == {
            "not_json", "not_object", "missing_field", "empty"
        }  # fmt: skip
        first = letters[0]
        assert first["source"] == f"{first['topic']}:{first['partition']}:{first['offset']}"
        assert first["dlq_topic"] == f"{pipeline.gpu_topic}.dlq"
        limited = await client.get("/api/v1/dead-letters", params={"limit": 2})
        assert len(limited.json()) == 2
        assert (await client.get("/api/v1/dead-letters", params={"limit": 0})).status_code == 422
        future = await client.get("/api/v1/dead-letters", params={"since": "2999-01-01T00:00:00Z"})
        assert future.json() == []
    processor.stop()

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, "dlq", "replay", "--topic", pipeline.gpu_topic, *args],
            env=pipeline.env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    dry = dlq("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 4 dead letters" in dry.stdout
    before = await end_offsets(pipeline)
    run = dlq()
    assert run.returncode == 0 and "replayed 4 dead letters" in run.stdout, run.stderr
    again = dlq()
    assert again.returncode == 0 and "replayed 0 dead letters" in again.stdout
    assert await end_offsets(pipeline) - before == 4  # the second replay published nothing


async def end_offsets(pipeline: Pipeline) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=pipeline.stack.bootstrap_servers)
    await consumer.start()
    try:
        parts = [TopicPartition(pipeline.gpu_topic, p) for p in range(PARTITIONS)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()
