"""HTTP ingest while a dependency is down.

Kafka down: every ingest answers 503 with Retry-After within INGEST_PUBLISH_TIMEOUT_S (plus
slack), never 500 and never a hang; once Kafka is back, ingest answers 202 again and what it
accepted is stored. MongoDB down: ingest keeps answering 202 (Kafka buffers, the consumer
retries) and once MongoDB is back every accepted event is stored exactly once.

These tests stop and start servers, so they run on a stack of their own (not the session's).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field

import httpx
import pytest

from gpu_analytics_tools.testing import reliability
from gpu_analytics_tools.testing.harness import Pipeline, Processor, gpu_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PUBLISH_TIMEOUT_S = 3.0
BOUND_S = PUBLISH_TIMEOUT_S + 2  # the most an ingest request may take while Kafka is down
CLIENT_TIMEOUT_S = 30.0  # far above the bound: a hang shows as a bound violation, not an error
BATCH = 10
CLIENTS = 4


async def _processor(line: Pipeline) -> Processor:
    env = {**line.env(), "INGEST_PUBLISH_TIMEOUT_S": str(PUBLISH_TIMEOUT_S)}
    processor = Processor(env, line.log_dir / f"processor-{len(line.processors)}.log")
    line.processors.append(processor.start())
    await processor.wait_ready()
    return processor


@dataclass
class Answer:
    seqs: range
    status: int
    elapsed_s: float
    retry_after: str | None
    started: float  # time.monotonic() when the request was sent
    detail: str = ""


@dataclass
class Ingest:
    """Posts batches of distinct events (seq in `host`) and records every answer."""

    client: httpx.AsyncClient
    answers: list[Answer] = field(default_factory=list)
    next_seq: int = 0

    async def post(self) -> Answer:
        seqs = range(self.next_seq, self.next_seq + BATCH)
        self.next_seq += BATCH
        started = time.monotonic()
        try:
            response = await self.client.post(
                "/api/v1/gpu-metrics", json=[gpu_event(seq) for seq in seqs]
            )
            status, retry_after = response.status_code, response.headers.get("retry-after")
            detail = response.text[:300]
        except httpx.TimeoutException as exc:
            status, retry_after, detail = 0, None, repr(exc)  # hung past the client's timeout
        answer = Answer(seqs, status, time.monotonic() - started, retry_after, started, detail)
        self.answers.append(answer)
        return answer

    async def keep_posting(self, until: asyncio.Event) -> None:
        while not until.is_set():
            await self.post()
            await asyncio.sleep(0.05)

    def accepted(self) -> set[str]:
        return {f"seq-{s}" for a in self.answers if a.status == 202 for s in a.seqs}

    def sent(self) -> set[str]:
        return {f"seq-{s}" for a in self.answers for s in a.seqs}


async def _stored_hosts_once(line: Pipeline, wanted: set[str], timeout: float = 120) -> list[str]:
    """The stored events' hosts, once all of `wanted` are among them (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        hosts = [d["host"] for d in await line.stored()]
        if wanted <= set(hosts) or time.monotonic() > deadline:
            return hosts
        await asyncio.sleep(0.5)


def _record(scenario: str, ingests: list[Ingest], stored: int) -> None:
    """A row of `make reliability`'s table."""
    answers = [a for i in ingests for a in i.answers]
    accepted = sum(len(a.seqs) for a in answers if a.status == 202)
    refused = sum(1 for a in answers if a.status == 503)
    slowest = max((a.elapsed_s for a in answers if a.status == 503), default=0.0)
    reliability.record(
        scenario=scenario,
        sent=f"{accepted} accepted (202); {refused} requests refused (503, <= {slowest:.1f} s)",
        stored=stored,
        # not measured in these scenarios (valid events over HTTP, no restart)
        **{"duplicates ignored": "-", "dead letters": "-", "stats figure": "-"},
    )


def _report(scenario: str, answers: list[Answer]) -> None:
    """One line per scenario on stderr (shown with `pytest -s`): the figures behind the claim."""
    slowest: dict[int, float] = {}
    counts: dict[int, int] = {}
    for a in answers:
        counts[a.status] = counts.get(a.status, 0) + 1
        slowest[a.status] = max(slowest.get(a.status, 0.0), a.elapsed_s)
    figures = ", ".join(
        f"{status}: {counts[status]} (slowest {slowest[status]:.2f} s)" for status in sorted(counts)
    )
    sys.stderr.write(
        f"\ningest outage {scenario}: {figures}; bound {BOUND_S:.1f} s, publish timeout "
        f"{PUBLISH_TIMEOUT_S:.1f} s\n"
    )


async def test_kafka_down_ingest_answers_503_in_bounded_time_then_202(line: Pipeline) -> None:
    assert line.stack.local is not None
    processor = await _processor(line)
    async with httpx.AsyncClient(base_url=processor.url, timeout=CLIENT_TIMEOUT_S) as client:
        # Several clients keep posting from before the outage on, so some requests are in
        # flight while Kafka goes away and before readiness notices it (the bounded slow path),
        # and later ones meet a processor that knows Kafka is down (the fast path).
        ingests = [Ingest(client, next_seq=n * 1_000_000) for n in range(CLIENTS)]
        assert (await ingests[0].post()).status == 202
        stop = asyncio.Event()
        posting = [asyncio.create_task(i.keep_posting(stop)) for i in ingests]
        await asyncio.sleep(1)
        await asyncio.to_thread(line.stack.local.stop_service, "kafka")
        down = time.monotonic()
        await asyncio.sleep(PUBLISH_TIMEOUT_S * 3)
        stop.set()
        await asyncio.gather(*posting)

        answers = [a for i in ingests for a in i.answers]
        during = [a for a in answers if a.started >= down]
        _report("Kafka down", answers)
        assert all(a.status in (202, 503) for a in answers), sorted({a.status for a in answers})
        assert max(a.elapsed_s for a in answers) <= BOUND_S
        assert len(during) >= 5, "too few requests during the outage"
        assert {a.status for a in during} == {503}
        assert all(a.retry_after and a.retry_after.isdigit() for a in answers if a.status == 503)
        # Some request met the outage before readiness did: the publish timeout, not the fast
        # path, bounded it.
        assert any(a.elapsed_s >= PUBLISH_TIMEOUT_S * 0.9 for a in answers if a.status == 503)

        await asyncio.to_thread(line.stack.local.start_service, "kafka")
        back = time.monotonic()
        deadline = back + 90
        while (answer := await ingests[0].post()).status != 202:
            assert answer.status == 503 and answer.elapsed_s <= BOUND_S, answer
            if time.monotonic() > deadline:
                ready = (await client.get("/readyz")).text
                raise AssertionError(f"ingest refused 90 s after Kafka is back: {answer}, {ready}")
            await asyncio.sleep(0.5)
        recovered_s = time.monotonic() - back
        for _ in range(5):
            assert (await ingests[1].post()).status == 202
    sys.stderr.write(f"ingest outage Kafka back: 202 again {recovered_s:.1f} s after it answered\n")

    accepted = set().union(*(i.accepted() for i in ingests))
    sent = set().union(*(i.sent() for i in ingests))
    hosts = await _stored_hosts_once(line, accepted)
    assert len(hosts) == len(set(hosts)), "an event was stored twice"
    assert accepted <= set(hosts), f"{len(accepted - set(hosts))} accepted events not stored"
    # A refused event may still arrive (the client's retry is then a duplicate), never a stranger.
    assert set(hosts) <= sent
    _record("HTTP ingest, Kafka down 9 s", ingests, len(hosts))


async def test_mongo_down_ingest_keeps_accepting_and_stores_exactly_once(line: Pipeline) -> None:
    assert line.stack.local is not None
    processor = await _processor(line)
    async with httpx.AsyncClient(base_url=processor.url, timeout=CLIENT_TIMEOUT_S) as client:
        ingest = Ingest(client)
        for _ in range(5):
            assert (await ingest.post()).status == 202
        await asyncio.to_thread(line.stack.local.stop_service, "mongo")
        outage_end = time.monotonic() + PUBLISH_TIMEOUT_S * 3
        while time.monotonic() < outage_end:
            answer = await ingest.post()
            assert answer.status == 202, answer
            assert answer.elapsed_s <= BOUND_S, answer
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=processor.url, timeout=5) as probe:
            assert (await probe.get("/readyz")).status_code == 503  # the outage was seen
        await asyncio.to_thread(line.stack.local.start_service, "mongo")
        for _ in range(5):
            assert (await ingest.post()).status == 202
    _report("MongoDB down", ingest.answers)
    expected = sorted(ingest.accepted())
    assert len(expected) == len(ingest.answers) * BATCH
    docs = await line.wait_stored(len(expected))
    assert sorted(d["host"] for d in docs) == expected
    _record("HTTP ingest, MongoDB down 9 s", [ingest], len(docs))


async def test_a_processor_started_while_mongo_is_down_accepts_ingest(line: Pipeline) -> None:
    """Ingest needs only Kafka: a processor that starts while MongoDB is away answers 202 (its
    consumer waits for MongoDB), and stores the events once MongoDB is back."""
    assert line.stack.local is not None
    await asyncio.to_thread(line.stack.local.stop_service, "mongo")
    try:
        env = {**line.env(), "INGEST_PUBLISH_TIMEOUT_S": str(PUBLISH_TIMEOUT_S)}
        processor = Processor(env, line.log_dir / f"processor-{len(line.processors)}.log")
        line.processors.append(processor.start())
        async with httpx.AsyncClient(base_url=processor.url, timeout=CLIENT_TIMEOUT_S) as client:
            ingest = Ingest(client)
            deadline = time.monotonic() + 60
            while True:  # until the HTTP server and the Kafka producer are up
                try:
                    if (await ingest.post()).status == 202:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                await asyncio.sleep(0.5)
                assert time.monotonic() < deadline, "ingest never accepted with MongoDB down"
            for _ in range(3):
                assert (await ingest.post()).status == 202
    finally:
        await asyncio.to_thread(line.stack.local.start_service, "mongo")
    expected = sorted(ingest.accepted())
    docs = await line.wait_stored(len(expected))
    assert sorted(d["host"] for d in docs) == expected
