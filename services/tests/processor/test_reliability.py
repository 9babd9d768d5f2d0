"""Outages mid-stream: each scenario ends with every event stored exactly once.

These tests stop and start servers, so they run on a stack of their own (not the session's).
The stream keeps sending through an outage and re-sends what was not acknowledged, with the same
event id: that is the at-least-once side; idempotent inserts make it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gpu_analytics.processor.runtime import CHECK_TIMEOUT_S, READINESS_INTERVAL_S
from gpu_analytics_tools.testing import reliability
from gpu_analytics_tools.testing.harness import Pipeline, Processor, gpu_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 3000
RATE = 250  # events/s: a 12 s stream, long enough for a 10 s outage in the middle
OUTAGE_S = 10


async def stream(bootstrap: str, topic: str, events: int = EVENTS, rate: int = RATE) -> int:
    """Send `events` at `rate`/s. What is not acknowledged within 10 s is sent again with the
    same id by a fresh producer (a client's retry across an outage); returns how many."""

    def new_producer() -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=5000,
        )

    producer = new_producer()
    await _until_ok(producer.start)
    resent = 0
    started = time.monotonic()
    try:
        for first in range(0, events, 25):
            pending = [
                orjson.dumps(gpu_event(seq)) for seq in range(first, min(first + 25, events))
            ]
            while pending:
                try:
                    futures = [await asyncio.wait_for(producer.send(topic, v), 10) for v in pending]
                    await asyncio.wait_for(asyncio.gather(*futures), 10)
                    pending = []
                except (KafkaError, TimeoutError):
                    resent += len(pending)
                    with contextlib.suppress(KafkaError, TimeoutError):
                        await asyncio.wait_for(producer.stop(), 10)
                    await asyncio.sleep(0.5)
                    producer = new_producer()
                    await _until_ok(producer.start)
            await asyncio.sleep(max(0.0, started + (first + 25) / rate - time.monotonic()))
    finally:
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(producer.stop(), 10)
    return resent


async def _until_ok(action: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await asyncio.wait_for(action(), 10)
            return
        except (KafkaError, TimeoutError):
            await asyncio.sleep(0.5)


async def _when_stored(line: Pipeline, count: int) -> None:
    while len(await line.stored()) < count:
        await asyncio.sleep(0.2)


def assert_exactly_once(docs: list[dict[str, Any]], line: Pipeline) -> None:
    hosts = sorted(d["host"] for d in docs)
    assert len(hosts) == EVENTS, f"{len(hosts)} stored, {EVENTS} sent\n{line.diagnosis()}"
    assert hosts == sorted(f"seq-{i}" for i in range(EVENTS))


async def report(scenario: str, line: Pipeline, resent: int) -> None:
    """The figures behind the claim: one line on stderr (shown with `pytest -s`) and a row of
    `make reliability`'s table."""
    live = [p for p in line.processors if p.proc is not None and p.proc.poll() is None]
    duplicates = sum([await p.metric("gpu_analytics_events_duplicate_total") for p in live])
    stored = len(await line.stored())
    dead = len(await line.stored("dead_letters"))
    async with httpx.AsyncClient(base_url=live[0].url, timeout=10) as client:
        figure = (await client.get("/api/v1/stats")).json()["dlq_total"]
    sys.stderr.write(
        f"\nreliability {scenario}: sent {EVENTS} (+{resent} re-sent), stored {stored}, "
        f"duplicates ignored {duplicates:.0f} (running processors), dead letters {dead}, "
        f"stats {figure}\n"
    )
    reliability.record(
        scenario=scenario,
        sent=f"{EVENTS} (+{resent} re-sent)",
        stored=stored,
        **{"duplicates ignored": int(duplicates), "dead letters": dead, "stats figure": figure},
    )


async def _ready_status(processor: Processor) -> int:
    async with httpx.AsyncClient(base_url=processor.url, timeout=5) as client:
        return (await client.get("/readyz")).status_code


async def _ready_again(processor: Processor) -> None:
    """Readiness is re-checked every READINESS_INTERVAL_S, each check bounded by CHECK_TIMEOUT_S:
    once the server answers, /readyz says so within one round of both (and a margin)."""
    within = READINESS_INTERVAL_S + 2 * CHECK_TIMEOUT_S + 2
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=processor.url, timeout=5) as client:
        while (answer := await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, f"not ready {within:.0f} s after: {answer.text}"
            await asyncio.sleep(0.2)


async def test_processor_killed_mid_stream_then_restarted(line: Pipeline) -> None:
    first = await line.start_processor()
    sending = asyncio.create_task(stream(line.stack.bootstrap_servers, line.gpu_topic))
    await asyncio.wait_for(_when_stored(line, EVENTS // 3), 60)
    first.kill()
    await line.start_processor()
    resent = await sending
    assert_exactly_once(await line.wait_stored(EVENTS), line)
    await report("processor SIGKILL + restart", line, resent)


# Down: the server is stopped, so connections are refused. Frozen: it is SIGSTOPped, so
# connections stay open and nothing answers (no RST, no refused connect), as in a partition.
OUTAGES = {
    "down": ("stop_service", "start_service"),
    "frozen": ("freeze_service", "thaw_service"),
}
SERVER_NAMES = {"kafka": "Kafka", "mongo": "MongoDB"}


@pytest.mark.parametrize(
    ("server", "outage"),
    [("kafka", "down"), ("mongo", "down"), ("mongo", "frozen"), ("kafka", "frozen")],
)
async def test_server_out_for_ten_seconds(line: Pipeline, server: str, outage: str) -> None:
    """The processor pauses and is not ready: it holds its batch (the insert or the commit is
    retried) and reads nothing further. Once the server is back it carries on from there."""
    local = line.stack.local
    assert local is not None
    begin, end = (getattr(local, name) for name in OUTAGES[outage])
    processor = await line.start_processor()
    sending = asyncio.create_task(stream(line.stack.bootstrap_servers, line.gpu_topic))
    await asyncio.wait_for(_when_stored(line, EVENTS // 3), 60)
    await asyncio.to_thread(begin, server)
    try:
        await asyncio.sleep(OUTAGE_S / 2)
        assert await _ready_status(processor) == 503
        consumed_during = await processor.metric("gpu_analytics_events_consumed_total")
        stored_during = await processor.metric("gpu_analytics_events_stored_total")
        await asyncio.sleep(OUTAGE_S / 2)
        assert await processor.metric("gpu_analytics_events_stored_total") == stored_during
        assert await processor.metric("gpu_analytics_events_consumed_total") == consumed_during
    finally:
        await asyncio.to_thread(end, server)
    resent = await sending
    assert_exactly_once(await line.wait_stored(EVENTS), line)
    await _ready_again(processor)
    await report(f"{SERVER_NAMES[server]} {outage} 10 s", line, resent)


async def test_second_processor_joins_mid_stream(line: Pipeline) -> None:
    first = await line.start_processor()
    sending = asyncio.create_task(stream(line.stack.bootstrap_servers, line.gpu_topic))
    await asyncio.wait_for(_when_stored(line, EVENTS // 3), 60)
    second = await line.start_processor()
    resent = await sending
    assert_exactly_once(await line.wait_stored(EVENTS), line)
    consumed = [await p.metric("gpu_analytics_events_consumed_total") for p in (first, second)]
    assert all(c > 0 for c in consumed), consumed  # both took part after the rebalance
    await report("second processor joins", line, resent)


async def test_sigterm_mid_stream_finishes_commits_and_leaves_nothing_to_redeliver(
    line: Pipeline,
) -> None:
    """Graceful shutdown: on SIGTERM the processor stops fetching, stores and commits the batch
    in hand, leaves the group and exits well within the pod's grace period; its successor
    then finds nothing already stored (zero duplicates), unlike after a SIGKILL."""
    first = await line.start_processor()
    sending = asyncio.create_task(stream(line.stack.bootstrap_servers, line.gpu_topic))
    await asyncio.wait_for(_when_stored(line, EVENTS // 3), 60)
    assert first.proc is not None
    started = time.monotonic()
    first.proc.terminate()
    rc = await asyncio.to_thread(first.proc.wait, 45)
    took = time.monotonic() - started
    # uvicorn re-raises the signal once its shutdown is complete: the exit is "by SIGTERM"
    assert rc in (0, -signal.SIGTERM), first.log.read_text()[-3000:]
    assert took < 30, f"SIGTERM to exit took {took:.1f}s"  # terminationGracePeriodSeconds 45
    log = first.log.read_text()
    assert "consumer stopped: batch committed, group left" in log
    second = await line.start_processor()
    resent = await sending
    assert resent == 0
    assert_exactly_once(await line.wait_stored(EVENTS), line)
    assert await second.metric("gpu_analytics_events_duplicate_total") == 0
    await report(f"processor SIGTERM + restart (exit in {took:.1f}s)", line, resent)
