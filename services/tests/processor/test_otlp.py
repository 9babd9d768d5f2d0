"""OTLP/HTTP traces into token usage, end to end with the OpenTelemetry SDK's own exporters:
SDK -> POST /v1/traces -> Kafka -> consumer -> MongoDB, exactly once."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as ProtobufSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

from gpu_analytics_tools.testing.harness import Pipeline, Processor

pytestmark = pytest.mark.integration

NS = 1_000_000_000


def record_spans(
    resource: dict[str, Any], scope: str, calls: Sequence[dict[str, Any]]
) -> Sequence[ReadableSpan]:
    """Finished SDK spans (one per call, 2 s long, and one plain HTTP span between them)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(scope)
    start = time.time_ns() - 5 * NS
    for i, attributes in enumerate(calls):
        span = tracer.start_span("chat", attributes=attributes, start_time=start + i)
        if attributes.get("error.type"):
            span.set_status(SpanStatus(StatusCode.ERROR, "upstream timed out"))
        span.end(end_time=start + i + 2 * NS)
        tracer.start_span("GET /health", start_time=start).end(end_time=start + NS)
    provider.shutdown()
    return memory.get_finished_spans()


async def handled(processor: Processor, topic: str, records: int, timeout: float = 60) -> None:
    """Wait until `records` records of `topic` went through the insert: stored or found to be
    duplicates (both counted after MongoDB answered)."""
    deadline = time.monotonic() + timeout

    async def done() -> float:
        stored = await processor.metric("gpu_analytics_events_stored_total", topic=topic)
        again = await processor.metric("gpu_analytics_events_duplicate_total", topic=topic)
        return stored + again

    while await done() < records:
        assert time.monotonic() < deadline, f"fewer than {records} records of {topic} handled"
        await asyncio.sleep(0.2)


def genai(i: int, **more: Any) -> dict[str, Any]:
    """A span of today's GenAI conventions (OpenLIT, OpenLLMetry, the OpenAI instrumentation)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 100 + i,
        "gen_ai.usage.output_tokens": 20 + i,
        **more,
    }


EXPORTERS: dict[str, Callable[[str], SpanExporter]] = {
    "protobuf": lambda url: ProtobufSpanExporter(endpoint=url),
    "protobuf-gzip": lambda url: ProtobufSpanExporter(endpoint=url, compression=Compression.Gzip),
    "json": lambda url: JsonSpanExporter(endpoint=url),
}


@pytest.mark.parametrize("encoding", sorted(EXPORTERS))
async def test_sdk_exports_are_stored_once_even_when_sent_twice(
    pipeline: Pipeline, encoding: str
) -> None:
    processor = await pipeline.start_processor()
    calls = [genai(i) for i in range(4)] + [genai(4, **{"error.type": "timeout"})]
    spans = record_spans(
        {"host.name": "node-7", "service.name": "chat-api", "gpu.uuid": "GPU-otel"},
        "openlit",
        calls,
    )
    exporter = EXPORTERS[encoding](f"{processor.url}/v1/traces")
    for _ in range(2):  # an exporter's retry of the same batch
        assert await asyncio.to_thread(exporter.export, spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    # Both exports consumed: 5 stored, and the 5 of the retry found already there.
    await handled(processor, pipeline.token_topic, 10)
    docs = await pipeline.stored("token_usage")
    assert len(docs) == 5, pipeline.diagnosis()
    assert await processor.metric("gpu_analytics_events_duplicate_total") == 5
    llm_spans = [s for s in spans if s.name == "chat"]
    ids = {f"{s.context.trace_id:032x}-{s.context.span_id:016x}" for s in llm_spans}
    assert {d["_id"] for d in docs} == ids
    by_tokens = {d["input_tokens"]: d for d in docs}
    first = by_tokens[100]
    assert first["model"] == "gpt-4o-2024-08-06"  # the response model over the request model
    assert (first["provider"], first["operation"], first["output_tokens"]) == ("openai", "chat", 20)
    assert (first["host"], first["gpu_uuid"], first["status"]) == ("node-7", "GPU-otel", "ok")
    assert first["latency_ms"] == pytest.approx(2000)
    assert first["ttft_ms"] is None
    assert by_tokens[104]["status"] == "error"
    assert await processor.metric("gpu_analytics_otlp_spans_total", outcome="accepted") == 10
    assert await processor.metric("gpu_analytics_otlp_spans_total", outcome="no_genai_usage") == 10


async def test_vllm_spans_with_its_attribute_names(pipeline: Pipeline) -> None:
    """vLLM's `llm_request` spans (--otlp-traces-endpoint): prompt/completion tokens, the
    response model, time to first token in seconds, no provider attribute."""
    processor = await pipeline.start_processor()
    calls = [
        {
            "gen_ai.response.model": "meta-llama/Llama-3.1-8B-Instruct",
            "gen_ai.request.id": f"cmpl-{i}",
            "gen_ai.request.max_tokens": 512,
            "gen_ai.usage.prompt_tokens": 700,
            "gen_ai.usage.completion_tokens": 180,
            "gen_ai.latency.time_to_first_token": 0.125,
            "gen_ai.latency.e2e": 2.0,
            "gen_ai.latency.time_in_queue": 0.01,
        }
        for i in range(3)
    ]
    spans = record_spans({"k8s.pod.name": "vllm-0"}, "vllm.llm_engine", calls)
    exporter = ProtobufSpanExporter(endpoint=f"{processor.url}/v1/traces")
    assert await asyncio.to_thread(exporter.export, spans) == SpanExportResult.SUCCESS
    docs = await pipeline.wait_stored(3, "token_usage")
    assert len(docs) == 3
    for doc in docs:
        assert doc["model"] == "meta-llama/Llama-3.1-8B-Instruct"
        assert (doc["provider"], doc["host"], doc["gpu_uuid"]) == ("vllm", "vllm-0", None)
        assert (doc["input_tokens"], doc["output_tokens"]) == (700, 180)
        assert doc["ttft_ms"] == pytest.approx(125)


def _request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans)


async def test_bad_bodies_get_the_specs_answers_and_store_nothing(pipeline: Pipeline) -> None:
    processor = await pipeline.start_processor()
    good = _request(record_spans({"host.name": "h"}, "s", [genai(0)])).SerializeToString()
    no_model = _request(
        record_spans({"host.name": "h"}, "s", [{"gen_ai.usage.input_tokens": 5}, genai(1)])
    )
    bomb = gzip.compress(b"\0" * (4 * 1_048_576))  # 4 MiB of zeros in about 4 KiB
    url = "/v1/traces"
    proto = {"content-type": "application/x-protobuf"}
    async with httpx.AsyncClient(base_url=processor.url) as client:

        async def post(body: bytes, **headers: str) -> httpx.Response:
            return await client.post(url, content=body, headers=headers)

        malformed = await post(b"\xff\xff\xff\xff not protobuf", **proto)
        assert malformed.status_code == 400
        assert "ExportTraceServiceRequest" in Status.FromString(malformed.content).message
        assert malformed.headers["content-type"] == "application/x-protobuf"
        truncated = await post(good[: len(good) // 2], **proto)
        assert truncated.status_code == 400
        wrong_type = await post(good, **{"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        assert (await post(good, **proto, **{"content-encoding": "br"})).status_code == 415
        oversized = await post(b"\0" * (1_048_576 + 1), **proto)
        assert oversized.status_code == 413
        gzip_bomb = await post(bomb, **proto, **{"content-encoding": "gzip"})
        assert gzip_bomb.status_code == 413
        assert "decompressed" in Status.FromString(gzip_bomb.content).message
        bad_json = await post(b'{"resourceSpans": [', **{"content-type": "application/json"})
        assert bad_json.status_code == 400
        assert json_format.Parse(bad_json.text, Status()).code == 3  # INVALID_ARGUMENT
        bad_id = await post(
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            **{"content-type": "application/json"},
        )
        assert bad_id.status_code == 400

        # One GenAI span without a model: partial success, the other span is taken.
        partial = await post(no_model.SerializeToString(), **proto)
        assert partial.status_code == 200
        answer = ExportTraceServiceResponse.FromString(partial.content)
        assert answer.partial_success.rejected_spans == 1
        assert "no model" in answer.partial_success.error_message
        # A resource whose host.name is no string: its span is rejected, not a server error.
        odd_host = _request(record_spans({"host.name": 7}, "s", [genai(2)]))
        rejected = await post(odd_host.SerializeToString(), **proto)
        assert rejected.status_code == 200
        answer = ExportTraceServiceResponse.FromString(rejected.content)
        assert answer.partial_success.rejected_spans == 1
        assert "host.name is int" in answer.partial_success.error_message
    await handled(processor, pipeline.token_topic, 1)
    docs = await pipeline.stored("token_usage")
    assert [d["input_tokens"] for d in docs] == [101]  # only the valid span of the last body
    assert await processor.metric("gpu_analytics_otlp_spans_total", outcome="rejected") == 2


async def test_the_synthetic_producer_can_send_token_usage_as_otlp_spans(
    pipeline: Pipeline,
) -> None:
    """PRODUCER_TOKEN_TRANSPORT=otlp: GPU samples to Kafka, token usage as GenAI spans through
    the SDK to /v1/traces; the processor stores both, the calls named by their GPU."""
    from gpu_analytics.config import ProducerSettings
    from gpu_analytics.producer.service import ProducerService
    from gpu_analytics_tools.testing.producer import SEED

    processor = await pipeline.start_processor()
    settings = ProducerSettings(
        kafka_bootstrap_servers=pipeline.stack.bootstrap_servers,
        topic_gpu_metrics=pipeline.gpu_topic,
        topic_token_usage=pipeline.token_topic,
        producer_source="synthetic",
        producer_seed=SEED,
        producer_host="otlp-node",
        producer_rate=float("inf"),
        producer_token_transport="otlp",
        producer_otlp_endpoint=f"{processor.url}/v1/traces",
        metrics_port=0,
    )
    service = ProducerService(settings)
    assert await service.run(max_events=400, handle_signals=False) == 0
    assert service.publisher is not None
    gpu_sent = service.publisher.sent.get(pipeline.gpu_topic, 0)
    assert service.publisher.sent.get(pipeline.token_topic, 0) == 0  # none through Kafka
    exported = service.metrics.registry.get_sample_value(
        "gpu_analytics_otlp_spans_exported_total", {"result": "success"}
    )
    assert exported is not None and exported == 400 - gpu_sent > 0
    gpus = await pipeline.wait_stored(gpu_sent, "gpu_metrics")
    calls = await pipeline.wait_stored(int(exported), "token_usage")
    assert len(calls) == exported, pipeline.diagnosis()
    fleet = {g["gpu_uuid"] for g in gpus}
    assert all(c["gpu_uuid"] in fleet and c["provider"] == "vllm" for c in calls)
    assert {c["host"] for c in calls} <= {g["host"] for g in gpus}
    assert await processor.metric("gpu_analytics_otlp_spans_total", outcome="accepted") == exported
