"""Benchmark (c): HTTP ingest events/s with batches of 100, against publishing the same events
straight to Kafka from the client (the ceiling the HTTP path adds its work on top of).

Benchmark (d), `bench_otlp`: OTLP/HTTP trace ingest of LLM call spans against our own JSON
ingest of the same calls (both through the processor to Kafka), 100 calls per request. The
OTLP bodies are ExportTraceServiceRequests built with opentelemetry-proto, as an SDK's exporter
sends them; every body is encoded before the clock starts.

Beside the rates, both lines give the processor's own CPU per event (user + system time of its
process, from the first POST until the consumer has stored the last event: ingest, publish and
store, what a pod pays). A rate moves with everything else on the machine (the broker, the
database, the client posting); that figure less so, though not nothing: the consumer's batches
grow when it falls behind, and a larger batch costs less per event."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.stack.topics import create_topics
from gpu_analytics_tools.testing.harness import Pipeline, Processor, gpu_event

BATCH = 100
BATCHES = 200
CONCURRENCY = 8


def batches() -> list[list[dict[str, object]]]:
    return [[gpu_event(b * BATCH + i) for i in range(BATCH)] for b in range(BATCHES)]


async def start_processor(stack: StackEnv, log_dir: Path, base: Path | None = None) -> Processor:
    """A processor on topics and a database of its own; with `base`, that checkout's code
    (its packages first on the import path)."""
    run = uuid.uuid4().hex[:8]
    line = Pipeline(
        stack, f"bench.ing.{run}", f"bench.tok.{run}", f"bench_{run}", f"i-{run}", log_dir
    )
    await create_topics(stack.bootstrap_servers, {line.gpu_topic: 6, line.token_topic: 6})
    if base is None:
        return await line.start_processor()
    env = {**line.env(), "PYTHONPATH": str(base / "services")}
    processor = Processor(env, log_dir / f"processor-base-{run}.log").start()
    line.processors.append(processor)
    await processor.wait_ready()
    return processor


async def post_all(url: str, path: str, bodies: list[bytes], content_type: str) -> float:
    """POST every body, CONCURRENCY at a time; the seconds it took."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(path, content=body, headers={"content-type": content_type})
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


@dataclass(frozen=True)
class Run:
    rate: float  # events/s posted
    cpu_us: float  # the processor's CPU per event, ingest to stored


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def timed_run(processor: Processor, path: str, bodies: list[bytes], media: str) -> Run:
    """Post the bodies to a started processor and wait until it has stored them."""
    assert processor.proc is not None
    cpu = cpu_seconds(processor.proc.pid)
    seconds = await post_all(processor.url, path, bodies, media)
    await settled(processor)
    cpu = cpu_seconds(processor.proc.pid) - cpu
    return Run(BATCH * BATCHES / seconds, cpu / (BATCH * BATCHES) * 1e6)


async def _ours(stack: StackEnv, log_dir: Path, base: Path | None = None) -> Run:
    processor = await start_processor(stack, log_dir, base)
    bodies = [orjson.dumps(b) for b in batches()]
    try:
        return await timed_run(processor, "/api/v1/gpu-metrics", bodies, "application/json")
    finally:
        processor.stop()


async def settled(processor: Processor, timeout: float = 180) -> None:
    """Until the processor's consumer has stored every event posted: the next run then starts
    on a quiet broker and database, not while this run's events are still being stored."""
    deadline = time.monotonic() + timeout
    while await processor.metric("gpu_analytics_events_stored_total") < BATCH * BATCHES:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the processor did not store the events in {timeout:g}s")
        await asyncio.sleep(0.5)


async def _direct(bootstrap: str) -> float:
    topic = f"bench.direct.{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, {topic: 6})
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type="lz4",
        linger_ms=5,
    )
    await producer.start()
    try:
        events = [e for batch in batches() for e in batch]
        started = time.perf_counter()
        futures = [
            await producer.send(topic, orjson.dumps(e), key=str(e["gpu_uuid"]).encode())
            for e in events
        ]  # all in flight at once: the broker's best case
        await asyncio.gather(*futures)
        return len(events) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def bench(stack: StackEnv, runs: int, log_dir: Path, base: Path | None = None) -> dict[str, object]:
    ours: list[Run] = []
    old: list[Run] = []
    direct: list[float] = []
    asyncio.run(_direct(stack.bootstrap_servers))  # untimed: the broker warms up first
    for _ in range(runs):  # interleaved, so a slow moment of the machine hits all alike
        direct.append(asyncio.run(_direct(stack.bootstrap_servers)))
        ours.append(asyncio.run(_ours(stack, log_dir)))
        if base is not None:
            old.append(asyncio.run(_ours(stack, log_dir, base)))
    result = _result(
        "http_ingest_rate",
        ("ours_events_per_s", [r.rate for r in ours]),
        ("direct_kafka_events_per_s", direct),
        runs,
    )
    result["ours_cpu_us_per_event"] = _median_cpu(ours)
    return _with_base(result, ours, statistics.median(direct), old)


def _median_cpu(runs: list[Run]) -> float:
    return round(statistics.median(r.cpu_us for r in runs), 2)


def _with_base(
    result: dict[str, object], ours: list[Run], reference: float, old: list[Run]
) -> dict[str, object]:
    """The base revision's figures beside the line, when it ran: its own ratio against the
    same reference, and HEAD over BASE (rates: above 1 is faster; CPU: below 1 is cheaper)."""
    if old:
        base_rate = statistics.median(r.rate for r in old)
        result["base_ratio"] = round(base_rate / reference, 3)
        result["base_events_per_s"] = round(base_rate)
        result["head_over_base"] = round(statistics.median(r.rate for r in ours) / base_rate, 3)
        result["base_cpu_us_per_event"] = _median_cpu(old)
        result["head_over_base_cpu"] = round(_median_cpu(ours) / _median_cpu(old), 3)
    return result


def _result(
    bench: str, ours: tuple[str, list[float]], reference: tuple[str, list[float]], runs: int
) -> dict[str, object]:
    """One benchmark's line: the ratio of the medians, both medians and the run's shape."""
    (ours_key, ours_rates), (ref_key, ref_rates) = ours, reference
    ours_rate, ref_rate = statistics.median(ours_rates), statistics.median(ref_rates)
    return {
        "bench": bench,
        "ratio": round(ours_rate / ref_rate, 3),
        ours_key: round(ours_rate),
        ref_key: round(ref_rate),
        "batch": BATCH,
        "concurrency": CONCURRENCY,
        "events": BATCH * BATCHES,
        "runs": runs,
        "cpus": os.cpu_count(),
    }


NS = 1_000_000_000


def calls() -> list[list[dict[str, Any]]]:
    end = int(datetime.now(UTC).timestamp() * NS)
    return [
        [
            {
                "n": b * BATCH + i,
                "model": f"model-{i % 4}",
                "input": 500 + i,
                "output": 100 + i,
                "start": end - 2 * NS,
                "end": end,
            }
            for i in range(BATCH)
        ]
        for b in range(BATCHES)
    ]


def _json_body(calls: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        [
            {
                "event_id": f"{c['n']:032x}-{c['n']:016x}",
                "ts": datetime.fromtimestamp(c["end"] / NS, UTC).isoformat(),
                "host": "bench",
                "provider": "openai",
                "model": c["model"],
                "input_tokens": c["input"],
                "output_tokens": c["output"],
                "latency_ms": (c["end"] - c["start"]) / 1e6,
                "gpu_uuid": "GPU-bench",
            }
            for c in calls
        ]
    )


def _attr(key: str, value: str | int) -> KeyValue:
    any_value = (
        AnyValue(string_value=value) if isinstance(value, str) else AnyValue(int_value=value)
    )
    return KeyValue(key=key, value=any_value)


def otlp_body(calls: list[dict[str, Any]]) -> bytes:
    spans = [
        Span(
            trace_id=c["n"].to_bytes(16, "big"),
            span_id=c["n"].to_bytes(8, "big"),
            name="chat",
            start_time_unix_nano=c["start"],
            end_time_unix_nano=c["end"],
            attributes=[
                _attr("gen_ai.operation.name", "chat"),
                _attr("gen_ai.provider.name", "openai"),
                _attr("gen_ai.response.model", c["model"]),
                _attr("gen_ai.usage.input_tokens", c["input"]),
                _attr("gen_ai.usage.output_tokens", c["output"]),
                _attr("gpu.uuid", "GPU-bench"),
            ],
        )
        for c in calls
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_attr("host.name", "bench")]),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return request.SerializeToString()


async def _rate(stack: StackEnv, log_dir: Path, otlp: bool, base: Path | None = None) -> Run:
    processor = await start_processor(stack, log_dir, base)
    spans = calls()
    try:
        if otlp:
            bodies = [otlp_body(c) for c in spans]
            return await timed_run(processor, "/v1/traces", bodies, "application/x-protobuf")
        bodies = [_json_body(c) for c in spans]
        return await timed_run(processor, "/api/v1/token-usage", bodies, "application/json")
    finally:
        processor.stop()


def bench_otlp(
    stack: StackEnv, runs: int, log_dir: Path, base: Path | None = None
) -> dict[str, object]:
    otlp: list[Run] = []
    ours: list[Run] = []
    old: list[Run] = []
    for _ in range(runs):  # interleaved, so a slow moment of the machine hits all alike
        ours.append(asyncio.run(_rate(stack, log_dir, otlp=False)))
        otlp.append(asyncio.run(_rate(stack, log_dir, otlp=True)))
        if base is not None:
            old.append(asyncio.run(_rate(stack, log_dir, otlp=True, base=base)))
    result = _result(
        "otlp_ingest_rate",
        ("otlp_spans_per_s", [r.rate for r in otlp]),
        ("json_events_per_s", [r.rate for r in ours]),
        runs,
    )
    result["otlp_cpu_us_per_event"] = _median_cpu(otlp)
    result["json_cpu_us_per_event"] = _median_cpu(ours)
    result["cpu_ratio"] = round(_median_cpu(otlp) / _median_cpu(ours), 3)  # below 1 is cheaper
    return _with_base(result, otlp, statistics.median(r.rate for r in ours), old)
